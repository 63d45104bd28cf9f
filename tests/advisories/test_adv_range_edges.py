"""Every vers operator at its bound and one step either side (issue 23: boundaries first)."""

from __future__ import annotations

import pytest

from otaudit.server.advisories.ranges import parse_expression, position
from otaudit.server.advisories.versions import parse_version


def where(expr: str, version: str) -> str:
    return position(parse_expression(expr), parse_version(version), "generic").where


@pytest.mark.parametrize(("expr", "below", "at", "above"), [
    ("vers:generic/<2.0", "in", "above", "above"),
    ("vers:generic/<=2.0", "in", "in", "above"),
    ("vers:generic/>2.0", "outside", "outside", "in"),
    ("vers:generic/>=2.0", "outside", "in", "in"),
    ("vers:generic/=2.0", "outside", "in", "above"),
    ("vers:generic/2.0", "outside", "in", "above"),
])
def test_each_operator_at_its_bound(expr: str, below: str, at: str, above: str) -> None:
    assert (where(expr, "1.9"), where(expr, "2.0"), where(expr, "2.1")) == (below, at, above)


def test_exclusion_inside_a_range() -> None:
    expr = "vers:generic/>=1.0|!=1.2|<2.0"
    assert [where(expr, v) for v in ("0.9", "1.0", "1.1", "1.2", "1.3", "1.99", "2.0")] == [
        "outside", "in", "in", "outside", "in", "in", "above"]
    reason = position(parse_expression(expr), parse_version("1.2"), "generic").detail
    assert reason == "1.2 is excluded (!= 1.2)"


def test_exclusion_of_the_lower_bound_itself() -> None:
    expr = "vers:generic/>=1.0|!=1.0|<2.0"
    assert [where(expr, v) for v in ("1.0", "1.0.1")] == ["outside", "in"]


@pytest.mark.parametrize(("expr", "inside", "outside"), [
    (">= 1.0 and < 2.0", ["1.0", "1.99"], ["0.99", "2.0"]),
    ("> 1.0 and <= 2.0", ["1.0.1", "2.0"], ["1.0", "2.1"]),
])
def test_prose_bounds_inclusive_and_exclusive(expr: str, inside: list[str],
                                              outside: list[str]) -> None:
    for v in inside:
        assert where(expr, v) == "in", v
    for v in outside:
        assert where(expr, v) in ("outside", "above"), v


def test_an_unorderable_bound_is_unknown_not_a_verdict() -> None:
    assert where("vers:generic/<15.2(6)E0a", "16.1") == "unknown"


def test_no_version_keeps_what_was_given() -> None:
    assert (parse_expression("  ").kind, parse_expression("  ").raw) == ("none", "  ")
    assert (parse_expression(None).kind, parse_expression(None).raw) == ("none", "")


@pytest.mark.parametrize(("expr", "described"), [
    ("between 1.0 (including) and 2.0 (excluding)", ">= 1.0 and < 2.0"),
    ("between 1.0 (excluding) and 2.0 (including)", "> 1.0 and <= 2.0"),
    ("between 1.0 (including) and 2.0 (including)", ">= 1.0 and <= 2.0"),
    ("between 1.0 (excluding) and 2.0 (excluding)", "> 1.0 and < 2.0"),
])
def test_between_reads_each_bound_as_written(expr: str, described: str) -> None:
    assert parse_expression(expr).describe() == described


def test_an_article_number_means_all_versions_only_in_the_version_slot() -> None:
    in_slot = parse_expression("1234567", "product_version")
    assert (in_slot.kind, in_slot.article_numbers) == ("all", ["1234567"])
    assert "article_number_in_version" in in_slot.notes
    as_range = parse_expression("1234567")
    assert (as_range.kind, as_range.exact, as_range.article_numbers) == ("range", ["1234567"], [])


def test_unparsed_keeps_the_reason_only_when_there_is_one() -> None:
    assert parse_expression("< ").conditions == ["comparator '<' without a version"]
    spec = parse_expression("foo bar baz")
    assert (spec.kind, spec.conditions) == ("unparsed", [])


def test_a_version_in_parentheses_after_a_comparator_is_the_bound() -> None:
    spec = parse_expression("<=(R4.02)")
    assert (spec.describe(), spec.remarks) == ("<= R4.02", [])
    # not right after a comparator: information, the bound stays
    spec = parse_expression("<= 2.0 (1.9.0)")
    assert (spec.describe(), spec.remarks, "remark" in spec.notes) == ("<= 2.0", ["1.9.0"], True)


def test_model_overrides_keep_their_operator() -> None:
    assert parse_expression("< 2.0 (1.29 for NX7)").overrides == [
        {"model": "NX7", "version": "1.29", "op": ""}]
    assert parse_expression("< 3.0 (RES670 2.0.0.4 and prior)").overrides == [
        {"model": "RES670", "version": "2.0.0.4", "op": "<="}]


def test_a_release_line_remark_bounds_a_range_from_below() -> None:
    spec = parse_expression("< 6.5 (6.x series)")
    assert (spec.describe(), spec.reading) == (">= 6 and < 6.5",
                                               "the remark limits it to the 6.x line")
    assert [where("< 6.5 (6.x series)", v) for v in ("5.9", "6.0", "6.4", "6.5")] == [
        "outside", "in", "in", "above"]
    every = parse_expression("All versions (6.x series)")
    assert (every.kind, every.reading, every.intervals) == ("all", None, [])


@pytest.mark.parametrize(("expr", "notes"), [
    ("< 2.0", ["bare_comparator"]),
    ("2.0", []),
    ("vers:generic/2.0", ["vers"]),
    ("vers:all/*", ["vers_all"]),
    ("vers:generic/*", []),
    ("vers:generic/<2.0", ["vers"]),
    ("vers:generic/>=1.0|<2.0|>=3.0", ["vers", "pipe"]),
    ("2.0 | 2.1", ["pipe", "pipe_or"]),
    (">= 1.0 | < 2.0", ["pipe", "pipe_and", "bare_comparator"]),
    ("< 1.0 | >= 2.0 | < 3.0", ["pipe", "pipe_intervals", "bare_comparator"]),
    ("< 19.0.1 | < 18.0.1", ["pipe", "pipe_trains", "bare_comparator"]),
    ("All versions >= 2.0 and < 2.5", ["prose_range", "prose_range", "pipe", "pipe_and"]),
])
def test_notes_name_exactly_what_was_worked_around(expr: str, notes: list[str]) -> None:
    assert parse_expression(expr).notes == notes


def test_an_inclusive_bound_with_fewer_components_names_its_release() -> None:
    inside = position(parse_expression("<= 33"), parse_version("33.011"), "generic")
    assert (inside.where, inside.by_prefix) == ("in", True)
    assert inside.detail == '33.011 is <= 33 ("33" names the release 33.011 belongs to)'
    exact = position(parse_expression("<= 33"), parse_version("33"), "generic")
    assert (exact.where, exact.by_prefix) == ("in", False)
    assert [where("<= 33", v) for v in ("32.9", "34.001", "34")] == ["in", "above", "above"]
    # an exclusive bound, a bound as long as the version, a service-pack bound: no release
    assert where("< 33", "33.011") == "above"
    assert where("<= 33.0", "33.011") == "above"
    assert where("<= V16 SP1", "16.0.1.0.0.0.1") == "above"


def test_only_exact_versions_say_so() -> None:
    assert position(parse_expression("2.0"), parse_version("3.0"), "generic").exact_only
    for expr in ("< 2.0", ">= 1.0 | 1.5", "vers:generic/<2.0|2.5"):
        got = position(parse_expression(expr), parse_version("3.0"), "generic")
        assert not got.exact_only, expr


def test_an_article_number_stays_a_version_in_other_version_categories() -> None:
    for category in ("patch_level", "service_pack", "product_version_range"):
        spec = parse_expression("1234567", category)
        assert (spec.kind, spec.exact, spec.article_numbers) == ("range", ["1234567"], []), category


@pytest.mark.parametrize(("expr", "described"), [
    ("2.0 and earlier", "<= 2.0"), ("2.0 or earlier versions", "<= 2.0"),
    ("2.0 and later", ">= 2.0"), ("2.0 and higher", ">= 2.0"),
    ("prior to 2.0", "< 2.0"), ("versions before 2.0", "< 2.0"),
    ("up to 2.0", "<= 2.0"), ("through 2.0", "<= 2.0"),
])
def test_prose_bounds(expr: str, described: str) -> None:
    spec = parse_expression(expr)
    assert (spec.kind, spec.describe(), spec.notes[0]) == ("range", described, "prose_range")


@pytest.mark.parametrize(("kind_expr", "text"), [
    ("vers:all/*", "all versions"), ("All versions", "all versions"), ("", "no version given"),
    ("gibberish words here", "unparsed 'gibberish words here'"), ("= 2.0", "= 2.0"),
])
def test_descriptions_by_kind(kind_expr: str, text: str) -> None:
    assert parse_expression(kind_expr).describe() == text


def test_joined_trains_need_two_versions() -> None:
    spec = parse_expression("< 36.011_35.013")
    assert spec.describe() == "< 35.013 or >= 36 and < 36.011"
    assert spec.notes[0] == "joined_trains"
    # one version with a stray comma is not a list of trains
    assert parse_expression("< 2.0,").kind == "unparsed"


@pytest.mark.parametrize(("expr", "described"), [
    ("< 19.0.1 | < 18.0.1", "< 18.0.1 or >= 19 and < 19.0.1"),
    ("<= 2.0.0.10 | <= 2.1.0.1", "<= 2.0.0.10 or >= 2.1 and <= 2.1.0.1"),
    # nothing tells the bounds apart: each keeps no lower bound
    ("< 2.0.1 | < 2.0.5", "< 2.0.1 or < 2.0.5"),
    ("< 19 | < 18", "< 18 or < 19"),
    ("< 15.2(7)E2 | < 15.0(2)SE11", "< 15.0(2)SE11 or < 15.2(7)E2"),
])
def test_train_bounds(expr: str, described: str) -> None:
    spec = parse_expression(expr)
    assert spec.describe() == described
    assert spec.reading == ("several upper bounds without lower bounds were read as one bound "
                            "per release train: " + described.replace(" or ", "; "))


@pytest.mark.parametrize("expr", ["< 2.0", ">= 1.0 | < 2.0", "2.0 | 2.1", "vers:generic/<2.0"])
def test_no_reading_without_trains(expr: str) -> None:
    assert parse_expression(expr).reading is None
