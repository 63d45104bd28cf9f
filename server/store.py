"""Reading and writing the server's tables (observations, assets, zones, findings)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
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
    dialect_insert,
)

EXCERPT = 2048


def _json_text(session: Session, name: str) -> Any:
    """A bind for a JSON column that takes JSON text (pydantic's own, faster serialisation)."""
    text = sa.bindparam(name, type_=sa.Text)
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import JSON

        return sa.cast(text, JSON)
    return text


OBSERVATION_COLUMNS = ("observation_id", "site", "collector_id", "asset_id", "asset_kind", "zone",
                       "probe", "status", "started_at", "finished_at", "received_at", "payload")


def store_observations(session: Session, observations: Sequence[Observation],
                       received_at: datetime,
                       serialised: Sequence[str | None] | None = None) -> set[str]:
    """Insert the observations whose id is not stored yet; return the ids this call stored.

    One ``INSERT … ON CONFLICT (observation_id) DO NOTHING RETURNING observation_id`` per
    batch: an id already stored (an earlier copy, or a concurrent replica that committed it
    first) is simply not returned. PostgreSQL (psycopg) first tries one ``COPY`` in a
    savepoint, which a stored id makes fail, and then takes that statement. Rows go in
    observation id order (one lock order for concurrent replicas). Assets are upserted with
    ``upsert_assets``. ``serialised``: each observation's ``model_dump_json()`` if already
    made (the stored payload), else None.
    """
    if not observations:
        return set()
    dumps = serialised or [None] * len(observations)
    rows = sorted((str(obs.observation_id), obs.site, obs.collector_id, obs.asset.id,
                   obs.asset.kind.value, obs.asset.zone, obs.probe, obs.status.value,
                   obs.started_at, obs.finished_at, received_at, dump or obs.model_dump_json())
                  for obs, dump in zip(observations, dumps, strict=True))
    if _copies(session) and _copy_new(session, rows):
        return {row[0] for row in rows}
    table = ObservationRow.__table__
    value = _json_text(session, "payload")
    stmt = (dialect_insert(session)(table).values(payload=value)
            .on_conflict_do_nothing(index_elements=["observation_id"])
            .returning(table.c.observation_id))
    params = [dict(zip(OBSERVATION_COLUMNS, row, strict=True)) for row in rows]
    return set(session.execute(stmt, params).scalars())


def _copies(session: Session) -> bool:
    bind = session.get_bind()
    return bind.dialect.name == "postgresql" and bind.dialect.driver == "psycopg"


def _copy_new(session: Session, rows: list[tuple[Any, ...]]) -> bool:
    """``COPY`` the rows into ``observations`` in a savepoint; False (and nothing written)
    when one of their ids is stored already. About half the client CPU of the INSERT, whose
    2,400 parameters psycopg parses in Python, and less work for the server."""
    from psycopg.errors import UniqueViolation

    sql = f"COPY observations ({', '.join(OBSERVATION_COLUMNS)}) FROM STDIN"
    try:
        with session.begin_nested():  # the savepoint is emitted with the first connection use
            driver = session.connection().connection.driver_connection
            with driver.cursor() as cursor, cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
    except UniqueViolation:
        return False
    return True


def upsert_assets(session: Session, observations: Iterable[Observation]) -> None:
    """Create or update the assets of newly stored observations, one statement per batch.

    As if stored one by one: the last observation's zone, kind and name win; ``last_seen``
    is the newest ``finished_at`` (stored or new). The rows travel as one JSON array (one
    parameter, the same SQL every time): a fraction of the cost of an executemany.
    """
    latest: dict[str, Observation] = {}
    seen: dict[str, datetime] = {}
    for obs in observations:
        latest[obs.asset.id] = obs
        seen[obs.asset.id] = max(seen.get(obs.asset.id, obs.finished_at), obs.finished_at)
    if not latest:
        return
    dialect = session.get_bind().dialect
    when = AssetRow.__table__.c.last_seen.type.dialect_impl(dialect).bind_processor(dialect)
    rows = [[aid, obs.site, obs.asset.kind.value, obs.asset.zone, obs.asset.name,
             when(seen[aid]) if when else seen[aid].isoformat()]
            for aid, obs in sorted(latest.items())]
    sql = _UPSERT_ASSETS["postgresql" if dialect.name == "postgresql" else "sqlite"]
    session.execute(sa.text(sql), {"rows": json.dumps(rows)})


_UPSERT_SET = ("ON CONFLICT (asset_id) DO UPDATE SET zone = excluded.zone, kind = excluded.kind, "
               "name = excluded.name, last_seen = {newest}(assets.last_seen, excluded.last_seen)")
_UPSERT_ASSETS = {  # SQLite's two-argument max() is a scalar function; WHERE: upsert syntax
    "postgresql": "INSERT INTO assets (asset_id, site, kind, zone, name, last_seen) "
                  "SELECT r->>0, r->>1, r->>2, r->>3, r->>4, (r->>5)::timestamptz "
                  "FROM json_array_elements(CAST(:rows AS json)) AS r "
                  + _UPSERT_SET.format(newest="greatest"),
    "sqlite": "INSERT INTO assets (asset_id, site, kind, zone, name, last_seen) "
              "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
              "json_extract(value, '$[2]'), json_extract(value, '$[3]'), "
              "json_extract(value, '$[4]'), json_extract(value, '$[5]') "
              "FROM json_each(:rows) WHERE true " + _UPSERT_SET.format(newest="max"),
}


def store_observation(session: Session, obs: Observation, received_at: datetime) -> bool:
    """Insert ``obs``; False (and nothing written) when its id is already stored."""
    if str(obs.observation_id) not in store_observations(session, [obs], received_at):
        return False
    upsert_assets(session, [obs])
    return True


def stale_assets(session: Session) -> set[str]:
    """Assets whose newest observation arrived after their findings were evaluated (or that
    have no findings): what a server stopped between storage and evaluation left to do."""
    received = (sa.select(ObservationRow.asset_id,
                          sa.func.max(ObservationRow.received_at).label("received"))
                .group_by(ObservationRow.asset_id).subquery())
    evaluated = (sa.select(FindingRow.asset_id,
                           sa.func.max(FindingRow.evaluated_at).label("evaluated"))
                 .group_by(FindingRow.asset_id).subquery())
    query = (sa.select(received.c.asset_id)
             .outerjoin(evaluated, evaluated.c.asset_id == received.c.asset_id)
             .where(sa.or_(evaluated.c.evaluated.is_(None),
                           received.c.received > evaluated.c.evaluated)))
    return set(session.scalars(query))


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


def known_zones(session: Session) -> set[str]:
    """Zones with a target SL (from an inventory) and zones that assets were observed in."""
    observed = session.scalars(sa.select(AssetRow.zone).distinct())
    return set(session.scalars(sa.select(ZoneRow.zone_id))) | set(observed)


def record_inventory(session: Session, inventory: Inventory, digest: str, source: str) -> None:
    """Keep the declared part of ``inventory`` (zones, networks, conduits, asset ids and
    kinds; never endpoints) as the site's current inventory."""
    from otaudit.server.declared import InventoryRow, declared_part

    row = session.get(InventoryRow, inventory.site)
    if row is None:
        row = InventoryRow(site=inventory.site)
        session.add(row)
    row.digest, row.source, row.loaded_at = digest, source[-500:], utcnow()
    row.document = declared_part(inventory)


def declared_inventories(session: Session, site: str | None = None) -> list[Any]:
    """The stored inventories (``InventoryRow``), of one site or all."""
    from otaudit.server.declared import InventoryRow

    query = sa.select(InventoryRow).order_by(InventoryRow.site)
    if site is not None:
        query = query.where(InventoryRow.site == site)
    return list(session.scalars(query))


def declared_zone_facts(session: Session, zone: str | None = None) -> list[AssetFacts]:
    """The zones' declared facts (conduits) of every stored inventory, or of one zone."""
    from otaudit.server.declared import declared_zone_facts as derive

    out = []
    for row in declared_inventories(session):
        out += [f for f in derive(row.document, row.digest, _aware(row.loaded_at))
                if zone is None or f.zone == zone]
    return out


def known_sites(session: Session) -> set[str]:
    """The sites that observations were stored for."""
    return set(session.scalars(sa.select(ObservationRow.site).distinct()))


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
    ids = set(asset_ids)
    if not ids:
        return
    session.execute(sa.delete(FindingRow).where(FindingRow.asset_id.in_(sorted(ids))))
    rows = [{"asset_id": f.asset_id, "zone": f.zone, "check_id": f.check_id, "status": f.status,
             "evaluated_at": evaluated_at, "detail": f.model_dump_json()}
            for f in findings if f.asset_id in ids]
    if rows:
        table = FindingRow.__table__
        session.execute(sa.insert(table).values(detail=_json_text(session, "detail")), rows)


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; everything we store is UTC."""
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)
