"""Reading and writing the server's tables (observations, assets, zones, findings).

Assets, zones and findings are keyed by site first (``AssetKey`` = (site, asset id)); an
evaluation runs per site, over that site's zones and assets.
"""

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
AssetKey = tuple[str, str]  # (site, asset id)


class AmbiguousSite(ValueError):
    """The database holds several sites and the caller named none."""


def _json_text(session: Session, name: str) -> Any:
    """A bind for a JSON column that takes JSON text (pydantic's own, faster serialisation)."""
    text = sa.bindparam(name, type_=sa.Text)
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import JSON

        return sa.cast(text, JSON)
    return text


OBSERVATION_COLUMNS = ("observation_id", "site", "collector_id", "asset_id", "asset_kind", "zone",
                       "probe", "status", "started_at", "finished_at", "received_at",
                       "observed_at", "payload", "values_digest")


def observed_at(obs: Observation, received_at: datetime) -> datetime:
    """What orders an asset's observations: its ``finished_at``, at the latest when it was
    received (a sender's clock alone never makes an observation the newest)."""
    return min(obs.finished_at, received_at)


def store_observations(session: Session, observations: Sequence[Observation],
                       received_at: datetime,
                       serialised: Sequence[str | None] | None = None,
                       digests: Sequence[str] | None = None) -> set[str]:
    """Insert the observations whose id is not stored yet; return the ids this call stored.

    One ``INSERT … ON CONFLICT (observation_id) DO NOTHING RETURNING observation_id`` per
    batch: an id already stored (an earlier copy, or a concurrent replica that committed it
    first) is simply not returned. PostgreSQL (psycopg) first tries one ``COPY`` in a
    savepoint, which a stored id makes fail, and then takes that statement. Rows go in
    observation id order (one lock order for concurrent replicas). Assets are upserted with
    ``upsert_assets``. ``serialised``: each observation's ``model_dump_json()`` if already
    made (the stored payload), else None; ``digests``: each one's ``drift.compare.digest``
    if already made.
    """
    from otaudit.server.drift.compare import observation_digest

    if not observations:
        return set()
    dumps = serialised or [None] * len(observations)
    keys = digests or [observation_digest(obs) for obs in observations]
    rows = sorted((str(obs.observation_id), obs.site, obs.collector_id, obs.asset.id,
                   obs.asset.kind.value, obs.asset.zone, obs.probe, obs.status.value,
                   obs.started_at, obs.finished_at, received_at, observed_at(obs, received_at),
                   dump or obs.model_dump_json(), key)
                  for obs, dump, key in zip(observations, dumps, keys, strict=True))
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


def upsert_assets(session: Session, observations: Iterable[Observation],
                  received_at: datetime | None = None) -> None:
    """Create or update the assets of newly stored observations, one statement per batch.

    As if stored one by one: the last observation's zone, kind and name win; ``last_seen``
    is the newest ``observed_at`` (stored or new; ``finished_at`` when ``received_at`` is not
    given). The rows travel as one JSON array (one parameter, the same SQL every time): a
    fraction of the cost of an executemany.
    """
    latest: dict[AssetKey, Observation] = {}
    seen: dict[AssetKey, datetime] = {}
    for obs in observations:
        key = (obs.site, obs.asset.id)
        at = observed_at(obs, received_at) if received_at else obs.finished_at
        latest[key] = obs
        seen[key] = max(seen.get(key, at), at)
    if not latest:
        return
    dialect = session.get_bind().dialect
    when = AssetRow.__table__.c.last_seen.type.dialect_impl(dialect).bind_processor(dialect)
    rows = [[key[1], key[0], obs.asset.kind.value, obs.asset.zone, obs.asset.name,
             when(seen[key]) if when else seen[key].isoformat()]
            for key, obs in sorted(latest.items())]
    sql = _UPSERT_ASSETS["postgresql" if dialect.name == "postgresql" else "sqlite"]
    session.execute(sa.text(sql), {"rows": json.dumps(rows)})


_UPSERT_SET = ("ON CONFLICT (site, asset_id) DO UPDATE SET zone = excluded.zone, "
               "kind = excluded.kind, name = excluded.name, "
               "last_seen = {newest}(assets.last_seen, excluded.last_seen)")
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
    upsert_assets(session, [obs], received_at)
    return True


def stale_assets(session: Session) -> set[AssetKey]:
    """Assets whose newest observation arrived after their findings were evaluated (or that
    have no findings): what a server stopped between storage and evaluation left to do."""
    received = (sa.select(ObservationRow.site, ObservationRow.asset_id,
                          sa.func.max(ObservationRow.received_at).label("received"))
                .group_by(ObservationRow.site, ObservationRow.asset_id).subquery())
    evaluated = (sa.select(FindingRow.site, FindingRow.asset_id,
                           sa.func.max(FindingRow.evaluated_at).label("evaluated"))
                 .group_by(FindingRow.site, FindingRow.asset_id).subquery())
    query = (sa.select(received.c.site, received.c.asset_id)
             .outerjoin(evaluated, sa.and_(evaluated.c.site == received.c.site,
                                           evaluated.c.asset_id == received.c.asset_id))
             .where(sa.or_(evaluated.c.evaluated.is_(None),
                           received.c.received > evaluated.c.evaluated)))
    return {(site, asset) for site, asset in session.execute(query)}


def safe_text(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters, NUL written as ``\\x00`` (PostgreSQL stores no
    NUL) and lone surrogates replaced, so that it can always be stored."""
    text = value[:limit].replace("\x00", "\\x00")
    return text.encode("utf-8", errors="replace").decode("utf-8")


def record_rejected(session: Session, topic: str, payload: bytes, reason: str,
                    code: str | None = None) -> None:
    """Keep a rejected message: topic, reason and a bounded excerpt, all NUL-safe."""
    text = payload[:EXCERPT].decode("utf-8", errors="replace")
    session.add(RejectedMessage(received_at=utcnow(), topic=safe_text(topic, 1024),
                                code=code[:32] if code else None,
                                reason=safe_text(reason, 4000),
                                payload_excerpt=safe_text(text, EXCERPT)))


def upsert_zones(session: Session, inventory: Inventory) -> None:
    """The inventory's zones become its site's zones (others sites' stay as they are)."""
    for zone in inventory.zones:
        row = session.get(ZoneRow, (inventory.site, zone.id))
        if row is None:
            session.add(ZoneRow(site=inventory.site, zone_id=zone.id, name=zone.name,
                                sl_t=zone.sl_t.as_dict()))
        else:
            row.name, row.sl_t = zone.name, zone.sl_t.as_dict()


def sites(session: Session) -> list[str]:
    """Every site the database knows (from its zones and assets)."""
    known = set(session.scalars(sa.select(ZoneRow.site).distinct()))
    known |= set(session.scalars(sa.select(AssetRow.site).distinct()))
    return sorted(known)


def only_site(session: Session) -> str | None:
    """The one site of the database (None when empty); ``AmbiguousSite`` when several."""
    known = sites(session)
    if len(known) > 1:
        raise AmbiguousSite(f"the database holds several sites ({', '.join(known)}): "
                            "name one")
    return known[0] if known else None


def load_zones(session: Session, site: str | None = None) -> dict[str, Zone]:
    """The zones of ``site`` (by default the database's only site; see ``only_site``)."""
    site = site if site is not None else only_site(session)
    return {
        row.zone_id: Zone(id=row.zone_id, name=row.name, sl_t=SecurityLevelVector(**row.sl_t))
        for row in session.scalars(sa.select(ZoneRow).where(ZoneRow.site == site))
    }


def known_zones(session: Session, site: str | None = None) -> set[str]:
    """Zones of ``site`` (default: the only site) with a target SL (from an inventory) and
    zones that its assets were observed in."""
    site = site if site is not None else only_site(session)
    declared = session.scalars(sa.select(ZoneRow.zone_id).where(ZoneRow.site == site))
    observed = session.scalars(sa.select(AssetRow.zone).where(AssetRow.site == site)
                               .distinct())
    return set(declared) | set(observed)


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


def declared_zone_facts(session: Session, zone: str | None = None, site: str | None = None
                        ) -> list[AssetFacts]:
    """The zones' declared facts (conduits) of the stored inventories (of one site, of one
    zone)."""
    from otaudit.server.declared import declared_zone_facts as derive

    out = []
    for row in declared_inventories(session, site):
        out += [f for f in derive(row.document, row.digest, _aware(row.loaded_at))
                if zone is None or f.zone == zone]
    return out


def latest_observations(session: Session, assets: Iterable[AssetKey] | None = None,
                        zone: str | None = None, site: str | None = None
                        ) -> list[ObservationRow]:
    """The newest observation per (site, asset, probe), by ``observed_at``. With ``zone``,
    those of the assets now in that zone: an asset is in the zone of its newest observation
    (as ``merge_asset_facts`` says), so one that moved away is not listed with old facts."""
    sub = _latest_ranked(assets, zone, site)
    query = (sa.select(ObservationRow)
             .join(sub, sub.c.observation_id == ObservationRow.observation_id)
             .where(sub.c.rank == 1)
             .order_by(ObservationRow.site, ObservationRow.asset_id, ObservationRow.probe))
    rows = list(session.scalars(query))
    return rows if zone is None else _now_in_zone(rows, zone)


def _now_in_zone(rows: list[ObservationRow], zone: str) -> list[ObservationRow]:
    """The rows of the assets whose newest row (``merge_asset_facts``' order) is in ``zone``."""
    newest: dict[tuple[str, str], ObservationRow] = {}
    for row in sorted(rows, key=lambda r: (r.site, r.asset_id, _aware(r.observed_at),
                                           _aware(r.received_at))):
        newest[(row.site, row.asset_id)] = row
    keep = {key for key, row in newest.items() if row.zone == zone}
    return [row for row in rows if (row.site, row.asset_id) in keep]


def latest_observation_keys(session: Session, site: str) -> list[Any]:
    """``latest_observations`` of ``site`` without their payloads, in the same order: rows
    of (asset_id, probe, observation_id, zone, observed_at, received_at)."""
    sub = _latest_ranked(None, None, site)
    o = ObservationRow
    query = (sa.select(o.asset_id, o.probe, o.observation_id, o.zone, o.observed_at,
                       o.received_at)
             .join(sub, sub.c.observation_id == o.observation_id).where(sub.c.rank == 1)
             .order_by(o.site, o.asset_id, o.probe))
    return list(session.execute(query))


def observations_by_id(session: Session, ids: Iterable[str]) -> list[ObservationRow]:
    """These observations, in ``latest_observations``' order (site, asset, probe)."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    return list(session.scalars(
        sa.select(ObservationRow).where(ObservationRow.observation_id.in_(wanted))
        .order_by(ObservationRow.site, ObservationRow.asset_id, ObservationRow.probe)))


def _latest_ranked(assets: Iterable[AssetKey] | None, zone: str | None, site: str | None
                   ) -> Any:
    ranked = sa.select(
        ObservationRow.observation_id,
        sa.func.row_number().over(
            partition_by=(ObservationRow.site, ObservationRow.asset_id, ObservationRow.probe),
            order_by=(ObservationRow.observed_at.desc(), ObservationRow.received_at.desc(),
                      ObservationRow.observation_id.desc()),
        ).label("rank"),
    )
    if assets is not None:
        keys = sorted(set(assets))
        ranked = ranked.where(sa.tuple_(ObservationRow.site, ObservationRow.asset_id)
                              .in_(keys)) if keys else ranked.where(sa.false())
    if zone is not None:  # every probe's newest row of the assets ever seen in the zone
        seen = sa.select(ObservationRow.site, ObservationRow.asset_id).where(
            ObservationRow.zone == zone)
        if site is not None:
            seen = seen.where(ObservationRow.site == site)
        ranked = ranked.where(sa.tuple_(ObservationRow.site, ObservationRow.asset_id)
                              .in_(seen.distinct()))
    if site is not None:
        ranked = ranked.where(ObservationRow.site == site)
    return ranked.subquery()


def merge_site_facts(rows: Iterable[ObservationRow]) -> dict[str, list[AssetFacts]]:
    """``merge_asset_facts`` per site."""
    by_site: dict[str, list[ObservationRow]] = {}
    for row in rows:
        by_site.setdefault(row.site, []).append(row)
    return {site: merge_asset_facts(part) for site, part in sorted(by_site.items())}


def merge_asset_facts(rows: Iterable[ObservationRow]) -> list[AssetFacts]:
    """Merge each asset's latest observations into one fact set (newest value wins); the
    rows are of one site (``merge_site_facts`` splits them)."""
    assets: dict[str, AssetFacts] = {}
    for row in sorted(rows, key=lambda r: (r.asset_id, _aware(r.observed_at),
                                           _aware(r.received_at))):
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
                       asset_ids: Iterable[str] | None = None,
                       site: str | None = None) -> list[AssetFacts]:
    """The merged latest facts of one site's assets (by default the only site)."""
    site = site if site is not None else only_site(session)
    if site is None:
        return []
    keys = None if asset_ids is None else [(site, a) for a in asset_ids]
    return merge_asset_facts(latest_observations(session, assets=keys, zone=zone, site=site))


def replace_findings(session: Session, site: str, asset_ids: Iterable[str],
                     findings: list[Finding], evaluated_at: datetime) -> None:
    """The current findings of these assets of ``site`` become exactly ``findings``."""
    ids = set(asset_ids)
    if not ids:
        return
    session.execute(sa.delete(FindingRow).where(FindingRow.site == site,
                                                FindingRow.asset_id.in_(sorted(ids))))
    rows = [{"site": site, "asset_id": f.asset_id, "zone": f.zone, "check_id": f.check_id,
             "status": f.status, "evaluated_at": evaluated_at, "detail": f.model_dump_json()}
            for f in findings if f.asset_id in ids]
    if rows:
        table = FindingRow.__table__
        session.execute(sa.insert(table).values(detail=_json_text(session, "detail")), rows)


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; everything we store is UTC."""
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


def observation_owners(session: Session, observations: Sequence[Observation]
                       ) -> dict[str, tuple[str, str]]:
    """``(site, collector)`` of the stored observations with these ids (to tell a harmless
    duplicate from another collector's id reused)."""
    ids = sorted({str(obs.observation_id) for obs in observations})
    owners: dict[str, tuple[str, str]] = {}
    for start in range(0, len(ids), 500):
        query = (sa.select(ObservationRow.observation_id, ObservationRow.site,
                           ObservationRow.collector_id)
                 .where(ObservationRow.observation_id.in_(ids[start:start + 500])))
        owners.update({oid: (site, collector) for oid, site, collector in session.execute(query)})
    return owners
