"""When each collector was last heard from: its status topic and its observations.

A collector publishes ``<prefix>/<site>/<collector>/status`` (retained JSON with ``state``
online/offline, see ``otaudit.collector.status``) on connect and every heartbeat, and its
observations arrive on the observation topics. ``Presence`` keeps, per ``(site, collector)``,
the time it was last heard from and its last state, for the metrics
(``otaudit_collector_last_seen_timestamp_seconds``) and ``silent``: collectors not heard
from for ``intervals`` heartbeat intervals, each reported once until heard from again
(the ``collector_silent`` alert). A retained status replayed by the broker at subscribe time
is dated by the ``at``/``time`` it carries when present, else counts as heard now.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from otaudit.observation import utcnow
from otaudit.server.alerts.model import Alert

STATUS_SEGMENT = "status"  # the collector's own constant (otaudit.collector.status)


def status_filter(prefix: str) -> str:
    return f"{prefix}/+/+/{STATUS_SEGMENT}"


def parse_status_topic(prefix: str, topic: str) -> tuple[str, str] | None:
    """``(site, collector)`` of a status topic, else None."""
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head):].split("/")
    if len(parts) != 3 or parts[2] != STATUS_SEGMENT or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def is_silent(last_seen: datetime, now: datetime, interval: float, intervals: int) -> bool:
    """Not heard from for ``intervals`` heartbeat intervals of ``interval`` seconds (the
    ``collector_silent`` alert's rule; the console's collector state says the same)."""
    return now - last_seen >= timedelta(seconds=interval * intervals)


@dataclass
class Seen:
    at: datetime
    state: str = "online"
    reported_silent: bool = False


class Presence:
    """Last seen per ``(site, collector)``; thread-safe."""

    def __init__(self, prefix: str = "otaudit/v1", interval: float = 60.0,
                 intervals: int = 3) -> None:
        self.prefix, self.interval, self.intervals = prefix, interval, intervals
        self._seen: dict[tuple[str, str], Seen] = {}
        self._lock = threading.Lock()

    def heard(self, site: str, collector: str, at: datetime | None = None,
              state: str | None = None) -> None:
        at = at or utcnow()
        with self._lock:
            entry = self._seen.get((site, collector))
            if entry is None:
                self._seen[(site, collector)] = Seen(at, state or "online")
                return
            if at >= entry.at:
                entry.at = at
                entry.reported_silent = False
            if state:
                entry.state = state

    def status(self, topic: str, payload: bytes) -> bool:
        """A status message; False when the topic or payload is not one."""
        where = parse_status_topic(self.prefix, topic)
        if where is None:
            return False
        try:
            data: Any = json.loads(payload[:65536])
        except ValueError:
            return False
        if not isinstance(data, dict):
            return False
        state = data.get("state") if isinstance(data.get("state"), str) else None
        self.heard(*where, at=_time(data), state=(state or "online")[:16])
        return True

    def snapshot(self) -> dict[tuple[str, str], Seen]:
        with self._lock:
            return {k: Seen(v.at, v.state, v.reported_silent) for k, v in self._seen.items()}

    def silent(self, now: datetime | None = None) -> list[Alert]:
        """Alerts for collectors silent for ``intervals`` heartbeat intervals (once each)."""
        now = now or utcnow()
        out = []
        with self._lock:
            for (site, collector), entry in sorted(self._seen.items()):
                if entry.reported_silent or not is_silent(entry.at, now, self.interval,
                                                          self.intervals):
                    continue
                entry.reported_silent = True
                quiet = (now - entry.at).total_seconds()
                out.append(Alert(
                    type="collector_silent", severity="high", site=site, asset_id=None,
                    summary=f"collector {collector} of {site} silent for {quiet:.0f} s "
                            f"(last state {entry.state})",
                    data={"collector": collector, "last_seen": entry.at.isoformat(),
                          "silent_seconds": round(quiet), "last_state": entry.state,
                          "intervals": self.intervals}))
        return out


def _time(data: dict[str, Any]) -> datetime | None:
    for key in ("at", "time", "updated_at"):
        value = data.get(key)
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                continue
            if when.tzinfo is not None:
                return min(when, utcnow())
    return None
