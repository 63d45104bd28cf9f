"""Assets with their latest facts and evidence, and the observations behind them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from otaudit.server import store
from otaudit.server.db import AssetRow, ObservationRow
from otaudit.server.services import iso


def list_assets(session: Session, site: str, zone: str | None = None) -> list[dict[str, Any]]:
    """The site's assets, by zone then id."""
    query = (sa.select(AssetRow).where(AssetRow.site == site)
             .order_by(AssetRow.zone, AssetRow.asset_id))
    if zone is not None:
        query = query.where(AssetRow.zone == zone)
    return [{"site": a.site, "asset_id": a.asset_id, "kind": a.kind, "zone": a.zone,
             "name": a.name, "last_seen": iso(a.last_seen)} for a in session.scalars(query)]


def asset_detail(session: Session, site: str, asset_id: str) -> dict[str, Any] | None:
    """One asset: its row, its merged latest facts (each with the observation and evidence
    ids it came from), what is unknown and why, and the evidence items those cite."""
    row = session.get(AssetRow, (site, asset_id))
    if row is None:
        return None
    latest = store.latest_observations(session, assets=[(site, asset_id)], site=site)
    merged = store.merge_asset_facts(latest)
    facts = merged[0] if merged else None
    evidence = {e["id"]: {**e, "observation_id": o.observation_id}
                for o in latest for e in o.payload.get("evidence", [])}
    return {
        "site": site, "asset_id": asset_id, "kind": row.kind, "zone": row.zone,
        "name": row.name, "last_seen": iso(row.last_seen),
        "probes": [{"probe": o.probe, "status": o.status, "observation_id": o.observation_id,
                    "observed_at": iso(o.observed_at)} for o in latest],
        "facts": {path: {"value": f.value, "probe": f.probe, "observation_id": f.observation_id,
                         "collected_at": iso(f.collected_at), "evidence": list(f.evidence)}
                  for path, f in sorted(facts.facts.items())} if facts else {},
        "unknown": dict(sorted(facts.unknown.items())) if facts else {},
        "evidence": [evidence[k] for k in sorted(evidence)],
    }


def list_observations(session: Session, site: str, asset_id: str | None = None,
                      probe: str | None = None, limit: int = 100, offset: int = 0
                      ) -> tuple[list[dict[str, Any]], int]:
    """The site's observations, newest first (ties by id), one page and the total."""
    where = [ObservationRow.site == site]
    if asset_id is not None:
        where.append(ObservationRow.asset_id == asset_id)
    if probe is not None:
        where.append(ObservationRow.probe == probe)
    total = session.scalar(sa.select(sa.func.count()).select_from(ObservationRow).where(*where))
    query = (sa.select(ObservationRow).where(*where)
             .order_by(ObservationRow.observed_at.desc(), ObservationRow.observation_id)
             .limit(limit).offset(offset))
    return [{"observation_id": o.observation_id, "site": o.site, "asset_id": o.asset_id,
             "zone": o.zone, "probe": o.probe, "status": o.status,
             "collector_id": o.collector_id, "observed_at": iso(o.observed_at),
             "received_at": iso(o.received_at), "facts": o.payload.get("facts", {}),
             "unknown": o.payload.get("unknown", {}), "evidence": o.payload.get("evidence", [])}
            for o in session.scalars(query)], int(total or 0)
