"""The audit trail: every write, who, when, what, on which target."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from otaudit.observation import utcnow
from otaudit.server.accounts import AuditRow
from otaudit.server.services import iso


def record(session: Session, actor: str, action: str, target: str, site: str | None = None,
           detail: dict[str, Any] | None = None) -> None:
    """Append one entry (in the caller's transaction: it commits with the write)."""
    session.add(AuditRow(at=utcnow(), actor=actor[:64], action=action, site=site,
                         target=target, detail=detail or {}))


def trail(session: Session, site: str | None = None) -> list[dict[str, Any]]:
    """Entries of ``site`` (or all), oldest first."""
    query = sa.select(AuditRow).order_by(AuditRow.id)
    if site is not None:
        query = query.where(AuditRow.site == site)
    return [{"id": r.id, "at": iso(r.at), "actor": r.actor, "action": r.action,
             "site": r.site, "target": r.target, "detail": r.detail}
            for r in session.scalars(query)]
