"""The patch-status refresh writes only what changed, and its index cache follows imports."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import otaudit.server.advisories.db  # noqa: F401  (tables on Base before init_db)
from otaudit.observation import Observation
from otaudit.server import store
from otaudit.server.advisories.db import PatchAssetRow, PatchHistoryRow, PatchStatusRow
from otaudit.server.advisories.importer import import_source
from otaudit.server.advisories.patch import advisory_index, refresh_patch_status
from otaudit.server.db import init_db, make_engine, session_factory

from support.observations import T0, make_observation

FIXTURES = Path(__file__).parent.parent / "fixtures" / "csaf"
KEY = ("ICSA-21-152-01", "CVE-2020-15782")


def _s7_1200(asset: str, version: str, days: int, zone: str = "cell-1") -> Observation:
    return make_observation(asset, probe="s7", zone=zone, minutes=days * 24 * 60, facts={
        "identity.vendor": "Siemens", "identity.product": "SIMATIC S7-1200",
        "identity.model": "CPU 1214C DC/DC/DC", "identity.order_code": "6ES7 214-1AG40-0XB0",
        "identity.firmware_version": version})


def _controllogix(asset: str, version: str, days: int) -> Observation:
    """Affected by one advisory, to review for another, not affected by a third."""
    return make_observation(asset, probe="cip", minutes=days * 24 * 60, facts={
        "identity.vendor": "Rockwell Automation", "identity.product": "ControlLogix 5580",
        "identity.model": "1756-L85E", "identity.firmware_version": version})


def _store(sessions: Any, *observations: Observation) -> None:
    with sessions.begin() as session:
        for obs in observations:
            store.store_observation(session, obs, obs.finished_at)


def _refresh(sessions: Any, days: int, asset_ids: list[str] | None = None) -> int:
    with sessions.begin() as session:
        return refresh_patch_status(session, asset_ids, now=T0 + timedelta(days=days))


def _snapshot(sessions: Any) -> tuple[dict[tuple[str, str, str], tuple[Any, ...]], list[Any],
                                      list[tuple[Any, ...]]]:
    """Every status row by key (id and updated_at included), the history, the assets."""
    with sessions() as session:
        status = {(r.asset_id, r.advisory_id, r.cve): tuple(r)
                  for r in session.execute(sa.select(PatchStatusRow.__table__))}
        history = [tuple(r) for r in session.execute(
            sa.select(PatchHistoryRow.__table__).order_by(PatchHistoryRow.id))]
        assets = [tuple(r) for r in session.execute(
            sa.select(PatchAssetRow.__table__).order_by(PatchAssetRow.asset_id))]
    return status, history, assets


def _writes(engine: sa.Engine) -> list[str]:
    """Collects the INSERT/UPDATE/DELETE statements sent through ``engine``."""
    seen: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE", "COPY"):
            seen.append(statement)

    return seen


def test_refresh_writes_only_the_rows_that_changed(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    sessions = session_factory(engine)
    unrelated = "icsa-22-207-04.json"  # MOXA NPort 5110: nothing to do with an S7-1200
    first, later = tmp_path / "first", tmp_path / "later"
    for folder in (first, later):
        folder.mkdir()
    for path in FIXTURES.glob("*.json"):
        shutil.copy(path, later if path.name == unrelated else first)
    with sessions.begin() as session:
        import_source(session, str(first))
    _store(sessions, _s7_1200("plc-1", "V4.4.0", 0), _s7_1200("plc-2", "V4.4.0", 0, "cell-2"),
           _s7_1200("plc-3", "V4.5.0", 0), _controllogix("plc-4", "28.011", 0))
    assert _refresh(sessions, 1) > 0
    status, history, assets = _snapshot(sessions)
    assert {k[0] for k in status} == {"plc-1", "plc-2", "plc-4"}  # plc-3 runs a fixed one
    writes = _writes(engine)

    assert _refresh(sessions, 2) == 0  # nothing new: not a single row written
    assert writes == []
    assert _snapshot(sessions) == (status, history, assets)

    # another advisory: every asset is matched again, and no status row is rewritten
    with sessions.begin() as session:
        report = import_source(session, str(later), refresh=refresh_patch_status)
    assert report.imported == 1 and report.patch_rows_changed == 0
    assert not [w for w in writes if "patch_status" in w]
    new_status, new_history, new_assets = _snapshot(sessions)
    assert (new_status, new_history) == (status, history)
    assert [a[:-1] for a in new_assets] == [a[:-1] for a in assets]  # only `evaluated` moved
    assert all(a[-1] != b[-1] for a, b in zip(new_assets, assets, strict=True))

    _store(sessions, _s7_1200("plc-2", "V4.5.0", 3, "cell-2"))
    changed = _refresh(sessions, 4)
    status, history, assets = new_status, new_history, new_assets
    new_status, new_history, new_assets = _snapshot(sessions)
    differing = {k for k in status.keys() | new_status.keys()
                 if status.get(k) != new_status.get(k)}
    assert differing and {k[0] for k in differing} == {"plc-2"}
    assert changed == len(differing)
    assert new_status[("plc-2", *KEY)][0] == status[("plc-2", *KEY)][0]  # updated in place
    assert {h[2] for h in new_history[len(history):]} == {"plc-2"}  # (id, site, asset_id, ...)
    assert new_history[:len(history)] == history
    assert [a for a in new_assets if a[1] != "plc-2"] == [a for a in assets if a[1] != "plc-2"]
    with sessions() as session:  # fixed / not_affected alone are not stored
        states = set(session.scalars(sa.select(PatchStatusRow.state).distinct()))
    assert states <= {"open", "needs_review", "patched"} and "patched" in states
    engine.dispose()


def _revised(document: dict[str, Any], score: float) -> dict[str, Any]:
    tracking = document["document"]["tracking"]
    tracking["version"] = str(int(tracking["version"]) + 1)
    tracking["current_release_date"] = "2024-01-01T00:00:00Z"
    tracking["revision_history"].append({"date": "2024-01-01T00:00:00Z",
                                         "number": tracking["version"], "summary": "rescored"})
    for vulnerability in document["vulnerabilities"]:
        for scores in vulnerability.get("scores", []):
            scores["cvss_v3"]["baseScore"] = score
    return document


def test_index_cache_follows_imports_and_reuses_unchanged_advisories(
        database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    sessions = session_factory(engine)
    first, later, revised = tmp_path / "first", tmp_path / "later", tmp_path / "revised"
    for folder in (first, later, revised):
        folder.mkdir()
    for path in FIXTURES.glob("*.json"):
        shutil.copy(path, later if path.name == "icsa-21-152-01.json" else first)
    document = json.loads((FIXTURES / "icsa-21-152-01.json").read_text())
    (revised / "icsa-21-152-01.json").write_text(json.dumps(_revised(document, 9.8)))

    def import_and_refresh(folder: Path) -> int:
        with sessions.begin() as session:
            report = import_source(session, str(folder), refresh=refresh_patch_status)
            return report.imported + report.replaced

    def cvss() -> float | None:
        with sessions() as session:
            return session.scalar(sa.select(PatchStatusRow.cvss).where(
                PatchStatusRow.asset_id == "plc-1", PatchStatusRow.advisory_id == KEY[0],
                PatchStatusRow.cve == KEY[1]))

    def cached() -> dict[str, Any]:
        with sessions() as session:
            index = advisory_index(session)
        assert index is not None
        return {a.tracking_id: a for a in index.advisories}

    assert import_and_refresh(first) == 20
    _store(sessions, _s7_1200("plc-1", "V4.4.0", 0))
    _refresh(sessions, 1)
    before = cached()
    assert KEY[0] not in before and cvss() is None
    assert import_and_refresh(later) == 1  # a new advisory: the asset is re-evaluated
    assert cvss() == 8.1
    after = cached()
    assert len(after) == 21
    assert all(after[t] is a for t, a in before.items())  # not decoded again
    assert import_and_refresh(revised) == 1  # a new revision replaces the cached one
    assert cvss() == 9.8
    assert cached()[KEY[0]] is not after[KEY[0]]
    engine.dispose()
