"""Starts each schedule's runs on time, Telegraf style: jitter, windows, overlap-skip.

One loop task per schedule sleeps (on the injected clock) until its next start time and
starts a run task. A run due while the previous run of that schedule is still going is
skipped and counted (never stacked). ``configure`` may be called again at any time
(inventory reload): loops of unchanged schedules keep their timing, changed or new ones
restart, removed ones stop; runs in progress always finish.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from otaudit.collector.clock import Clock
from otaudit.collector.schedule import Timing
from otaudit.inventory import Schedule

log = logging.getLogger(__name__)


@dataclass
class RunInfo:
    """One run of one schedule; the run function fills in what it did."""

    schedule: str
    due_at: datetime
    started_at: datetime
    deferred: bool = False
    finished_at: datetime | None = None
    observations: int = 0
    assets: int = 0
    skipped: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule, "due_at": self.due_at.isoformat(),
                "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "deferred": self.deferred, "assets": self.assets,
                "observations": self.observations, "skipped": self.skipped,
                "error": self.error}


@dataclass
class SchedulerStats:
    started: int = 0
    completed: int = 0
    failed: int = 0
    skipped_overlap: int = 0
    deferred: int = 0
    last_run: RunInfo | None = None
    history: deque[RunInfo] = field(default_factory=lambda: deque(maxlen=200))

    def as_dict(self) -> dict[str, Any]:
        return {"started": self.started, "completed": self.completed, "failed": self.failed,
                "skipped_overlap": self.skipped_overlap, "deferred": self.deferred}


RunFunction = Callable[[RunInfo, Timing], Awaitable[None]]


class Scheduler:
    def __init__(self, run: RunFunction, *, clock: Clock,
                 rng: random.Random | None = None) -> None:
        self._run = run
        self._clock = clock
        self._rng = rng or random.Random()
        self._wanted: dict[str, Schedule] = {}
        self._loops: dict[str, tuple[Schedule, asyncio.Task[None]]] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._stop = asyncio.Event()
        self.stats = SchedulerStats()

    @property
    def running(self) -> list[str]:
        return sorted(sid for sid, task in self._running.items() if not task.done())

    def configure(self, schedules: Mapping[str, Schedule]) -> None:
        """Set the schedules to run (applied at once when ``run`` is active)."""
        self._wanted = dict(schedules)
        if self._tg is not None and not self._stop.is_set():
            self._apply()

    def _apply(self) -> None:
        assert self._tg is not None
        for sid in list(self._loops):
            current, task = self._loops[sid]
            if self._wanted.get(sid) != current:
                task.cancel()
                del self._loops[sid]
                if sid in self._wanted:
                    log.info("schedule %s changed: restarting its timing", sid)
        for sid, schedule in self._wanted.items():
            if sid not in self._loops:
                task = self._tg.create_task(self._loop(schedule), name=f"schedule {sid}")
                self._loops[sid] = (schedule, task)

    async def run(self) -> None:
        """Run the schedules until ``stop``; then let the runs in progress finish."""
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            self._apply()
            await self._stop.wait()
            for _, task in self._loops.values():
                task.cancel()
            self._loops.clear()
            # runs are children of the task group: leaving the block waits for them
        self._tg = None

    def stop(self) -> None:
        """No new runs; ``run`` returns when the runs in progress have finished."""
        self._stop.set()

    async def _loop(self, schedule: Schedule) -> None:
        timing = Timing(schedule)
        base = timing.first_base(self._clock.now())
        while True:
            start, deferred = timing.start_time(base, self._rng)
            if deferred:
                self.stats.deferred += 1
                log.info("schedule %s: run due at %s is outside its maintenance windows; "
                         "deferred to %s", schedule.id, base.isoformat(), start.isoformat())
            await self._clock.sleep_until(start)
            self._start_run(schedule, timing, base, deferred)
            base = timing.next_base(base, max(start, self._clock.now()))

    def _start_run(self, schedule: Schedule, timing: Timing, due: datetime,
                   deferred: bool) -> None:
        previous = self._running.get(schedule.id)
        if previous is not None and not previous.done():
            self.stats.skipped_overlap += 1
            log.warning("schedule %s: the previous run is still going; skipping the run due at "
                        "%s (%d skipped so far)", schedule.id, due.isoformat(),
                        self.stats.skipped_overlap)
            return
        assert self._tg is not None
        info = RunInfo(schedule.id, due_at=due, started_at=self._clock.now(), deferred=deferred)
        self.stats.started += 1
        self._running[schedule.id] = self._tg.create_task(self._guarded(info, timing),
                                                          name=f"run {schedule.id}")

    async def _guarded(self, info: RunInfo, timing: Timing) -> None:
        try:
            await self._run(info, timing)
        except Exception as exc:  # a failed run must not stop the other schedules
            info.error = f"{type(exc).__name__}: {exc}"
            self.stats.failed += 1
            log.exception("schedule %s: run failed", info.schedule)
        else:
            self.stats.completed += 1
        finally:
            info.finished_at = self._clock.now()
            self.stats.last_run = info
            self.stats.history.append(info)
