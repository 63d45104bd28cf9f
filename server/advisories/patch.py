"""Patch status per asset over time (IEC 62443-2-3 patch management, NIS2 art. 21).

``refresh_patch_status`` reads the ``identity.*`` facts of the observations that arrived since
the last refresh, keeps each asset's identity timeline (one period per identity it reported),
matches every period against the imported advisories (memoised per identity), and derives per
asset × advisory × CVE:

- ``state``: ``open`` (affected now), ``patched`` (was affected, a later observation shows a
  fixed firmware), ``fixed`` (never seen affected, firmware already fixed), ``not_affected``,
  ``needs_review``;
- ``affected_since``: the first observation of the current (or last) affected run;
  ``patched_at``: the first observation after it that was no longer affected;
- fixed-in, remediation, CVSS, and the verdict's reason.

The status is derived from the timeline alone, so importing advisories later (without new
polls) yields the same history as if they had been there all along. Every change is appended
to ``patch_status_history``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from otaudit.observation import utcnow
from otaudit.server.advisories.db import (
    AdvisoryRow,
    PatchAssetRow,
    PatchHistoryRow,
    PatchIdentityRow,
    PatchStatusRow,
)
from otaudit.server.advisories.importer import load_advisories
from otaudit.server.advisories.matcher import AdvisoryIndex, Identity, Verdict
from otaudit.server.db import ObservationRow

FIELDS = ("vendor", "product", "model", "order_code", "firmware_version")
CHUNK = 500
_TRACKED = ("verdict", "state", "fixed_in", "affected_since", "patched_at", "installed_version",
            "reason", "cvss", "remediation", "product_id")
_INDEX_CACHE: dict[str, tuple[str, AdvisoryIndex, dict[Identity, dict]]] = {}


def refresh_patch_status(session: Session, asset_ids: Iterable[str] | None = None,
                         now: datetime | None = None) -> int:
    """Re-derive the patch status of ``asset_ids`` (all when None); returns rows changed.

    A no-op (returns 0 without reading observations) when no advisory is imported. Only
    assets whose identity changed, or that were last evaluated against another set of
    advisories, are matched again; the others only advance their observation cursor.
    """
    generation = _generation(session)
    if generation is None:
        return 0
    now = now or utcnow()
    ids = sorted(set(asset_ids)) if asset_ids is not None else sorted(
        set(session.scalars(sa.select(ObservationRow.asset_id).distinct()))
        | set(session.scalars(sa.select(PatchAssetRow.asset_id))))
    changed = 0
    for chunk in _chunks(ids):
        assets = _read_new_observations(session, chunk)
        due = sorted(a for a, row in assets.items()
                     if row["dirty"] or row["evaluated"] != generation)
        if due:
            index, memo = _index(session, generation)
            changed += _evaluate_assets(session, due, assets, index, memo, now)
        _save_assets(session, assets, generation)
    session.flush()
    return changed


# ---- advisory index (cached per database and advisory generation) -------------------------

def _generation(session: Session) -> str | None:
    """Identifies the imported advisories (changes with every import that changed something)."""
    gen = session.execute(sa.select(sa.func.count(AdvisoryRow.id), sa.func.max(AdvisoryRow.id),
                                    sa.func.max(AdvisoryRow.imported_at))).one()
    if not gen[0]:
        return None
    return f"{gen[0]}:{gen[1]}:{_aware(gen[2]).isoformat() if gen[2] else ''}"


def _index(session: Session, generation: str) -> tuple[AdvisoryIndex, dict[Identity, dict]]:
    """The matcher index of this database, loaded once per advisory generation."""
    key = str(session.get_bind().url)
    cached = _INDEX_CACHE.get(key)
    if cached is None or cached[0] != generation:
        cached = (generation, AdvisoryIndex(load_advisories(session)), {})
        _INDEX_CACHE[key] = cached
    return cached[1], cached[2]


def _match(index: AdvisoryIndex, memo: dict[Identity, dict], identity: Identity
           ) -> dict[tuple[str, str], Verdict]:
    found = memo.get(identity)
    if found is None:
        found = {(v.advisory_id, v.cve): v for v in index.match(identity)}
        if len(memo) > 200_000:
            memo.clear()
        memo[identity] = found
    return found


# ---- identity timeline ----------------------------------------------------------------------

def identity_key(identity: dict[str, Any]) -> str:
    blob = json.dumps({k: identity.get(k) for k in FIELDS}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _read_new_observations(session: Session, chunk: list[str]) -> dict[str, dict[str, Any]]:
    """Advance the identity timeline of ``chunk`` with the observations not read yet."""
    assets: dict[str, dict[str, Any]] = {}
    for row in session.execute(sa.select(PatchAssetRow).where(
            PatchAssetRow.asset_id.in_(chunk))).scalars():
        assets[row.asset_id] = {"zone": row.zone, "identity": row.identity,
                                "identity_key": row.identity_key, "cursor": row.cursor,
                                "observation_id": row.observation_id, "new": False,
                                "dirty": False, "touched": False, "evaluated": row.evaluated}
    cols = [ObservationRow.payload[("facts", f"identity.{f}", "value")].as_string().label(f)
            for f in FIELDS]
    query = sa.select(ObservationRow.asset_id, ObservationRow.zone,
                      ObservationRow.observation_id, ObservationRow.finished_at, *cols
                      ).where(ObservationRow.asset_id.in_(chunk))
    cursors = [assets[a]["cursor"] if a in assets else None for a in chunk]
    if all(c is not None for c in cursors):
        query = query.where(ObservationRow.finished_at > min(cursors))  # type: ignore[type-var]
    query = query.order_by(ObservationRow.asset_id, ObservationRow.finished_at,
                           ObservationRow.observation_id)
    new_periods: list[dict[str, Any]] = []
    last_seen: dict[str, datetime] = {}
    for row in session.execute(query):
        at = _aware(row.finished_at)
        asset = assets.get(row.asset_id)
        if asset is not None and asset["cursor"] is not None and at <= _aware(asset["cursor"]):
            continue
        if asset is None:
            asset = assets[row.asset_id] = {
                "zone": row.zone, "identity": {}, "identity_key": "", "cursor": None,
                "observation_id": None, "new": True, "dirty": False, "touched": True,
                "evaluated": None}
        asset["zone"], asset["cursor"], asset["touched"] = row.zone, at, True
        fields = {f: str(getattr(row, f)).strip() for f in FIELDS
                  if getattr(row, f) not in (None, "")}
        if not fields:
            continue
        merged = {**asset["identity"], **fields}
        key = identity_key(merged)
        if key != asset["identity_key"]:
            new_periods.append({"asset_id": row.asset_id, "identity_key": key,
                                "identity": merged, "first_seen": at, "last_seen": at,
                                "observation_id": row.observation_id})
            asset.update(identity=merged, identity_key=key, observation_id=row.observation_id,
                         dirty=True)
            last_seen.pop(row.asset_id, None)
        elif not asset["dirty"]:
            last_seen[row.asset_id] = at  # same identity again: only the period's last_seen
        else:
            new_periods[-1]["last_seen"] = at
    if last_seen:
        latest = dict(session.execute(
            sa.select(PatchIdentityRow.asset_id, sa.func.max(PatchIdentityRow.id))
            .where(PatchIdentityRow.asset_id.in_(list(last_seen)))
            .group_by(PatchIdentityRow.asset_id)).all())
        updates = [{"id": latest[a], "last_seen": at} for a, at in last_seen.items()
                   if a in latest]
        if updates:
            session.execute(sa.update(PatchIdentityRow), updates)
    if new_periods:
        _insert(session, PatchIdentityRow, new_periods)
    return assets


def _save_assets(session: Session, assets: dict[str, dict[str, Any]], generation: str) -> None:
    inserts, updates = [], []
    for asset_id, a in assets.items():
        evaluated = generation if (a["dirty"] or a["evaluated"] != generation) else a["evaluated"]
        values = {"zone": a["zone"], "identity": a["identity"], "identity_key": a["identity_key"],
                  "observation_id": a["observation_id"], "cursor": a["cursor"],
                  "evaluated": evaluated}
        if a["new"]:
            inserts.append({"asset_id": asset_id, **values})
        elif a["touched"] or evaluated != a["evaluated"]:
            updates.append({"asset_id": asset_id, **values})
    if inserts:
        _insert(session, PatchAssetRow, inserts)
    if updates:
        session.execute(sa.update(PatchAssetRow), updates)


# ---- evaluation -----------------------------------------------------------------------------

_STORED = ("open", "needs_review", "patched")  # fixed / not_affected alone are not exposures
_COLUMNS = (*_TRACKED, "zone", "expression", "basis", "product_name", "remediation_category",
            "severity")


def _evaluate_assets(session: Session, asset_ids: list[str], assets: dict[str, dict[str, Any]],
                     index: AdvisoryIndex, memo: dict[Identity, dict], now: datetime) -> int:
    timelines: dict[str, list[tuple[datetime, dict[str, Any]]]] = {}
    for asset_id, first_seen, identity in session.execute(
            sa.select(PatchIdentityRow.asset_id, PatchIdentityRow.first_seen,
                      PatchIdentityRow.identity)
            .where(PatchIdentityRow.asset_id.in_(asset_ids))
            .order_by(PatchIdentityRow.asset_id, PatchIdentityRow.first_seen,
                      PatchIdentityRow.id)):
        timelines.setdefault(asset_id, []).append((_aware(first_seen), identity))
    cols = [getattr(PatchStatusRow, c) for c in _COLUMNS]
    existing = {(r.asset_id, r.advisory_id, r.cve): r for r in session.execute(
        sa.select(PatchStatusRow.id, PatchStatusRow.asset_id, PatchStatusRow.advisory_id,
                  PatchStatusRow.cve, *cols).where(PatchStatusRow.asset_id.in_(asset_ids)))}
    wanted: dict[tuple[str, str, str], dict[str, Any]] = {}
    for asset_id, periods in timelines.items():
        seq = [(first_seen, _match(index, memo, Identity(**{f: ident.get(f) for f in FIELDS})))
               for first_seen, ident in periods]
        zone = assets.get(asset_id, {}).get("zone", "")
        for key in {k for _, verdicts in seq for k in verdicts}:
            status = derive_status([(t, verdicts.get(key)) for t, verdicts in seq])
            if status is not None:
                status["zone"] = zone
                wanted[(asset_id, *key)] = status
    inserts, updates, deletes, history = [], [], [], []
    for key, status in wanted.items():
        row = existing.get(key)
        if row is None:
            if status["state"] in _STORED:
                inserts.append({"asset_id": key[0], "advisory_id": key[1], "cve": key[2],
                                "first_seen": now, "updated_at": now, **status})
                history.append(_history(key, None, status, now))
            continue
        if status["state"] not in _STORED:
            deletes.append(row.id)
            history.append(_history(key, row.state, status, now))
            continue
        if any(_norm(getattr(row, c)) != _norm(status[c]) for c in _COLUMNS):
            if row.state != status["state"] or row.verdict != status["verdict"]:
                history.append(_history(key, row.state, status, now))
            updates.append({"id": row.id, "updated_at": now, **status})
    for key, row in existing.items():
        if key not in wanted:
            deletes.append(row.id)
            history.append({"asset_id": key[0], "advisory_id": key[1], "cve": key[2], "at": now,
                            "state_from": row.state, "state_to": "removed",
                            "installed_version": row.installed_version, "fixed_in": None,
                            "reason": "the advisory no longer applies to this asset"})
    if inserts:
        _insert(session, PatchStatusRow, inserts)
    if updates:
        session.execute(sa.update(PatchStatusRow), updates)
    for i in range(0, len(deletes), CHUNK):
        session.execute(sa.delete(PatchStatusRow).where(
            PatchStatusRow.id.in_(deletes[i:i + CHUNK])))
    if history:
        _insert(session, PatchHistoryRow, history)
    return len(inserts) + len(updates) + len(deletes)


def derive_status(seq: list[tuple[datetime, Verdict | None]]) -> dict[str, Any] | None:
    """State of one advisory × CVE from an asset's timeline of (period start, verdict)."""
    current = seq[-1][1]
    last = current or next((v for _, v in reversed(seq) if v is not None), None)
    if last is None:
        return None
    affected = [i for i, (_, v) in enumerate(seq) if v is not None and v.verdict == "affected"]
    affected_since = patched_at = None
    if affected:
        end = affected[-1]
        start = end
        while start > 0 and seq[start - 1][1] is not None and \
                seq[start - 1][1].verdict == "affected":  # type: ignore[union-attr]
            start -= 1
        affected_since = seq[start][0]
        if end < len(seq) - 1:
            patched_at = seq[end + 1][0]
    if current is not None and current.verdict == "affected":
        state = "open"
    elif patched_at is not None and (current is None or current.verdict in ("fixed",
                                                                             "not_affected")):
        state = "patched"
    else:
        state = current.verdict if current is not None else "not_affected"
    verdict = current.verdict if current is not None else "not_affected"
    reason = last.reason if current is not None else (
        "the asset's current identity no longer matches this advisory; earlier: " + last.reason)
    return {
        "verdict": verdict, "state": state, "product_id": last.product_id,
        "product_name": last.product_name[:2000], "expression": last.expression or "",
        "basis": last.basis, "reason": reason, "installed_version": last.installed,
        "fixed_in": last.fixed_in if state in ("open", "needs_review") else None,
        "remediation_category": last.remediation_category, "remediation": last.remediation,
        "cvss": last.cvss, "severity": last.severity, "affected_since": affected_since,
        "patched_at": patched_at if state == "patched" else None,
    }


def _history(key: tuple[str, str, str], before: str | None, status: dict[str, Any],
             now: datetime) -> dict[str, Any]:
    return {"asset_id": key[0], "advisory_id": key[1], "cve": key[2], "at": now,
            "state_from": before, "state_to": status["state"],
            "installed_version": status["installed_version"], "fixed_in": status["fixed_in"],
            "reason": status["reason"]}


# ---- queries for the CLI and the report ------------------------------------------------------

def patch_status_rows(session: Session, zone: str | None = None, asset_id: str | None = None,
                      include: Iterable[str] | None = None, now: datetime | None = None
                      ) -> list[dict[str, Any]]:
    """Current patch status rows (dicts), most urgent first, with ``days_open``."""
    now = now or utcnow()
    query = sa.select(PatchStatusRow)
    if zone is not None:
        query = query.where(PatchStatusRow.zone == zone)
    if asset_id is not None:
        query = query.where(PatchStatusRow.asset_id == asset_id)
    if include is not None:
        query = query.where(PatchStatusRow.state.in_(list(include)))
    rows = []
    for r in session.scalars(query):
        since = _aware(r.affected_since) if r.affected_since else None
        patched = _aware(r.patched_at) if r.patched_at else None
        days = None
        if since is not None:
            days = ((patched or now) - since).days
        rows.append({
            "asset_id": r.asset_id, "zone": r.zone, "advisory_id": r.advisory_id, "cve": r.cve,
            "state": r.state, "verdict": r.verdict, "cvss": r.cvss, "severity": r.severity,
            "installed_version": r.installed_version, "fixed_in": r.fixed_in,
            "affected_since": since.isoformat() if since else None,
            "patched_at": patched.isoformat() if patched else None, "days_open": days,
            "remediation_category": r.remediation_category, "remediation": r.remediation,
            "product_id": r.product_id, "product_name": r.product_name,
            "expression": r.expression, "basis": r.basis, "reason": r.reason,
        })
    order = {"open": 0, "needs_review": 1, "patched": 2, "fixed": 3, "not_affected": 4}
    rows.sort(key=lambda x: (order.get(x["state"], 9), -(x["cvss"] or 0), x["asset_id"],
                             x["advisory_id"], x["cve"]))
    return rows


def patch_status_by_asset(session: Session) -> dict[str, list[dict[str, Any]]]:
    """For the audit report: per asset, the advisories that are open, to review or patched."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in patch_status_rows(session, include=("open", "needs_review", "patched")):
        fix = f", fixed in {row['fixed_in']}" if row["fixed_in"] else ""
        since = f", since {row['affected_since'][:10]}" if row["affected_since"] else ""
        row["status"] = row["state"]
        row["summary"] = f"{row['cve']} (CVSS {row['cvss'] or '?'}){fix}{since}"
        out.setdefault(row["asset_id"], []).append(row)
    return out


def patch_history(session: Session, asset_id: str | None = None) -> list[dict[str, Any]]:
    query = sa.select(PatchHistoryRow).order_by(PatchHistoryRow.at, PatchHistoryRow.id)
    if asset_id is not None:
        query = query.where(PatchHistoryRow.asset_id == asset_id)
    return [{"asset_id": h.asset_id, "advisory_id": h.advisory_id, "cve": h.cve,
             "at": _aware(h.at).isoformat(), "from": h.state_from, "to": h.state_to,
             "installed_version": h.installed_version, "fixed_in": h.fixed_in,
             "reason": h.reason} for h in session.scalars(query)]


# ---- helpers ----------------------------------------------------------------------------------

def _insert(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """Plain executemany on the table (the ORM bulk path issues a statement per row here)."""
    session.connection().execute(model.__table__.insert(), rows)


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _norm(value: Any) -> Any:
    return _aware(value) if isinstance(value, datetime) else value
