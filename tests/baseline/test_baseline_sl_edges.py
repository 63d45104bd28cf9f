"""Zone result edges: the asset count, coverage of an empty target, what each requirement
row says why (one asset or several, unknown, attestations, nothing decided), the evidence
cap and the NIS2 counts (issue 23: survivors of the mutation run of sl.py)."""

from __future__ import annotations

import pytest
from baseline_testkit import NOW, asset, fixture_baseline  # noqa: F401

from otaudit.server.baseline import evaluate
from otaudit.server.baseline.sl import MAX_EVIDENCE_PER_REASON
from otaudit.server.baseline.waivers import Attestation

PLC_FACTS = {"modbus.unauthenticated_read": True, "modbus.device_id_supported": True}


def plcs(n: int, facts: dict | None = None) -> list:
    return [asset(f"plc-{i:02d}", "plc", "c1", PLC_FACTS if facts is None else facts,
                  {"modbus": "ok"}) for i in range(n)]


def row(ev, rid: str):
    return next(r for r in ev.zone("c1").requirements if r.id == rid)


def test_declared_zone_facts_are_no_asset_of_the_zone(baseline) -> None:
    ev = evaluate(baseline, {"c1": 1}, [*plcs(2), asset("c1", "zone", "c1", {})], now=NOW)
    assert ev.zone("c1").assets == 2


def test_a_zone_with_nothing_in_target_is_fully_assessed(baseline) -> None:
    zone = evaluate(baseline, {"c1": 0}, plcs(1), now=NOW).zone("c1")
    assert zone.assessed_total.total == 0 and zone.assessed_total.share == 1.0
    assert all(c.total == 0 and c.share == 1.0 for c in zone.assessed.values())


@pytest.mark.parametrize("n", [MAX_EVIDENCE_PER_REASON - 1, MAX_EVIDENCE_PER_REASON,
                               MAX_EVIDENCE_PER_REASON + 1])
def test_a_reason_lists_at_most_twenty_evidence_lines(baseline, n: int) -> None:
    assert MAX_EVIDENCE_PER_REASON == 20
    ev = evaluate(baseline, {"c1": 1}, plcs(n), now=NOW)
    (reason,) = [w for w in row(ev, "SR 1.1").why if w.id == "OTA-MB-001"]
    assert len(reason.evidence) == min(n, 20)
    assert reason.evidence[0].startswith("plc-00: modbus.unauthenticated_read ")


def test_one_asset_gives_its_message_several_give_a_count(baseline) -> None:
    one = evaluate(baseline, {"c1": 1}, plcs(1), now=NOW)
    (reason,) = [w for w in row(one, "SR 1.1").why if w.id == "OTA-MB-001"]
    finding = next(f for f in one.findings if f.check_id == "OTA-MB-001")
    assert reason.text == finding.message and reason.assets == ["plc-00"]
    two = evaluate(baseline, {"c1": 1}, plcs(2), now=NOW)
    (reason,) = [w for w in row(two, "SR 1.1").why if w.id == "OTA-MB-001"]
    assert reason.text == "Modbus/TCP access without authentication: capability_gap on 2 assets"


def test_unknown_results_give_each_assets_reason(baseline) -> None:
    ev = evaluate(baseline, {"c1": 1}, plcs(2, facts={}), now=NOW)
    (reason,) = [w for w in row(ev, "SR 1.1").why if w.id == "OTA-MB-001"]
    assert reason.status == "unknown"
    assert reason.text == ("plc-00: modbus.unauthenticated_read: not collected; "
                           "plc-01: modbus.unauthenticated_read: not collected")


def test_a_compensating_attestation_is_listed_once_as_attestation(baseline) -> None:
    att = Attestation.model_validate({
        "requirement": "SR 5.2", "scope": {"zone": "c1"}, "status": "compensated",
        "compensating_control": "conduit firewall C-01", "compensates": ["SR 1.1"],
        "evidence": [{"type": "config_export", "uri": "fw.txt"}],
        "attested_by": {"name": "lead"}, "valid_until": "2030-01-01"})
    ev = evaluate(baseline, {"c1": 1}, plcs(1), attestations=[att], now=NOW)
    sources = [w.source for w in row(ev, "SR 1.1").why]
    assert "exception" not in sources and sources.count("check") == 1


def test_nothing_decided_says_whether_checks_exist(baseline) -> None:
    ev = evaluate(baseline, {"c1": 1}, plcs(1), now=NOW)
    undecided = [r for r in ev.zone("c1").requirements
                 if r.in_target and r.status == "unknown" and r.decided_by == "none"]
    with_checks = [r for r in undecided if baseline.checks_for(r.id)]
    without = [r for r in undecided if not baseline.checks_for(r.id)]
    assert with_checks and without
    for r in with_checks:
        assert r.why[-1].text == (f"no asset of the zone in scope of "
                                  f"{', '.join(baseline.checks_for(r.id))} and no valid "
                                  "attestation")
    for r in without:
        assert r.why[-1].text == "no automatic check exists; needs an attestation"


def test_nis2_counts_unknown_findings_and_unknown_requirements(baseline) -> None:
    ev = evaluate(baseline, {"c1": 1}, plcs(3, facts={}), now=NOW)
    zone = ev.zone("c1")
    rows = {r.id: r for r in zone.requirements}
    counted = 0
    for view in zone.nis2:
        point = baseline.nis2[view.point]
        in_target = [rows[r] for r in point.evidenced_by if r in rows and rows[r].in_target]
        unknown = [r for r in in_target if not r.satisfied and r.status == "unknown"]
        assert view.requirements_unknown == len(unknown), view.point
        counted += len(unknown)
        assert "pass" not in view.findings
    assert counted > 0
    assert any(view.findings.get("unknown") == 3 for view in zone.nis2)


def test_a_gap_lists_the_result_for_its_own_requirement_not_the_compensated_one(
        baseline) -> None:
    """Telnet on a switch fails SR 4.1 and SR 7.7; an exception covers SR 4.1 only: the
    reported finding is compensated, the SR 7.7 gap still lists the failing result."""
    from otaudit.server.baseline.waivers import ExceptionRecord

    exc = ExceptionRecord.model_validate({
        "id": "EXC-1", "scope": {"zone": "c1", "checks": ["OTA-SW-001"],
                                 "requirements": ["SR 4.1"]},
        "control": "telnet only on the isolated management VLAN",
        "justification": "legacy switch", "owner": "OT lead", "expires": "2030-01-01"})
    switch = asset("sw-1", "switch", "c1", {"mgmt.telnet_enabled": True}, {"ssh": "ok"})
    ev = evaluate(baseline, {"c1": 1}, [switch], exceptions=[exc], now=NOW)
    reported = next(f for f in ev.findings if f.check_id == "OTA-SW-001")
    assert (reported.status, reported.original_status) == ("compensated", "fail")
    gap = next(g for g in ev.zone("c1").failing if g.id == "SR 7.7")
    (listed,) = [f for f in gap.findings if f.check_id == "OTA-SW-001"]
    assert (listed.status, listed.original_status, listed.level) == ("fail", None, 1)


def test_a_gap_finding_carries_only_its_own_requirements_exception(baseline) -> None:
    """An accepted risk for SR 4.1 annotates the reported telnet finding; the SR 7.7 gap at
    the same level lists the finding judged for SR 7.7: same level, no note of an exception
    that covers another requirement (issue 23, sl.py: reuse of the reported finding)."""
    from otaudit.server.baseline.waivers import ExceptionRecord

    exc = ExceptionRecord.model_validate({
        "id": "EXC-2", "type": "accepted_risk",
        "scope": {"zone": "c1", "checks": ["OTA-SW-001"], "requirements": ["SR 4.1"]},
        "justification": "legacy switch", "owner": "OT lead", "expires": "2030-01-01"})
    switch = asset("sw-1", "switch", "c1", {"mgmt.telnet_enabled": True}, {"ssh": "ok"})
    ev = evaluate(baseline, {"c1": 1}, [switch], exceptions=[exc], now=NOW)
    reported = next(f for f in ev.findings if f.check_id == "OTA-SW-001")
    assert (reported.status, reported.level) == ("fail", 1)
    assert reported.exception["id"] == "EXC-2" and "risk accepted by EXC-2" in reported.message
    zone = ev.zone("c1")
    (own,) = [f for f in next(g for g in zone.failing if g.id == "SR 4.1").findings
              if f.check_id == "OTA-SW-001"]
    assert (own.status, own.level, own.exception["id"]) == ("fail", 1, "EXC-2")
    (other,) = [f for f in next(g for g in zone.failing if g.id == "SR 7.7").findings
                if f.check_id == "OTA-SW-001"]
    assert (other.status, other.level, other.exception) == ("fail", 1, None)
    assert other.required is True and own.required is True
    assert "EXC-2" not in other.message


def test_a_gap_reuses_nothing_judged_at_another_level(baseline) -> None:
    """The telnet check serves FR 4 (DC) and FR 7 (RA): its reported finding takes the higher SL-T
    (3); the SR 7.7 gap at SL-T 1 lists the finding judged at level 1."""
    switch = asset("sw-1", "switch", "c1", {"mgmt.telnet_enabled": True}, {"ssh": "ok"})
    ev = evaluate(baseline, {"c1": {"DC": 3, "RA": 1}}, [switch], now=NOW)
    reported = next(f for f in ev.findings if f.check_id == "OTA-SW-001")
    assert reported.level == 3
    (listed,) = [f for f in next(g for g in ev.zone("c1").failing if g.id == "SR 7.7").findings
                 if f.check_id == "OTA-SW-001"]
    assert (listed.status, listed.level, listed.required) == ("fail", 1, True)


def met(rid: str, notes: str = "") -> Attestation:
    return Attestation.model_validate({
        "requirement": rid, "scope": {"zone": "c1"}, "status": "met", "notes": notes,
        "evidence": [{"type": "procedure", "uri": "proc.pdf"}],
        "attested_by": {"name": "lead"}, "valid_until": "2030-01-01"})


def test_an_attestation_without_compensating_control_shows_its_notes(baseline) -> None:
    ev = evaluate(baseline, {"c1": 1}, plcs(1), now=NOW)
    rid = next(r.id for r in ev.zone("c1").requirements
               if r.in_target and r.status == "unknown" and not baseline.checks_for(r.id))
    ev = evaluate(baseline, {"c1": 1}, plcs(1), attestations=[met(rid, "signed procedure P-7")],
                  now=NOW)
    (reason,) = [w for w in row(ev, rid).why if w.source == "attestation"]
    assert (reason.status, reason.text) == ("met", "signed procedure P-7")


def test_nis2_counts_each_requirement_in_target_once(baseline) -> None:
    zone = evaluate(baseline, {"c1": 1}, plcs(1), now=NOW).zone("c1")
    rows = {r.id: r for r in zone.requirements}
    for view in zone.nis2:
        point = baseline.nis2[view.point]
        in_target = [r for r in point.evidenced_by if r in rows and rows[r].in_target]
        assert view.requirements_in_target == len(in_target), view.point


def test_a_zone_above_its_target_has_no_negative_gap(baseline) -> None:
    """Every requirement of one FR attested met up to SL 4: SL-A 4 over an SL-T of 1."""
    fr = "RA"
    rids = [r.id for r in baseline.requirements.values() if r.fr == fr]
    ev = evaluate(baseline, {"c1": {fr: 1}}, [], attestations=[met(r) for r in rids], now=NOW)
    zone = ev.zone("c1")
    assert zone.sl_a[fr] == 4 and zone.sl_t[fr] == 1
    assert zone.gap[fr] == 0
