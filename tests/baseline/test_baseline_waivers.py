"""Exceptions (compensating controls, accepted risks) and attestations."""

from __future__ import annotations

from pathlib import Path

import pytest
from baseline_testkit import NOW, asset, fixture_baseline  # noqa: F401

from otaudit.errors import InputError
from otaudit.server.baseline import evaluate, load_attestations, load_exceptions
from otaudit.server.baseline.loader import bundled_root
from otaudit.server.baseline.waivers import Attestation, ExceptionRecord

EXAMPLES = bundled_root() / "examples"
PLC_FACTS = {"modbus.unauthenticated_read": True, "modbus.device_id_supported": True}


def plc(asset_id="plc-1", zone="cell-1"):
    return asset(asset_id, "plc", zone, PLC_FACTS, {"modbus": "ok"})


def exception(expires="2030-01-01", **scope_and_fields):
    scope = {k: scope_and_fields.pop(k) for k in ("zone", "assets", "checks", "requirements")
             if k in scope_and_fields}
    data = {"id": "EXC-1", "scope": scope, "control": "conduit firewall",
            "justification": "protocol has no authentication", "owner": "OT lead",
            "expires": expires, **scope_and_fields}
    return ExceptionRecord.model_validate(data)


def finding(ev, check_id, asset_id="plc-1"):
    return next(f for f in ev.findings if f.check_id == check_id and f.asset_id == asset_id)


def req(ev, rid, zone="cell-1"):
    return next(r for r in ev.zone(zone).requirements if r.id == rid)


def test_compensating_control_keeps_the_original_status(baseline):
    exc = exception(zone="cell-1", checks=["OTA-MB-001"])
    ev = evaluate(baseline, {"cell-1": 1}, [plc()], exceptions=[exc], now=NOW)
    f = finding(ev, "OTA-MB-001")
    assert (f.status, f.original_status) == ("compensated", "capability_gap")
    assert f.exception["id"] == "EXC-1" and f.exception["expired"] is False
    assert "compensated by EXC-1: conduit firewall" in f.message
    assert req(ev, "SR 1.1").status == "compensated" and req(ev, "SR 1.1").satisfied
    assert "SR 1.1" not in {g.id for g in ev.zone("cell-1").failing}


def test_expired_exception_stops_counting_and_says_so(baseline):
    exc = exception(expires="2025-05-31", zone="cell-1", checks=["OTA-MB-001"])
    ev = evaluate(baseline, {"cell-1": 1}, [plc()], exceptions=[exc], now=NOW)
    f = finding(ev, "OTA-MB-001")
    assert f.status == "capability_gap" and f.original_status is None
    assert f.exception["expired"] is True
    assert "exception EXC-1 expired on 2025-05-31 and no longer counts" in f.message
    assert req(ev, "SR 1.1").status == "capability_gap"
    gap = next(g for g in ev.zone("cell-1").failing if g.id == "SR 1.1")
    assert "expired" in gap.findings[0].message


def test_exception_valid_through_its_expiry_day(baseline):
    exc = exception(expires=NOW.date().isoformat(), zone="cell-1", checks=["OTA-MB-001"])
    ev = evaluate(baseline, {"cell-1": 1}, [plc()], exceptions=[exc], now=NOW)
    assert finding(ev, "OTA-MB-001").status == "compensated"


def test_scope_limits_zone_assets_and_requirements(baseline):
    exc = exception(zone="cell-1", assets=["plc-1"], requirements=["SR 1.1"])
    ev = evaluate(baseline, {"cell-1": 2, "cell-2": 2},
                  [plc("plc-1"), plc("plc-2"), plc("plc-3", zone="cell-2")],
                  exceptions=[exc], now=NOW)
    assert finding(ev, "OTA-MB-001", "plc-1").status == "compensated"
    assert finding(ev, "OTA-MB-001", "plc-2").status == "capability_gap"
    assert finding(ev, "OTA-MB-001", "plc-3").status == "capability_gap"
    # the same finding also counts for SR 2.1, which the exception does not cover
    assert req(ev, "SR 1.1").status == "capability_gap"  # plc-2 is not covered
    gap = next(g for g in ev.zone("cell-1").failing if g.id == "SR 2.1")
    assert {(f.asset_id, f.status) for f in gap.findings} == {
        ("plc-1", "capability_gap"), ("plc-2", "capability_gap")}


def test_accepted_risk_annotates_but_does_not_count(baseline):
    exc = exception(type="accepted_risk", zone="cell-1", checks=["OTA-MB-001"])
    ev = evaluate(baseline, {"cell-1": 1}, [plc()], exceptions=[exc], now=NOW)
    f = finding(ev, "OTA-MB-001")
    assert f.status == "capability_gap" and f.exception["type"] == "accepted_risk"
    assert "risk accepted by EXC-1" in f.message
    assert not req(ev, "SR 1.1").satisfied


def test_compensating_attestation(baseline):
    att = Attestation.model_validate({
        "requirement": "SR 5.2", "scope": {"zone": "cell-1"}, "status": "compensated",
        "compensating_control": "conduit firewall C-01", "compensates": ["SR 1.1"],
        "evidence": [{"type": "config_export", "uri": "fw.txt"}],
        "attested_by": {"name": "lead"}, "valid_until": "2030-01-01"})
    ev = evaluate(baseline, {"cell-1": 1}, [plc()], attestations=[att], now=NOW)
    assert finding(ev, "OTA-MB-001").status == "compensated"
    assert req(ev, "SR 1.1").status == "compensated"
    assert req(ev, "SR 2.1").status == "capability_gap"
    assert req(ev, "SR 5.2").status == "compensated"
    assert req(ev, "SR 5.2").decided_by == "attestation"


def test_exception_needs_a_scope_and_a_control():
    with pytest.raises(ValueError, match="scope must name"):
        exception(zone="cell-1")
    with pytest.raises(ValueError, match="describes the `control`"):
        exception(checks=["OTA-MB-001"], control=None)


def test_load_errors_name_the_line(tmp_path: Path):
    path = tmp_path / "exc.yaml"
    path.write_text("schema_version: 1\nexceptions:\n  - id: E1\n    scope: {checks: [X]}\n"
                    "    justification: because\n    owner: me\n    expires: someday\n")
    with pytest.raises(InputError) as err:
        load_exceptions(path)
    assert any(p.startswith("line 7: exceptions.0.expires") for p in err.value.problems)
    assert any("line 4: exceptions.0.scope.checks.0" in p for p in err.value.problems)


def test_unknown_ids_are_rejected_with_a_baseline(baseline, tmp_path: Path):
    path = tmp_path / "att.yaml"
    path.write_text("schema_version: 1\nattestations:\n  - requirement: SR 9.9\n"
                    "    status: not_applicable\n    attested_by: {name: x}\n"
                    "    valid_until: 2030-01-01\n")
    assert load_attestations(path)[0].requirement == "SR 9.9"
    with pytest.raises(InputError, match=r"unknown requirement 'SR 9\.9'"):
        load_attestations(path, baseline)


def test_examples_load_and_apply(baseline):
    exceptions = load_exceptions(EXAMPLES / "exceptions.yaml", baseline)
    attestations = load_attestations(EXAMPLES / "attestations.yaml", baseline)
    ev = evaluate(baseline, {"cell-1": 2, "control": 2}, [plc()], exceptions=exceptions,
                  attestations=attestations, now=NOW)
    assert finding(ev, "OTA-MB-001").status == "compensated"
    assert req(ev, "SR 1.3").status == "attested"
    assert req(ev, "SR 1.6").status == "not_applicable"
    assert req(ev, "SR 7.4").status == "fail"  # partially met
    sr62 = req(ev, "SR 6.2")  # no host/switch in the zone and the attestation expired
    assert sr62.status == "unknown"
    assert any("ATT-INCIDENT-RESPONSE-2023 expired on 2024-01-15" in n for n in sr62.notes)
    assert ev.warnings == []
