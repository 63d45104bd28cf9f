"""Fault tests: nothing lost, nothing stored twice, whatever dies.

Each test has its own Mosquitto on a free port, a plant of simulated Modbus PLCs, the real
collector (daemon, in-process or as a process) and the real server (listener in-process or
``otaudit server run``), and asserts the counts exactly: observations made (entered the
outbox), stored, duplicated (rows stored twice), lost. The collector keeps every observation
until the server's receipt, so the outcome must not depend on what the broker kept. The
figures are printed (``pytest -s``) so they can be quoted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_support import (
    COLLECTOR,
    NEVER,
    OTAUDIT,
    SITE,
    Counts,
    collector_env,
    collector_process,
    made_in,
    outbox_count,
    outbox_file,
    outbox_keys,
    plant,
    recording_made,
    server_process,
    stored_rows,
    wait_until,
)

from otaudit.collector.daemon import CollectorDaemon
from otaudit.collector.outbox import Outbox, read_states
from otaudit.mqtt import observation_topic
from otaudit.server.db import init_db, make_engine
from otaudit.settings import Settings

from support.observations import make_observation
from support.server import running_server

pytestmark = pytest.mark.mosquitto
DEVICES = 30


def settings_for(tmp_path: Path, broker_url: str, database_url: str, **extra: object) -> Settings:
    return Settings(_env_file=None, broker_url=broker_url, database_url=database_url,
                    collector_id=COLLECTOR, server_client_id=f"srv-{uuid.uuid4().hex[:8]}",
                    state_dir=tmp_path / "state", concurrency=2, min_request_interval=0.05,
                    device_min_interval=0, reconnect_min_delay=0.1, reconnect_max_delay=0.5,
                    receipt_timeout=1, receipt_max_delay=2, schedule_jitter=0, retries=0,
                    **extra)


def audited(daemon: CollectorDaemon) -> bool:
    return daemon.scheduler.stats.completed >= 1


def drained(daemon: CollectorDaemon) -> bool:
    return audited(daemon) and daemon.outbox is not None and daemon.outbox.entries == 0


def assert_exact(counts: Counts, made: int) -> None:
    assert len(counts.made) == made, "the collector did not make what the test expects"
    assert counts.lost == set(), f"lost: {sorted(counts.lost)[:5]}"
    assert counts.foreign == set()
    assert counts.stored == made and counts.duplicated == 0


@pytest.mark.parametrize("persistence", ["off", "on"])
async def test_broker_sigkill_mid_run(tmp_path: Path, mosquitto_factory, sqlite_url: str,
                                      persistence: str) -> None:  # type: ignore[no-untyped-def]
    """On: Mosquitto's default autosave (1800 s) saved nothing before the kill, the case that
    lost 14 of 60 before receipts."""
    broker = mosquitto_factory("persistence false\n" if persistence == "off" else "")
    broker.start()
    settings = settings_for(tmp_path, broker.url, sqlite_url)
    async with plant(DEVICES) as plc, recording_made() as made, \
            running_server(settings, sqlite_url) as server:
        daemon = CollectorDaemon(plc.inventory(tmp_path / "inv.yaml"), settings)
        running = asyncio.create_task(daemon.run(), name="collector")
        try:
            await wait_until(lambda: daemon.forwarder is not None
                             and daemon.forwarder.published >= 8, 30, "8 acknowledged",
                             running, server.task)
            assert not audited(daemon), "the kill must come mid-run"
            broker.stop(kill=True)
            at_kill = len(server.stored_ids(SITE))
            broker.start()
            await wait_until(lambda: drained(daemon), 60, "every receipt", running, server.task)
        finally:
            daemon.stop()
            await asyncio.wait_for(running, 30)
        counts = Counts(made.ids, server.stored_ids(SITE))
    assert daemon.forwarder is not None
    print(counts.line(f"broker SIGKILL mid-run, persistence {persistence}",
                      stored_at_kill=at_kill, republished=daemon.forwarder.republished,
                      server_duplicates=server.stats.duplicates))
    assert_exact(counts, DEVICES)


@pytest.mark.slow
async def test_server_sigkill_mid_ingest(tmp_path: Path, mosquitto_factory,
                                         sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    broker = mosquitto_factory()
    broker.start()
    settings = settings_for(tmp_path, broker.url, sqlite_url)
    server = server_process(tmp_path, broker.url, sqlite_url, "otaudit-server")
    async with plant(DEVICES) as plc, recording_made() as made:
        await wait_until(lambda: "server: subscribed" in server.text(), 30, "the server",
                         server)
        daemon = CollectorDaemon(plc.inventory(tmp_path / "inv.yaml"), settings)
        running = asyncio.create_task(daemon.run(), name="collector")
        try:
            await wait_until(lambda: len(stored_rows(sqlite_url)) >= 5, 30, "5 stored",
                             server, running)
            assert not audited(daemon), "the kill must come mid-run"
            server.kill()
            at_kill = len(stored_rows(sqlite_url))
            server = server_process(tmp_path, broker.url, sqlite_url, "otaudit-server")
            await wait_until(lambda: drained(daemon), 60, "every receipt", running, server)
        finally:
            daemon.stop()
            await asyncio.wait_for(running, 30)
            server.stop()
    counts = Counts(made.ids, stored_rows(sqlite_url))
    print(counts.line("server SIGKILL mid-ingest", stored_at_kill=at_kill))
    assert_exact(counts, DEVICES)


@pytest.mark.slow
async def test_collector_sigkill_mid_audit(tmp_path: Path, mosquitto_factory,
                                           sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    """The restarted collector audits again (interval schedule): both passes count."""
    broker = mosquitto_factory()
    broker.start()
    settings = settings_for(tmp_path, broker.url, sqlite_url)
    async with plant(DEVICES) as plc, running_server(settings, sqlite_url) as server:
        inventory = plc.inventory(tmp_path / "inv.yaml")
        first = collector_process(tmp_path, inventory, broker.url)
        await wait_until(lambda: len(made_in(first.text())) >= 8, 30, "8 observations",
                         first, server.task)
        first.kill()
        assert "run finished" not in first.text(), "the kill must come mid-audit"
        made = made_in(first.text()) | outbox_keys(outbox_file(tmp_path))
        in_outbox = outbox_count(outbox_file(tmp_path))
        second = collector_process(tmp_path, inventory, broker.url)
        try:
            await wait_until(lambda: "run finished" in second.text()
                             and outbox_count(outbox_file(tmp_path)) == 0, 60,
                             "the second pass and every receipt", second, server.task)
        finally:
            assert second.stop() == 0
        made |= made_in(second.text())
        counts = Counts(made, server.stored_ids(SITE))
    print(counts.line("collector SIGKILL mid-audit", in_outbox_at_kill=in_outbox))
    assert_exact(counts, len(made))
    assert DEVICES + 8 <= len(made) < 2 * DEVICES  # a partial pass, then a whole one


@pytest.mark.slow
async def test_collector_sigkill_mid_publish(tmp_path: Path, mosquitto_factory,
                                             sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    """Killed while its entries are published and none is receipted yet (the server is
    away; the broker queues for its session); restarted without auditing again."""
    broker = mosquitto_factory()
    broker.start()
    settings = settings_for(tmp_path, broker.url, sqlite_url)
    async with running_server(settings, sqlite_url):
        pass  # the server's persistent session exists: the broker queues for it
    async with plant(DEVICES) as plc:
        inventory = plc.inventory(tmp_path / "inv.yaml")
        first = collector_process(tmp_path, inventory, broker.url)
        await wait_until(lambda: "run finished" in first.text(), 60, "the audit", first)
        await wait_until(lambda: read_states(outbox_file(tmp_path))["sent"]["count"] >= 1, 30,
                         "acknowledged publishes", first)
        first.kill()
        made = made_in(first.text()) | outbox_keys(outbox_file(tmp_path))
        left = read_states(outbox_file(tmp_path))
        plc.inventory(inventory, schedule=NEVER)  # the restart only publishes
        second = collector_process(tmp_path, inventory, broker.url)
        async with running_server(settings, sqlite_url) as server:
            await wait_until(lambda: outbox_count(outbox_file(tmp_path)) == 0, 60,
                             "every receipt", second, server.task)
            counts = Counts(made | made_in(second.text()), server.stored_ids(SITE))
            duplicates = server.stats.duplicates
        assert second.stop() == 0
    print(counts.line("collector SIGKILL mid-publish", queued_at_kill=left["queued"]["count"],
                      sent_at_kill=left["sent"]["count"], server_duplicates=duplicates))
    assert_exact(counts, DEVICES)


async def test_broker_restarted_with_an_empty_store_while_the_server_was_down(
        tmp_path: Path, mosquitto_factory, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    """All the broker had acknowledged and queued for the server is gone (before receipts:
    102 lost); the collector publishes it again."""
    broker = mosquitto_factory()
    broker.start()
    settings = settings_for(tmp_path, broker.url, sqlite_url)
    async with running_server(settings, sqlite_url):
        pass  # a persistent session: the broker queues for the server while it is away
    async with plant(DEVICES) as plc, recording_made() as made:
        daemon = CollectorDaemon(plc.inventory(tmp_path / "inv.yaml"), settings)
        running = asyncio.create_task(daemon.run(), name="collector")
        try:
            await wait_until(lambda: audited(daemon) and daemon.outbox is not None
                             and daemon.outbox.states()["sent"]["count"] == DEVICES, 60,
                             "every observation acknowledged by the broker", running)
            broker.stop(kill=True)
            for stale in tmp_path.glob("mosquitto*.db"):
                stale.unlink()
            broker.start()
            async with running_server(settings, sqlite_url) as server:
                await wait_until(lambda: drained(daemon), 60, "every receipt", running,
                                 server.task)
                counts = Counts(made.ids, server.stored_ids(SITE))
        finally:
            daemon.stop()
            await asyncio.wait_for(running, 30)
    print(counts.line("broker restarted empty, server down",
                      republished=daemon.forwarder.republished if daemon.forwarder else 0))
    assert_exact(counts, DEVICES)


@pytest.mark.slow
async def test_two_server_replicas_one_killed(tmp_path: Path, mosquitto_factory,
                                              postgres_url: str) -> None:  # type: ignore[no-untyped-def]
    """Replicas on a $share group each receipt what they commit; what the dead replica had
    been given (or the broker kept queued for it) is published again and stored by the
    other."""
    broker = mosquitto_factory()
    broker.start()
    settings = settings_for(tmp_path, broker.url, postgres_url)
    engine = make_engine(postgres_url)
    init_db(engine)  # once: two processes migrating one new database would race
    engine.dispose()
    group = {"OTAUDIT_SERVER_SHARED_GROUP": "otaudit"}
    replicas = [server_process(tmp_path, broker.url, postgres_url, f"replica-{i}",
                               name=f"replica-{i}", **group) for i in (1, 2)]
    async with plant(DEVICES) as plc, recording_made() as made:
        for replica in replicas:
            await wait_until(lambda r=replica: "server: subscribed" in r.text(), 30,
                             "the replicas", replica)
        daemon = CollectorDaemon(plc.inventory(tmp_path / "inv.yaml"), settings)
        running = asyncio.create_task(daemon.run(), name="collector")
        try:
            await wait_until(lambda: len(stored_rows(postgres_url)) >= 8, 30, "8 stored",
                             running, *replicas)
            assert not audited(daemon), "the kill must come mid-run"
            replicas[0].kill()
            at_kill = len(stored_rows(postgres_url))
            await wait_until(lambda: drained(daemon), 60, "every receipt", running,
                             replicas[1])
        finally:
            daemon.stop()
            await asyncio.wait_for(running, 30)
            for replica in replicas:
                replica.stop()
    counts = Counts(made.ids, stored_rows(postgres_url))
    print(counts.line("two replicas, one killed", stored_at_kill=at_kill,
                      republished=daemon.forwarder.republished if daemon.forwarder else 0))
    assert_exact(counts, DEVICES)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (needs root: mount)."""
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the max_pages variant runs anyway)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs",
                           str(folder)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.parametrize("limit", ["tmpfs", "max_pages"])
async def test_outbox_disk_full_pauses_the_audit_and_loses_nothing(
        tmp_path: Path, mosquitto_factory, sqlite_url: str, limit: str,  # type: ignore[no-untyped-def]
        request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> None:
    """tmpfs: a real full file system (256 KiB); max_pages: SQLite's max_page_count as the
    size limit. The server is away until the disk is full, so nothing leaves the outbox."""
    broker = mosquitto_factory()
    broker.start()
    settings = settings_for(tmp_path, broker.url, sqlite_url)
    if limit == "tmpfs":
        folder = request.getfixturevalue("small_disk")
        outbox = Outbox(folder / f"outbox-{COLLECTOR}.db", max_entries=10**5,
                        max_bytes=10**9, reserve_bytes=64 * 1024)
    else:
        folder = tmp_path / "state"
        folder.mkdir()
        outbox = Outbox(folder / f"outbox-{COLLECTOR}.db", max_entries=10**5,
                        max_bytes=10**9, max_pages=20)
    caplog.set_level(logging.INFO, logger="otaudit")
    async with plant(DEVICES) as plc, recording_made() as made:
        daemon = CollectorDaemon(plc.inventory(tmp_path / "inv.yaml"), settings, outbox=outbox)
        running = asyncio.create_task(daemon.run(), name="collector")
        try:
            await wait_until(lambda: outbox.disk_full and daemon.paused, 60,
                             "the disk to fill up", running)
            paused = daemon.snapshot()
            held = len(made.ids)
            assert not audited(daemon), "the disk must fill up mid-audit"
            check = sqlite3.connect(f"file:{outbox.path}?mode=ro", uri=True)
            assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            check.close()
            async with running_server(settings, sqlite_url) as server:
                await wait_until(lambda: drained(daemon), 90, "every receipt", running,
                                 server.task)
                counts = Counts(made.ids, server.stored_ids(SITE))
        finally:
            daemon.stop()
            await asyncio.wait_for(running, 30)
            outbox.close()
    print(counts.line(f"outbox disk full ({limit})", stored_when_full=held,
                      disk_full_events=outbox.disk_full_events))
    assert paused["paused_reason"] == "outbox disk full" and paused["outbox"]["disk_full"]
    assert_exact(counts, DEVICES)
    full = [r for r in caplog.records if "the disk is full" in r.getMessage()]
    assert full and all(r.levelno == logging.ERROR for r in full)
    assert len(full) == 1  # rate-limited: one line per 5 minutes however often it fills
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a full disk"
    assert any("auditing resumes" in r.getMessage() for r in caplog.records)


def corrupt(path: Path, marker: bytes, how: str) -> None:
    """Damage the outbox file where ``marker`` is: its payload bytes, or its whole page."""
    data = bytearray(path.read_bytes())
    at = data.index(marker)
    assert data.count(marker) == 1
    if how == "payload":
        data[at:at + len(marker)] = marker.replace(b"MARK", b"MARQ")
    else:
        page = at // 4096 * 4096
        data[page:page + 16] = b"\xff" * 16  # the B-tree page header: not a page any more
    path.write_bytes(bytes(data))


@pytest.mark.slow
async def test_a_corrupted_outbox_is_detected_the_bad_part_quarantined_the_rest_delivered(
        tmp_path: Path, mosquitto_factory, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    """One entry's payload altered on disk (SQLite does not notice: the checksum does) and
    one page destroyed (SQLite's check does). Before: the daemon died (rc 1) and damaged
    payloads were published and lost."""
    broker = mosquitto_factory()
    broker.start()
    settings = settings_for(tmp_path, broker.url, sqlite_url)
    path = outbox_file(tmp_path)
    path.parent.mkdir()
    box = Outbox(path, max_entries=100, max_bytes=10**7)
    made = []
    for i in range(12):  # one entry per 4 KiB page: its marker tells the page
        obs = make_observation(site=SITE, collector=COLLECTOR, asset=f"old-{i:02d}",
                               facts={"identity.vendor": f"MARK{i:02d}" + "x" * 2500})
        box.append(str(obs.observation_id),
                   observation_topic(settings.topic_prefix, SITE, COLLECTOR, obs.asset.id),
                   obs.to_json())
        made.append(str(obs.observation_id))
    box.close()
    corrupt(path, b"MARK03", "payload")
    corrupt(path, b"MARK07", "page")
    async with plant(1) as plc, running_server(settings, sqlite_url) as server:
        inventory = plc.inventory(tmp_path / "inv.yaml", schedule=NEVER)
        collector = collector_process(tmp_path, inventory, broker.url)
        try:
            await wait_until(lambda: len(server.stored_ids(SITE)) >= 10, 60, "the rest",
                             collector, server.task)
            await wait_until(lambda: read_states(path)["entries"] == 0, 30, "an empty outbox",
                             collector, server.task)
        finally:
            code = collector.stop()
        counts = Counts(set(made), server.stored_ids(SITE))
    status = subprocess.run([OTAUDIT, "collector", "status", "-i", str(inventory)],
                            env=collector_env(tmp_path), capture_output=True, text=True)
    print(counts.line("corrupted outbox", quarantined=len(counts.lost)))
    assert code == 0, collector.text()[-3000:]
    assert counts.lost == {made[3], made[7]}  # quarantined with a message, not published
    assert counts.stored == 10 and counts.duplicated == 0
    log = collector.text()
    assert f"outbox entry {made[3]}" in log and "payload checksum mismatch" in log
    assert "is damaged" in log and f"outbox entry {made[7]} could not be read" in log
    assert list(path.parent.glob(f"{path.name}.corrupt-*"))
    assert status.returncode == 0, status.stderr
    assert made[3] in status.stdout and made[7] in status.stdout
    assert "damaged (total)                2" in status.stdout
