"""The broker dies in the middle of an audit of 60 simulated PLCs and comes back.

Real parts only: 60 Modbus simulators, the collector daemon (outbox, forwarder), a private
Mosquitto that is stopped and restarted, and the server's listener storing into SQLite or
PostgreSQL. Every observation must reach the database exactly once. The figures are printed
(``pytest -s``) so they can be quoted.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from otaudit.collector.daemon import CollectorDaemon
from otaudit.inventory import load_inventory
from otaudit.server.db import ObservationRow, init_db, make_engine, session_factory
from otaudit.server.ingest import Ingestor
from otaudit.server.listener import ServerStats, serve
from otaudit.server.store import upsert_zones
from otaudit.settings import Settings
from otaudit.simulators import create_simulator

pytestmark = pytest.mark.mosquitto
DEVICES = 60


async def until(predicate, timeout: float, what: str,  # type: ignore[no-untyped-def]
                *tasks: asyncio.Task) -> None:
    """Wait for ``predicate``; fail at once if one of ``tasks`` ended (with its error)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        for task in tasks:
            if task.done():
                raise AssertionError(f"{task.get_name()} ended while waiting for {what}: "
                                     f"{task.exception() if not task.cancelled() else 'cancelled'}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)


async def test_broker_outage_mid_audit_loses_nothing_and_stores_nothing_twice(
        tmp_path: Path, mosquitto_factory: type, database_url: str) -> None:
    # as root mosquitto drops to user "mosquitto", who could not write its persistence here
    broker = mosquitto_factory("user root\n" if os.geteuid() == 0 else "")
    broker.start()
    site, collector = f"outage-{uuid.uuid4().hex[:6]}", "c-outage"
    async with AsyncExitStack() as stack:
        plcs = [await stack.enter_async_context(create_simulator("modbus", "schneider-m340"))
                for _ in range(DEVICES)]
        path = tmp_path / "inventory.yaml"
        path.write_text(yaml.safe_dump({
            "site": site, "collector": collector, "zones": [{"id": "cell", "sl_t": 2}],
            "schedules": [{"id": "default", "interval": "1h"}],
            "assets": [{"id": f"plc-{i:02d}", "kind": "plc", "zone": "cell",
                        "endpoints": {"modbus": {"host": "127.0.0.1", "port": plc.port,
                                                 "unit": 1}}}
                       for i, plc in enumerate(plcs)]}))
        settings = Settings(
            broker_url=broker.url, database_url=database_url, collector_id=collector,
            server_client_id=f"server-{uuid.uuid4().hex[:8]}", state_dir=tmp_path / "state",
            concurrency=4, min_request_interval=0.05, device_min_interval=0,
            reconnect_min_delay=0.1, reconnect_max_delay=0.5)

        engine = make_engine(database_url)
        init_db(engine)
        with session_factory(engine).begin() as session:
            upsert_zones(session, load_inventory(path)[0])
        ready, stop, stats = asyncio.Event(), asyncio.Event(), ServerStats()
        server = asyncio.create_task(serve(Ingestor(engine, topic_prefix=settings.topic_prefix),
                                           settings, ready=ready, stop=stop, stats=stats,
                                           reconnect_delay=0.2), name="server")
        await until(ready.is_set, 10, "the server to subscribe", server)

        daemon = CollectorDaemon(path, settings)
        running = asyncio.create_task(daemon.run(), name="collector")
        try:
            await until(lambda: daemon.forwarder is not None and daemon.forwarder.published >= 15,
                        20, "15 acknowledged observations", server, running)
            assert daemon.scheduler.running == ["default"], "the audit must still be going"
            broker.stop()  # SIGTERM: Mosquitto saves its persistent sessions and exits
            killed_at = daemon.forwarder.published
            await asyncio.sleep(1.5)  # the audit goes on into the outbox
            waiting = daemon.outbox.entries if daemon.outbox else 0
            broker.start()
            await until(lambda: daemon.scheduler.stats.completed == 1, 60, "the audit",
                        server, running)
            await until(lambda: daemon.outbox.entries == 0, 30, "the outbox to drain",
                        server, running)
            await until(lambda: stats.stored >= DEVICES, 30, "the server to store everything",
                        server, running)
            await asyncio.sleep(0.5)  # late duplicates, if any, would show up now
        finally:
            daemon.stop()
            await asyncio.wait_for(running, 30)
            stop.set()
            await asyncio.wait_for(server, 30)

    with engine.connect() as conn:
        rows = conn.execute(sa.select(ObservationRow.observation_id, ObservationRow.asset_id)
                            .where(ObservationRow.site == site)).all()
    engine.dispose()
    sent = daemon.store.stored if daemon.store else 0
    acks = daemon.forwarder.published if daemon.forwarder else 0
    attempts = daemon.forwarder.attempts if daemon.forwarder else 0
    backend = database_url.split(":", 1)[0]
    print(f"\nbroker outage ({backend}): {sent} observations sent, broker stopped after "
          f"{killed_at} acknowledged, {waiting} waiting in the outbox during the outage; "
          f"{attempts} publishes sent ({attempts - acks} re-sent), {acks} acknowledged; "
          f"server stored {stats.stored}, discarded {stats.duplicates} duplicate deliveries, "
          f"rejected {stats.rejected}; database rows {len(rows)}, distinct ids "
          f"{len({r.observation_id for r in rows})}, lost {sent - len(rows)}")
    assert sent == DEVICES
    assert len(rows) == len({r.observation_id for r in rows}) == DEVICES  # none lost, none twice
    assert sorted(r.asset_id for r in rows) == [f"plc-{i:02d}" for i in range(DEVICES)]
    assert stats.stored == DEVICES and stats.rejected == 0
    assert waiting > 0, "the outage happened after the audit: nothing was tested"
