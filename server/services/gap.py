"""The zone view: SL-T vs SL-A (proven, reachable, assessed) per FR, requirements, gaps.

``otaudit gap`` and ``GET /api/v1/sites/{site}/gap`` both print ``gap_document``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from otaudit.observation import utcnow
from otaudit.server import store
from otaudit.server.baseline.model import Evaluation
from otaudit.server.services.policy import Policy


def gap_evaluation(session: Session, site: str | None, baseline: Any, policy: Policy,
                   zone: str | None = None, now: datetime | None = None) -> Evaluation:
    """Evaluate the latest facts and the declared conduits of ``site`` (one zone or all)."""
    from otaudit.server.baseline import evaluate

    zones = store.load_zones(session, site) if site is not None else {}
    assets = [*store.latest_asset_facts(session, zone=zone, site=site),
              *store.declared_zone_facts(session, zone, site)] if site is not None else []
    selected = {zid: z.sl_t for zid, z in zones.items() if zone is None or zid == zone}
    return evaluate(baseline, selected, assets, exceptions=policy.exceptions,
                    attestations=policy.attestations, now=now or utcnow())


def gap_document(evaluation: Evaluation, zone: str | None = None) -> dict[str, Any]:
    """The JSON form of the gap (``otaudit gap --format json``)."""
    from otaudit.server.baseline.render import gap_data

    return gap_data(evaluation, zone)


def zone_summaries(evaluation: Evaluation) -> list[dict[str, Any]]:
    """Per zone: SL-T, proven SL-A, reachable SL-A, assessed share, gap, finding counts."""
    return [{"zone": z.zone, "sl_t": z.sl_t, "sl_a_proven": z.sl_a,
             "sl_a_reachable": z.sl_reachable, "assessed": z.assessed_total.model_dump(),
             "gap": z.gap, "assets": z.assets, "findings": z.findings}
            for z in sorted(evaluation.zones, key=lambda z: z.zone)]


def requirement_rows(evaluation: Evaluation, zone: str | None = None,
                     status: str | None = None) -> list[dict[str, Any]]:
    """Every requirement of every zone (sorted by zone, id) with its outcome and why."""
    rows = [{"zone": z.zone, **r.model_dump(mode="json")}
            for z in sorted(evaluation.zones, key=lambda z: z.zone)
            if zone is None or z.zone == zone for r in z.requirements]
    if status is not None:
        rows = [r for r in rows if r["status"] == status]
    return sorted(rows, key=lambda r: (r["zone"], r["id"]))
