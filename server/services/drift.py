"""Drift events of a site (``otaudit drift`` and ``GET …/drift`` call this one function)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from otaudit.server.drift.events import event_dict, list_events


def list_drift(session: Session, site: str, *, since: datetime | None = None,
               asset: str | None = None) -> list[dict[str, Any]]:
    """Drift events of ``site``, oldest first, each with before/after and both evidence ids."""
    return [event_dict(row) for row in list_events(session, site=site, since=since,
                                                   asset=asset)]
