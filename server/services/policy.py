"""A site's policy: exceptions and attestations from the YAML files plus those written
through the API (``waivers`` table, expired ones left out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from otaudit.server.accounts import WaiverRow
from otaudit.server.baseline.waivers import Attestation, ExceptionRecord


@dataclass(frozen=True)
class Policy:
    """What decides waivers for one evaluation."""

    exceptions: list[ExceptionRecord] = field(default_factory=list)
    attestations: list[Attestation] = field(default_factory=list)
    exceptions_file: Path | None = None
    attestations_file: Path | None = None


def stored_waivers(session: Session, site: str | None, kind: str) -> list[Any]:
    """The active (not expired by a user) API-written records of ``kind`` of ``site``."""
    if site is None:
        return []
    model = ExceptionRecord if kind == "exception" else Attestation
    rows = session.scalars(sa.select(WaiverRow).where(
        WaiverRow.site == site, WaiverRow.kind == kind, WaiverRow.expired_at.is_(None))
        .order_by(WaiverRow.record_id))
    return [model.model_validate(r.record) for r in rows]


def site_policy(session: Session, site: str | None, baseline: Any,
                exceptions_file: Path | None = None,
                attestations_file: Path | None = None) -> Policy:
    """The files' records (checked against ``baseline``) and the site's stored ones."""
    from otaudit.server.baseline import load_attestations, load_exceptions

    exceptions = load_exceptions(exceptions_file, baseline) if exceptions_file else []
    attestations = load_attestations(attestations_file, baseline) if attestations_file else []
    return Policy([*exceptions, *stored_waivers(session, site, "exception")],
                  [*attestations, *stored_waivers(session, site, "attestation")],
                  exceptions_file, attestations_file)
