"""The collectors of each site, when each was last heard from, and whether it went silent.

Two sources, the newest wins: the server's ``Presence`` (status topic and observations, in
the process that subscribes: ``otaudit server run --http``) and the stored observations'
``collector_id`` and arrival time (any process, e.g. ``otaudit api``). A collector is
``silent`` once not heard from for ``intervals`` heartbeat intervals (the
``collector_silent`` alert's rule, ``presence.is_silent``); else the state its last status
said (``online``, ``offline``), or ``online`` when only its observations were seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from otaudit.observation import utcnow
from otaudit.server.db import ObservationRow
from otaudit.server.presence import Presence, is_silent
from otaudit.server.services import aware, iso


def collectors_by_site(session: Session, sites: Iterable[str], presence: Presence | None,
                       interval: float, intervals: int, now: datetime | None = None
                       ) -> dict[str, list[dict[str, Any]]]:
    """Per site of ``sites`` (only those: a caller passes the sites its user may see), its
    collectors by id: ``collector``, ``last_seen`` (ISO), ``quiet_seconds`` (since then),
    ``state``, ``source`` (``status`` or ``observations``) and ``silent_after_seconds``."""
    wanted = sorted(set(sites))
    now = now or utcnow()
    heard: dict[tuple[str, str], tuple[datetime, str | None, str]] = {}
    if wanted:
        rows = session.execute(
            sa.select(ObservationRow.site, ObservationRow.collector_id,
                      sa.func.max(ObservationRow.received_at))
            .where(ObservationRow.site.in_(wanted))
            .group_by(ObservationRow.site, ObservationRow.collector_id))
        for site, collector, at in rows:
            heard[site, collector] = (aware(at), None, "observations")
    if presence is not None:
        for (site, collector), seen in presence.snapshot().items():
            if site not in wanted:
                continue
            before = heard.get((site, collector))
            if before is None or seen.at >= before[0]:
                heard[site, collector] = (seen.at, seen.state, "status")
    out: dict[str, list[dict[str, Any]]] = {site: [] for site in wanted}
    for (site, collector), (at, state, source) in sorted(heard.items()):
        silent = is_silent(at, now, interval, intervals)
        out[site].append({"collector": collector, "last_seen": iso(at),
                          "quiet_seconds": max(0, round((now - at).total_seconds())),
                          "state": "silent" if silent else (state or "online"),
                          "source": source, "silent_after_seconds": interval * intervals})
    return out
