"""The store worker (``otaudit.server.store_worker``): batches checked and stored in a process
of their own, on the real Mosquitto and database. The server's own Ingestor still counts the
rejections and evaluates; a worker that dies is replaced and the batch stored again; one that
dies twice on a batch stops the server with the batch unacknowledged (a later server stores
it); a factory that fails says why; a killed server leaves no worker behind."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import aiomqtt
import psutil
import pytest
import sqlalchemy as sa

from otaudit.mqtt import client_kwargs, observation_filter
from otaudit.server.db import ObservationRow, RejectedMessage, init_db, make_engine
from otaudit.server.ingest import Ingestor, IngestResult
from otaudit.server.listener import ServerStats, serve, session_kwargs
from otaudit.server.store import stale_assets
from otaudit.server.store_worker import StoreWorker, WorkerDied, WorkerFailed
from otaudit.settings import Settings

from support import store_workers
from support.observations import make_observation

OTAUDIT = str(Path(sys.executable).with_name("otaudit"))


def settings_for(mosquitto_url: str) -> Settings:
    return Settings(broker_url=mosquitto_url, topic_prefix=f"otaudit-test/{uuid.uuid4().hex[:8]}",
                    server_client_id=f"srv-{uuid.uuid4().hex[:8]}")


def message(prefix: str, obs) -> tuple[str, bytes]:
    return f"{prefix}/{obs.site}/{obs.collector_id}/obs/{obs.asset.id}", obs.to_json()


def database(url: str) -> sa.Engine:
    engine = make_engine(url)
    init_db(engine)
    return engine


async def queue_for_the_server(settings: Settings, observations: list) -> None:
    """Publish into the server's persistent session while no server runs."""
    async with aiomqtt.Client(identifier=settings.server_client_id, **client_kwargs(settings),
                              **session_kwargs(settings)) as client:
        await client.subscribe(observation_filter(settings.topic_prefix), qos=1)
    async with aiomqtt.Client(**client_kwargs(settings)) as pub:
        for obs in observations:
            await pub.publish(*message(settings.topic_prefix, obs), qos=1)


def stored_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(ObservationRow)) or 0


async def test_the_worker_stores_and_the_server_counts_rejections_and_evaluates(
        mosquitto_url: str, sqlite_url: str) -> None:
    settings = settings_for(mosquitto_url)
    prefix = settings.topic_prefix
    engine = database(sqlite_url)
    good = make_observation(site="s1", collector="c1", asset="plc-1",
                            facts={"identity.vendor": "Schneider Electric"})
    other = make_observation(site="s1", collector="c1", asset="plc-2")
    worker = StoreWorker(functools.partial(store_workers.plain, sqlite_url, prefix))
    worker.start()
    ingestor = Ingestor(engine, topic_prefix=prefix)
    ready, stop, stats = asyncio.Event(), asyncio.Event(), ServerStats()
    task = asyncio.create_task(serve(ingestor, settings, ready=ready, stop=stop, stats=stats,
                                     worker=worker))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        async with aiomqtt.Client(**client_kwargs(settings)) as pub:
            topic = f"{prefix}/s1/c1/obs/plc-1"
            for payload in (b"{not json", b'{"schema_version": 1}', other.to_json(),
                            good.to_json(), good.to_json()):
                await pub.publish(topic, payload, qos=1)
        async with asyncio.timeout(30):
            while stats.stored + stats.duplicates + stats.rejected < 5:
                await asyncio.sleep(0.02)
        stop.set()
        await task
    finally:
        worker.close()
    assert (stats.stored, stats.duplicates, stats.rejected) == (1, 1, 3)
    assert ingestor.counts["rejected"] == 3 and ingestor.counts["rejected.mismatch"] == 1
    with engine.connect() as conn:
        assert len(list(conn.scalars(sa.select(RejectedMessage.reason)))) == 3
    with engine.connect() as conn, sa.orm.Session(bind=conn) as session:
        assert stale_assets(session) == set()  # the server evaluated what the worker stored
    assert ingestor.pending == 0 and stored_count(engine) == 1 and worker.restarts == 0
    engine.dispose()


async def test_a_worker_that_dies_is_replaced_and_given_the_batch_again(
        sqlite_url: str, tmp_path: Path) -> None:
    engine = database(sqlite_url)
    prefix = "otaudit/v1"
    batch = [message(prefix, make_observation(asset=f"plc-{i}")) for i in range(3)]
    worker = StoreWorker(functools.partial(store_workers.dying, sqlite_url, prefix,
                                           tmp_path / "died-once"))
    worker.start()
    first_pid = worker.pid
    try:
        result = await worker.commit(batch)
        assert isinstance(result, IngestResult) and result.stored == 3
        assert worker.restarts == 1 and worker.pid != first_pid
        again = await worker.commit(batch)  # the same worker goes on: duplicates now
        assert (again.stored, again.duplicates, worker.restarts) == (0, 3, 1)
    finally:
        worker.close()
    assert stored_count(engine) == 3
    engine.dispose()


async def test_a_worker_dying_twice_on_a_batch_stops_the_server_and_nothing_is_lost(
        mosquitto_url: str, sqlite_url: str) -> None:
    settings = settings_for(mosquitto_url)
    prefix = settings.topic_prefix
    engine = database(sqlite_url)
    await queue_for_the_server(settings, [make_observation(site="s1", collector="c1",
                                                           asset=f"plc-{i}")
                                          for i in range(3)])
    worker = StoreWorker(functools.partial(store_workers.dying, sqlite_url, prefix))
    worker.start()
    started = time.monotonic()
    try:
        with pytest.raises(WorkerDied, match="died twice on one batch"):
            await asyncio.wait_for(serve(Ingestor(engine, topic_prefix=prefix), settings,
                                         worker=worker), 60)
    finally:
        worker.close()
    assert time.monotonic() - started < 20  # at once, not when (if ever) a message comes
    assert stored_count(engine) == 0
    ready, stop, stats = asyncio.Event(), asyncio.Event(), ServerStats()
    task = asyncio.create_task(serve(Ingestor(engine, topic_prefix=prefix), settings,
                                     ready=ready, stop=stop, stats=stats))
    async with asyncio.timeout(30):  # the broker kept them: they were never acknowledged
        while stats.stored < 3:
            await asyncio.sleep(0.02)
    stop.set()
    await task
    assert stored_count(engine) == 3
    engine.dispose()


def test_a_factory_that_fails_says_why() -> None:
    worker = StoreWorker(functools.partial(store_workers.broken, "no database at /nowhere"))
    with pytest.raises(WorkerFailed, match="RuntimeError: no database at /nowhere"):
        worker.start()
    assert worker.pid is None


async def test_storing_waits_for_an_evaluation_in_progress(sqlite_url: str) -> None:
    """The server's lock keeps storage and evaluation apart, also when a worker stores."""
    engine = database(sqlite_url)
    ingestor = Ingestor(engine, evaluate_inline=False)
    held, release = threading.Event(), threading.Event()
    started: list[float] = []

    def evaluation() -> None:
        with ingestor._lock:
            held.set()
            release.wait(10)

    async def commit(messages) -> IngestResult:
        started.append(time.monotonic())
        return IngestResult()

    thread = threading.Thread(target=evaluation)
    thread.start()
    held.wait(5)
    storing = asyncio.create_task(ingestor.store_with(commit, []))
    await asyncio.sleep(0.2)
    assert not started and not storing.done()
    released_at = time.monotonic()
    release.set()
    await asyncio.wait_for(storing, 5)
    thread.join()
    assert started and started[0] >= released_at
    assert ingestor._lock.acquire(blocking=False)  # and given back
    ingestor._lock.release()
    engine.dispose()


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL", "SIGTERM to the group"])
def test_a_server_stopped_or_killed_leaves_no_store_worker_behind(
        mosquitto_url: str, tmp_path: Path, stop: str) -> None:
    """The group: as systemd stops a unit (every process of its control group gets the
    SIGTERM; the worker ignores it and the server stops it)."""
    env = {**os.environ, "OTAUDIT_BROKER_URL": mosquitto_url,
           "OTAUDIT_SERVER_CLIENT_ID": f"srv-{uuid.uuid4().hex[:8]}",
           "OTAUDIT_TOPIC_PREFIX": f"otaudit-test/{uuid.uuid4().hex[:8]}"}
    log = tmp_path / "server.log"
    with log.open("wb") as err:
        server = subprocess.Popen([OTAUDIT, "server", "run", "--db",
                                   f"sqlite:///{tmp_path / 'otaudit.db'}"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=err,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while b"subscribed at" not in log.read_bytes():
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        children = psutil.Process(server.pid).children()  # the worker, and the tracker
        workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 1, children
        if stop == "SIGTERM to the group":
            os.killpg(server.pid, signal.SIGTERM)
        else:
            server.send_signal(getattr(signal, stop))
        code = server.wait(30)
        deadline = time.monotonic() + 15
        while left := [c for c in children if _alive(c)]:
            assert time.monotonic() < deadline, f"orphans left running: {left}"
            time.sleep(0.05)
    finally:
        if server.poll() is None:
            server.kill()
    if stop != "SIGKILL":  # a clean stop: the worker closed, nothing reported as a bug
        text = log.read_text()
        assert code == 0 and "stopped: 0 stored" in text and "bug" not in text, text
