"""The findings the server stored per (site, asset, check), filtered."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from otaudit.server.db import FindingRow


def list_findings(session: Session, site: str, *, outcome: str | None = None,
                  check: str | None = None, zone: str | None = None,
                  asset: str | None = None) -> list[dict[str, Any]]:
    """Findings of ``site`` by asset then check; each filter narrows (exact match)."""
    query = sa.select(FindingRow).where(FindingRow.site == site)
    for column, value in ((FindingRow.status, outcome), (FindingRow.check_id, check),
                          (FindingRow.zone, zone), (FindingRow.asset_id, asset)):
        if value is not None:
            query = query.where(column == value)
    query = query.order_by(FindingRow.asset_id, FindingRow.check_id)
    return [{"site": f.site, "asset_id": f.asset_id, "zone": f.zone, "check_id": f.check_id,
             "outcome": f.status, "evaluated_at": f.evaluated_at.isoformat(),
             "detail": f.detail} for f in session.scalars(query)]
