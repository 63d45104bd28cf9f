"""Reading and writing the server's tables (observations, assets, zones, findings)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from otaudit.inventory import Inventory, SecurityLevelVector, Zone
from otaudit.observation import Observation, utcnow
from otaudit.server.baseline.model import AssetFacts, FactRecord, Finding
from otaudit.server.db import (
    AssetRow,
    FindingRow,
    ObservationRow,
    RejectedMessage,
    ZoneRow,
)

EXCERPT = 2048


def store_observation(session: Session, obs: Observation, received_at: datetime) -> bool:
    """Insert ``obs``; False (and nothing written) when its id is already stored."""
    oid = str(obs.observation_id)
    if session.get(ObservationRow, oid) is not None:
        return False
    row = ObservationRow(
        observation_id=oid, site=obs.site, collector_id=obs.collector_id,
        asset_id=obs.asset.id, asset_kind=obs.asset.kind.value, zone=obs.asset.zone,
        probe=obs.probe, status=obs.status.value, started_at=obs.started_at,
        finished_at=obs.finished_at, received_at=received_at,
        payload=obs.model_dump(mode="json"),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # a concurrent replica stored it first
        return False
    asset = session.get(AssetRow, obs.asset.id)
    if asset is None:
        session.add(AssetRow(asset_id=obs.asset.id, site=obs.site, kind=obs.asset.kind.value,
                             zone=obs.asset.zone, name=obs.asset.name, last_seen=obs.finished_at))
    else:
        asset.zone, asset.kind, asset.name = obs.asset.zone, obs.asset.kind.value, obs.asset.name
        asset.last_seen = max(_aware(asset.last_seen), obs.finished_at)
    return True


def record_rejected(session: Session, topic: str, payload: bytes, reason: str) -> None:
    text = payload[:EXCERPT].decode("utf-8", errors="replace")
    session.add(RejectedMessage(received_at=utcnow(), topic=topic, reason=reason[:4000],
                                payload_excerpt=text))


def upsert_zones(session: Session, inventory: Inventory) -> None:
    for zone in inventory.zones:
        row = session.get(ZoneRow, zone.id)
        if row is None:
            session.add(ZoneRow(zone_id=zone.id, name=zone.name, sl_t=zone.sl_t.as_dict()))
        else:
            row.name, row.sl_t = zone.name, zone.sl_t.as_dict()


def load_zones(session: Session) -> dict[str, Zone]:
    return {
        row.zone_id: Zone(id=row.zone_id, name=row.name, sl_t=SecurityLevelVector(**row.sl_t))
        for row in session.scalars(sa.select(ZoneRow))
    }


def latest_observations(session: Session, asset_ids: Iterable[str] | None = None,
                        zone: str | None = None) -> list[ObservationRow]:
    """The newest observation per (asset, probe)."""
    ranked = sa.select(
        ObservationRow.observation_id,
        sa.func.row_number().over(
            partition_by=(ObservationRow.asset_id, ObservationRow.probe),
            order_by=(ObservationRow.finished_at.desc(), ObservationRow.observation_id.desc()),
        ).label("rank"),
    )
    if asset_ids is not None:
        ranked = ranked.where(ObservationRow.asset_id.in_(list(asset_ids)))
    if zone is not None:
        ranked = ranked.where(ObservationRow.zone == zone)
    sub = ranked.subquery()
    query = (sa.select(ObservationRow)
             .join(sub, sub.c.observation_id == ObservationRow.observation_id)
             .where(sub.c.rank == 1)
             .order_by(ObservationRow.asset_id, ObservationRow.probe))
    return list(session.scalars(query))


def merge_asset_facts(rows: Iterable[ObservationRow]) -> list[AssetFacts]:
    """Merge each asset's latest observations into one fact set (newest value wins)."""
    assets: dict[str, AssetFacts] = {}
    for row in sorted(rows, key=lambda r: (r.asset_id, _aware(r.finished_at))):
        payload: dict[str, Any] = row.payload
        entry = assets.setdefault(row.asset_id, AssetFacts(
            asset_id=row.asset_id, kind=row.asset_kind, zone=row.zone))
        entry.zone, entry.kind = row.zone, row.asset_kind
        entry.probe_status[row.probe] = row.status
        collected = _aware(row.finished_at)
        for path, reason in payload.get("unknown", {}).items():
            if path not in entry.facts:
                entry.unknown[path] = reason
        for path, fact in payload.get("facts", {}).items():
            entry.facts[path] = FactRecord(value=fact["value"], observation_id=row.observation_id,
                                           probe=row.probe, collected_at=collected,
                                           evidence=fact.get("evidence", []))
            entry.unknown.pop(path, None)
    return list(assets.values())


def latest_asset_facts(session: Session, zone: str | None = None,
                       asset_ids: Iterable[str] | None = None) -> list[AssetFacts]:
    return merge_asset_facts(latest_observations(session, asset_ids=asset_ids, zone=zone))


def replace_findings(session: Session, asset_ids: Iterable[str], findings: list[Finding],
                     evaluated_at: datetime) -> None:
    """The current findings of these assets become exactly ``findings``."""
    ids = list(asset_ids)
    session.execute(sa.delete(FindingRow).where(FindingRow.asset_id.in_(ids)))
    session.add_all(
        FindingRow(asset_id=f.asset_id, zone=f.zone, check_id=f.check_id, status=f.status,
                   evaluated_at=evaluated_at, detail=f.model_dump(mode="json"))
        for f in findings if f.asset_id in ids
    )


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; everything we store is UTC."""
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)
