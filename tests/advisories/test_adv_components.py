"""Installed ICS products of a host get their own patch status, apart from the host's
identity (SQLite and PostgreSQL): a Windows station affected through its WinCC."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import otaudit.server.advisories.db  # noqa: F401  (tables on Base before init_db)
from otaudit.observation import AssetKind, Observation
from otaudit.server import store
from otaudit.server.advisories.importer import import_source
from otaudit.server.advisories.patch import (
    component_id,
    components,
    patch_status_rows,
    refresh_patch_status,
)
from otaudit.server.db import init_db, make_engine, session_factory
from otaudit.simulators.plant import DEMO_ADVISORIES

from support.observations import T0, make_observation

WINCC_ADVISORY = DEMO_ADVISORIES / "icsa-22-132-06.json"


def _station(version: str | None, days: int, asset: str = "hmi-w1") -> Observation:
    facts: dict[str, Any] = {"identity.vendor": "Microsoft",
                             "identity.os": "Windows 10 Enterprise 2016 LTSB 1607"}
    if version is not None:
        facts["software.ics_products"] = [
            {"vendor": "Siemens", "product": "SIMATIC WinCC", "version": version,
             "display_name": f"SIMATIC WinCC {version}"}]
    return make_observation(asset, probe="ssh", kind=AssetKind.HMI, zone="control",
                            minutes=days * 24 * 60, facts=facts)


def _ingest(sessions: Any, obs: Observation) -> int:
    with sessions.begin() as session:
        store.store_observation(session, obs, obs.finished_at)
        session.flush()
        return refresh_patch_status(session, {obs.asset.id},
                                    now=obs.finished_at + timedelta(minutes=1))


def _rows(sessions: Any, asset: str) -> list[dict[str, Any]]:
    with sessions() as session:
        return patch_status_rows(session, asset_id=asset, now=T0 + timedelta(days=60))


def test_component_keys() -> None:
    assert component_id("hmi-w1", "SIMATIC WinCC") == "hmi-w1/simatic-wincc"
    long = component_id("a" * 60, "SIMATIC WinCC Runtime Professional")
    assert len(long) == 64 and long != component_id("a" * 60, "SIMATIC WinCC Runtime Advanced")
    assert components("s", "h", '[{"vendor": "Siemens", "product": "X", "version": "V1"}]') == [
        (("s", "h/x"), {"vendor": "Siemens", "product": "X", "firmware_version": "V1"})]
    assert components("s", "h", None) == components("s", "h", "not json") == []
    assert components("s", "h", [{"vendor": "Siemens"}, "x", 3]) == []


def test_wincc_is_affected_apart_from_the_os_then_patched(database_url: str,
                                                          tmp_path: Path) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        import_source(session, str(WINCC_ADVISORY), refresh=refresh_patch_status)
    assert _ingest(sessions, _station("V7.4 SP1", 0)) > 0
    assert _rows(sessions, "hmi-w1") == []  # the operating system is affected by nothing
    rows = _rows(sessions, "hmi-w1/simatic-wincc")
    assert rows and {r["state"] for r in rows} == {"open"}
    assert {r["advisory_id"] for r in rows} == {"ICSA-22-132-06"}
    assert all(r["installed_version"] == "V7.4 SP1" for r in rows)
    assert all("V7.4 and earlier" in r["product_name"] and r["reason"] for r in rows)
    assert all(r["zone"] == "control" for r in rows)
    # the same identity again changes nothing; an upgrade patches it
    assert _ingest(sessions, _station("V7.4 SP1", 5)) == 0
    assert _ingest(sessions, _station("V7.5 SP2 Update 16", 10)) > 0
    rows = _rows(sessions, "hmi-w1/simatic-wincc")
    assert rows and {r["state"] for r in rows} == {"patched"}
    assert all(r["patched_at"] == (T0 + timedelta(days=10, seconds=1)).isoformat()
               for r in rows)


def test_advisories_imported_after_the_observations(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    sessions = session_factory(engine)
    _ingest(sessions, _station("V7.4 SP1", 0, asset="hmi-w2"))
    with sessions.begin() as session:
        import_source(session, str(WINCC_ADVISORY), refresh=refresh_patch_status)
    rows = _rows(sessions, "hmi-w2/simatic-wincc")
    assert rows and {r["state"] for r in rows} == {"open"}
