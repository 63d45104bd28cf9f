"""Import: validation with reasons, revisions, savepoints, whole-corpus robustness, CLI."""

from __future__ import annotations

import copy
import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import otaudit.server.advisories.db  # noqa: F401  (tables on Base before init_db)
from otaudit.cli.main import app
from otaudit.errors import ExitCode
from otaudit.server.advisories import importer as importer_mod
from otaudit.server.advisories.db import (
    AdvisoryCveRow,
    AdvisoryProductRow,
    AdvisoryRow,
    ImportRejectionRow,
    ImportRunRow,
)
from otaudit.server.advisories.importer import import_source, load_index
from otaudit.server.db import init_db, make_engine, session_factory

FIXTURES = Path(__file__).parent.parent / "fixtures" / "csaf"
GOOD = "icsa-21-152-01.json"


def _doc(name: str = GOOD) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def _write(folder: Path, name: str, doc: Any) -> Path:
    path = folder / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _broken_docs() -> dict[str, Any]:
    no_id = _doc()
    del no_id["document"]["tracking"]["id"]
    wrong_version = _doc()
    wrong_version["document"]["csaf_version"] = "1.2"
    bad_branch = _doc()
    bad_branch["product_tree"]["branches"][0]["category"] = "vendors"
    bad_cve = _doc()
    bad_cve["vulnerabilities"][0]["cve"] = "CVE-20-1"
    no_history = _doc()
    no_history["document"]["tracking"]["revision_history"] = []
    return {"a-not-json.json": "{not json", "b-no-id.json": no_id,
            "c-csaf-1.2.json": wrong_version, "d-branch.json": bad_branch,
            "e-cve.json": bad_cve, "f-history.json": no_history, "g-list.json": [1, 2]}


@pytest.fixture
def sessions(sqlite_url: str) -> Any:
    engine = make_engine(sqlite_url)
    init_db(engine)
    yield session_factory(engine)
    engine.dispose()


def test_each_rejected_document_has_a_clear_reason_and_the_rest_import(
        tmp_path: Path, sessions: Any) -> None:
    for name, doc in _broken_docs().items():
        _write(tmp_path, name, doc)
    for name in ("icsa-19-183-01.json", GOOD):
        _write(tmp_path, name, _doc(name))
    with sessions.begin() as session:
        report = import_source(session, str(tmp_path))
    reasons = dict(report.rejected)
    assert report.imported == 2 and len(reasons) == 7
    assert reasons["a-not-json.json"].startswith("invalid JSON")
    assert "document.tracking.id" in reasons["b-no-id.json"]
    assert "csaf_version is '1.2'" in reasons["c-csaf-1.2.json"]
    assert "'vendors' is not a branch category" in reasons["d-branch.json"]
    assert "'CVE-20-1' is not a CVE id" in reasons["e-cve.json"]
    assert "revision_history must be a non-empty array" in reasons["f-history.json"]
    assert "not a JSON object" in reasons["g-list.json"]
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AdvisoryRow)) == 2
        assert session.scalar(sa.select(sa.func.count()).select_from(ImportRejectionRow)) == 7
        run = session.scalars(sa.select(ImportRunRow)).one()
        assert (run.imported, run.rejected) == (2, 7)
        assert run.quality.get("bare_comparator", 0) >= 1
        cves = set(session.scalars(sa.select(AdvisoryCveRow.cve)))
        assert {"CVE-2020-15782", "CVE-2019-6819"} <= cves


def test_newer_revision_replaces_older_and_older_is_stale(tmp_path: Path, sessions: Any) -> None:
    v2 = _doc()
    v3 = copy.deepcopy(v2)
    v3["document"]["tracking"]["version"] = "3"
    v3["document"]["tracking"]["current_release_date"] = "2022-01-01T00:00:00Z"
    v3["product_tree"]["branches"][0]["branches"][3]["branches"][0]["name"] = "< V4.6.0"
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    _write(old, GOOD, v2)
    _write(new, GOOD, v3)
    with sessions.begin() as session:
        assert import_source(session, str(old)).imported == 1
    with sessions.begin() as session:
        assert import_source(session, str(new)).replaced == 1
    with sessions.begin() as session:
        assert import_source(session, str(old)).stale == 1
    with sessions.begin() as session:
        assert import_source(session, str(new)).unchanged == 1
    with sessions() as session:
        row = session.scalars(sa.select(AdvisoryRow)).one()
        assert row.version == "3"
        assert json.loads(row.document)["document"]["tracking"]["version"] == "3"
        expressions = set(session.scalars(sa.select(AdvisoryProductRow.expression)))
        assert "< V4.6.0" in expressions and "< V4.5.0" not in expressions
        assert session.scalar(sa.select(sa.func.count()).select_from(AdvisoryProductRow)) == 7


def test_a_document_failing_while_stored_is_rolled_back_alone(
        tmp_path: Path, sessions: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("icsa-19-183-01.json", GOOD, "icsa-22-207-04.json"):
        _write(tmp_path, name, _doc(name))
    real = importer_mod._store

    def failing(session: Any, run: Any, item: Any, old: Any, now: Any) -> str:
        if item.advisory.tracking_id == "ICSA-21-152-01":
            session.add(AdvisoryRow(
                tracking_id="HALF-WRITTEN", version="1", title="x", publisher="x",
                status="final", initial_release_date=now, current_release_date=now, source="x",
                sha256="x", imported_at=now, normal_form=1, normal={}, document="{}"))
            session.flush()
            raise RuntimeError("disk full")
        return real(session, run, item, old, now)

    monkeypatch.setattr(importer_mod, "_store", failing)
    with sessions.begin() as session:
        report = import_source(session, str(tmp_path))
    assert report.imported == 2
    assert report.rejected == [(GOOD, "storing failed: RuntimeError: disk full")]
    with sessions() as session:
        ids = set(session.scalars(sa.select(AdvisoryRow.tracking_id)))
    assert ids == {"ICSA-19-183-01", "ICSA-22-207-04"}


def test_sha512_sidecar_in_a_folder_is_checked(tmp_path: Path) -> None:
    good, bad = _doc(GOOD), _doc("icsa-19-183-01.json")
    path = _write(tmp_path, GOOD, good)
    (tmp_path / f"{GOOD}.sha512").write_text(
        hashlib.sha512(path.read_bytes()).hexdigest() + f"  {GOOD}\n")
    _write(tmp_path, "icsa-19-183-01.json", bad)
    (tmp_path / "icsa-19-183-01.json.sha512").write_text("00" * 64 + "  icsa-19-183-01.json\n")
    index, report = load_index(str(tmp_path))
    assert len(index) == 1
    assert report.rejected[0][0] == "icsa-19-183-01.json"
    assert report.rejected[0][1].startswith("sha512 mismatch")


@pytest.mark.slow
def test_whole_corpus_imports_or_is_rejected_with_a_reason(shared_dir: Path, sqlite_url: str
                                                           ) -> None:
    archive = shared_dir / "advisories" / "corpus" / "cisa-ot-csaf.tar.gz"
    with tarfile.open(archive) as tar:
        names = {m.name for m in tar.getmembers() if m.name.endswith(".json")}
    engine = make_engine(sqlite_url)
    init_db(engine)
    with session_factory(engine).begin() as session:  # its time: bench/advisories.py
        report = import_source(session, str(archive))
    assert report.documents == len(names) == 2350
    assert report.imported + report.replaced + report.stale + report.unchanged + len(
        report.rejected) == report.documents
    assert all(reason for _, reason in report.rejected)
    assert not [r for _, r in report.rejected if r.startswith("normalisation failed")]
    assert report.quality["invalid_vers"] > 1000 and report.quality["unparsed"] > 0
    with session_factory(engine)() as session:
        stored = session.scalar(sa.select(sa.func.count()).select_from(AdvisoryRow))
    assert stored == report.imported
    engine.dispose()


def test_cli_import_and_match_json(tmp_path: Path, sqlite_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["advisories", "import", str(FIXTURES), "--db", sqlite_url])
    assert result.exit_code == 0, result.output
    assert f"imported {len(list(FIXTURES.glob('*.json')))}" in result.output
    assert "data-quality problems worked around" in result.output
    args = ["advisories", "match", "--vendor", "Siemens", "--product", "SIMATIC S7-1200",
            "--model", "6ES7 214-1AG40-0XB0", "--version", "V4.4.0", "--format", "json"]
    from_db = runner.invoke(app, [*args, "--db", sqlite_url])
    in_memory = runner.invoke(app, [*args, "--advisories", str(FIXTURES)])
    for result in (from_db, in_memory):
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        found = {(v["advisory_id"], v["cve"]): v for v in data["verdicts"]}
        hit = found[("ICSA-21-152-01", "CVE-2020-15782")]
        assert hit["verdict"] == "affected" and hit["fixed_in"] == "V4.5.0"
        assert "CSAFPID-0004" in hit["reason"] and "< V4.5.0" in hit["reason"]
    assert json.loads(from_db.output)["verdicts"] == json.loads(in_memory.output)["verdicts"]
    missing = runner.invoke(app, ["advisories", "import", str(tmp_path / "nope"), "--db",
                                  sqlite_url])
    assert missing.exit_code == ExitCode.BAD_INPUT
    assert "no such file or folder" in missing.output
