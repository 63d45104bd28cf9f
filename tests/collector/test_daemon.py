"""The daemon in-process: reload on a changed inventory file, status counters."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from pathlib import Path

import aiomqtt
import pytest
from collector_support import (  # noqa: F401 (fixtures)
    broker_acknowledges,
    fake_asset,
    fake_probes,
    private_state_dir,
    write_inventory,
)

from otaudit.collector.daemon import CollectorDaemon
from otaudit.settings import Settings


async def until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_a_changed_file_is_reloaded_and_the_heartbeat_counts(
        tmp_path: Path, mosquitto_url: str, caplog: pytest.LogCaptureFixture) -> None:
    site = f"poll-{uuid.uuid4().hex[:6]}"
    schedules = [{"id": "plcs", "interval": "1h"}]
    path = write_inventory(tmp_path / "inv.yaml", site,
                           [fake_asset("a0", schedule="plcs")], schedules, collector="c1")
    settings = Settings(broker_url=mosquitto_url, inventory_poll_interval=0.1,
                        heartbeat_interval=0.2)
    daemon = CollectorDaemon(path, settings)
    caplog.set_level(logging.INFO, logger="otaudit.collector")
    statuses: list[dict] = []
    async with aiomqtt.Client("127.0.0.1", 1883) as sub:
        await sub.subscribe(f"otaudit/v1/{site}/c1/status", qos=1)
        running = asyncio.create_task(daemon.run())
        try:
            await until(lambda: daemon.scheduler.stats.completed == 1, 10, "the first run")
            write_inventory(path, site, [fake_asset("a0", schedule="plcs"),
                                         fake_asset("a1", schedule="plcs", port=10)],
                            schedules, collector="c1")
            await until(lambda: len(daemon.plans) == 2, 10, "the reload")
            async with asyncio.timeout(10):
                async for message in sub.messages:
                    statuses.append(json.loads(message.payload))
                    if statuses[-1]["inventory"]["assets"] == 2:
                        break
        finally:
            daemon.stop()
            await asyncio.wait_for(running, 10)
            await sub.publish(f"otaudit/v1/{site}/c1/status", b"", qos=1, retain=True)
    beat = statuses[-1]
    assert beat["state"] == "online" and beat["auditing"] == "running"
    assert beat["runs"]["completed"] == 1 and beat["last_run"]["observations"] == 1
    assert beat["observations"] == {"stored": 1, "published": 1, "held": 0, "lost": 0,
                                    "receipted": 0, "rejected": 0, "republished": 0}
    assert beat["outbox"]["entries"] == 0 and beat["broker"]["connected"] is True
    assert beat["outbox"]["queued"] == beat["outbox"]["sent"] == {"count": 0,
                                                                  "oldest_age": None}
    assert any("inventory reloaded (file changed): 2 assets" in r.getMessage()
               for r in caplog.records)
