"""Evaluator edges: the worst-status order, why a result is unknown, evidence notes,
messages per status, which records compensate, the level a finding uses (issue 23:
survivors of the mutation run of evaluator.py)."""

from __future__ import annotations

import pytest
from baseline_testkit import NOW, asset, fixture_baseline  # noqa: F401

from otaudit.server.baseline import evaluate
from otaudit.server.baseline.evaluator import RANK, STATUS_OF_RANK, evaluate_check, value_text
from otaudit.server.baseline.waivers import Attestation, ExceptionRecord

PLC_FACTS = {"modbus.unauthenticated_read": True, "modbus.device_id_supported": True}


def plc(asset_id: str = "plc-1", zone: str = "cell-1"):
    return asset(asset_id, "plc", zone, PLC_FACTS, {"modbus": "ok"})


def finding(ev, check_id: str, asset_id: str = "plc-1"):
    return next(f for f in ev.findings if f.check_id == check_id and f.asset_id == asset_id)


def test_worst_status_order_is_the_documented_one() -> None:
    """fail > capability_gap > unknown > compensated > pass > not_applicable (sl.py)."""
    order = ["not_applicable", "pass", "compensated", "unknown", "capability_gap", "fail"]
    assert sorted(RANK, key=RANK.__getitem__) == order
    assert len(set(RANK.values())) == len(RANK)
    assert [STATUS_OF_RANK[RANK[s]] for s in order] == order


@pytest.mark.parametrize(("value", "text"), [
    (True, "true"), (False, "false"), (None, "none"), (0, "0"), (1, "1"), ("yes", "yes"),
    ([True, 2, None], "[true, 2, none]"), ([{"a": False}], "[{a: false}]"),
])
def test_value_text(value: object, text: str) -> None:
    assert value_text(value) == text


@pytest.mark.parametrize(("probes", "unknown", "why"), [
    ({"ssh": "ok"}, {}, "not collected"),
    ({"ssh": "ok"}, {"pwpol.min_length": "login.defs unreadable"}, "login.defs unreadable"),
    ({"ssh": "timeout"}, {}, "ssh probe timeout"),  # statuses after "ok" in the alphabet
    ({"ssh": "error"}, {}, "ssh probe error"),  # and before it
])
def test_an_unknown_result_names_the_missing_fact_and_why(baseline, probes, unknown,
                                                          why) -> None:
    host = asset("hmi-1", "hmi", "z1", {}, probes, unknown)
    f = evaluate_check(baseline, "OTA-HOST-007", host, 2)
    assert f.status == "unknown"
    assert f.reason == f"pwpol.min_length: {why}" and f.message == f.reason
    (item,) = f.evidence
    assert (item.fact, item.present, item.result) == ("pwpol.min_length", False, "unknown")
    assert item.note == "not collected"  # the reason is in the finding's reason


def test_an_unknown_result_names_only_the_facts_that_decided_nothing(baseline) -> None:
    device = asset("plc-9", "plc", "z1", {"enip.cip_security": True, "enip.cert_key_bits": 4096,
                                          "enip.cert_days_left": 100}, {"enip": "ok"})
    f = evaluate_check(baseline, "OTA-ENIP-004", device, 2)
    assert f.status == "unknown"
    assert f.reason == "enip.cert_signature_hash: not collected"
    notes = {e.fact: e.note for e in f.evidence}
    assert notes["enip.cert_key_bits"] == "" and notes["enip.cert_signature_hash"] == \
        "not collected"


def test_a_present_fact_that_cannot_be_compared_says_so(baseline) -> None:
    host = asset("hmi-1", "hmi", "z1", {"pwpol.min_length": "long"}, {"ssh": "ok"})
    f = evaluate_check(baseline, "OTA-HOST-007", host, 2)
    assert f.status == "unknown" and f.reason.startswith("pwpol.min_length: ")
    assert "not collected" not in f.reason
    (item,) = f.evidence
    assert item.present and item.note and f.reason == f"pwpol.min_length: {item.note}"


def test_messages_per_status(baseline) -> None:
    gate_off = asset("plc-9", "plc", "z1", {"enip.cip_security": False}, {"enip": "ok"})
    f = evaluate_check(baseline, "OTA-ENIP-004", gate_off, 2)
    assert f.status == "not_applicable"
    assert f.message == f.reason and f.reason.startswith("applies only when ")
    good = asset("hmi-1", "hmi", "z1", {"pwpol.min_length": 12}, {"ssh": "ok"})
    passed = evaluate_check(baseline, "OTA-HOST-007", good, 2)
    assert passed.status == "pass" and passed.message == "Minimum password length enforced: ok"
    failed = evaluate_check(baseline, "OTA-HOST-007", good, 4)
    assert failed.status == "fail"
    assert failed.message == "minimum password length is 12; SL 4 needs 15"


def _exc(exc_id: str, check: str) -> ExceptionRecord:
    return ExceptionRecord.model_validate({
        "id": exc_id, "scope": {"zone": "cell-1", "checks": [check]},
        "control": f"firewall {exc_id}", "justification": "no authentication",
        "owner": "OT lead", "expires": "2030-01-01"})


def test_an_exception_for_another_check_does_not_stop_the_search(baseline) -> None:
    excs = [_exc("EXC-0", "OTA-MB-002"), _exc("EXC-1", "OTA-MB-001")]
    ev = evaluate(baseline, {"cell-1": 1}, [plc()], exceptions=excs, now=NOW)
    f = finding(ev, "OTA-MB-001")
    assert (f.status, f.exception["id"]) == ("compensated", "EXC-1")


def _att(**extra: object) -> Attestation:
    return Attestation.model_validate({
        "requirement": "SR 5.2", "status": "compensated",
        "compensating_control": "conduit firewall C-01", "compensates": ["SR 1.1"],
        "evidence": [{"type": "config_export", "uri": "fw.txt"}],
        "attested_by": {"name": "lead"}, "valid_until": "2030-01-01", **extra})


@pytest.mark.parametrize(("att", "level", "compensated"), [
    (_att(scope={"zone": "cell-1"}), 2, True),
    (_att(scope={"zone": "cell-2"}), 2, False),  # another zone, at a level it claims
    (_att(scope={"zone": "cell-1"}, sl_claimed=2), 2, True),
    (_att(scope={"zone": "cell-1"}, sl_claimed=1), 2, False),  # its zone, above its level
])
def test_a_compensating_attestation_needs_its_zone_and_level(baseline, att, level,
                                                             compensated) -> None:
    ev = evaluate(baseline, {"cell-1": level, "cell-2": level}, [plc()], attestations=[att],
                  now=NOW)
    f = finding(ev, "OTA-MB-001")
    assert f.level == level
    assert (f.status == "compensated") is compensated


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_a_finding_uses_its_zones_target_level(baseline, level: int) -> None:
    ev = evaluate(baseline, {"cell-1": level}, [plc()], now=NOW)
    assert finding(ev, "OTA-MB-001").level == level


def test_a_finding_of_a_zone_without_target_uses_level_1(baseline) -> None:
    ev = evaluate(baseline, {"cell-1": 3}, [plc(zone="nowhere")], now=NOW)
    f = finding(ev, "OTA-MB-001")
    assert f.level == 1 and f.required is False
    assert any("nowhere" in w for w in ev.warnings)
