"""Zones: SL-A per FR, RE-after-SR rule, coverage, gaps and the NIS2 view."""

from __future__ import annotations

import pytest
from baseline_testkit import NOW, asset, fixture_baseline, pass_facts  # noqa: F401

from otaudit.inventory import SecurityLevelVector, Zone
from otaudit.server.baseline import evaluate
from otaudit.server.baseline.sl import achieved_levels, requirement_status
from otaudit.server.baseline.waivers import Attestation

FRS = ("IAC", "UC", "SI", "DC", "RDF", "TRE", "RA")


def attest(requirement, status="met", zone=None, sl=None, valid="2030-01-01", **extra):
    data = {"requirement": requirement, "status": status, "attested_by": {"name": "auditor"},
            "valid_until": valid, "scope": {"zone": zone} if zone else {}, **extra}
    if status in ("met", "compensated", "partially_met"):
        data["evidence"] = [{"type": "procedure", "uri": "evidence/x.pdf"}]
    if sl:
        data["sl_claimed"] = sl
    return Attestation.model_validate(data)


@pytest.fixture
def organisational(baseline):
    """Attestations 'met' for every requirement: they fill what no check covers for a host
    (organisational items, PLC- or switch-only checks) and never hide a failed check."""
    return [attest(rid) for rid in baseline.requirements]


@pytest.fixture
def good_host(baseline):
    return pass_facts(baseline, "hmi", {"ssh"})


def hmi(facts, **changes):
    return asset("hmi-1", "hmi", "z1", {**facts, **changes}, {"ssh": "ok"})


def test_compliant_host_with_attested_organisation_reaches_sl4(baseline, good_host,
                                                                organisational):
    ev = evaluate(baseline, {"z1": 4}, [hmi(good_host)], attestations=organisational, now=NOW)
    zone = ev.zone("z1")
    assert zone.sl_a == dict.fromkeys(FRS, 4)
    assert zone.gap == dict.fromkeys(FRS, 0)
    assert zone.failing == []
    assert all(f.status == "pass" for f in ev.findings)


@pytest.mark.parametrize(("change", "expected"), [
    ({"pwpol.min_length": 12}, {"IAC": 3}),           # 15 needed at SL 4
    ({"pwpol.min_length": 8}, {"IAC": 1}),            # 12 needed from SL 2
    ({"pwpol.min_length": 6}, {"IAC": 0}),
    # SR 1.1 RE 1 and SR 2.1 RE 1 refuse key-only root logins from SL 3
    ({"sshd.permit_root_login": "prohibit-password"}, {"IAC": 2, "UC": 2}),
    ({"sshd.client_alive_interval": 900}, {"UC": 2}),  # SR 2.6: 600 s at SL 3
    ({"logging.remote_tls": False}, {"SI": 1}),        # SR 3.9 selected from SL 2
    ({"services.enabled": ["telnet.socket"]}, {"RA": 0}),  # SR 7.7 at SL 1
    ({"software.packages": [{"name": "thunderbird", "version": "1"}]}, {"RDF": 2}),
])
def test_one_weakness_lowers_its_frs(baseline, good_host, organisational, change, expected):
    ev = evaluate(baseline, {"z1": 4}, [hmi(good_host, **change)], attestations=organisational,
                  now=NOW)
    assert ev.zone("z1").sl_a == {fr: expected.get(fr, 4) for fr in FRS}


def test_sl_claimed_limits_an_attestation(baseline, good_host, organisational):
    limited = [a for a in organisational if a.requirement != "SR 1.3"] + [attest("SR 1.3", sl=2)]
    ev = evaluate(baseline, {"z1": 4}, [hmi(good_host)], attestations=limited, now=NOW)
    assert ev.zone("z1").sl_a["IAC"] == 2


def test_an_re_counts_only_when_its_sr_is_met(baseline, good_host, organisational):
    # auditd off: SR 2.8 fails; remote logging still passes SR 2.8 RE 1 on its own
    ev = evaluate(baseline, {"z1": 3}, [hmi(good_host, **{"logging.auditd_active": False})],
                  attestations=organisational, now=NOW)
    zone = ev.zone("z1")
    results = {r.id: r for r in zone.requirements}
    assert results["SR 2.8"].status == "fail" and not results["SR 2.8"].satisfied
    re1 = results["SR 2.8 RE 1"]
    assert re1.status == "pass" and re1.in_target and not re1.satisfied
    failing = {g.id for g in zone.failing}
    assert "SR 2.8" in failing and "SR 2.8 RE 1" not in failing  # listed through its SR
    assert zone.sl_a["UC"] == 0


def test_missing_facts_make_requirements_unknown_not_failed(baseline):
    bare = asset("hmi-1", "hmi", "z1", {}, {"ssh": "timeout"})
    ev = evaluate(baseline, {"z1": 2}, [bare], now=NOW)
    assert {f.status for f in ev.findings} == {"unknown"}
    zone = ev.zone("z1")
    assert {g.status for g in zone.failing} == {"unknown"}
    assert all("ssh probe timeout" in f.message for g in zone.failing for f in g.findings)
    assert any(g.findings for g in zone.failing)


def test_modbus_zone_gaps_and_evidence(baseline):
    plc = asset("plc-1", "plc", "cell-1",
                {"modbus.unauthenticated_read": True, "modbus.device_id_supported": True,
                 "identity.vendor": "Schneider Electric", "identity.product": "BMX P34 2020",
                 "identity.firmware_version": "2.30"}, {"modbus": "ok"}, observation="obs-77")
    ev = evaluate(baseline, {"cell-1": SecurityLevelVector.uniform(2)}, [plc], now=NOW)
    zone = ev.zone("cell-1")
    gaps = {g.id: g for g in zone.failing}
    assert gaps["SR 1.1"].status == "capability_gap"
    finding = gaps["SR 1.1"].findings[0]
    assert (finding.asset_id, finding.check_id, finding.status) == (
        "plc-1", "OTA-MB-001", "capability_gap")
    assert finding.evidence[0].fact == "modbus.unauthenticated_read"
    assert finding.evidence[0].observation_id == "obs-77"
    assert gaps["SR 1.3"].status == "unknown" and gaps["SR 1.3"].findings == []
    assert zone.sl_a["IAC"] == 0
    assert "SR 7.8" not in gaps  # device identification answered
    results = {r.id: r for r in zone.requirements}
    # checks about switches/hosts give no evidence for a PLC-only zone: unknown, not a pass
    assert results["SR 6.2"].status == "unknown" and results["SR 6.2"].decided_by == "none"
    # ... unless the control says so (login banners: PLCs have no interactive login)
    assert results["SR 1.12"].status == "not_applicable" and results["SR 1.12"].satisfied


def test_coverage_counts_every_selected_requirement(baseline):
    ev = evaluate(baseline, {"z1": 1}, [], now=NOW)
    zone = ev.zone("z1")
    assert [zone.coverage[n].total for n in (1, 2, 3, 4)] == [37, 60, 90, 100]
    for cov in zone.coverage.values():
        assert (cov.automatic + cov.compensated + cov.attested + cov.not_applicable
                + cov.unknown) == cov.total
    # without assets nothing is known, except what a control declares not applicable
    declared = sum(1 for r in baseline.requirements.values() if r.applies_at(1)
                   and baseline.controls[r.id].unchecked == "not_applicable")
    assert declared >= 1
    assert zone.coverage[1].not_applicable == declared
    assert zone.coverage[1].unknown == 37 - declared
    assert zone.sl_a == dict.fromkeys(FRS, 0)
    assert sum(c[1].total for c in zone.coverage_by_fr.values()) == 37


def test_zone_vector_and_nis2_view(baseline, good_host):
    sl_t = SecurityLevelVector(IAC=3, UC=2, SI=2, DC=1, RDF=1, TRE=2, RA=2)
    ev = evaluate(baseline, {"control": Zone(id="control", sl_t=sl_t)},
                  [asset("hmi-9", "hmi", "control", {**good_host, "pwpol.min_length": 8},
                         {"ssh": "ok"})], now=NOW)
    zone = ev.zone("control")
    assert zone.sl_t == sl_t.as_dict()
    finding = next(f for f in ev.findings if f.check_id == "OTA-HOST-007")
    assert (finding.level, finding.status) == (3, "fail")  # IAC target 3 → 12 characters
    assert "SL 3 needs 12" in finding.message
    nis2 = {v.point: v for v in zone.nis2}
    assert len(nis2) == 10
    assert "OTA-HOST-007" in nis2["21(2)(g)"].failing_checks
    assert nis2["21(2)(g)"].findings.get("fail") == 1
    assert "SR 1.7" in nis2["21(2)(g)"].requirements_unmet


def test_asset_in_unknown_zone_warns(baseline):
    ev = evaluate(baseline, {"z1": 1}, [asset("p", "plc", "nowhere", {}, {"modbus": "ok"})],
                  now=NOW)
    assert any("nowhere" in w for w in ev.warnings)
    assert [z.zone for z in ev.zones] == ["z1"]
    assert all(f.zone == "nowhere" for f in ev.findings)


def test_requirement_status_rules():
    met, not_met = attest("SR 7.3"), attest("SR 7.3", status="not_met")
    old = attest("SR 7.3", valid="2024-01-01")
    assert requirement_status(None, [met], 1, NOW)[:2] == ("attested", "attestation")
    assert requirement_status("fail", [met], 1, NOW)[0] == "fail"  # never hides a fail
    assert requirement_status("pass", [not_met], 1, NOW)[0] == "pass"
    assert requirement_status("unknown", [not_met], 1, NOW)[0] == "fail"
    status, by, _, notes = requirement_status(None, [old], 1, NOW)
    assert (status, by) == ("unknown", "none") and "expired on 2024-01-01" in notes[0]
    assert requirement_status(None, [attest("SR 7.3", sl=1)], 2, NOW)[0] == "unknown"


def test_achieved_levels_needs_every_lower_level(baseline):
    reqs = baseline.requirements
    met = {(r, n): True for r in reqs for n in (1, 2, 3, 4)}
    assert achieved_levels(reqs, met) == dict.fromkeys(FRS, 4)
    met[("SR 4.3", 1)] = False  # fails at SL 1 although met at higher levels
    assert achieved_levels(reqs, met)["DC"] == 0
    met[("SR 4.3", 1)] = True
    met[("SR 4.1 RE 2", 4)] = False
    assert achieved_levels(reqs, met)["DC"] == 3


def test_proven_reachable_and_assessed_tell_failed_from_not_assessed(baseline, good_host,
                                                                    organisational):
    """An unknown lowers the proven SL-A only; a fail lowers both; coverage counts both."""
    attested = [a for a in organisational if a.requirement != "SR 2.8"]
    unknown = hmi({k: v for k, v in good_host.items() if k != "logging.auditd_active"})
    unknown.unknown["logging.auditd_active"] = "auditctl not allowed"
    ev = evaluate(baseline, {"z1": 3}, [unknown], attestations=attested, now=NOW)
    zone = ev.zone("z1")
    assert zone.sl_a["UC"] == 0 < zone.sl_reachable["UC"] == 4  # SR 2.8 is an SL 1 SR
    assert zone.sl_a["IAC"] == zone.sl_reachable["IAC"] == 4
    cov = zone.assessed["UC"]
    assert cov.assessed == cov.total - 1 and cov.share == pytest.approx(cov.assessed / cov.total)
    assert zone.assessed_total.total == sum(c.total for c in zone.assessed.values())
    row = next(r for r in zone.requirements if r.id == "SR 2.8")
    assert row.status == "unknown"
    reason = next(r for r in row.why if r.source == "check" and r.status == "unknown")
    assert "auditctl not allowed" in reason.text and reason.assets == ["hmi-1"]
    assert reason.evidence[0] == "hmi-1: logging.auditd_active eq true -> not collected"
    assert len(reason.evidence) == len(set(reason.evidence))

    failed = evaluate(baseline, {"z1": 3},
                      [hmi(good_host, **{"logging.auditd_active": False})],
                      attestations=attested, now=NOW).zone("z1")
    assert failed.sl_a["UC"] == failed.sl_reachable["UC"] == 0
    assert failed.assessed["UC"].assessed == failed.assessed["UC"].total


def test_every_row_at_target_says_why(baseline, good_host):
    atts = [attest("SR 1.3", valid="2031-05-01", **{"id": "ATT-IAM"}),
            attest("SR 1.4", valid="2020-01-01")]
    ev = evaluate(baseline, {"z1": 2}, [hmi(good_host)], attestations=atts, now=NOW)
    rows = {r.id: r for r in ev.zone("z1").requirements}
    assert all(r.why for r in rows.values() if r.in_target)
    assert not any(r.why for r in rows.values() if not r.in_target)
    att = next(r for r in rows["SR 1.3"].why if r.source == "attestation")
    assert (att.id, att.status, att.expires, att.owner) == ("ATT-IAM", "met", "2031-05-01",
                                                            "auditor")
    assert rows["SR 1.4"].status == "unknown"  # the attestation expired
    assert [r.source for r in rows["SR 1.4"].why] == ["none"]
    assert any("expired" in n for n in rows["SR 1.4"].notes)
    passing = next(r for r in rows["SR 1.1"].why if r.source == "check")
    assert passing.status == "pass" and passing.assets == ["hmi-1"] and passing.evidence == []
