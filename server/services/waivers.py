"""Exceptions and attestations written through the API: created, listed, expired — each
write in the audit trail. Records are validated by the same models as the YAML files
(``otaudit.server.baseline.waivers``) and count in the gap like them (``policy``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from otaudit.errors import InputError
from otaudit.observation import utcnow
from otaudit.server.accounts import WaiverRow
from otaudit.server.baseline.waivers import Attestation, ExceptionRecord
from otaudit.server.services import audit, iso

KINDS = {"exception": ExceptionRecord, "attestation": Attestation}


class WaiverConflict(ValueError):
    """A record with this id exists already in the site."""


def _view(row: WaiverRow) -> dict[str, Any]:
    return {"id": row.record_id, "kind": row.kind, "site": row.site, "record": row.record,
            "created_by": row.created_by, "created_at": iso(row.created_at),
            "expired_by": row.expired_by,
            "expired_at": iso(row.expired_at)}


def list_waivers(session: Session, site: str, kind: str) -> list[dict[str, Any]]:
    """Every record of ``kind`` of ``site``, expired ones too, by id."""
    rows = session.scalars(sa.select(WaiverRow).where(WaiverRow.site == site,
                                                      WaiverRow.kind == kind)
                           .order_by(WaiverRow.record_id))
    return [_view(r) for r in rows]


def create_waiver(session: Session, site: str, kind: str, data: dict[str, Any], actor: str,
                  baseline: Any) -> dict[str, Any]:
    """Validate ``data`` as an exception/attestation of ``site`` and store it (InputError
    with every problem; WaiverConflict when its id is taken)."""
    model = KINDS[kind]
    try:
        record = model.model_validate(data)
    except ValidationError as exc:
        raise InputError(kind, [f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}"
                                for e in exc.errors()]) from None
    checks = record.scope.checks or []
    reqs = [*(record.scope.requirements or [])]
    if isinstance(record, Attestation):
        reqs += [record.requirement, *record.compensates]
    problems = [f"unknown check {c!r}" for c in checks if c not in baseline.checks]
    problems += [f"unknown requirement {r!r}" for r in reqs if r not in baseline.requirements]
    if problems:
        raise InputError(kind, problems)
    record_id = record.id if isinstance(record, ExceptionRecord) else record.key
    if session.scalar(sa.select(WaiverRow.id).where(
            WaiverRow.site == site, WaiverRow.kind == kind, WaiverRow.record_id == record_id)):
        raise WaiverConflict(f"{kind} {record_id!r} exists in site {site!r}")
    row = WaiverRow(site=site, kind=kind, record_id=record_id,
                    record=record.model_dump(mode="json", exclude_none=True),
                    created_by=actor, created_at=utcnow())
    session.add(row)
    audit.record(session, actor, f"{kind}.create", f"{kind}:{record_id}", site,
                 {"record": row.record})
    session.flush()
    return _view(row)


def expire_waiver(session: Session, site: str, kind: str, record_id: str, actor: str
                  ) -> dict[str, Any] | None:
    """Stop a record counting from now (kept, with who expired it); None when unknown."""
    row = session.scalar(sa.select(WaiverRow).where(
        WaiverRow.site == site, WaiverRow.kind == kind, WaiverRow.record_id == record_id))
    if row is None:
        return None
    if row.expired_at is None:
        row.expired_at, row.expired_by = utcnow(), actor
        audit.record(session, actor, f"{kind}.expire", f"{kind}:{record_id}", site)
        session.flush()
    return _view(row)
