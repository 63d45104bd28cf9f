"""``otaudit baseline test|controls`` and ``otaudit gap`` (against a real SQLite store)."""

from __future__ import annotations

import json

import pytest
from baseline_testkit import NOW, fixture_baseline_copy  # noqa: F401
from typer.testing import CliRunner

from otaudit.cli.main import app
from otaudit.inventory import Inventory
from otaudit.observation import AssetRef, Evidence, Fact, Observation
from otaudit.server import store
from otaudit.server.baseline.loader import bundled_root
from otaudit.server.db import init_db, make_engine, session_factory

runner = CliRunner()
EXAMPLES = bundled_root() / "examples"


def test_baseline_test_command():
    result = runner.invoke(app, ["baseline", "test"])
    assert result.exit_code == 0, result.output
    assert "73 checks" in result.output and "0 failed" in result.output


def test_baseline_test_command_reports_a_failing_case(baseline_copy):
    fx = baseline_copy / "tests" / "OTA-SW-012.yaml"
    fx.write_text(fx.read_text().replace("facts: {mgmt.banner_configured: false}\n    expect: "
                                         "fail", "facts: {mgmt.banner_configured: false}\n"
                                         "    expect: pass"))
    result = runner.invoke(app, ["baseline", "test", "--root", str(baseline_copy)])
    assert result.exit_code == 1
    assert "OTA-SW-012.yaml:7: OTA-SW-012 [no banner] SL 1: FAILED: expected pass, got fail" \
        in result.output


def test_controls_command():
    result = runner.invoke(app, ["baseline", "controls"])
    assert result.exit_code == 0
    assert "SR 1.1 RE 3" in result.output and "attestation" in result.output
    assert "35 of 100 SR/REs have automatic checks" in result.output


def _observation(asset_id: str, zone: str, probe: str, facts: dict) -> Observation:
    return Observation(
        collector_id="c1", site="demo", asset=AssetRef(id=asset_id, kind="plc", zone=zone),
        probe=probe, probe_version="1", endpoint="127.0.0.1:502", started_at=NOW,
        finished_at=NOW, status="ok",
        facts={k: Fact(value=v, evidence=["e1"]) for k, v in facts.items()},
        evidence=[Evidence(id="e1", request="modbus read", at=NOW)])


@pytest.fixture
def db(sqlite_url: str) -> tuple[str, Observation]:
    url = sqlite_url
    engine = make_engine(url)
    init_db(engine)
    inventory = Inventory.model_validate({
        "site": "demo",
        "zones": [{"id": "cell-1", "sl_t": 2},
                  {"id": "control", "sl_t": {"IAC": 3, "UC": 2, "SI": 2, "DC": 2, "RDF": 2,
                                             "TRE": 2, "RA": 2}}],
        "assets": [{"id": "plc-1", "kind": "plc", "zone": "cell-1",
                    "endpoints": {"modbus": {"host": "127.0.0.1", "port": 502}}}],
    })
    obs = _observation("plc-1", "cell-1", "modbus",
                       {"modbus.unauthenticated_read": True, "modbus.device_id_supported": False})
    with session_factory(engine).begin() as session:
        store.upsert_zones(session, inventory)
        store.store_observation(session, obs, NOW)
    engine.dispose()
    return url, obs


def test_gap_json(db):
    url, obs = db
    result = runner.invoke(app, ["gap", "--db", url, "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    zones = {z["zone"]: z for z in report["zones"]}
    assert set(zones) == {"cell-1", "control"}
    cell = zones["cell-1"]
    assert cell["sl_t"]["IAC"] == 2 and cell["sl_a"]["IAC"] == 0
    gaps = {g["id"]: g for g in cell["failing"]}
    evidence = gaps["SR 1.1"]["findings"][0]["evidence"][0]
    assert evidence["observation_id"] == str(obs.observation_id)
    assert gaps["SR 7.8"]["status"] == "capability_gap"  # no device identification
    assert len(cell["nis2"]) == 10


def test_gap_with_exceptions_and_zone_filter(db):
    url, _ = db
    result = runner.invoke(app, ["gap", "--db", url, "--format", "json", "--zone", "cell-1",
                                 "--exceptions", str(EXAMPLES / "exceptions.yaml"),
                                 "--attestations", str(EXAMPLES / "attestations.yaml")])
    assert result.exit_code == 0, result.output
    zones = json.loads(result.output)["zones"]
    assert [z["zone"] for z in zones] == ["cell-1"]
    failing = {g["id"] for g in zones[0]["failing"]}
    assert "SR 1.1" not in failing and "SR 1.3" not in failing
    assert "SR 7.4" in failing  # attested as partially met


def test_gap_table(db):
    url, _ = db
    result = runner.invoke(app, ["gap", "--db", url])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Zone cell-1: 1 assets" in out and "SL-T" in out and "SL-A" in out
    assert "SR 1.1 Human user identification and authentication [IAC, SL 2]: capability_gap" \
        in out
    assert "check OTA-MB-001: capability_gap — on plc-1" in out
    assert "plc-1: modbus.unauthenticated_read eq false -> true" in out
    assert out.count("plc-1: modbus.unauthenticated_read eq false -> true") == \
        out.count("check OTA-MB-001: capability_gap")  # each evidence item once per reason
    assert "SL-A proven" in out and "SL-A reachable" in out and "assessed" in out
    assert "NIS2 Art. 21(2)" in out


def test_gap_unknown_zone(db):
    url, _ = db
    result = runner.invoke(app, ["gap", "--db", url, "--zone", "nope"])
    assert result.exit_code == 2
    assert "unknown zone 'nope'" in result.output
