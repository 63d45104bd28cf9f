"""Patch status per asset over time, on SQLite and PostgreSQL; ``otaudit patch status``."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

import otaudit.server.advisories.db  # noqa: F401  (tables on Base before init_db)
from otaudit.cli.main import app
from otaudit.observation import Observation
from otaudit.server import store
from otaudit.server.advisories.db import PatchAssetRow, PatchHistoryRow
from otaudit.server.advisories.importer import import_source
from otaudit.server.advisories.patch import (
    patch_history,
    patch_status_by_asset,
    patch_status_rows,
    refresh_patch_status,
)
from otaudit.server.db import init_db, make_engine, session_factory

from support.observations import T0, make_observation

FIXTURES = Path(__file__).parent.parent / "fixtures" / "csaf"
KEY = ("ICSA-21-152-01", "CVE-2020-15782")


def _s7_1200(asset: str, version: str, days: int, zone: str = "cell-1") -> Observation:
    return make_observation(asset, probe="s7", zone=zone, minutes=days * 24 * 60, facts={
        "identity.vendor": "Siemens", "identity.product": "SIMATIC S7-1200",
        "identity.model": "CPU 1214C DC/DC/DC", "identity.order_code": "6ES7 214-1AG40-0XB0",
        "identity.firmware_version": version})


def _ingest(sessions: Any, *observations: Observation) -> int:
    with sessions.begin() as session:
        for obs in observations:
            store.store_observation(session, obs, obs.finished_at)
        session.flush()
        last = max(o.finished_at for o in observations)
        return refresh_patch_status(session, {o.asset.id for o in observations},
                                    now=last + timedelta(minutes=1))


def _import(sessions: Any, source: Path = FIXTURES) -> Any:
    with sessions.begin() as session:
        return import_source(session, str(source), refresh=refresh_patch_status)


def _row(sessions: Any, asset: str = "plc-1") -> dict[str, Any]:
    with sessions() as session:
        rows = patch_status_rows(session, asset_id=asset, now=T0 + timedelta(days=30))
    return next(r for r in rows if (r["advisory_id"], r["cve"]) == KEY)


def test_affected_then_patched_over_time(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    sessions = session_factory(engine)
    _import(sessions)
    first, second = _s7_1200("plc-1", "V4.4.0", 0), _s7_1200("plc-1", "V4.5.0", 10)
    assert _ingest(sessions, first) > 0
    row = _row(sessions)
    assert (row["state"], row["verdict"], row["fixed_in"]) == ("open", "affected", "V4.5.0")
    assert row["affected_since"] == first.finished_at.isoformat()
    assert row["remediation_category"] == "vendor_fix" and row["cvss"] == 8.1
    assert row["days_open"] == 29 and "CSAFPID-0004" in row["reason"]
    assert _ingest(sessions, second) > 0
    row = _row(sessions)
    assert (row["state"], row["verdict"]) == ("patched", "fixed")
    assert row["affected_since"] == first.finished_at.isoformat()
    assert row["patched_at"] == second.finished_at.isoformat()
    assert row["days_open"] == 10 and row["fixed_in"] is None
    with sessions.begin() as session:
        assert refresh_patch_status(session, ["plc-1"]) == 0  # nothing new: nothing changes
        history = [h for h in patch_history(session, "plc-1")
                   if (h["advisory_id"], h["cve"]) == KEY]
    assert [(h["from"], h["to"]) for h in history] == [(None, "open"), ("open", "patched")]
    engine.dispose()


def test_advisories_imported_later_rebuild_the_history_without_a_new_poll(
        database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    sessions = session_factory(engine)
    first, second = _s7_1200("plc-1", "V4.4.0", 0), _s7_1200("plc-1", "V4.5.0", 10)
    still = _s7_1200("plc-2", "V4.4.0", 3, zone="cell-2")
    assert _ingest(sessions, first, still) == 0  # no advisories yet: a no-op
    assert _ingest(sessions, second) == 0
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(PatchAssetRow)) == 0
    report = _import(sessions)
    assert report.patch_rows_changed > 0
    row = _row(sessions)
    assert row["state"] == "patched"
    assert row["affected_since"] == first.finished_at.isoformat()
    assert row["patched_at"] == second.finished_at.isoformat()
    other = _row(sessions, "plc-2")
    assert other["state"] == "open" and other["zone"] == "cell-2"
    assert other["affected_since"] == still.finished_at.isoformat()
    with sessions() as session:
        by_asset = patch_status_by_asset(session)
        assert session.scalar(sa.select(sa.func.count()).select_from(PatchHistoryRow)) > 0
    assert any(a["advisory_id"] == KEY[0] and a["status"] == "open" and "V4.5.0" in a["summary"]
               for a in by_asset[("plant-a", "plc-2")])
    engine.dispose()


def test_downgrade_reopens_with_a_new_affected_since(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    init_db(engine)
    sessions = session_factory(engine)
    _import(sessions)
    _ingest(sessions, _s7_1200("plc-1", "V4.4.0", 0))
    _ingest(sessions, _s7_1200("plc-1", "V4.5.0", 5))
    back = _s7_1200("plc-1", "V4.2.0", 8)
    _ingest(sessions, back)
    row = _row(sessions)
    assert row["state"] == "open" and row["affected_since"] == back.finished_at.isoformat()
    engine.dispose()


def test_cli_patch_status_formats_and_zone_filter(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    init_db(engine)
    sessions = session_factory(engine)
    _import(sessions)
    _ingest(sessions, _s7_1200("plc-1", "V4.4.0", 0), _s7_1200("plc-2", "V4.4.0", 0, "cell-2"))
    engine.dispose()
    runner = CliRunner()
    out = runner.invoke(app, ["patch", "status", "--db", sqlite_url, "--format", "json",
                              "--zone", "cell-2"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert rows and {r["asset_id"] for r in rows} == {"plc-2"}
    assert any((r["advisory_id"], r["cve"], r["state"]) == (*KEY, "open") for r in rows)
    out = runner.invoke(app, ["patch", "status", "--db", sqlite_url, "--format", "csv"])
    assert out.exit_code == 0, out.output
    parsed = list(csv.DictReader(io.StringIO(out.output)))
    assert {r["asset_id"] for r in parsed} == {"plc-1", "plc-2"}
    assert {"affected_since", "days_open", "fixed_in", "remediation", "cvss"} <= set(parsed[0])
    out = runner.invoke(app, ["patch", "status", "--db", sqlite_url])
    assert out.exit_code == 0 and "ICSA-21-152-01" in out.output and "open" in out.output
