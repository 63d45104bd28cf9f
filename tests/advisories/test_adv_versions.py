"""Vendor-aware versions, version expressions, fix texts; property tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otaudit.server.advisories.fixes import Mentions, fix_versions
from otaudit.server.advisories.matcher import AdvisoryIndex, Identity
from otaudit.server.advisories.names import normalise_vendor, product_name
from otaudit.server.advisories.normalise import normalise
from otaudit.server.advisories.ranges import VersionSpec, parse_expression, position
from otaudit.server.advisories.versions import Incomparable, compare, parse_version

FIXTURES = Path(__file__).parent.parent / "fixtures" / "csaf"


def _cmp(a: str, b: str, scheme: str = "generic") -> int:
    va, vb = parse_version(a, scheme), parse_version(b, scheme)
    assert va is not None and vb is not None
    return compare(va, vb)


@pytest.mark.parametrize(("a", "b", "want"), [
    ("V4.5.2", "4.5.2", 0),
    ("V4.5", "V4.5.0", 0),
    ("V7.5 SP2 Update 16", "7.5.2.16", 0),
    ("V17 Upd4", "V17 Update 4", 0),
    ("<V7.5_SP2_Update_16".lstrip("<"), "V7.5 SP2 Update 16", 0),
    ("V16 Update 3a", "V16 Update 3", 1),
    ("V9.1 SP1 UC01", "V9.1 SP2", -1),
    ("15.2(6)E2a", "15.2(6)E0a", 1),
    ("15.2(7)E3", "15.2(6)E2a", 1),
    ("v.32.011", "32.11", 0),
    ("Firmware__20.054_kit1", "20.054", 1),
    ("SV2.80", "2.80", 0),
    ("1.03D", "1.03", 1),
    ("MX-V4.7.3.11-r6", "MX-V4.7.3.11", 1),
])
def test_version_order(a: str, b: str, want: int) -> None:
    assert _cmp(a, b) == want


def test_schneider_two_digit_minor() -> None:
    assert _cmp("2.3", "2.30", "schneider") == 0
    assert _cmp("2.3", "2.30", "generic") == -1
    assert _cmp("2.8", "2.80", "schneider") == 0


def test_cisco_trains_are_incomparable() -> None:
    with pytest.raises(Incomparable):
        _cmp("15.2(6)E2a", "15.2(4)EA7")


def test_wildcards_resolve_against_installed() -> None:
    bound = parse_version("V3.X.16")
    installed = parse_version("V3.2.15")
    assert bound is not None and installed is not None
    assert bound.resolved(installed).raw == "V3.2.16"
    assert compare(installed, bound) == -1


@pytest.mark.parametrize(("expr", "kind", "notes", "inside", "outside"), [
    ("vers:all/*", "all", {"vers_all"}, ["1.0"], []),
    ("vers:all/<V3.1.4", "range", {"invalid_vers"}, ["V3.1.3"], ["V3.1.4"]),
    ("vers:all/>=V3.0.1<V3.0.3", "range", {"vers_missing_pipe"}, ["V3.0.2"], ["V3.0.3", "V3.0"]),
    ("< V4.5.0", "range", {"bare_comparator"}, ["V4.4.9"], ["V4.5"]),
    ("All versions >= V2.0 and < V2.5", "range", {"prose_range"}, ["V2.0"], ["V1.9", "V2.5"]),
    (">= 1.0 | <= 1.32", "range", {"pipe_and"}, ["1.0", "1.32"], ["1.33"]),
    ("28.011 | 28.012 | 28.013", "range", {"pipe_or"}, ["28.012"], ["28.014"]),
    ("> 4.001 | < 4.005 | > 5.011 | < 5.017", "range", {"pipe_intervals"}, ["5.012"],
     ["4.010", "5.017"]),
    ("< 15.1 | 7", "range", {"pipe_word"}, ["V15.1 Update 6"], ["V15.1 Update 7"]),
    ("< 4.8 | SP5", "range", {"pipe_word"}, ["4.8 SP4"], ["4.8 SP5"]),
    ("<v36.011_v35.013_v34.014", "range", {"joined_trains"}, ["35.012"], ["35.013", "36.011"]),
    ("6.011 and 6.012", "range", {"prose_list"}, ["6.012"], ["6.013"]),
    ("V1.81.01 - V1.81.03", "range", {"hyphen_range"}, ["V1.81.02"], ["V1.81.04"]),
    ("vers:intdot/>=1.2.3|<2.0.0", "range", {"vers"}, ["1.9"], ["2.0.0"]),
    ("All versions", "all", {"prose_all"}, ["9.9"], []),
])
def test_expressions(expr: str, kind: str, notes: set[str], inside: list[str],
                     outside: list[str]) -> None:
    spec = parse_expression(expr)
    assert spec.kind == kind
    assert notes <= set(spec.notes)
    for v in inside:
        assert position(spec, parse_version(v), "generic").where == "in", v
    for v in outside:
        assert position(spec, parse_version(v), "generic").where in ("above", "outside"), v


@pytest.mark.parametrize("expr", ["<=the_first_5_digits_of_serial_number_24031",
                                  "< January 31 2014", "No version", ""])
def test_unparseable_expressions_are_kept_raw(expr: str) -> None:
    spec = parse_expression(expr)
    assert spec.kind in ("unparsed", "none")
    if spec.kind == "unparsed":
        assert spec.raw == expr
        assert position(spec, parse_version("1.0"), "generic").where == "unknown"


def test_conditions_are_kept() -> None:
    spec = parse_expression("NMC2 <= 6.9.6")
    assert spec.conditions == ["NMC2"]


@pytest.mark.parametrize(("text", "want"), [
    ("Update to V3.1.4 or later version", ["V3.1.4"]),
    ("Firmware SV4.10 includes a fix", ["SV4.10"]),
    ("Update to V7.5 SP2 Update 16 or later version", ["V7.5 SP2 Update 16"]),
    ("upgrade to firmware Version 1.33 or higher", ["1.33"]),
    ("ControlLogix 5580: v33.017, v34.014, v35.013 and later", ["v33.017", "v34.014", "v35.013"]),
    ("FRN 15.2(6)E2a: Allen-Bradley Stratix 5400", ["15.2(6)E2a"]),
    ("Update your entire solution to TIA Portal V17 and use TLS", []),
    ("Restrict network access to affected devices", []),
])
def test_fix_versions(text: str, want: list[str]) -> None:
    assert fix_versions(text) == want


def test_mentions_prefer_the_longest_name() -> None:
    mentions = Mentions({"1": ["Allen-Bradley Stratix 5700"],
                         "2": ["Allen-Bradley ArmorStratix 5700"],
                         "3": ["ControlLogix 5580"], "4": ["ControlLogix 5580 Process"]})
    assert mentions("FRN 15.2(6)E2a: Allen-Bradley ArmorStratix 5700") == {"2"}
    assert mentions("ControlLogix 5580 Process: v33.017") == {"4"}
    assert mentions("ControlLogix 5580: v33.017") == {"3"}
    assert mentions("Restrict network access") == set()


def test_vendor_spellings() -> None:
    for raw in ("Schneider Electric", "Schneider Electric ", "Schneider Electric Software, LLC"):
        assert normalise_vendor(raw) == {"schneider electric"}
    assert normalise_vendor("Hirschmann Automation and Control GmbH, Belden Inc.") == {
        "hirschmann"}
    assert normalise_vendor("PHOENIX CONTACT, Innominate Security Technologies") == {
        "phoenix contact"}
    assert normalise_vendor("MOXA") == normalise_vendor("Moxa")


def test_product_names_keep_model_families_apart() -> None:
    assert product_name("SCALANCE XC-200").tokens != product_name("SCALANCE X-200").tokens
    assert "5570" in product_name("ControlLogix 5570 controllers").tokens
    name = product_name("SIMATIC WinCC V7.4 and earlier")
    assert name.name_filter is not None and name.name_filter.op == "<="
    assert "(tia" not in product_name("SIMATIC WinCC (TIA Portal)").tokens
    assert "tia" in product_name("SIMATIC WinCC (TIA Portal)").tokens
    assert product_name("Modicon M340 CPU (part numbers BMXP34*)").order_patterns == (
        "BMXP34*",)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_parsers_never_raise(text: str) -> None:
    """Any text: a version that reads back the same, a spec that keeps its text and
    survives storage, and a position that follows the kind of the spec."""
    version = parse_version(text)
    if version is not None:
        assert parse_version(version.raw) == version
    spec = parse_expression(text)
    assert spec.raw == text and spec.kind in ("all", "range", "unparsed", "none")
    assert VersionSpec.from_dict(spec.to_dict()) == spec
    installed = parse_version("1.2.3")
    assert installed is not None
    where = position(spec, installed, "generic").where
    if spec.kind in ("all", "none"):
        assert where == "in"
    elif spec.kind == "unparsed":
        assert where == "unknown"
    else:
        assert spec.intervals or spec.exact
        assert where in ("in", "above", "outside", "unknown")
    assert all(isinstance(v, str) and v for v in fix_versions(text))


_INDEX: list[AdvisoryIndex] = []


def _fixture_index() -> AdvisoryIndex:
    if not _INDEX:
        _INDEX.append(AdvisoryIndex(normalise(json.loads(p.read_text()))
                                    for p in sorted(FIXTURES.glob("*.json"))))
    return _INDEX[0]


_DEVICES = [
    ("Siemens", "SIMATIC S7-1200", "6ES7 214-1AG40-0XB0"), ("Siemens", "SIMATIC S7-300", None),
    ("Schneider Electric", "Modicon M340", "BMXP342020"), ("Rockwell Automation",
                                                          "ControlLogix 5580", "1756-L85E"),
    ("Rockwell Automation", "Stratix 5400", None), ("Moxa", "NPort 5110", None),
    ("Siemens", "TIA Portal", None), ("Siemens", "SIMATIC WinCC", None),
]
_VERSIONS = st.one_of(
    st.builds(lambda a, b, c: f"V{a}.{b}.{c}", st.integers(0, 40), st.integers(0, 20),
              st.integers(0, 30)),
    st.builds(lambda a, b: f"{a}.{b:03d}", st.integers(15, 40), st.integers(0, 60)),
    st.builds(lambda a, b, c: f"15.2({a})E{b}{c}", st.integers(1, 9), st.integers(0, 9),
              st.sampled_from(["", "a", "b"])),
    st.builds(lambda a, b, c: f"V{a}.{b} SP{c} Update {c + 3}", st.integers(5, 20),
              st.integers(0, 5), st.integers(0, 3)),
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_DEVICES), _VERSIONS)
def test_never_proposes_a_fix_at_or_below_the_installed_version(device: tuple, version: str
                                                                ) -> None:
    vendor, product, order = device
    installed = parse_version(version, "schneider" if vendor.startswith("Schneider")
                              else "generic")
    assert installed is not None
    for verdict in _fixture_index().match(Identity(vendor, product, None, order, version)):
        assert verdict.verdict in ("affected", "fixed", "not_affected", "needs_review")
        if verdict.fixed_in is not None:
            fix = parse_version(verdict.fixed_in, "schneider" if vendor.startswith("Schneider")
                                else "generic")
            assert fix is not None
            assert compare(fix, installed) > 0, verdict.reason
