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
