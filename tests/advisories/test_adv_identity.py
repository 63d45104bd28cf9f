"""Identity and range rules of issue 15, one edge at a time (the graded set tests them on
real advisories; these pin each rule on its own)."""

from __future__ import annotations

import pytest

from otaudit.server.advisories.names import device_name, normalise_vendor, product_name
from otaudit.server.advisories.ranges import parse_expression, position
from otaudit.server.advisories.versions import compare, parse_version


def _names(name: str, product: str, model: str | None = None, vendor: str = "Siemens") -> bool:
    return product_name(name).names(device_name(product, model, None, vendor))


@pytest.mark.parametrize(("name", "product", "expected"), [
    ("SCALANCE X-200 switch family", "SCALANCE X208", True),
    ("SCALANCE X-200 switch family", "SCALANCE X204RNA", False),  # RNA is its own line
    ("SCALANCE X-200 switch family", "SCALANCE X202-2IRT", False),  # so is IRT
    ("SCALANCE X-200RNA switch family", "SCALANCE X204RNA", True),
    ("SCALANCE X-200IRT switch family", "SCALANCE X201-3P IRT PRO", True),
    ("SCALANCE X-300 switch family", "SCALANCE X208", False),
    ("SCALANCE XB-200/XC-200/XP-200/XR300-WG", "SCALANCE XC208", True),
    ("SCALANCE XB-200/XC-200/XP-200/XR300-WG", "SCALANCE X208", False),
    ("SCALANCE W780 and W740 (IEEE 802.11n) family", "SCALANCE W788-1 RJ45", True),
    ("SCALANCE W780 and W740 (IEEE 802.11n) family", "SCALANCE W721-1 RJ45", False),
    ("SCALANCE M-800 family", "SCALANCE M876-4", True),
    ("UC-8100 Series", "UC-8112-LX", True),
    ("UC-8100 Series", "UC-8112A-ME-T-LX", False),  # the attached A is the UC-8100A line
    ("UC-8100A-ME-T Series", "UC-8112A-ME-T-LX", True),
    ("MB3180 series", "MGate MB3180", True),
    ("MB3180 series", "MGate MB3170", False),
    ("LOGO! CMR family", "LOGO! CMR2020", True),
    ("FL SWITCH 3xxx 4xxx and 48xx", "FL SWITCH 4824E", True),
    ("FL SWITCH 3xxx 4xxx and 48xx", "FL SWITCH 2008", False),
    ("ILC 1x1", "ILC 151 ETH", True),
    ("ILC 1x1", "ILC 150 ETH", False),
    ("C300 and ACE controllers", "Experion C300", True),
    ("C200E", "Experion C200", False),
])
def test_families_series_and_model_lists(name: str, product: str, expected: bool) -> None:
    assert _names(name, product) is expected


@pytest.mark.parametrize(("name", "product", "model", "expected"), [
    ('SIMATIC HMI Comfort Panels 4" - 22"', "SIMATIC HMI TP1200 Comfort", "TP1200 Comfort", True),
    ('SIMATIC HMI Comfort Panels 4" - 22"', "SIMATIC HMI TP700 Comfort", "TP700 Comfort", True),
    ('SIMATIC HMI Comfort Outdoor Panels 7" & 15"', "SIMATIC HMI TP1500 Comfort Outdoor",
     "TP1500 Comfort Outdoor", True),
    ('SIMATIC HMI Comfort Outdoor Panels 7" & 15"', "SIMATIC HMI TP1200 Comfort Outdoor",
     "TP1200 Comfort Outdoor", False),  # no 12" outdoor panel in the list
    ('SIMATIC HMI Comfort Outdoor Panels 7" & 15"', "SIMATIC HMI TP1500 Comfort",
     "TP1500 Comfort", False),  # not an outdoor panel
    ("SIMATIC HMI KTP Mobile Panels KTP400F, KTP700, KTP700F, KTP900 and KTP900F",
     "SIMATIC HMI KTP900F Mobile", "KTP900F Mobile", True),
    ("SIMATIC HMI KTP Mobile Panels KTP400F, KTP700, KTP700F, KTP900 and KTP900F",
     "SIMATIC HMI KTP400 Mobile", "KTP400 Mobile", False),
])
def test_panels_by_size_and_model(name: str, product: str, model: str, expected: bool) -> None:
    assert _names(name, product, model) is expected


def test_hirschmann_classic_families_come_from_the_vendor_table() -> None:
    assert _names("Classic Platform Switches RS", "RS20-0800T1T1SDAE", "RS20", "Hirschmann")
    assert not _names("Classic Platform Switches RS", "RSPE35", "RSPE35-24044O7T99", "Hirschmann")
    assert not _names("Classic Platform Switches RS", "RSR30-07", "RSR30", "Hirschmann")


def test_vendor_fields_naming_two_parties() -> None:
    assert normalise_vendor("Sensormatic Electronics, LLC, Johnson Controls Inc.") == {
        "johnson controls", "sensormatic electronics"}
    assert normalise_vendor("Hirschmann Automation and Control GmbH, Belden Inc.") == {
        "hirschmann"}


@pytest.mark.parametrize(("raw", "installed", "where"), [
    (">= 6.1.0.0 | <= 6.4.0.0 (CVE-2022-37434 only)", "6.4.0.0", "in"),
    ("< 6.6 (6.x series)", "6.5", "in"),
    ("< 6.6 (6.x series)", "5.9", "outside"),  # the remark limits it to the 6.x line
    ("< 14.4u1 (14.x series)", "14.4", "in"),
    ("< 14.4u1 (14.x series)", "14.4u1", "above"),
    ("All versions between V2.5 (including) and V2.7 (excluding)", "V2.5", "in"),
    ("All versions between V2.5 (including) and V2.7 (excluding)", "V2.7", "above"),
    ("2.2.3  until 2.2.3.3", "2.2.3.3", "in"),
    ("2.2.3  until 2.2.3.3", "2.2.3.4", "above"),
    ("<= 33", "33.011", "in"),  # "33" names the release
    ("<= 33", "34.011", "above"),
    ("<= V16", "V16 Update 4", "in"),
    ("<= 2.0.00", "2.0.01", "above"),  # as many components as written: no release reading
    ("< 7.101 (only Microsoft Windows versions are affected)", "7.100", "in"),
    ("< 7.101 (only Microsoft Windows versions are affected)", "7.101", "above"),
])
def test_ranges_with_remarks_keep_the_range(raw: str, installed: str, where: str) -> None:
    spec = parse_expression(raw)
    assert spec.kind == "range", spec
    assert position(spec, parse_version(installed)).where == where


def test_remarks_are_read_for_what_they_say() -> None:
    assert parse_expression("<= 2.4.17  (CVE-2022-3386 and CVE-2022-3385 only)").cve_scope == [
        "CVE-2022-3386", "CVE-2022-3385"]
    assert parse_expression("< 1.49 (1.29 for NX7)").overrides == [
        {"model": "NX7", "version": "1.29", "op": ""}]
    assert parse_expression("<= 2.0.0.10 (RES670 2.0.0.4 and prior)").overrides == [
        {"model": "RES670", "version": "2.0.0.4", "op": "<="}]
    assert parse_expression(" < 15.1 HF001  (including former Unity Pro)").aliases == [
        "Unity Pro"]
    windows = parse_expression("< 7.101 (only Microsoft Windows versions are affected)")
    assert windows.conditions == ["only Microsoft Windows versions are affected"]
    limited = parse_expression("1.000 (These products are sold in limited regions)")
    assert limited.conditions == [] and limited.remarks == [
        "These products are sold in limited regions"]
    cisco = parse_expression("< 15.2(6)E2a")  # a Cisco release is no remark
    assert cisco.kind == "range" and cisco.intervals[0].hi.version == "15.2(6)E2a"


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("14.4u1", "14.4 Update 1", 0),
    ("14.4", "14.4u1", -1),
    ("1p1r26", "1.1.26", 0),  # ABB Relion
    ("L2P-09.0.04", "9.0.4", 0),  # Hirschmann Classic
    ("6.1.1-2", "6.1.1-3", -1),
    ("6.8.9", "6.8.9 CU01", -1),
])
def test_vendor_version_spellings(a: str, b: str, expected: int) -> None:
    assert compare(parse_version(a), parse_version(b)) == expected


@pytest.mark.parametrize(("name", "product", "expected"), [
    ("SIMATIC HMI TP1200 Comfort", 'SIMATIC HMI Comfort Panel 12"', True),
    ("SIMATIC HMI TP1200 Comfort", 'SIMATIC HMI Comfort Panel 7"', False),
    ("SIMATIC HMI KTP1200 Basic", 'SIMATIC HMI Comfort Panel 12"', False),  # Basic, not Comfort
    ('SIMATIC HMI Comfort Panels 4" - 22"', 'SIMATIC HMI Comfort Panel 12 inch', True),
])
def test_a_panel_named_by_size_matches_an_advisory_naming_the_model(
        name: str, product: str, expected: bool) -> None:
    """The reverse of the size-named case: the device says its size, the advisory the model."""
    assert _names(name, product) is expected


def test_the_index_finds_a_model_named_entry_for_a_size_named_device(
        request: pytest.FixtureRequest) -> None:
    import json

    from otaudit.server.advisories.matcher import AdvisoryIndex, Identity
    from otaudit.server.advisories.normalise import normalise

    shared = request.getfixturevalue("shared_dir") / "advisories" / "csaf" / "icsa-22-286-14.json"
    if not shared.is_file():
        pytest.skip(f"{shared} is absent")
    index = AdvisoryIndex([normalise(json.loads(shared.read_text()))])
    verdicts = index.match(Identity("Siemens", 'SIMATIC HMI Basic Panel 7"', "KTP Basic", None,
                                    "V17 Update 4"))
    assert [(v.verdict, v.fixed_in) for v in verdicts] == [("affected", "V17 Update 5")]
    assert "KTP700 Basic" in verdicts[0].product_name
