"""The ``drift_events`` table: detection at ingest and the listing of ``otaudit drift``.

``detect`` runs in the transaction that stores a batch, on the observations the batch
stored (a duplicate is never stored again, so re-ingesting yields no second event; the
unique key ``(after_observation_id, fact)`` guards that too). Each stored observation of
status ``ok`` is compared with the asset's previous ``ok`` observation of the same site and
probe (by ``observed_at``; an observation older than that one arrived late and is not
compared). One query per batch fetches the previous observations; observations of one
endpoint within a batch are compared in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from otaudit.observation import Observation
from otaudit.server.db import Base, ObservationRow
from otaudit.server.drift.compare import diff
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
           "i.asset_id = :a{n} AND i.probe = :p{n} AND i.status = 'ok' AND i.observation_id "
           "NOT IN ({exclude}) ORDER BY i.observed_at DESC, i.received_at DESC, "
           "i.observation_id DESC LIMIT 1)")


def _previous(session: Session, keys: dict[Endpoint, set[str]]
              ) -> dict[Endpoint, tuple[str, datetime, dict[str, Any]]]:
    """The newest stored ``ok`` observation of each endpoint other than the given ids (this
    batch's): ``(observation id, observed_at, payload)``. One ``LIMIT 1`` scalar subquery
    per endpoint on the index ``(site, asset_id, probe, observed_at)``, so the cost does not
    grow with an endpoint's history; written as text (a hundred SQLAlchemy subqueries cost
    more to build than to run)."""
    table = ObservationRow.__table__
    columns = [table.c.site, table.c.asset_id, table.c.probe, table.c.observation_id,
               table.c.observed_at, sa.column("facts", sa.JSON), sa.column("unknown", sa.JSON)]
    part = ("o.payload -> '{0}'" if session.get_bind().dialect.name == "postgresql"
            else "json_extract(o.payload, '$.{0}')")  # not the evidence: less to decode
    found: dict[Endpoint, tuple[str, datetime, dict[str, Any]]] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), KEYS_PER_QUERY):
        parts, params = [], {}
        for n, key in enumerate(ordered[start:start + KEYS_PER_QUERY]):
            params.update({f"s{n}": key[0], f"a{n}": key[1], f"p{n}": key[2]})
            names = []
            for m, oid in enumerate(sorted(keys[key])):
                params[f"x{n}_{m}"] = oid
                names.append(f":x{n}_{m}")
            parts.append(_NEWEST.format(n=n, exclude=", ".join(names)))
        sql = ("SELECT o.site, o.asset_id, o.probe, o.observation_id, o.observed_at, "
               f"{part.format('facts')} AS facts, {part.format('unknown')} AS unknown "
               "FROM observations o WHERE o.observation_id IN ("
               + " UNION ALL ".join(parts) + ")")
        rows = session.execute(sa.text(sql).columns(*columns), params)
        found.update({(site, asset, probe): (oid, _aware(at), {"facts": facts or {},
                                                              "unknown": unknown or {}})
                      for site, asset, probe, oid, at, facts, unknown in rows})
    return found


def _facts(obs: Observation) -> dict[str, Any]:
    """The part of an observation ``compare.diff`` reads, without serialising it."""
    return {"facts": {path: {"value": fact.value} for path, fact in obs.facts.items()},
            "unknown": obs.unknown}


@dataclass
class _Side:
    observation_id: str
    observed_at: datetime
    payload: dict[str, Any]


def detect(session: Session, stored: Sequence[Observation], received_at: datetime,
           policy: DriftPolicy | None = None, now: datetime | None = None) -> list[DriftInfo]:
    """Compare each newly stored ``ok`` observation with its endpoint's previous one; add a
    ``drift_events`` row per changed fact; return what was added."""
    from otaudit.server.store import observed_at

    fresh = [o for o in stored if o.status.value == "ok"]
    if not fresh:
        return []
    now = now or received_at
    policy = policy or DriftPolicy()
    keys: dict[Endpoint, set[str]] = {}
    for o in fresh:
        keys.setdefault((o.site, o.asset.id, o.probe), set()).add(str(o.observation_id))
    last: dict[Endpoint, _Side] = {key: _Side(*row)
                                   for key, row in _previous(session, keys).items()}
    found: list[DriftInfo] = []
    for obs in sorted(fresh, key=lambda o: (observed_at(o, received_at), str(o.observation_id))):
        key = (obs.site, obs.asset.id, obs.probe)
        at = observed_at(obs, received_at)
        payload = _facts(obs)
        prior = last.get(key)
        if prior is not None and prior.observed_at > at:
            continue  # arrived late: a newer observation was compared already
        last[key] = _Side(str(obs.observation_id), at, payload)
        if prior is None:
            continue
        for change in diff(prior.payload, payload):
            verdict = (policy.judge(change.fact, prior.observed_at, at)
                       if change.kind not in ("now_known", "now_unknown") else None)
            found.append(DriftInfo(
                site=obs.site, asset_id=obs.asset.id, probe=obs.probe, fact=change.fact,
                kind=change.kind,
                severity=verdict.severity if verdict else severity_of(change.kind),
                policy=verdict.policy if verdict else None, before=change.before,
                after=change.after, before_observation_id=prior.observation_id,
                after_observation_id=str(obs.observation_id),
                before_observed_at=prior.observed_at, after_observed_at=at, detected_at=now,
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
