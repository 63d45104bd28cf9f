"""The ``drift_events`` table: detection at ingest and the listing of ``otaudit drift``.

``detect`` runs in the transaction that stores a batch, on the observations the batch
stored (a duplicate is never stored again, so re-ingesting yields no second event; the
unique key ``(after_observation_id, fact)`` guards that too). Each stored observation of
status ``ok`` is compared with the asset's previous ``ok`` observation of the same site and
probe (by ``observed_at``; an observation older than that one arrived late and is not
compared). Before a batch is stored, ``previous`` reads the newest stored observation of
each endpoint (id, time, digest: one query per hundred endpoints); ``detect`` reads the
previous facts only of endpoints whose digest changed (``compare.digest``), so an unchanged
device costs no JSON decoding. Observations of one endpoint within a batch are compared in
order.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from otaudit.observation import Observation
from otaudit.server.db import Base, ObservationRow
from otaudit.server.drift.compare import comparable, diff, observation_digest
from otaudit.server.drift.policy import DriftPolicy

Endpoint = tuple[str, str, str]  # (site, asset id, probe)


class DriftEvent(Base):
    __tablename__ = "drift_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    asset_id: Mapped[str] = mapped_column(String(64))
    probe: Mapped[str] = mapped_column(String(32))
    fact: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(24))
    severity: Mapped[str] = mapped_column(String(16))
    policy: Mapped[str | None] = mapped_column(String(16))  # violation, in_window, None
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    detail: Mapped[dict[str, Any]]
    before_observation_id: Mapped[str] = mapped_column(String(36))
    after_observation_id: Mapped[str] = mapped_column(String(36))
    before_observed_at: Mapped[datetime]
    after_observed_at: Mapped[datetime]
    detected_at: Mapped[datetime]

    __table_args__ = (
        sa.UniqueConstraint("after_observation_id", "fact", name="uq_drift_observation_fact"),
        Index("ix_drift_site_detected", "site", "detected_at"),
    )


@dataclass(frozen=True)
class DriftInfo:
    """A drift event as the alerts and metrics see it (no database row)."""

    site: str
    asset_id: str
    probe: str
    fact: str
    kind: str
    severity: str
    policy: str | None
    before: Any
    after: Any
    before_observation_id: str
    after_observation_id: str
    before_observed_at: datetime
    after_observed_at: datetime
    detected_at: datetime
    detail: dict[str, Any]

    def row(self) -> dict[str, Any]:
        """The ``drift_events`` columns of this event."""
        return dict(self.__dict__)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (alerts)."""
        out = dict(self.__dict__)
        for name in ("before_observed_at", "after_observed_at", "detected_at"):
            out[name] = out[name].isoformat()
        return out


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def severity_of(kind: str) -> str:
    """Severity of a change no ``must_not_drift`` rule names."""
    if kind in ("now_known", "now_unknown"):
        return "info"
    if kind in ("device_replaced", "host_key"):
        return "high"
    return "medium"


KEYS_PER_QUERY = 100  # endpoints per statement (SQLite allows 500 compound terms)
_NEWEST = ("SELECT (SELECT i.observation_id FROM observations i WHERE i.site = :s{n} AND "
           "i.asset_id = :a{n} AND i.probe = :p{n} AND i.status = 'ok' "
           "ORDER BY i.observed_at DESC, i.received_at DESC, i.observation_id DESC LIMIT 1)")


@dataclass
class _Side:
    observation_id: str
    observed_at: datetime
    digest: str | None  # None: stored before digests were kept
    payload: dict[str, Any] | None = None  # what ``diff`` reads; read only when needed
    source: Observation | None = None  # this batch's: ``payload`` is made from it if needed

    def compared(self) -> dict[str, Any] | None:
        """``payload``, made from ``source`` the first time it is needed."""
        if self.payload is None and self.source is not None:
            self.payload = comparable(self.source)
        return self.payload


@functools.lru_cache(maxsize=4 * KEYS_PER_QUERY)
def _newest_statement(count: int) -> sa.TextClause:
    """The newest ``ok`` observation of ``count`` endpoints: one ``LIMIT 1`` scalar subquery
    per endpoint on the index ``ix_obs_endpoint_newest`` (its order), so the cost does not
    grow with an endpoint's history; text built once per size (a hundred SQLAlchemy
    subqueries cost more to build than to run)."""
    table = ObservationRow.__table__
    sql = ("SELECT o.site, o.asset_id, o.probe, o.observation_id, o.observed_at, "
           "o.values_digest FROM observations o WHERE o.observation_id IN ("
           + " UNION ALL ".join(_NEWEST.format(n=n) for n in range(count)) + ")")
    return sa.text(sql).columns(table.c.site, table.c.asset_id, table.c.probe,
                                table.c.observation_id, table.c.observed_at,
                                table.c.values_digest)


_NEWEST_LATERAL = sa.text(  # PostgreSQL: one statement for any number of endpoints
    "SELECT k.site, k.asset_id, k.probe, o.observation_id, o.observed_at, o.values_digest "
    "FROM unnest(CAST(:sites AS text[]), CAST(:assets AS text[]), CAST(:probes AS text[])) "
    "AS k(site, asset_id, probe) CROSS JOIN LATERAL (SELECT i.observation_id, i.observed_at, "
    "i.values_digest FROM observations i WHERE i.site = k.site AND i.asset_id = k.asset_id "
    "AND i.probe = k.probe AND i.status = 'ok' ORDER BY i.observed_at DESC, i.received_at "
    "DESC, i.observation_id DESC LIMIT 1) o").columns(
    sa.column("site", String), sa.column("asset_id", String), sa.column("probe", String),
    sa.column("observation_id", String), sa.column("observed_at", sa.DateTime(timezone=True)),
    sa.column("values_digest", String))


def previous(session: Session, observations: Sequence[Observation]) -> dict[Endpoint, _Side]:
    """The newest stored ``ok`` observation of each endpoint of ``observations`` (read before
    they are stored): its id, time and digest. The facts themselves are read by ``detect``,
    only where a digest differs. PostgreSQL takes all endpoints in one ``LATERAL`` statement
    (the ``UNION ALL`` of scalar subqueries costs it more to plan than to run); SQLite, which
    has no ``LATERAL``, a hundred subqueries a statement."""
    keys = sorted({(o.site, o.asset.id, o.probe) for o in observations
                   if o.status.value == "ok"})
    found: dict[Endpoint, _Side] = {}
    if keys and session.get_bind().dialect.name == "postgresql":
        rows = session.execute(_NEWEST_LATERAL, {"sites": [k[0] for k in keys],
                                                 "assets": [k[1] for k in keys],
                                                 "probes": [k[2] for k in keys]})
        return {(site, asset, probe): _Side(oid, _aware(at), digest)
                for site, asset, probe, oid, at, digest in rows}
    for start in range(0, len(keys), KEYS_PER_QUERY):
        part = keys[start:start + KEYS_PER_QUERY]
        params: dict[str, str] = {}
        for n, (site, asset, probe) in enumerate(part):
            params.update({f"s{n}": site, f"a{n}": asset, f"p{n}": probe})
        rows = session.execute(_newest_statement(len(part)), params)
        found.update({(site, asset, probe): _Side(oid, _aware(at), digest)
                      for site, asset, probe, oid, at, digest in rows})
    return found


def _read_payloads(session: Session, sides: Sequence[_Side]) -> None:
    """Fill in the ``facts``/``unknown`` of stored observations (not the evidence)."""
    part = ("payload -> '{0}'" if session.get_bind().dialect.name == "postgresql"
            else "json_extract(payload, '$.{0}')")
    by_id = {side.observation_id: side for side in sides}
    ids = sorted(by_id)
    for start in range(0, len(ids), KEYS_PER_QUERY):
        stmt = sa.text(f"SELECT observation_id, {part.format('facts')} AS facts, "
                       f"{part.format('unknown')} AS unknown FROM observations "
                       "WHERE observation_id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)).columns(
            sa.column("observation_id", String), sa.column("facts", sa.JSON),
            sa.column("unknown", sa.JSON))
        chunk = {"ids": ids[start:start + KEYS_PER_QUERY]}
        for oid, facts, unknown in session.execute(stmt, chunk):
            by_id[oid].payload = {"facts": facts or {}, "unknown": unknown or {}}


def digests(observations: Sequence[Observation]) -> dict[str, str]:
    """Each observation's digest by observation id (made once per batch: the digest is
    stored with the observation and judged by ``detect``)."""
    return {str(obs.observation_id): observation_digest(obs) for obs in observations}


def detect(session: Session, stored: Sequence[Observation], received_at: datetime,
           prior: dict[Endpoint, _Side], policy: DriftPolicy | None = None,
           now: datetime | None = None, values: dict[str, str] | None = None
           ) -> list[DriftInfo]:
    """Compare each newly stored ``ok`` observation with its endpoint's previous one
    (``prior``: ``previous`` read before the batch was stored, then the batch's own in
    order); add a ``drift_events`` row per changed fact; return what was added.
    ``values``: ``digests`` of the observations, if already made."""
    from otaudit.server.store import observed_at

    fresh = sorted(((observed_at(o, received_at), str(o.observation_id), o)
                    for o in stored if o.status.value == "ok"), key=lambda t: (t[0], t[1]))
    if not fresh:
        return []
    now = now or received_at
    policy = policy or DriftPolicy()
    values = values if values is not None else digests([obs for _, _, obs in fresh])
    changed = {(o.site, o.asset.id, o.probe) for _, oid, o in fresh
               if (side := prior.get((o.site, o.asset.id, o.probe))) is not None
               and side.digest != values[oid]}
    _read_payloads(session, [prior[key] for key in changed])
    last: dict[Endpoint, _Side] = dict(prior)
    found: list[DriftInfo] = []
    for at, oid, obs in fresh:
        key = (obs.site, obs.asset.id, obs.probe)
        side = _Side(oid, at, values[oid], source=obs)
        before = last.get(key)
        if before is not None and before.observed_at > at:
            continue  # arrived late: a newer observation was compared already
        last[key] = side
        if before is None or before.digest == side.digest:
            continue  # the first of its endpoint, or nothing ``diff`` would see changed
        was, now_values = before.compared(), side.compared()
        assert was is not None and now_values is not None
        for change in diff(was, now_values):
            verdict = (policy.judge(change.fact, before.observed_at, at)
                       if change.kind not in ("now_known", "now_unknown") else None)
            found.append(DriftInfo(
                site=obs.site, asset_id=obs.asset.id, probe=obs.probe, fact=change.fact,
                kind=change.kind,
                severity=verdict.severity if verdict else severity_of(change.kind),
                policy=verdict.policy if verdict else None, before=change.before,
                after=change.after, before_observation_id=before.observation_id,
                after_observation_id=oid,
                before_observed_at=before.observed_at, after_observed_at=at, detected_at=now,
                detail=change.detail))
    if found:
        _insert(session, found)
    return found


def _insert(session: Session, found: list[DriftInfo]) -> None:
    rows = [info.row() for info in found]
    from otaudit.server.db import dialect_insert

    table = DriftEvent.__table__
    session.execute(dialect_insert(session)(table).on_conflict_do_nothing(
        index_elements=["after_observation_id", "fact"]), rows)


def list_events(session: Session, site: str | None = None, since: datetime | None = None,
                asset: str | None = None, limit: int | None = None) -> list[DriftEvent]:
    """Drift events, oldest first (by detection, then id), of a site / since a moment."""
    query = sa.select(DriftEvent).order_by(DriftEvent.detected_at, DriftEvent.id)
    if site is not None:
        query = query.where(DriftEvent.site == site)
    if since is not None:
        query = query.where(DriftEvent.detected_at >= since)
    if asset is not None:
        query = query.where(DriftEvent.asset_id == asset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def event_dict(row: DriftEvent) -> dict[str, Any]:
    """A stored event as JSON-ready data (``otaudit drift --format json``)."""
    return {
        "id": row.id, "site": row.site, "asset_id": row.asset_id, "probe": row.probe,
        "fact": row.fact, "kind": row.kind, "severity": row.severity, "policy": row.policy,
        "before": row.before, "after": row.after, "detail": row.detail,
        "evidence": {"before_observation_id": row.before_observation_id,
                     "after_observation_id": row.after_observation_id},
        "before_observed_at": _aware(row.before_observed_at).isoformat(),
        "after_observed_at": _aware(row.after_observed_at).isoformat(),
        "detected_at": _aware(row.detected_at).isoformat(),
    }
