"""The real server's listener in-process, for collector and durability tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from otaudit.server.db import ObservationRow, init_db, make_engine
from otaudit.server.ingest import Ingestor
from otaudit.server.listener import ServerStats, serve
from otaudit.settings import Settings
from otaudit.signing import Verifier


@dataclass
class RunningServer:
    engine: sa.Engine
    stats: ServerStats
    task: asyncio.Task[ServerStats]

    def stored_ids(self, site: str | None = None) -> list[str]:
        """Observation ids in the database (with repeats, if any)."""
        query = sa.select(ObservationRow.observation_id)
        if site is not None:
            query = query.where(ObservationRow.site == site)
        with self.engine.connect() as conn:
            return list(conn.scalars(query))

    def rejected_reasons(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.text("SELECT reason FROM rejected_messages")))


@asynccontextmanager
async def running_server(settings: Settings, database_url: str, *,
                         verifier: Verifier | None = None) -> AsyncIterator[RunningServer]:
    """``serve`` until the block ends (subscribed when the block starts)."""
    engine = make_engine(database_url)
    init_db(engine)
    ready, stop = asyncio.Event(), asyncio.Event()
    stats = ServerStats()
    task = asyncio.create_task(serve(Ingestor(engine, topic_prefix=settings.topic_prefix,
                                              verifier=verifier),
                                     settings, ready=ready, stop=stop, stats=stats,
                                     reconnect_delay=0.2), name="server")
    await until(ready.is_set, 15, "the server to subscribe", task)
    try:
        yield RunningServer(engine, stats, task)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        engine.dispose()


async def until(predicate: Callable[[], bool], timeout: float, what: str,
                *tasks: asyncio.Task) -> None:  # type: ignore[type-arg]
    """Wait for ``predicate``; fail at once if one of ``tasks`` ended (with its error)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        for task in tasks:
            if task.done():
                error = task.exception() if not task.cancelled() else "cancelled"
                raise AssertionError(f"{task.get_name()} ended while waiting for {what}: "
                                     f"{error!r}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)
