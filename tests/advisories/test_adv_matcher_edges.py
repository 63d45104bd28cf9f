"""Matcher rules one edge at a time, on small advisories written for the rule (issue 23:
survivors of the mutation run of matcher.py). The real-advisory cases (cases.yaml, the
graded set) show the rules on real data; these pin each comparison at its boundary."""

from __future__ import annotations

from typing import Any

import pytest

from otaudit.server.advisories.matcher import AdvisoryIndex, Identity, identities_from_facts
from otaudit.server.advisories.normalise import normalise


def _doc(products: list[tuple[str, str, str]], vulns: list[dict[str, Any]],
         vendor: str = "Siemens", tracking_id: str = "ICSA-99-001-01",
         models: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """A CSAF document: ``products`` are (product id, product name, version range);
    ``models``: the order numbers (model_numbers) of a product id."""
    models = models or {}
    branches = [{"category": "product_name", "name": name, "branches": [
        {"category": "product_version_range", "name": rng,
         "product": {"name": name, "product_id": pid} | (
             {"product_identification_helper": {"model_numbers": models[pid]}}
             if pid in models else {})}]} for pid, name, rng in products]
    return {
        "document": {
            "category": "csaf_security_advisory", "csaf_version": "2.0",
            "title": f"{vendor} advisory", "publisher": {"name": "CISA", "category": "coordinator",
                                                         "namespace": "https://www.cisa.gov/"},
            "tracking": {"id": tracking_id, "version": "1", "status": "final",
                         "initial_release_date": "2024-01-01T00:00:00Z",
                         "current_release_date": "2024-01-01T00:00:00Z"}},
        "product_tree": {"branches": [{"category": "vendor", "name": vendor,
                                       "branches": branches}]},
        "vulnerabilities": vulns,
    }


def _vuln(cve: str, affected: list[str], *, fixed: list[str] = (), score: float | None = None,
          remediations: list[dict[str, Any]] = ()) -> dict[str, Any]:
    status: dict[str, list[str]] = {"known_affected": list(affected)}
    if fixed:
        status["fixed"] = list(fixed)
    vuln: dict[str, Any] = {"cve": cve, "product_status": status,
                            "remediations": list(remediations)}
    if score is not None:
        vuln["scores"] = [{"products": list(affected),
                           "cvss_v3": {"baseScore": score, "baseSeverity": "LOW",
                                       "vectorString": "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:N/"
                                                       "I:N/A:L", "version": "3.1"}}]
    return vuln


def _match(docs: list[dict[str, Any]], **device: str) -> list[Any]:
    return AdvisoryIndex([normalise(d) for d in docs]).match(Identity(**device))


S7 = {"vendor": "Siemens", "product": "SIMATIC S7-1200", "model": "CPU 1214C"}


def test_identity_reads_fact_records_and_plain_values() -> None:
    facts = {"identity.vendor": {"value": "Siemens", "source": "snmp"},
             "identity.product": "SIMATIC S7-1200", "identity.model": {"value": ""},
             "identity.firmware_version": {"value": " V4.4.0 "}}
    ident = Identity.from_facts(facts)
    assert ident == Identity(vendor="Siemens", product="SIMATIC S7-1200", model=None,
                             order_code=None, firmware_version="V4.4.0")
    assert identities_from_facts(facts) == [("host", ident)]


def test_verdicts_of_one_kind_sort_by_score_and_no_score_counts_as_zero() -> None:
    doc = _doc([("P1", "SIMATIC S7-1200 CPU family", "< V4.5.0")], [
        _vuln("CVE-2024-0001", ["P1"]),  # no score
        _vuln("CVE-2024-0002", ["P1"], score=0.5),
        _vuln("CVE-2024-0003", ["P1"], score=9.8),
    ])
    verdicts = _match([doc], **S7, firmware_version="V4.4.0")
    assert [v.verdict for v in verdicts] == ["affected"] * 3
    assert [v.cve for v in verdicts] == ["CVE-2024-0003", "CVE-2024-0002", "CVE-2024-0001"]
    assert [v.cvss for v in verdicts] == [9.8, 0.5, None]


@pytest.mark.parametrize(("version", "verdict"), [("V4.4.9", "affected"), ("V4.5.0", "fixed")])
def test_unknown_firmware_is_needs_review_and_known_decides(version: str, verdict: str) -> None:
    doc = _doc([("P1", "SIMATIC S7-1200 CPU family", "< V4.5.0")],
               [_vuln("CVE-2024-0001", ["P1"])])
    (unknown,) = _match([doc], **S7)
    assert unknown.verdict == "needs_review" and "firmware version is unknown" in unknown.reason
    (known,) = _match([doc], **S7, firmware_version=version)
    assert known.verdict == verdict


@pytest.mark.parametrize(("named", "cve", "verdict"), [
    ("CVE-222-30997", "CVE-2022-30997", "affected"),  # the year mistyped: the number decides
    ("CVE-222-30997", "CVE-2022-11111", "not_affected"),
    ("CVE-2021-30997", "CVE-2022-30997", "not_affected"),  # a whole year: it must agree
    ("CVE-2022-30997", "CVE-2022-30997", "affected"),
])
def test_a_remark_restricting_an_entry_to_cves(named: str, cve: str, verdict: str) -> None:
    doc = _doc([("P1", "SIMATIC S7-1200 CPU family", f"<= 4.5 ({named} only)")],
               [_vuln(cve, ["P1"])])
    (got,) = _match([doc], **S7, firmware_version="V4.4")
    assert got.verdict == verdict, got.reason
    assert ("restricts this entry" in got.reason) is (verdict == "not_affected")


@pytest.mark.parametrize(("model", "version", "verdict"), [
    ("NX5", "V4.3", "fixed"),  # the second remark gives NX5 its bound 4.3
    ("NX5", "V4.2", "affected"),
    ("NX7", "V4.2", "fixed"),  # the first remark: 4.2
    ("NX1", "V4.8", "affected"),  # no remark for it: < 4.9
])
def test_each_remark_gives_its_model_its_own_bound(model: str, version: str,
                                                   verdict: str) -> None:
    doc = _doc([("P1", "SIMATIC S7-1200 CPU family",
                 "< 4.9 (4.2 for NX7) (4.3 for NX5)")], [_vuln("CVE-2024-0001", ["P1"])])
    (got,) = _match([doc], vendor="Siemens", product="SIMATIC S7-1200", model=model,
                    firmware_version=version)
    assert got.verdict == verdict, got.reason


def test_a_fixed_version_in_a_mitigation_is_no_fix_of_an_all_versions_entry() -> None:
    fix = {"category": "vendor_fix", "details": "Update to V4.5.0 or later version",
           "product_ids": ["P1"]}
    mitigation = {"category": "mitigation", "details": "Versions V4.6.0 and later disable the "
                  "service by default", "product_ids": ["P1"]}
    for rems, fixed_in in (([fix, mitigation], "V4.5.0"), ([mitigation, fix], "V4.5.0"),
                           ([mitigation], None)):
        doc = _doc([("P1", "SIMATIC S7-1200 CPU family", "vers:all/*")],
                   [_vuln("CVE-2024-0001", ["P1"], remediations=rems)])
        (got,) = _match([doc], **S7, firmware_version="V4.4.0")
        assert got.verdict == "affected" and got.fixed_in == fixed_in, (rems, got.reason)
        if fixed_in:
            assert got.remediation_category == "vendor_fix"
            assert got.remediation == fix["details"]
            assert "no fixed version is known" not in got.reason
        else:
            assert got.reason.endswith("; no fixed version is known")


def test_only_an_affected_verdict_without_fix_says_no_fix_is_known() -> None:
    doc = _doc([("P1", "SIMATIC S7-1200 CPU family", "<= V4.5.0")],
               [_vuln("CVE-2024-0001", ["P1"])])
    (affected,) = _match([doc], **S7, firmware_version="V4.4.0")
    assert affected.reason.endswith("; no fixed version is known")
    for version in ("V4.5.1", None):
        (other,) = _match([doc], **S7, **({"firmware_version": version} if version else {}))
        assert other.verdict != "affected" and "no fixed version" not in other.reason


def test_with_unknown_firmware_all_versions_affected_outranks_a_range() -> None:
    doc = _doc([("P1", "SIMATIC S7-1200 CPU family", "< V4.5.0"),
                ("P2", "SIMATIC S7-1200 CPU family", "vers:all/*")],
               [_vuln("CVE-2024-0001", ["P1", "P2"])])
    (got,) = _match([doc], **S7)
    assert got.verdict == "affected" and got.product_id == "P2", got.reason


def test_a_fix_not_newer_than_the_installed_version_inside_the_range_is_reviewed() -> None:
    """V4.4 is inside ">= V4.0 < V5.0" but the vendor names V3.9 as the fix: review; another
    entry of the same name that the device is above does not hide that."""
    rem = {"category": "vendor_fix", "details": "Update to V3.9 or later version",
           "product_ids": ["P1"]}
    doc = _doc([("P1", "SIMATIC S7-1200 CPU family", ">= V4.0 < V5.0"),
                ("P2", "SIMATIC S7-1200 CPU family", "< V3.0")],
               [_vuln("CVE-2024-0001", ["P1", "P2"], remediations=[rem])])
    (got,) = _match([doc], **S7, firmware_version="V4.4")
    assert got.verdict == "needs_review" and got.product_id == "P1", got.reason
    assert "not newer than the installed version" in got.reason


def test_the_remediation_shown_is_the_one_naming_the_proposed_fix() -> None:
    mitigation = {"category": "mitigation", "details": "Update to V4.5.0 or later version",
                  "product_ids": ["P1"]}
    contact = {"category": "vendor_fix", "details": "Contact customer support to obtain the fix",
               "product_ids": ["P1"]}
    doc = _doc([("P1", "SIMATIC S7-1200 CPU family", "< V4.5.0")],
               [_vuln("CVE-2024-0001", ["P1"], remediations=[mitigation, contact])])
    (got,) = _match([doc], **S7, firmware_version="V4.4")
    assert got.verdict == "affected" and got.fixed_in == "V4.5.0"
    assert got.remediation == mitigation["details"]
    assert got.remediation_category == "mitigation"


WINCC = _doc([("P1", "SIMATIC WinCC V7.5", "< V7.5 SP2 Update 8"),
              ("P2", "SIMATIC WinCC Runtime Professional V17", "< V17 Update 4")],
             [_vuln("CVE-2024-0001", ["P1", "P2"])])


@pytest.mark.parametrize(("product", "version", "verdict", "pid"), [
    # the name fits the V7.5 line, the version the longer-named V17 line: both named
    ("SIMATIC WinCC", "V17 Update 2", "needs_review", "P2"),
    ("SIMATIC WinCC", "V17 Update 5", "not_affected", "P1"),  # V17 line fixed: no other line
    ("SIMATIC WinCC", "V7.5 SP2 Update 7", "affected", "P1"),
    ("SIMATIC WinCC", "V7.4 SP1", "not_affected", "P1"),  # V7.5 names one line, not "and earlier"
    ("SIMATIC WinCC", "8.0(2)E1", "needs_review", "P1"),  # a train version: no name-filter guess
    ("SIMATIC WinCC Runtime Professional", "V17 Update 2", "affected", "P2"),
    ("SIMATIC WinCC Runtime Professional", "V7.5 SP2 Update 7", "not_affected", "P2"),
])
def test_a_version_in_the_product_name_restricts_the_line(product: str, version: str,
                                                          verdict: str, pid: str) -> None:
    (got,) = _match([WINCC], vendor="Siemens", product=product, firmware_version=version)
    assert (got.verdict, got.product_id) == (verdict, pid), got.reason
    if verdict == "needs_review" and pid == "P2":
        assert "cannot be decided from the name" in got.reason
        assert "'SIMATIC WinCC V7.5'" in got.reason


@pytest.mark.parametrize(("version", "verdict"), [
    ("V7.3", "affected"), ("V7.4 SP1", "affected"), ("V7.5", "not_affected")])
def test_and_earlier_in_the_product_name_is_an_upper_bound(version: str, verdict: str) -> None:
    doc = _doc([("P3", "SIMATIC WinCC V7.4 and earlier", "vers:all/*")],
               [_vuln("CVE-2024-0001", ["P3"])])
    (got,) = _match([doc], vendor="Siemens", product="SIMATIC WinCC", firmware_version=version)
    assert got.verdict == verdict, got.reason


def test_order_number_matches_are_all_evaluated_however_general_their_name() -> None:
    """Specificity (a longer name wins) is a rule among name matches only."""
    order = "6ES7214-1AG40-0XB0"
    doc = _doc([("P1", "SIMATIC S7-1200", "< V4.5.0"),
                ("P2", "SIMATIC S7-1200 CPU 1214C", "< V4.0")],
               [_vuln("CVE-2024-0001", ["P1", "P2"])], models={"P1": [order], "P2": [order]})
    (got,) = _match([doc], vendor="Siemens", product="SIMATIC S7-1200",
                    order_code="6ES7 214-1AG40-0XB0", firmware_version="V4.4")
    assert (got.verdict, got.product_id, got.basis) == ("affected", "P1", "order_number")


@pytest.mark.parametrize(("name", "device", "fuzzy"), [
    ("SIMATIC Process Historian Server", "Process Historian", True),
    ("SIMATIC Process Historian Server", "Process Historian Client", False),  # not all words
    ("SIMATIC Data Link Server", "Data Link", True),  # words of exactly four letters
    ("SIMATIC Data Box Server", "Box", False),  # a three-letter word is no evidence
])
def test_fuzzy_name_matches(name: str, device: str, fuzzy: bool) -> None:
    doc = _doc([("P1", name, "< V9.0")], [_vuln("CVE-2024-0001", ["P1"])])
    got = _match([doc], vendor="Siemens", product=device, firmware_version="V8.0")
    assert [(v.verdict, v.basis) for v in got] == ([("needs_review", "fuzzy")] if fuzzy else [])


def test_a_fuzzy_match_of_another_vendor_is_skipped_not_the_search_ended() -> None:
    other = _doc([("R1", "Process Historian Server", "< V9.0")],
                 [_vuln("CVE-2024-0001", ["R1"])], vendor="Rockwell Automation")
    mine = _doc([("P1", "SIMATIC Process Historian Server", "< V9.0")],
                [_vuln("CVE-2024-0002", ["P1"])], tracking_id="ICSA-99-002-02")
    got = _match([other, mine], vendor="Siemens", product="Process Historian",
                 firmware_version="V8.0")
    assert [(v.cve, v.basis) for v in got] == [("CVE-2024-0002", "fuzzy")]


def test_a_name_restriction_outranks_the_weak_reading_of_an_exact_list() -> None:
    """"the product name restricts it to V7.5" (strength 2) decides over "the advisory lists
    only V17 Update 1, the fix of the train is V17 Update 6" (strength 1), in either order."""
    rem = {"category": "vendor_fix", "details": "Update to V17 Update 6 or later version",
           "product_ids": ["P4"]}
    products = [("P1", "SIMATIC WinCC V7.5", "< V7.5 SP2 Update 8"),
                ("P4", "SIMATIC WinCC", "V17 Update 1")]
    for order in (products, products[::-1]):
        doc = _doc(order, [_vuln("CVE-2024-0001", ["P1", "P4"], remediations=[rem])])
        (got,) = _match([doc], vendor="Siemens", product="SIMATIC WinCC",
                        firmware_version="V17 Update 5")
        assert (got.verdict, got.product_id) == ("not_affected", "P1"), got.reason
    alone = _doc(products[1:], [_vuln("CVE-2024-0001", ["P4"], remediations=[rem])])
    (got,) = _match([alone], vendor="Siemens", product="SIMATIC WinCC",
                    firmware_version="V17 Update 5")
    assert (got.verdict, got.fixed_in) == ("needs_review", "V17 Update 6"), got.reason
