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


def _previous(session: Session, keys: set[Endpoint], exclude: set[str]
              ) -> dict[Endpoint, ObservationRow]:
    """The newest stored ``ok`` observation of each endpoint, leaving out ``exclude``."""
    if not keys:
        return {}
    obs = ObservationRow
    ranked = (sa.select(obs.observation_id, sa.func.row_number().over(
        partition_by=(obs.site, obs.asset_id, obs.probe),
        order_by=(obs.observed_at.desc(), obs.received_at.desc(), obs.observation_id.desc()),
    ).label("rank"))
        .where(sa.tuple_(obs.site, obs.asset_id, obs.probe).in_(sorted(keys)))
        .where(obs.status == "ok"))
    if exclude:
        ranked = ranked.where(obs.observation_id.not_in(sorted(exclude)))
    sub = ranked.subquery()
    rows = session.scalars(sa.select(obs).join(sub, sub.c.observation_id == obs.observation_id)
                           .where(sub.c.rank == 1))
    return {(r.site, r.asset_id, r.probe): r for r in rows}


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
    keys = {(o.site, o.asset.id, o.probe) for o in fresh}
    last: dict[Endpoint, _Side] = {
        key: _Side(row.observation_id, _aware(row.observed_at), row.payload)
        for key, row in _previous(session, keys, {str(o.observation_id) for o in fresh}).items()}
    found: list[DriftInfo] = []
    for obs in sorted(fresh, key=lambda o: (observed_at(o, received_at), str(o.observation_id))):
        key = (obs.site, obs.asset.id, obs.probe)
        at = observed_at(obs, received_at)
        payload = obs.model_dump(mode="json", include={"facts", "unknown"})
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
