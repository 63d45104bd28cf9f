"""The findings the server stored per (site, asset, check), filtered."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from otaudit.observation import utcnow
from otaudit.server import store
from otaudit.server.db import AssetRow, FindingRow
from otaudit.server.services import iso
from otaudit.server.services.policy import Policy


def list_findings(session: Session, site: str, *, outcome: str | None = None,
                  check: str | None = None, zone: str | None = None,
                  asset: str | None = None, detail: bool = True) -> list[dict[str, Any]]:
    """Findings of ``site`` by asset then check; each filter narrows (exact match).
    ``detail=False`` leaves the (large) detail out: lists that do not show it."""
    columns = [FindingRow.site, FindingRow.asset_id, FindingRow.zone, FindingRow.check_id,
               FindingRow.status, FindingRow.evaluated_at]
    query = sa.select(*columns, *([FindingRow.detail] if detail else [])) \
        .where(FindingRow.site == site)
    for column, value in ((FindingRow.status, outcome), (FindingRow.check_id, check),
                          (FindingRow.zone, zone), (FindingRow.asset_id, asset)):
        if value is not None:
            query = query.where(column == value)
    query = query.order_by(FindingRow.asset_id, FindingRow.check_id)
    return [{"site": f.site, "asset_id": f.asset_id, "zone": f.zone, "check_id": f.check_id,
             "outcome": f.status, "evaluated_at": iso(f.evaluated_at),
             **({"detail": f.detail} if detail else {})} for f in session.execute(query)]


def refresh_findings(session: Session, site: str, baseline: Any, policy: Policy,
                     asset_ids: set[str] | None = None, now: datetime | None = None) -> list[Any]:
    """Evaluate the latest facts of ``asset_ids`` (default: every asset of ``site``) with
    ``policy`` and store their findings (ingest after each batch; the API after a waiver
    changed). Returns the findings stored (the alert rules compare them with the old)."""
    from otaudit.server.baseline import evaluate

    if asset_ids is None:
        asset_ids = set(session.scalars(sa.select(AssetRow.asset_id)
                                        .where(AssetRow.site == site)))
    if not asset_ids:
        return []
    now = now or utcnow()
    zones = {zid: z.sl_t for zid, z in store.load_zones(session, site).items()}
    facts = store.latest_asset_facts(session, asset_ids=asset_ids, site=site)
    evaluation = evaluate(baseline, zones, facts, exceptions=policy.exceptions,
                          attestations=policy.attestations, now=now)
    store.replace_findings(session, site, asset_ids, evaluation.findings, now)
    return list(evaluation.findings)
