"""Schedules on a manual clock: interval, cron, jitter, maintenance windows, overlap-skip."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from otaudit.collector.clock import ManualClock, settle
from otaudit.collector.schedule import Timing, effective_schedules, window_contains
from otaudit.collector.scheduler import RunInfo, Scheduler
from otaudit.errors import InputError
from otaudit.inventory import MaintenanceWindow, Schedule, load_inventory
from otaudit.settings import Settings

MONDAY_NOON = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)  # 13:00 in Berlin (CET)
BERLIN = ZoneInfo("Europe/Berlin")


class Recorder:
    """A run function that records when each run started; optionally blocks."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.starts: list[datetime] = []
        self.release = asyncio.Event()
        self.block = False

    async def __call__(self, info: RunInfo, timing: Timing) -> None:
        self.starts.append(self.clock.now())
        if self.block:
            await self.release.wait()


@asynccontextmanager
async def running(scheduler: Scheduler) -> AsyncIterator[Scheduler]:
    task = asyncio.create_task(scheduler.run())
    await settle()
    try:
        yield scheduler
    finally:
        scheduler.stop()
        await settle()
        if not task.done():  # a run still blocked
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def minutes(start: datetime, times: list[datetime]) -> list[float]:
    return [(t - start).total_seconds() / 60 for t in times]


async def test_interval_runs_at_start_and_then_on_time() -> None:
    clock = ManualClock(MONDAY_NOON)
    runs = Recorder(clock)
    scheduler = Scheduler(runs, clock=clock)
    scheduler.configure({"plcs": Schedule(id="plcs", interval="15m")})
    async with running(scheduler):
        assert minutes(MONDAY_NOON, runs.starts) == [0]
        await clock.advance(14 * 60 + 59)
        assert len(runs.starts) == 1
        await clock.advance(1)
        await clock.advance(45 * 60)
    assert minutes(MONDAY_NOON, runs.starts) == [0, 15, 30, 45, 60]
    assert scheduler.stats.started == scheduler.stats.completed == 5


async def test_jitter_stays_within_bounds_and_does_not_drift() -> None:
    clock = ManualClock(MONDAY_NOON)
    runs = Recorder(clock)
    scheduler = Scheduler(runs, clock=clock, rng=random.Random(7))
    scheduler.configure({"s": Schedule(id="s", interval="60s", jitter="20s")})
    async with running(scheduler):
        await clock.advance(3600)
    offsets = [(t - MONDAY_NOON).total_seconds() - 60 * k for k, t in enumerate(runs.starts)]
    assert len(runs.starts) >= 60
    assert all(0 <= off < 20 for off in offsets), offsets
    assert max(offsets) - min(offsets) > 10  # really random, not a constant delay


async def test_cron_schedule_follows_its_time_zone() -> None:
    clock = ManualClock(MONDAY_NOON)
    runs = Recorder(clock)
    scheduler = Scheduler(runs, clock=clock)
    scheduler.configure({"c": Schedule(id="c", cron="0 */6 * * *", tz="Europe/Berlin")})
    async with running(scheduler):
        await clock.advance(24 * 3600)
    assert [t.astimezone(BERLIN).hour for t in runs.starts] == [18, 0, 6, 12]  # no run at start


async def test_maintenance_window_defers_runs_and_allows_only_inside() -> None:
    window = MaintenanceWindow(days="mon-fri", start="22:00", end="04:00", tz="Europe/Berlin")
    clock = ManualClock(MONDAY_NOON)
    runs = Recorder(clock)
    scheduler = Scheduler(runs, clock=clock)
    scheduler.configure({"w": Schedule(id="w", interval="1h", maintenance_windows=[window])})
    async with running(scheduler):
        await clock.advance(8 * 3600 + 59 * 60)  # Monday 20:59 UTC = 21:59 Berlin
        assert runs.starts == []
        assert scheduler.stats.deferred == 1
        await clock.advance(60)
        assert runs.starts == [datetime(2026, 11, 2, 21, 0, tzinfo=UTC)]  # 22:00 Berlin
        await clock.advance(30 * 3600)  # until Wednesday 03:00 UTC
    hours = [t.strftime("%a %H") for t in runs.starts]
    assert hours == ["Mon 21", "Mon 22", "Mon 23", "Tue 00", "Tue 01", "Tue 02",
                     "Tue 21", "Tue 22", "Tue 23", "Wed 00", "Wed 01", "Wed 02"]
    assert all(Timing(Schedule(id="w", interval=60, maintenance_windows=[window])).in_window(t)
               for t in runs.starts)


def test_window_days_and_overnight_semantics() -> None:
    weeknights = MaintenanceWindow(days="mon-fri", start="22:00", end="04:00",
                                   tz="Europe/Berlin")
    def at(*args: int) -> datetime:
        return datetime(*args, tzinfo=BERLIN)

    assert window_contains(weeknights, at(2026, 11, 7, 2, 0))  # Saturday 02:00: Friday's night
    assert not window_contains(weeknights, at(2026, 11, 8, 23, 0))  # Sunday night: not listed
    assert not window_contains(weeknights, at(2026, 11, 9, 2, 0))  # Monday 02:00: Sunday's
    assert window_contains(weeknights, at(2026, 11, 9, 22, 0))  # start is inside
    assert not window_contains(weeknights, at(2026, 11, 10, 4, 0))  # end is outside
    whole_days = MaintenanceWindow(days=["sat", "0"], start="00:00", end="00:00")
    assert whole_days.days == frozenset({5, 6})
    assert window_contains(whole_days, datetime(2026, 11, 8, 23, 59, tzinfo=UTC))
    assert MaintenanceWindow(days="fri-mon", start=1320, end="04:00").days == {4, 5, 6, 0}


async def test_overlapping_run_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(MONDAY_NOON)
    runs = Recorder(clock)
    runs.block = True
    scheduler = Scheduler(runs, clock=clock)
    scheduler.configure({"slow": Schedule(id="slow", interval="10m")})
    with caplog.at_level(logging.WARNING, logger="otaudit.collector.scheduler"):
        async with running(scheduler):
            await clock.advance(35 * 60)  # due at 10, 20, 30 while the first still runs
            assert len(runs.starts) == 1 and scheduler.running == ["slow"]
            assert scheduler.stats.skipped_overlap == 3
            runs.release.set()
            await settle()
            runs.block = False
            await clock.advance(5 * 60)
    assert minutes(MONDAY_NOON, runs.starts) == [0, 40]
    skipped = [r for r in caplog.records if "previous run is still going" in r.getMessage()]
    assert len(skipped) == 3


async def test_reconfigure_keeps_unchanged_timing_and_restarts_changed() -> None:
    clock = ManualClock(MONDAY_NOON)
    runs = Recorder(clock)
    scheduler = Scheduler(runs, clock=clock)
    schedule = Schedule(id="s", interval="10m")
    scheduler.configure({"s": schedule})
    async with running(scheduler):
        await clock.advance(5 * 60)
        scheduler.configure({"s": Schedule(id="s", interval="10m")})  # same: keeps its time
        await settle()
        await clock.advance(5 * 60)
        assert minutes(MONDAY_NOON, runs.starts) == [0, 10]
        await clock.advance(3 * 60)
        scheduler.configure({"s": Schedule(id="s", interval="30m")})  # changed: runs now
        await settle()
        assert minutes(MONDAY_NOON, runs.starts) == [0, 10, 13]
        scheduler.configure({})
        await clock.advance(3600)
    assert len(runs.starts) == 3


def test_inventory_schedules_validate_and_default(tmp_path: Path) -> None:
    doc = {"site": "s", "zones": [{"id": "z", "sl_t": 2}],
           "schedules": [{"id": "plcs", "interval": "15m", "jitter": "30s",
                          "maintenance_windows": [{"days": ["mon-fri"], "start": "22:00",
                                                   "end": "04:00", "tz": "Europe/Berlin"}]}],
           "assets": [{"id": "a", "kind": "plc", "zone": "z", "schedule": "plcs",
                       "endpoints": {"modbus": {"host": "127.0.0.1"}}},
                      {"id": "b", "kind": "plc", "zone": "z",
                       "endpoints": {"modbus": {"host": "127.0.0.1"}}}]}
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump(doc))
    inventory, _ = load_inventory(path)
    schedules = effective_schedules(inventory, Settings(schedule_interval="2h",
                                                        schedule_jitter="2h"))
    assert schedules["plcs"].interval == 900 and schedules["plcs"].jitter == 30
    assert schedules["default"].interval == 7200 and schedules["default"].jitter == 3600

    doc["assets"][1]["schedule"] = "nope"
    doc["schedules"].append({"id": "both", "interval": "10s", "cron": "* * * * *"})
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError) as info:
        load_inventory(path)
    assert "exactly one of 'interval' and 'cron'" in str(info.value)
    doc["schedules"].pop()
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError) as info:
        load_inventory(path)
    assert "unknown schedule 'nope'" in str(info.value)

    doc["schedules"].append({"id": "bad", "cron": "0 6 * * *",
                             "maintenance_windows": [{"days": "fun", "start": "25:00",
                                                      "end": "x", "tz": "Mars/Olympus"}]})
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError) as info:
        load_inventory(path)
    text = str(info.value)
    for expected in ("'fun' is not a day", "'25:00' is not a time",
                     "unknown time zone 'Mars/Olympus'"):
        assert expected in text, text
    assert "line" in text


def test_timing_next_base_never_goes_backwards() -> None:
    timing = Timing(Schedule(id="s", interval="7m"))
    base = MONDAY_NOON
    later = MONDAY_NOON + timedelta(hours=5, seconds=1)
    nxt = timing.next_base(base, later)
    assert later < nxt <= later + timedelta(minutes=7)
    assert ((nxt - base).total_seconds() / 60) % 7 == 0
