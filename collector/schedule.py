"""When a schedule runs: base times (interval or cron), jitter and maintenance windows.

Pure functions of the schedule and a time; no sleeping here (see ``scheduler.py``).
Times are timezone-aware; windows compare local wall-clock times in their own zone.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from otaudit.inventory import DEFAULT_SCHEDULE, Inventory, MaintenanceWindow, Schedule
from otaudit.settings import Settings


def window_contains(window: MaintenanceWindow, at: datetime) -> bool:
    """Is ``at`` inside ``window``? An end at or before the start belongs to the next day."""
    tz = ZoneInfo(window.tz)
    local = at.astimezone(tz)
    for back in (0, 1):
        day = local.date() - timedelta(days=back)
        if day.weekday() not in window.days:
            continue
        start = datetime.combine(day, window.start, tzinfo=tz)
        end_day = day if window.end > window.start else day + timedelta(days=1)
        end = datetime.combine(end_day, window.end, tzinfo=tz)
        if start <= local < end:
            return True
    return False


def window_next_start(window: MaintenanceWindow, at: datetime) -> datetime:
    """The first opening of ``window`` after ``at`` (UTC)."""
    tz = ZoneInfo(window.tz)
    today = at.astimezone(tz).date()
    for ahead in range(9):
        day = today + timedelta(days=ahead)
        if day.weekday() in window.days:
            start = datetime.combine(day, window.start, tzinfo=tz).astimezone(UTC)
            if start > at:
                return start
    raise AssertionError("a window with at least one day opens within 8 days")


class Timing:
    """The times of one schedule."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self._tz = ZoneInfo(schedule.tz)

    def first_base(self, now: datetime) -> datetime:
        """Interval schedules run at start; cron schedules at their next time."""
        if self.schedule.interval is not None:
            return now
        return self._cron_after(now)

    def next_base(self, base: datetime, after: datetime) -> datetime:
        """The first base time after ``after`` that follows ``base`` on this schedule."""
        interval = self.schedule.interval
        if interval is not None:
            steps = max(1, math.floor((after - base).total_seconds() / interval) + 1)
            nxt = base + timedelta(seconds=steps * interval)
            while nxt <= after:  # float rounding
                nxt += timedelta(seconds=interval)
            return nxt
        return self._cron_after(max(base, after))

    def _cron_after(self, at: datetime) -> datetime:
        from croniter import croniter

        assert self.schedule.cron is not None
        nxt = croniter(self.schedule.cron, at.astimezone(self._tz)).get_next(datetime)
        return nxt.astimezone(UTC)

    def in_window(self, at: datetime) -> bool:
        windows = self.schedule.maintenance_windows
        return not windows or any(window_contains(w, at) for w in windows)

    def next_window_start(self, at: datetime) -> datetime | None:
        windows = self.schedule.maintenance_windows
        return min(window_next_start(w, at) for w in windows) if windows else None

    def start_time(self, base: datetime, rng: random.Random) -> tuple[datetime, bool]:
        """When the run of ``base`` starts (jitter added), and whether a window deferred it."""
        jitter = self.schedule.jitter
        at = base + timedelta(seconds=rng.uniform(0, jitter) if jitter else 0.0)
        if self.in_window(at):
            return at, False
        opening = self.next_window_start(at)
        assert opening is not None
        jittered = opening + timedelta(seconds=rng.uniform(0, jitter) if jitter else 0.0)
        return (jittered if self.in_window(jittered) else opening), True


def default_schedule(settings: Settings) -> Schedule:
    """The settings' schedule for assets that name none (jitter capped at half the interval)."""
    interval = max(1.0, settings.schedule_interval)
    return Schedule(id=DEFAULT_SCHEDULE, interval=interval,
                    jitter=min(settings.schedule_jitter, interval / 2))


def effective_schedules(inventory: Inventory, settings: Settings) -> dict[str, Schedule]:
    """The schedules that audit at least one asset, by id (``default`` from settings)."""
    defined = {s.id: s for s in inventory.schedules}
    defined.setdefault(DEFAULT_SCHEDULE, default_schedule(settings))
    used = {inventory.schedule_of(asset) for asset in inventory.assets}
    return {sid: defined[sid] for sid in sorted(used)}
