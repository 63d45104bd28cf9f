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

Assets are ``(site, asset id)`` keys (``AssetKey``): the same asset id in two sites has two
timelines and two sets of statuses.

Cost (10,000 assets, 2,350 advisories; figures in bench/RESULTS.md): the advisory index is
built once per process and advisory generation, and rebuilt from the advisories already
decoded when an import changed a few; statuses are derived once per distinct identity
timeline and only stamped with each asset's dates; the stored rows are compared and only
those that differ are written, as one executemany of plain tuples (SQLite) or one COPY
(PostgreSQL): SQLAlchemy's per-row parameter handling, and psycopg's pipelined executemany,
cost more than the database itself at this volume.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
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
from otaudit.server.advisories.matcher import AdvisoryIndex, Identity, Verdict
from otaudit.server.advisories.normalise import NORMAL_FORM_VERSION, Advisory, normalise
from otaudit.server.db import ObservationRow

FIELDS = ("vendor", "product", "model", "order_code", "firmware_version")
CHUNK = 1000  # assets per round trip (IN lists stay far below SQLite's and PostgreSQL's limits)
_MEMO_MAX = 200_000
# a status row's derived columns: those that depend on the identities alone, then the others
_STATUS = ("verdict", "state", "product_id", "product_name", "expression", "basis", "reason",
           "installed_version", "fixed_in", "remediation_category", "remediation", "cvss",
           "severity")
_COLUMNS = (*_STATUS, "zone", "affected_since", "patched_at")
_AT = {c: i for i, c in enumerate(_COLUMNS)}
_STORED = ("open", "needs_review", "patched")  # fixed / not_affected alone are not exposures

IdentityTuple = tuple[str | None, ...]  # the identity's values in FIELDS order
# (advisory id, CVE, _STATUS values, period giving affected_since, period giving patched_at)
Entry = tuple[str, str, tuple[Any, ...], int | None, int | None]
AssetKey = tuple[str, str]  # (site, asset id)


@dataclass
class Plan:
    """The statuses of one identity timeline: all, and those that are stored."""

    entries: list[Entry]
    stored: list[Entry]


@dataclass
class _Cache:
    """The matcher index of one database for one advisory generation, and what it derived."""

    generation: str
    advisories: dict[tuple[int, str], Advisory]  # by (advisories.id, sha256)
    index: AdvisoryIndex
    memo: dict[Identity, dict[tuple[str, str], Verdict]] = field(default_factory=dict)
    plans: dict[tuple[IdentityTuple, ...], Plan] = field(default_factory=dict)


_INDEX_CACHE: dict[str, _Cache] = {}


def refresh_patch_status(session: Session,
                         asset_ids: Iterable[AssetKey | str] | None = None,
                         now: datetime | None = None) -> int:
    """Re-derive the patch status of ``asset_ids`` (all when None); returns rows changed.

    Each is a ``(site, asset id)`` key; a bare asset id means that asset in every site.

    A no-op (returns 0 without reading observations) when no advisory is imported. Only
    assets whose identity changed, or that were last evaluated against another set of
    advisories, are matched again; the others only advance their observation cursor. Only
    status rows that differ from the stored ones are written.
    """
    generation = _generation(session)
    if generation is None:
        return 0
    with _gc_paused():
        return _refresh(session, generation, asset_ids, now or utcnow())


def _keys(session: Session, asset_ids: Iterable[AssetKey | str] | None) -> list[AssetKey]:
    """The (site, asset id) keys meant: all known when None, bare ids in every site."""
    if asset_ids is None:
        return sorted({tuple(r) for r in session.execute(  # type: ignore[misc]
            sa.select(ObservationRow.site, ObservationRow.asset_id).distinct())}
            | {tuple(r) for r in session.execute(
                sa.select(PatchAssetRow.site, PatchAssetRow.asset_id))})
    keys: set[AssetKey] = set()
    bare: set[str] = set()
    for item in asset_ids:
        if isinstance(item, str):
            bare.add(item)
        else:
            keys.add((item[0], item[1]))
    for part in _chunks(sorted(bare)):
        keys.update((site, asset) for site, asset in session.execute(
            sa.select(ObservationRow.site, ObservationRow.asset_id).distinct()
            .where(ObservationRow.asset_id.in_(part))))
    return sorted(keys)


def _key_in(model: Any, keys: list[AssetKey]) -> Any:
    return sa.tuple_(model.site, model.asset_id).in_(keys)


def _refresh(session: Session, generation: str, asset_ids: Iterable[AssetKey | str] | None,
             now: datetime) -> int:
    ids = _keys(session, asset_ids)
    changed = 0
    cache: _Cache | None = None
    for chunk in _chunks(ids):
        assets = _read_new_observations(session, chunk)
        due = sorted(a for a, row in assets.items()
                     if row["dirty"] or row["evaluated"] != generation)
        if due:
            cache = cache or _cached_index(session, generation)
            changed += _evaluate_assets(session, due, assets, cache, now)
        _save_assets(session, assets, generation)
    session.flush()
    return changed


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while many long-lived objects are being created.

    Building the index (~400,000 objects) and the rows of a refresh (~10 per status row)
    otherwise trigger full collections over a growing heap: 70 % of the index build, a sixth
    of the refresh. Reference counting still frees everything meanwhile; collection resumes
    afterwards if it was on (nested or concurrent uses leave it as they found it).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def advisory_index(session: Session) -> AdvisoryIndex | None:
    """The matcher index over the imported advisories (None when there are none).

    Cached per database and advisory generation, as ``refresh_patch_status`` uses it; calling
    it ahead (server start, right after an import) takes the build out of the first refresh.
    """
    generation = _generation(session)
    return None if generation is None else _cached_index(session, generation).index


# ---- advisory index (cached per database and advisory generation) -------------------------

def _generation(session: Session) -> str | None:
    """Identifies the imported advisories (changes with every import that changed something)."""
    gen = session.execute(sa.select(sa.func.count(AdvisoryRow.id), sa.func.max(AdvisoryRow.id),
                                    sa.func.max(AdvisoryRow.imported_at))).one()
    if not gen[0]:
        return None
    return f"{gen[0]}:{gen[1]}:{_aware(gen[2]).isoformat() if gen[2] else ''}"


def _cached_index(session: Session, generation: str) -> _Cache:
    """The index of this database for ``generation``; decodes only advisories not seen yet.

    An advisory row never changes (a new revision is a new row), and ``(id, sha256)`` also
    tells a row apart from another one that reused the id after a rollback.
    """
    key = str(session.get_bind().url)
    cached = _INDEX_CACHE.get(key)
    if cached is not None and cached.generation == generation:
        return cached
    known = cached.advisories if cached is not None else {}
    rows = session.execute(sa.select(AdvisoryRow.id, AdvisoryRow.sha256)
                           .order_by(AdvisoryRow.id)).all()
    with _gc_paused():
        missing = [row_id for row_id, sha in rows if (row_id, sha) not in known]
        loaded = _load_advisories(session, missing, everything=len(missing) == len(rows))
        advisories = {(row_id, sha): known[(row_id, sha)] if (row_id, sha) in known
                      else loaded[row_id] for row_id, sha in rows}
        cached = _Cache(generation, advisories, AdvisoryIndex(advisories.values()))
    _INDEX_CACHE[key] = cached
    return cached


def _load_advisories(session: Session, ids: list[int], everything: bool
                     ) -> dict[int, Advisory]:
    """The normal form of the advisories ``ids`` (re-normalised when it is outdated)."""
    out: dict[int, Advisory] = {}
    stale: list[int] = []
    for part in [None] if everything else _chunks(ids):
        query = sa.select(AdvisoryRow.id, AdvisoryRow.normal_form, AdvisoryRow.normal)
        if part is not None:
            query = query.where(AdvisoryRow.id.in_(part))
        for row_id, form, normal in session.execute(query):
            if form == NORMAL_FORM_VERSION:
                out[row_id] = Advisory.from_dict(normal)
            else:
                stale.append(row_id)
    for part in _chunks(stale):
        for row_id, document in session.execute(sa.select(
                AdvisoryRow.id, AdvisoryRow.document).where(AdvisoryRow.id.in_(part))):
            out[row_id] = normalise(json.loads(document))
    return out


def _match(cache: _Cache, identity: Identity) -> dict[tuple[str, str], Verdict]:
    found = cache.memo.get(identity)
    if found is None:
        found = {(v.advisory_id, v.cve): v for v in cache.index.match(identity)}
        if len(cache.memo) > _MEMO_MAX:
            cache.memo.clear()
        cache.memo[identity] = found
    return found


def _plan(cache: _Cache, shape: tuple[IdentityTuple, ...]) -> Plan:
    """Per advisory × CVE: the status of a timeline of these identities, without its dates.

    Many assets share a timeline (the same identities in the same order), so this runs once
    for all of them; each asset then only adds its zone and the start of the periods named.
    """
    plan = cache.plans.get(shape)
    if plan is None:
        seq = [_match(cache, Identity(**dict(zip(FIELDS, ident, strict=True))))
               for ident in shape]
        entries: list[Entry] = []
        for advisory_id, cve in sorted({k for verdicts in seq for k in verdicts}):
            derived = _derive([verdicts.get((advisory_id, cve)) for verdicts in seq])
            if derived is not None:
                status, since, patched = derived
                entries.append((advisory_id, cve, tuple(status[c] for c in _STATUS), since,
                                patched))
        plan = Plan(entries, [e for e in entries if e[2][_AT["state"]] in _STORED])
        if len(cache.plans) > _MEMO_MAX:
            cache.plans.clear()
        cache.plans[shape] = plan
    return plan


# ---- identity timeline ----------------------------------------------------------------------

_KEYS: dict[IdentityTuple, str] = {}


def identity_key(identity: dict[str, Any]) -> str:
    values = tuple(identity.get(k) for k in FIELDS)
    key = _KEYS.get(values)
    if key is None:
        blob = json.dumps(dict(zip(FIELDS, values, strict=True)), sort_keys=True)
        key = hashlib.sha256(blob.encode()).hexdigest()[:32]
        if len(_KEYS) > _MEMO_MAX:
            _KEYS.clear()
        _KEYS[values] = key
    return key


def _read_new_observations(session: Session, chunk: list[AssetKey]
                           ) -> dict[AssetKey, dict[str, Any]]:
    """Advance the identity timeline of ``chunk`` with the observations not read yet."""
    assets: dict[AssetKey, dict[str, Any]] = {}
    for row in session.connection().execute(sa.select(
            PatchAssetRow.site, PatchAssetRow.asset_id, PatchAssetRow.zone,
            PatchAssetRow.identity, PatchAssetRow.identity_key, PatchAssetRow.cursor,
            PatchAssetRow.observation_id, PatchAssetRow.evaluated)
            .where(_key_in(PatchAssetRow, chunk))).all():
        assets[(row.site, row.asset_id)] = {"zone": row.zone, "identity": row.identity,
                                "identity_key": row.identity_key, "cursor": row.cursor,
                                "observation_id": row.observation_id, "new": False,
                                "dirty": False, "touched": False, "evaluated": row.evaluated,
                                "periods": []}
    cols = [ObservationRow.payload[("facts", f"identity.{f}", "value")].as_string().label(f)
            for f in FIELDS]
    cols.append(ObservationRow.payload[("facts", "software.ics_products", "value")]
                .label("products"))
    # only observations after each asset's own cursor (the identity facts are extracted in
    # SQL, and only for those rows)
    query = (sa.select(ObservationRow.site, ObservationRow.asset_id, ObservationRow.zone,
                       ObservationRow.observation_id, ObservationRow.finished_at, *cols)
             .outerjoin(PatchAssetRow, sa.and_(PatchAssetRow.site == ObservationRow.site,
                                               PatchAssetRow.asset_id == ObservationRow.asset_id))
             .where(_key_in(ObservationRow, chunk),
                    sa.or_(PatchAssetRow.cursor.is_(None),
                           ObservationRow.finished_at > PatchAssetRow.cursor))
             .order_by(ObservationRow.site, ObservationRow.asset_id, ObservationRow.finished_at,
                       ObservationRow.observation_id))
    new_periods: list[dict[str, Any]] = []
    last_seen: dict[AssetKey, datetime] = {}
    shared: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
    for row in session.connection().execute(query).all():
        at = _aware(row.finished_at)
        key = (row.site, row.asset_id)
        asset = assets.get(key)
        if asset is not None and asset["cursor"] is not None and at <= _aware(asset["cursor"]):
            continue
        if asset is None:
            asset = assets[key] = {
                "zone": row.zone, "identity": {}, "identity_key": "", "cursor": None,
                "observation_id": None, "new": True, "dirty": False, "touched": True,
                "evaluated": None, "periods": []}
        asset["zone"], asset["cursor"], asset["touched"] = row.zone, at, True
        for comp_key, comp_fields in components(row.site, row.asset_id, row.products):
            comp = assets.get(comp_key) or _load_component(session, comp_key, row.zone)
            assets[comp_key] = comp
            if comp["cursor"] is not None and at <= _aware(comp["cursor"]):
                continue
            comp["zone"], comp["cursor"], comp["touched"] = row.zone, at, True
            _advance(comp, comp_key, comp_fields, at, row.observation_id, new_periods,
                     last_seen, shared)
        fields = {f: str(v).strip() for f, v in zip(FIELDS, row[5:5 + len(FIELDS)], strict=True)
                  if v not in (None, "")}
        if not fields:
            continue
        _advance(asset, key, {**asset["identity"], **fields}, at, row.observation_id,
                 new_periods, last_seen, shared)
    if last_seen:
        latest = {(site, asset): row_id for site, asset, row_id in session.execute(
            sa.select(PatchIdentityRow.site, PatchIdentityRow.asset_id,
                      sa.func.max(PatchIdentityRow.id))
            .where(_key_in(PatchIdentityRow, list(last_seen)))
            .group_by(PatchIdentityRow.site, PatchIdentityRow.asset_id)).all()}
        _update(session, PatchIdentityRow, "id", ("last_seen",), [
            (at, latest[a]) for a, at in last_seen.items() if a in latest])
    _insert(session, PatchIdentityRow, _PERIOD, [tuple(p[c] for c in _PERIOD)
                                                for p in new_periods])
    return assets


def _advance(asset: dict[str, Any], key: AssetKey, merged: dict[str, Any], at: datetime,
             observation_id: str, new_periods: list[dict[str, Any]],
             last_seen: dict[AssetKey, datetime],
             shared: dict[tuple[tuple[str, Any], ...], dict[str, Any]]) -> None:
    """One observation of ``asset`` with identity ``merged``: a new period when it changed."""
    merged = shared.setdefault(tuple(merged.items()), merged)  # JSON-encoded once
    ident = identity_key(merged)
    if ident != asset["identity_key"]:
        new_periods.append({"site": key[0], "asset_id": key[1], "identity_key": ident,
                            "identity": merged, "first_seen": at, "last_seen": at,
                            "observation_id": observation_id})
        asset.update(identity=merged, identity_key=ident, observation_id=observation_id,
                     dirty=True)
        asset["periods"].append((at, tuple(merged.get(f) for f in FIELDS)))
        asset["last_period"] = new_periods[-1]
        last_seen.pop(key, None)
    elif not asset["dirty"]:
        last_seen[key] = at  # same identity again: only the period's last_seen
    else:
        asset["last_period"]["last_seen"] = at


# ---- installed software: an identity of its own per product ---------------------------------

COMPONENT_SEP = "/"


def component_id(asset_id: str, product: str) -> str:
    """``hmi-w1/simatic-wincc``: the patch-status key of a product installed on a host
    (at most 64 characters; a long one ends in a digest so two never collide)."""
    slug = re.sub(r"[^a-z0-9]+", "-", product.lower()).strip("-") or "product"
    full = f"{asset_id}{COMPONENT_SEP}{slug}"
    if len(full) <= 64:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[:55]}-{digest}"


def components(site: str, asset_id: str, products: Any
               ) -> list[tuple[AssetKey, dict[str, str]]]:
    """The identities of the ICS products a host reported (``software.ics_products``),
    each under its own key, kept apart from the host's identity."""
    if isinstance(products, str):
        try:
            products = json.loads(products)
        except ValueError:
            return []
    out: list[tuple[AssetKey, dict[str, str]]] = []
    for item in products if isinstance(products, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("product"), str):
            continue
        fields = {"vendor": item.get("vendor"), "product": item["product"],
                  "firmware_version": item.get("version")}
        fields = {k: str(v).strip() for k, v in fields.items() if v not in (None, "")}
        out.append(((site, component_id(asset_id, item["product"])), fields))
    return out


def _load_component(session: Session, key: AssetKey, zone: str) -> dict[str, Any]:
    row = session.connection().execute(sa.select(
        PatchAssetRow.zone, PatchAssetRow.identity, PatchAssetRow.identity_key,
        PatchAssetRow.cursor, PatchAssetRow.observation_id, PatchAssetRow.evaluated)
        .where(PatchAssetRow.site == key[0], PatchAssetRow.asset_id == key[1])).first()
    if row is None:
        return {"zone": zone, "identity": {}, "identity_key": "", "cursor": None,
                "observation_id": None, "new": True, "dirty": False, "touched": True,
                "evaluated": None, "periods": []}
    return {"zone": row.zone, "identity": row.identity, "identity_key": row.identity_key,
            "cursor": row.cursor, "observation_id": row.observation_id, "new": False,
            "dirty": False, "touched": False, "evaluated": row.evaluated, "periods": []}


_PERIOD = ("site", "asset_id", "identity_key", "identity", "first_seen", "last_seen",
           "observation_id")
_ASSET = ("zone", "identity", "identity_key", "observation_id", "cursor", "evaluated")


def _save_assets(session: Session, assets: dict[AssetKey, dict[str, Any]],
                 generation: str) -> None:
    inserts, updates = [], []
    for key, a in assets.items():
        evaluated = generation if (a["dirty"] or a["evaluated"] != generation) else a["evaluated"]
        values = (a["zone"], a["identity"], a["identity_key"], a["observation_id"], a["cursor"],
                  evaluated)
        if a["new"]:
            inserts.append((*key, *values))
        elif a["touched"] or evaluated != a["evaluated"]:
            updates.append((*values, *key))
    _insert(session, PatchAssetRow, ("site", "asset_id", *_ASSET), inserts)
    _update(session, PatchAssetRow, ("site", "asset_id"), _ASSET, updates)


# ---- evaluation -----------------------------------------------------------------------------

_HISTORY = ("site", "asset_id", "advisory_id", "cve", "at", "state_from", "state_to",
            "installed_version", "fixed_in", "reason")


def _evaluate_assets(session: Session, asset_ids: list[AssetKey],
                     assets: dict[AssetKey, dict[str, Any]], cache: _Cache,
                     now: datetime) -> int:
    # the timeline of an asset seen for the first time is what was just read
    timelines = {a: assets[a]["periods"] for a in asset_ids if assets[a]["new"]}
    older = [a for a in asset_ids if a not in timelines]
    for site, asset_id, first_seen, identity in session.connection().execute(
            sa.select(PatchIdentityRow.site, PatchIdentityRow.asset_id,
                      PatchIdentityRow.first_seen, PatchIdentityRow.identity)
            .where(_key_in(PatchIdentityRow, older) if older else sa.false())
            .order_by(PatchIdentityRow.site, PatchIdentityRow.asset_id,
                      PatchIdentityRow.first_seen, PatchIdentityRow.id)).all():
        timelines.setdefault((site, asset_id), []).append(
            (_aware(first_seen), tuple(identity.get(f) for f in FIELDS)))
    # the stored rows, to write only what differs (dates parsed once per distinct value)
    existing: dict[tuple[str, str, str, str], tuple[int, tuple[Any, ...]]] = {}
    date = _date_reader(session)
    for row in session.connection().execute(sa.select(
            PatchStatusRow.id, PatchStatusRow.site, PatchStatusRow.asset_id,
            PatchStatusRow.advisory_id, PatchStatusRow.cve,
            *[getattr(PatchStatusRow, c) for c in _COLUMNS[:-2]],
            *[sa.type_coerce(getattr(PatchStatusRow, c), sa.String) for c in _COLUMNS[-2:]])
            .where(_key_in(PatchStatusRow, asset_ids))).all():
        existing[(row[1], row[2], row[3], row[4])] = (
            row[0], (*row[5:-2], date(row[-2]), date(row[-1])))
    with_rows = {key[:2] for key in existing}
    state_at, verdict_at = _AT["state"], _AT["verdict"]
    inserts, updates, deletes, history = [], [], [], []
    for asset_id in asset_ids:
        periods = timelines.get(asset_id)
        if not periods:
            continue
        plan = _plan(cache, tuple(ident for _, ident in periods))
        zone = assets[asset_id]["zone"]
        for advisory_id, cve, status, since, patched in (
                plan.entries if asset_id in with_rows else plan.stored):
            key = (*asset_id, advisory_id, cve)
            old = existing.pop(key, None)
            keep = status[state_at] in _STORED
            if old is None and not keep:
                continue  # fixed / not_affected and nothing stored: nothing to write
            values = (*status, zone, periods[since][0] if since is not None else None,
                      periods[patched][0] if patched is not None else None)
            if old is None:
                inserts.append((*key, now, now, *values))
                history.append(_change(key, None, values, now))
                continue
            row_id, stored = old
            if not keep:
                deletes.append(row_id)
                history.append(_change(key, stored[state_at], values, now))
            elif values != stored:
                if stored[state_at] != status[state_at] or \
                        stored[verdict_at] != status[verdict_at]:
                    history.append(_change(key, stored[state_at], values, now))
                updates.append((now, *values, row_id))
    for key, (row_id, stored) in existing.items():  # no verdict for these any more
        deletes.append(row_id)
        history.append((*key, now, stored[state_at], "removed",
                        stored[_AT["installed_version"]], None,
                        "the advisory no longer applies to this asset"))
    _insert(session, PatchStatusRow, ("site", "asset_id", "advisory_id", "cve", "first_seen",
                                      "updated_at", *_COLUMNS), inserts)
    _update(session, PatchStatusRow, "id", ("updated_at", *_COLUMNS), updates)
    for part in _chunks(deletes):
        session.execute(sa.delete(PatchStatusRow).where(PatchStatusRow.id.in_(part)))
    _insert(session, PatchHistoryRow, _HISTORY, history)
    return len(inserts) + len(updates) + len(deletes)


def _change(key: tuple[str, str, str, str], before: str | None, values: tuple[Any, ...],
            now: datetime) -> tuple[Any, ...]:
    """A ``patch_status_history`` row (``_HISTORY``) for a status that became ``values``."""
    return (*key, now, before, values[_AT["state"]], values[_AT["installed_version"]],
            values[_AT["fixed_in"]], values[_AT["reason"]])


def derive_status(seq: list[tuple[datetime, Verdict | None]]) -> dict[str, Any] | None:
    """State of one advisory × CVE from an asset's timeline of (period start, verdict)."""
    derived = _derive([v for _, v in seq])
    if derived is None:
        return None
    status, since, patched = derived
    return {**status, "affected_since": seq[since][0] if since is not None else None,
            "patched_at": seq[patched][0] if patched is not None else None}


def _derive(seq: list[Verdict | None]) -> tuple[dict[str, Any], int | None, int | None] | None:
    """``derive_status`` without dates: (status, period of affected_since, of patched_at)."""
    current = seq[-1]
    last = current or next((v for v in reversed(seq) if v is not None), None)
    if last is None:
        return None
    affected = [i for i, v in enumerate(seq) if v is not None and v.verdict == "affected"]
    since = patched = None
    if affected:
        end = affected[-1]
        start = end
        while start > 0 and seq[start - 1] is not None and \
                seq[start - 1].verdict == "affected":  # type: ignore[union-attr]
            start -= 1
        since = start
        if end < len(seq) - 1:
            patched = end + 1
    if current is not None and current.verdict == "affected":
        state = "open"
    elif patched is not None and (current is None or current.verdict in ("fixed",
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
        "cvss": last.cvss, "severity": last.severity,
    }, since, patched if state == "patched" else None


# ---- queries for the CLI and the report ------------------------------------------------------

def patch_status_rows(session: Session, zone: str | None = None, asset_id: str | None = None,
                      include: Iterable[str] | None = None, now: datetime | None = None,
                      site: str | None = None) -> list[dict[str, Any]]:
    """Current patch status rows (dicts), most urgent first, with ``days_open``.

    An ``open`` or ``needs_review`` row whose CVE is in CISA's Known Exploited Vulnerabilities
    catalogue is ``known_exploited`` (with the date CISA added it and its due date). Order:
    known exploited first, then by state (open, needs_review, patched), then CVSS, highest first.
    """
    from otaudit.server.advisories.kev import kev_entries

    now = now or utcnow()
    query = sa.select(PatchStatusRow)
    if site is not None:
        query = query.where(PatchStatusRow.site == site)
    if zone is not None:
        query = query.where(PatchStatusRow.zone == zone)
    if asset_id is not None:
        query = query.where(PatchStatusRow.asset_id == asset_id)
    if include is not None:
        query = query.where(PatchStatusRow.state.in_(list(include)))
    rows = []
    found = list(session.scalars(query))
    kev = kev_entries(session, [r.cve for r in found if r.state in _EXPOSED])
    for r in found:
        since = _aware(r.affected_since) if r.affected_since else None
        patched = _aware(r.patched_at) if r.patched_at else None
        days = None
        if since is not None:
            days = ((patched or now) - since).days
        exploited = kev.get(r.cve) if r.state in _EXPOSED else None
        rows.append({
            "site": r.site, "asset_id": r.asset_id, "zone": r.zone,
            "advisory_id": r.advisory_id, "cve": r.cve,
            "state": r.state, "verdict": r.verdict, "cvss": r.cvss, "severity": r.severity,
            "known_exploited": exploited is not None,
            "kev_date_added": exploited.date_added.isoformat() if exploited else None,
            "kev_due_date": exploited.due_date.isoformat()
            if exploited and exploited.due_date else None,
            "kev_ransomware": exploited.ransomware if exploited else None,
            "installed_version": r.installed_version, "fixed_in": r.fixed_in,
            "affected_since": since.isoformat() if since else None,
            "patched_at": patched.isoformat() if patched else None, "days_open": days,
            "remediation_category": r.remediation_category, "remediation": r.remediation,
            "product_id": r.product_id, "product_name": r.product_name,
            "expression": r.expression, "basis": r.basis, "reason": r.reason,
        })
    order = {"open": 0, "needs_review": 1, "patched": 2, "fixed": 3, "not_affected": 4}
    rows.sort(key=lambda x: (not x["known_exploited"], order.get(x["state"], 9),
                             -(x["cvss"] or 0), x["site"], x["asset_id"], x["advisory_id"],
                             x["cve"]))
    return rows


_EXPOSED = ("open", "needs_review")


def patch_status_by_asset(session: Session) -> dict[AssetKey, list[dict[str, Any]]]:
    """For the audit report: per (site, asset), the advisories that are open, to review or
    patched; those of an installed product (``<asset>/<product>``) are listed under their
    host with ``component`` naming the product and its installed version."""
    out: dict[AssetKey, list[dict[str, Any]]] = {}
    for row in patch_status_rows(session, include=("open", "needs_review", "patched")):
        host, sep, _ = row["asset_id"].partition(COMPONENT_SEP)
        prefix = ""
        if sep:  # asset ids never contain the separator (observation.IDENTIFIER)
            row["component_id"], row["asset_id"] = row["asset_id"], host
            row["component"] = row["component_id"][len(host) + 1:]
            prefix = (f"installed {row['component']} "
                      f"{row.get('installed_version') or ''}: ").replace(" :", ":")
        fix = f", fixed in {row['fixed_in']}" if row["fixed_in"] else ""
        since = f", since {row['affected_since'][:10]}" if row["affected_since"] else ""
        kev = (f", KNOWN EXPLOITED (CISA KEV since {row['kev_date_added']}, due "
               f"{row['kev_due_date']})" if row["known_exploited"] else "")
        row["status"] = row["state"]
        row["summary"] = f"{prefix}{row['cve']} (CVSS {row['cvss'] or '?'}){kev}{fix}{since}"
        out.setdefault((row["site"], row["asset_id"]), []).append(row)
    return out


def patch_history(session: Session, asset_id: str | None = None) -> list[dict[str, Any]]:
    query = sa.select(PatchHistoryRow).order_by(PatchHistoryRow.at, PatchHistoryRow.id)
    if asset_id is not None:
        query = query.where(PatchHistoryRow.asset_id == asset_id)
    return [{"site": h.site, "asset_id": h.asset_id, "advisory_id": h.advisory_id, "cve": h.cve,
             "at": _aware(h.at).isoformat(), "from": h.state_from, "to": h.state_to,
             "installed_version": h.installed_version, "fixed_in": h.fixed_in,
             "reason": h.reason} for h in session.scalars(query)]


# ---- helpers ----------------------------------------------------------------------------------

def _insert(session: Session, model: Any, columns: tuple[str, ...],
            rows: list[tuple[Any, ...]]) -> None:
    """INSERT ``rows`` (values of ``columns``) into ``model``'s table in one round trip.

    PostgreSQL (psycopg) gets ``COPY … FROM STDIN`` in the same transaction: its pipelined
    executemany spends ~30 µs of Python per row. The others get one executemany.
    """
    if not rows:
        return
    conn = session.connection()
    table = model.__table__
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        rows = _bound(conn.dialect, [table.c[c].type for c in columns], rows)
        prepare = conn.dialect.identifier_preparer
        sql = (f"COPY {prepare.format_table(table)} "
               f"({', '.join(prepare.quote(c) for c in columns)}) FROM STDIN")
        with conn.connection.driver_connection.cursor() as cursor, \
                cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
        return
    _execute_many(session, table.insert(), columns, columns, rows)


def _update(session: Session, model: Any, key: str | tuple[str, ...], columns: tuple[str, ...],
            rows: list[tuple[Any, ...]]) -> None:
    """UPDATE ``columns`` of ``model``'s table; ``rows`` are (*values, *values of ``key``)."""
    if rows:
        table = model.__table__
        keys = (key,) if isinstance(key, str) else key
        names = tuple(f"_key{i}" for i in range(len(keys)))
        stmt = table.update().where(*[table.c[k] == sa.bindparam(n)
                                      for k, n in zip(keys, names, strict=True)])
        _execute_many(session, stmt, columns, (*columns, *names), rows)


def _execute_many(session: Session, stmt: Any, columns: tuple[str, ...],
                  names: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """executemany of ``stmt`` with the dialect's SQL (casts included) and bind processors.

    ``rows`` hold the values of the bind parameters ``names``. The same SQL and values as
    ``connection.execute(stmt, [dict, ...])``, without SQLAlchemy's per-row parameter
    dictionaries and per-value type processing, which cost more than SQLite's own work on
    100,000 rows.
    """
    conn = session.connection()
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
    rows = _bound(dialect, [compiled.binds[n].type for n in names], rows)
    params: list[Any] = rows
    if not compiled.positional:
        params = [dict(zip(names, row, strict=True)) for row in rows]
    elif list(compiled.positiontup) != list(names):
        reorder = itemgetter(*[names.index(n) for n in compiled.positiontup])
        params = [reorder(row) for row in rows]
    conn.exec_driver_sql(compiled.string, params)


def _bound(dialect: Any, types: list[Any], rows: list[tuple[Any, ...]]
           ) -> list[tuple[Any, ...]]:
    """``rows`` with each value as the column type's bind processor makes it for ``dialect``.

    Column by column, each distinct object once (the same dates recur on many rows; the rows
    keep every object alive meanwhile, so ``id`` is a safe key).
    """
    convert = [(i, p) for i, t in enumerate(types)
               if (p := t.dialect_impl(dialect).bind_processor(dialect)) is not None]
    if not convert or not rows:
        return rows
    columns_of = list(zip(*rows, strict=True))
    for i, process in convert:
        column = columns_of[i]
        distinct = dict(zip(map(id, column), column, strict=True))
        done = {key: process(v) for key, v in distinct.items()}
        columns_of[i] = tuple(map(done.__getitem__, map(id, column)))
    return list(zip(*columns_of, strict=True))


def _date_reader(session: Session) -> Callable[[Any], datetime | None]:
    """Turns a stored date selected without its type (a string on SQLite) into an aware
    datetime, as the column type would, once per distinct value."""
    dialect = session.get_bind().dialect
    process = PatchStatusRow.affected_since.type.dialect_impl(dialect).result_processor(
        dialect, None)
    done: dict[Any, datetime | None] = {None: None}

    def read(value: Any) -> datetime | None:
        out = done.get(value)
        if out is None and value is not None:
            parsed = process(value) if process is not None and isinstance(value, str) \
                else value
            out = done[value] = _aware(parsed)
        return out

    return read


def _chunks(ids: list[Any]) -> list[list[Any]]:
    return [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
