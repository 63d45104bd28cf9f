"""Time for the scheduler and the politeness rules, injectable so tests need not wait.

``SystemClock`` is the real one. ``ManualClock`` (like ``trio.testing.MockClock``) only
moves when a test calls ``advance``; sleepers wake in deadline order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    async def sleep_until(self, when: datetime) -> None: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock time; sleeps are re-checked so a clock step does not oversleep much."""

    MAX_NAP = 60.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        while (left := (when - self.now()).total_seconds()) > 0:
            await asyncio.sleep(min(left, self.MAX_NAP))

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that stands still until ``advance``; for tests of schedules."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._order), future))
        await future

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + timedelta(seconds=seconds))

    @property
    def next_wakeup(self) -> datetime | None:
        live = [w for w, _, f in self._sleepers if not f.done()]
        return min(live) if live else None

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper on the way at its own deadline."""
        target = self._now + timedelta(seconds=seconds)
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, future = heapq.heappop(self._sleepers)
            if future.done():  # cancelled sleeper
                continue
            self._now = max(self._now, when)
            future.set_result(None)
            await settle()
        self._now = target
        await settle()


async def settle(rounds: int = 50) -> None:
    """Let every ready task run until the event loop is idle (no I/O involved)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
