"""The durable outbox: survives a killed process, drains in order, bounded without dropping."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import aiomqtt
import pytest
from collector_support import (  # noqa: F401 (fixtures)
    broker_acknowledges,
    broker_config,
    fake_asset,
    fake_probes,
    private_state_dir,
    write_inventory,
)

from otaudit.collector.daemon import CollectorDaemon
from otaudit.collector.forwarder import Forwarder
from otaudit.collector.outbox import Outbox, OutboxError
from otaudit.observation import Observation
from otaudit.settings import Settings

WRITER = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path
    from otaudit.collector.outbox import Outbox
    box = Outbox(Path(sys.argv[1]), max_entries=1000, max_bytes=10**7)
    for i in range(20):
        box.append(f"k{i}", f"{sys.argv[2]}/a{i}", json.dumps({"i": i}).encode())
    print("stored", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no clean exit
""")


async def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_outbox_survives_a_killed_process_and_drains_in_order(
        tmp_path: Path, mosquitto_url: str) -> None:
    path = tmp_path / "outbox.db"
    prefix = f"otaudit/v1/t-{uuid.uuid4().hex[:8]}/c/obs"
    done = subprocess.run([sys.executable, "-c", WRITER, str(path), prefix],
                          capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "stored" and done.returncode == -9

    box = Outbox(path, max_entries=1000, max_bytes=10**7)
    entries = box.peek(limit=100)
    assert box.entries == 20 and [json.loads(e.payload)["i"] for e in entries] == list(range(20))
    seqs = [e.seq for e in entries]
    assert seqs == sorted(seqs) and seqs[0] > 10**15  # time-based start: never reused
    assert box.append("k3", "x", b"again") == seqs[3] and box.entries == 20  # idempotent

    received: list[int] = []
    async with aiomqtt.Client("127.0.0.1", 1883) as sub:
        await sub.subscribe(f"{prefix}/+", qos=1)
        forwarder = Forwarder(box, Settings(broker_url=mosquitto_url),
                              client_id=f"t-{uuid.uuid4().hex[:8]}")
        forwarder.finish(max_failures=3)
        await forwarder.run()
        async with asyncio.timeout(10):
            async for message in sub.messages:
                received.append(json.loads(message.payload)["i"])
                if len(received) == 20:
                    break
    assert received == list(range(20))  # in order
    assert box.entries == 0 and forwarder.published == 20
    box.close()
    reopened = Outbox(path, max_entries=1000, max_bytes=10**7)
    assert reopened.entries == 0
    assert reopened.append("new", "t", b"{}") > seqs[-1]
    reopened.close()


def test_one_process_at_a_time_per_outbox(tmp_path: Path) -> None:
    first = Outbox(tmp_path / "o.db", max_entries=10, max_bytes=1000)
    holder = subprocess.run(
        [sys.executable, "-c", "import sys; from pathlib import Path;"
         "from otaudit.collector.outbox import Outbox, OutboxError\n"
         "try: Outbox(Path(sys.argv[1]), max_entries=1, max_bytes=1)\n"
         "except OutboxError as e: print(e)", str(tmp_path / "o.db")],
        capture_output=True, text=True, timeout=30)
    assert "is in use by another collector process" in holder.stdout
    first.close()
    Outbox(tmp_path / "o.db", max_entries=10, max_bytes=1000).close()
    with pytest.raises(OutboxError):
        Outbox(tmp_path / "missing" / "o.db", max_entries=1, max_bytes=1)


async def test_a_full_outbox_pauses_auditing_until_the_broker_drains_it(
        tmp_path: Path, mosquitto_factory: type, caplog: pytest.LogCaptureFixture) -> None:
    broker = mosquitto_factory(broker_config())
    broker.start()
    site, subscriber_id = f"full-{uuid.uuid4().hex[:6]}", f"sub-{uuid.uuid4().hex[:6]}"
    topic = f"otaudit/v1/{site}/+/obs/+"
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier=subscriber_id,
                              clean_session=False) as sub:
        await sub.subscribe(topic, qos=1)  # a persistent session queues while we are away
    broker.stop()

    assets = [fake_asset(f"a{i}", port=1000 + i) for i in range(10)]
    inventory = write_inventory(tmp_path / "inv.yaml", site, assets,
                                schedules=[{"id": "default", "interval": "1h"}])
    settings = Settings(broker_url=broker.url, state_dir=tmp_path / "state", concurrency=1,
                        outbox_max_entries=3, device_min_interval=0,
                        reconnect_min_delay=0.1, reconnect_max_delay=0.3)
    daemon = CollectorDaemon(inventory, settings)
    caplog.set_level(logging.INFO, logger="otaudit.collector")
    running = asyncio.create_task(daemon.run())
    try:
        await wait_for(lambda: daemon.paused, 10, "auditing to pause")
        await asyncio.sleep(0.5)
        assert daemon.outbox is not None and daemon.store is not None
        assert daemon.outbox.entries == 3 and daemon.store.stored == 3  # held, not dropped
        assert daemon.snapshot()["auditing"] == "paused"
        assert daemon.snapshot()["paused_reason"] == "outbox full"

        broker.start()
        await wait_for(lambda: daemon.scheduler.stats.completed == 1
                       and daemon.outbox.entries == 0, 20, "the run to finish and drain")
        assert not daemon.paused and daemon.store.stored == 10
    finally:
        daemon.stop()
        await asyncio.wait_for(running, 20)
    ids: set[str] = set()
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier=subscriber_id,
                              clean_session=False) as sub:
        await sub.subscribe(topic, qos=1)
        async with asyncio.timeout(10):
            async for message in sub.messages:
                ids.add(str(Observation.from_json(message.payload).asset.id))
                if len(ids) == 10:
                    break
    assert ids == {f"a{i}" for i in range(10)}
    messages = [r.getMessage() for r in caplog.records]
    assert any("outbox full" in m and "auditing paused" in m for m in messages)
    assert any("auditing resumes" in m for m in messages)
