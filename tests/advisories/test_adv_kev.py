"""CISA KEV catalogue: import (file, URL), validation, and patch status listing KEV items first."""

from __future__ import annotations

import http.server
import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import otaudit.server.advisories.db  # noqa: F401  (tables on Base before init_db)
from otaudit.cli.main import app
from otaudit.errors import ExitCode
from otaudit.server import store
from otaudit.server.advisories.db import KevCatalogRow, KevEntryRow
from otaudit.server.advisories.importer import import_source
from otaudit.server.advisories.kev import KevError, parse_catalog, update_kev
from otaudit.server.advisories.patch import (
    patch_status_by_asset,
    patch_status_rows,
    refresh_patch_status,
)
from otaudit.server.db import init_db, make_engine, session_factory

from support.observations import T0, make_observation

FIXTURES = Path(__file__).parent.parent / "fixtures" / "csaf"
EXPLOITED = "CVE-2019-6819"  # Modicon M340, CVSS 7.5: below the S7-1200's CVE-2020-15782 (8.1)


def _catalogue(cves: dict[str, tuple[str, str]], version: str = "2026.12.01") -> dict[str, Any]:
    return {
        "title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": version,
        "dateReleased": "2026-12-01T12:00:00.000Z", "count": len(cves),
        "vulnerabilities": [{
            "cveID": cve, "vendorProject": "Schneider Electric", "product": "Modicon",
            "vulnerabilityName": "test entry", "dateAdded": added,
            "shortDescription": "x", "requiredAction": "Apply updates per vendor instructions.",
            "dueDate": due, "knownRansomwareCampaignUse": "Unknown", "notes": "", "cwes": []}
            for cve, (added, due) in cves.items()]}


def _plant(database_url: str) -> Any:
    """Two assets with open advisories: an S7-1200 (CVSS 8.1) and a Modicon M340 (CVSS 7.5)."""
    engine = make_engine(database_url)
    init_db(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        import_source(session, str(FIXTURES))
        obs = [
            make_observation("plc-s7", probe="s7", facts={
                "identity.vendor": "Siemens", "identity.product": "SIMATIC S7-1200",
                "identity.model": "CPU 1214C DC/DC/DC",
                "identity.order_code": "6ES7 214-1AG40-0XB0",
                "identity.firmware_version": "V4.4.0"}),
            make_observation("plc-m340", facts={
                "identity.vendor": "Schneider Electric", "identity.product": "Modicon M340",
                "identity.model": "BMX P34 2020", "identity.firmware_version": "SV3.00"})]
        for o in obs:
            store.store_observation(session, o, o.finished_at)
        session.flush()
        refresh_patch_status(session, now=T0 + timedelta(minutes=5))
    return engine, sessions


def test_the_cc0_snapshot_parses(shared_dir: Path) -> None:
    data = (shared_dir / "advisories" / "kev" / "known_exploited_vulnerabilities.json").read_bytes()
    meta, entries = parse_catalog(data)
    by_cve = {e.cve: e for e in entries}
    assert meta["version"] == "2025.08.25" and len(entries) == 1404
    ios_xe = by_cve["CVE-2023-20198"]  # Cisco IOS XE web UI, also in ICSA-23-297-01 (Stratix)
    assert str(ios_xe.date_added) == "2023-10-16" and ios_xe.due_date is not None


@pytest.mark.parametrize(("change", "reason"), [
    (lambda c: c.pop("catalogVersion"), '"catalogVersion" is a required property'),
    (lambda c: c["vulnerabilities"][0].__setitem__("cveID", "CVE-19-1"),
     "vulnerabilities[0].cveID"),
    (lambda c: c["vulnerabilities"][0].__setitem__("dateAdded", "yesterday"),
     "vulnerabilities[0].dateAdded"),
])
def test_a_bad_catalogue_is_refused_and_the_stored_one_kept(
        change: Any, reason: str, sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    init_db(engine)
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(_catalogue({EXPLOITED: ("2024-01-02", "2024-01-23")})))
    broken = _catalogue({"CVE-2020-15782": ("2024-01-02", "2024-01-23")})
    change(broken)
    bad.write_text(json.dumps(broken))
    with session_factory(engine).begin() as session:
        update_kev(session, str(good))
    with pytest.raises(KevError) as err, session_factory(engine).begin() as session:
        update_kev(session, str(bad))
    assert any(reason in r for r in err.value.reasons), err.value.reasons
    with session_factory(engine)() as session:
        assert list(session.scalars(sa.select(KevEntryRow.cve))) == [EXPLOITED]
    engine.dispose()


def test_patch_status_lists_known_exploited_first_then_cvss(database_url: str,
                                                            tmp_path: Path) -> None:
    engine, sessions = _plant(database_url)
    with sessions() as session:
        before = [(r["asset_id"], r["cve"]) for r in patch_status_rows(session)
                  if r["state"] == "open"]
    assert before[0] == ("plc-s7", "CVE-2020-15782")  # CVSS 8.1 before 7.5
    catalogue = tmp_path / "kev.json"
    catalogue.write_text(json.dumps(_catalogue({EXPLOITED: ("2024-01-02", "2024-01-23")})))
    with sessions.begin() as session:
        report = update_kev(session, str(catalogue))
    assert (report.entries, report.added) == (1, [EXPLOITED])
    with sessions() as session:
        rows = patch_status_rows(session)
        by_asset = patch_status_by_asset(session)
    first = rows[0]
    assert (first["asset_id"], first["cve"], first["known_exploited"]) == (
        "plc-m340", EXPLOITED, True)
    assert (first["kev_date_added"], first["kev_due_date"]) == ("2024-01-02", "2024-01-23")
    assert not any(r["known_exploited"] for r in rows[1:])
    assert "KNOWN EXPLOITED (CISA KEV since 2024-01-02, due 2024-01-23)" in \
        by_asset[(first["site"], "plc-m340")][0]["summary"]
    engine.dispose()


class _Server(http.server.ThreadingHTTPServer):
    body: bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args: Any) -> None:
        pass


def test_cli_kev_update_from_url_then_patch_status(database_url: str, tmp_path: Path) -> None:
    engine, _ = _plant(database_url)
    engine.dispose()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.body = json.dumps(_catalogue({EXPLOITED: ("2024-01-02", "2024-01-23"),
                                         "CVE-2023-20198": ("2023-10-16", "2023-10-20")})).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    runner = CliRunner()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/kev.json"
        result = runner.invoke(app, ["advisories", "kev", "update", "--url", url,
                                     "--db", database_url, "--json"])
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["entries"] == 2 and report["open_items_known_exploited"] == 1
    table = runner.invoke(app, ["patch", "status", "--db", database_url])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert "kev_due_date" in lines[0]
    assert lines[1].split()[:5] == ["plant-a", "plc-m340", "cell-1", "open", "2024-01-23"]
    listed = json.loads(runner.invoke(app, ["patch", "status", "--db", database_url,
                                            "--format", "json"]).output)
    assert [r["known_exploited"] for r in listed[:2]] == [True, False]
    engine = make_engine(database_url)
    with session_factory(engine)() as session:
        assert session.scalars(sa.select(KevCatalogRow.source)).one() == url
    engine.dispose()


def test_cli_kev_update_rejects_two_sources_and_a_bad_file(tmp_path: Path,
                                                           sqlite_url: str) -> None:
    runner = CliRunner()
    both = runner.invoke(app, ["advisories", "kev", "update", "--file", "a.json", "--url",
                               "http://127.0.0.1:9/kev.json", "--db", sqlite_url])
    assert both.exit_code == ExitCode.BAD_INPUT and "give one source" in both.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"catalogVersion": "1"}')
    result = runner.invoke(app, ["advisories", "kev", "update", "--file", str(bad),
                                 "--db", sqlite_url])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "KEV schema: (catalogue): " in result.output
