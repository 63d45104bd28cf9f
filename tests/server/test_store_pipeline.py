"""Batches overlapping on their way to the database: the store worker holds a second batch
while it stores the first (``StoreWorker.commit`` calls overlap), the server's Ingestor lets
overlapping ``store_with`` calls share its lock but gives a waiting evaluation its turn, the
listener acknowledges batches in the order they came, and "the newest observation of an
endpoint" is read from the index without sorting."""

from __future__ import annotations

import asyncio
import functools
import threading
from pathlib import Path
from types import SimpleNamespace

import sqlalchemy as sa

from otaudit.server.db import init_db, make_engine
from otaudit.server.drift.events import _NEWEST_LATERAL, _newest_statement
from otaudit.server.ingest import Ingestor, IngestResult
from otaudit.server.listener import Evaluator, ServerStats, _store
from otaudit.server.store_worker import StoreWorker

from support import store_workers
from support.observations import make_observation

PREFIX = "otaudit/v1"


def batch(first: int, count: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(first, first + count):
        obs = make_observation(asset=f"plc-{i}")
        out.append((f"{PREFIX}/{obs.site}/{obs.collector_id}/obs/{obs.asset.id}", obs.to_json()))
    return out


def stored_ids(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        count = conn.scalar(sa.text("SELECT count(*) FROM observations"))
    engine.dispose()
    return count or 0


async def test_overlapping_commits_are_answered_each_with_its_own_result(
        sqlite_url: str) -> None:
    init_db(make_engine(sqlite_url))
    worker = StoreWorker(functools.partial(store_workers.plain, sqlite_url, PREFIX))
    worker.start()
    try:
        sizes = [3, 1, 4, 2]
        batches, first = [], 0
        for size in sizes:
            batches.append(batch(first, size))
            first += size
        results = await asyncio.wait_for(
            asyncio.gather(*(worker.commit(b) for b in batches)), 60)
    finally:
        worker.close()
    assert [r.stored for r in results] == sizes  # each answer reached its own batch
    assert [len(r.assets) for r in results] == sizes
    assert stored_ids(sqlite_url) == sum(sizes) and worker.restarts == 0


async def test_batches_in_a_worker_that_dies_are_sent_again_in_order_after_one_restart(
        sqlite_url: str, tmp_path: Path) -> None:
    init_db(make_engine(sqlite_url))
    worker = StoreWorker(functools.partial(store_workers.dying, sqlite_url, PREFIX,
                                           tmp_path / "died-once"))
    worker.start()
    try:
        results = await asyncio.wait_for(
            asyncio.gather(worker.commit(batch(0, 3)), worker.commit(batch(3, 2))), 60)
    finally:
        worker.close()
    assert [r.stored for r in results] == [3, 2]
    assert worker.restarts == 1  # both batches died with it; only one replaced it
    assert stored_ids(sqlite_url) == 5


async def test_overlapping_store_with_calls_share_the_lock_and_a_waiting_evaluation_goes_next(
        sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    init_db(engine)
    ingestor = Ingestor(engine, evaluate_inline=False)
    events: list[str] = []
    gates = {name: asyncio.Event() for name in ("first", "second", "third")}

    async def commit(name: str, messages) -> IngestResult:
        events.append(f"{name} started")
        await gates[name].wait()
        events.append(f"{name} done")
        return IngestResult()

    first = asyncio.create_task(ingestor.store_with(functools.partial(commit, "first"), []))
    second = asyncio.create_task(ingestor.store_with(functools.partial(commit, "second"), []))
    await asyncio.sleep(0.05)
    assert events == ["first started", "second started"]  # the second did not wait
    assert not ingestor._lock.acquire(blocking=False)  # and the lock is held for both

    evaluated = threading.Event()

    def evaluation() -> None:
        with ingestor._exclusive():
            events.append("evaluation")
            evaluated.set()

    thread = threading.Thread(target=evaluation)
    thread.start()
    while not ingestor._others_waiting:
        await asyncio.sleep(0.005)
    third = asyncio.create_task(ingestor.store_with(functools.partial(commit, "third"), []))
    await asyncio.sleep(0.05)
    assert "third started" not in events  # does not join while the evaluation waits
    gates["first"].set()
    await first
    await asyncio.sleep(0.05)
    assert not evaluated.is_set()  # the second batch still holds the lock
    gates["second"].set()
    gates["third"].set()
    await asyncio.wait_for(asyncio.gather(second, third), 5)
    thread.join(5)
    assert events == ["first started", "second started", "first done", "second done",
                      "evaluation", "third started", "third done"]
    assert ingestor._lock.acquire(blocking=False)  # given back by the last one out
    ingestor._lock.release()
    engine.dispose()


class _Acks:
    """What ``_store`` needs of an aiomqtt client: paho's ``ack``."""

    def __init__(self) -> None:
        self.acked: list[int] = []
        self._client = SimpleNamespace(ack=lambda mid, qos: self.acked.append(mid))


async def test_a_batch_stored_first_is_acknowledged_after_the_batch_before_it() -> None:
    client = _Acks()
    evaluator = Evaluator(SimpleNamespace())
    stats = ServerStats()
    release_first = asyncio.Event()

    async def slow() -> IngestResult:
        await release_first.wait()
        return IngestResult(stored=2)

    async def fast() -> IngestResult:
        return IngestResult(stored=1)

    def messages(*mids: int) -> list:
        return [SimpleNamespace(mid=m, qos=1) for m in mids]

    earlier = asyncio.create_task(_store(client, slow, evaluator, messages(1, 2), stats))
    later = asyncio.create_task(_store(client, fast, evaluator, messages(3), stats,
                                       after=earlier))
    await asyncio.sleep(0.05)
    assert client.acked == []  # the later batch is stored but waits for the earlier one
    release_first.set()
    await asyncio.wait_for(asyncio.gather(earlier, later), 5)
    assert client.acked == [1, 2, 3] and stats.stored == 3


def test_the_newest_observation_of_an_endpoint_is_read_without_sorting(
        database_url: str) -> None:
    """With many rows of one endpoint sharing their newest ``observed_at`` (a backlog sent
    at once), an index that stopped at ``observed_at`` sorted them all per endpoint."""
    engine = make_engine(database_url)
    init_db(engine)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(sa.text("EXPLAIN QUERY PLAN " + str(_newest_statement(2))),
                                {"s0": "a", "a0": "b", "p0": "c", "s1": "a", "a1": "d",
                                 "p1": "c"})
            plan = " | ".join(row[3] for row in rows)
        else:
            conn.execute(sa.text("SET enable_seqscan = off"))  # an empty table: no shortcut
            rows = conn.execute(sa.text("EXPLAIN " + str(_NEWEST_LATERAL)),
                                {"sites": ["a"], "assets": ["b"], "probes": ["c"]})
            plan = " | ".join(row[0] for row in rows)
    engine.dispose()
    assert "ix_obs_endpoint_newest" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
