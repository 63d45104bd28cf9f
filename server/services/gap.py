"""The zone view: SL-T vs SL-A (proven, reachable, assessed) per FR, requirements, gaps.

``otaudit gap`` and ``GET /api/v1/sites/{site}/gap`` both print ``gap_document``; the
console's pages read ``cached_gap_evaluation``: the same evaluation, reused while nothing
it depends on changed (``EvaluationCache``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from otaudit.observation import utcnow
from otaudit.server import store
from otaudit.server.baseline.evaluator import _gc_paused
from otaudit.server.baseline.model import Evaluation
from otaudit.server.db import ObservationRow, ZoneRow
from otaudit.server.services import aware
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


class EvaluationCache:
    """The last evaluations (``size`` of them: whole sites, zones and single zones) by the
    key of what they depend on (``evaluation_key``); thread-safe. A key that changed is a
    miss, so nothing needs invalidating: an ingest, an inventory, a waiver, a new day each
    make a new key."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], Evaluation] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple[Any, ...]) -> Evaluation | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
                self._entries.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], evaluation: Evaluation) -> None:
        with self._lock:
            self._entries[key] = evaluation
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


def evaluation_key(session: Session, site: str, baseline: Any, policy: Policy,
                   zone: str | None, now: datetime) -> tuple[Any, ...]:
    """Everything ``gap_evaluation`` reads, in small form: the baseline's digest; the
    policy's records (files and stored waivers, as loaded for this request); the site's
    observations (insert-only: their number and newest arrival); its zones' SL-T; its
    stored inventory (declared conduits); and the UTC date (exceptions and attestations
    expire by date, the only use of ``now``)."""
    count, newest = session.execute(
        sa.select(sa.func.count(), sa.func.max(ObservationRow.received_at))
        .where(ObservationRow.site == site)).one()
    zones = tuple(sorted((z.zone_id, repr(sorted(z.sl_t.items()))) for z in session.scalars(
        sa.select(ZoneRow).where(ZoneRow.site == site))))
    declared = tuple((i.digest, str(i.loaded_at))  # both rewritten with the document
                     for i in store.declared_inventories(session, site))
    records = tuple(r.model_dump_json() for r in [*policy.exceptions, *policy.attestations])
    return (site, zone, baseline.digest, id(baseline), records, count, str(newest), zones,
            declared, now.date())


def cached_gap_evaluation(session: Session, site: str, baseline: Any, policy: Policy,
                          cache: EvaluationCache | None, zone: str | None = None,
                          now: datetime | None = None) -> Evaluation:
    """``gap_evaluation``, taken from ``cache`` when nothing it depends on changed; a
    whole site that changed is put together from its zones (``zoned_gap_evaluation``), so
    only the zones whose facts changed are evaluated again."""
    now = now or utcnow()
    if cache is None:
        return gap_evaluation(session, site, baseline, policy, zone, now)
    key = evaluation_key(session, site, baseline, policy, zone, now)
    found = cache.get(key)
    if found is None:
        found = (gap_evaluation(session, site, baseline, policy, zone, now) if zone is not None
                 else zoned_gap_evaluation(session, site, baseline, policy, cache, now))
        cache.put(key, found)
    return found


def zoned_gap_evaluation(session: Session, site: str, baseline: Any, policy: Policy,
                         cache: EvaluationCache, now: datetime) -> Evaluation:
    """The site's ``gap_evaluation``, evaluated zone by zone, each zone's part reused from
    ``cache`` while its inputs are the same. Zones do not share inputs: an asset's findings
    come from its own facts and its zone's SL-T, a zone's levels from its assets' findings,
    its declared facts and the records scoped to it; every asset counts in the zone of its
    newest observation, as the merge of the whole site says."""
    levels = {zid: z.sl_t for zid, z in store.load_zones(session, site).items()}
    rows_of: dict[str, list[Any]] = {}  # without payloads: a zone that missed loads its own
    for row in store.latest_observation_keys(session, site):
        rows_of.setdefault(row.asset_id, []).append(row)
    by_zone: dict[str, list[Any]] = {}
    for rows in rows_of.values():
        # the zone ``merge_asset_facts`` gives the asset: its last row in the same order
        newest = sorted(rows, key=lambda r: (aware(r.observed_at), aware(r.received_at)))[-1]
        by_zone.setdefault(newest.zone, []).extend(rows)
    declared: dict[str, list[Any]] = {}
    for facts in store.declared_zone_facts(session, None, site):
        declared.setdefault(facts.zone, []).append(facts)
    with _gc_paused():  # once for all zones (each ``evaluate`` alone would collect after it)
        parts = [_zone_part(session, zid, by_zone.get(zid, []), declared.get(zid, []),
                            levels.get(zid), site, baseline, policy, cache, now)
                 for zid in sorted(set(levels) | set(by_zone) | set(declared))]
    findings = sorted((f for p in parts for f in p.findings),
                      key=lambda f: (f.zone, f.asset_id, f.check_id))
    return Evaluation(baseline_digest=baseline.digest, evaluated_at=now, findings=findings,
                      zones=sorted((z for p in parts for z in p.zones), key=lambda z: z.zone),
                      warnings=sorted({w for p in parts for w in p.warnings}))


def _zone_part(session: Session, zid: str, rows: list[Any], declared: list[Any], sl_t: Any,
               site: str, baseline: Any, policy: Policy, cache: EvaluationCache,
               now: datetime) -> Evaluation:
    """One zone's evaluation (its SL-T ``None``: assets in a zone without one); ``rows``
    are its assets' latest observation keys (``store.latest_observation_keys``)."""
    from otaudit.server.baseline import evaluate

    records = tuple(r.model_dump_json() for r in [*policy.exceptions, *policy.attestations])
    key = ("zone-part", site, zid, baseline.digest, id(baseline), records,
           repr(sl_t.as_dict()) if sl_t is not None else None,
           tuple(sorted((r.asset_id, r.probe, r.observation_id) for r in rows)),
           tuple(f.model_dump_json() for f in declared), now.date())
    part = cache.get(key)
    if part is None:
        part = evaluate(baseline, {zid: sl_t} if sl_t is not None else {},
                        [*store.merge_asset_facts(store.observations_by_id(
                            session, [r.observation_id for r in rows])), *declared],
                        exceptions=policy.exceptions, attestations=policy.attestations,
                        now=now)
        cache.put(key, part)
    return part


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
