"""Every ordered operator at equality and one step either side, on numbers, versions and
lengths (issue 23: a check that fires at exactly its threshold must be noticed)."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import TypeAdapter

from otaudit.server.baseline.conditions import compile_condition
from otaudit.server.baseline.format import Condition
from otaudit.server.baseline.model import FactRecord

NODE = TypeAdapter(Condition)
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
EXPECT = {"lt": (True, False, False), "le": (True, True, False),
          "gt": (False, False, True), "ge": (False, True, True)}


def run(op: str, bound, actual, as_: str | None = None):
    node = {"fact": "f.x", "op": op, "value": bound}
    if as_:
        node["as"] = as_
    ctx = {"f.x": FactRecord(value=actual, observation_id="o", probe="p", collected_at=T0)}
    return compile_condition(NODE.validate_python(node), {})(ctx, None)


@pytest.mark.parametrize("op", sorted(EXPECT))
def test_numbers_below_at_above(op: str) -> None:
    assert tuple(run(op, 8, v) for v in (7, 8, 9)) == EXPECT[op]


@pytest.mark.parametrize("op", sorted(EXPECT))
def test_floats_below_at_above(op: str) -> None:
    assert tuple(run(op, 0.5, v) for v in (0.49, 0.5, 0.51)) == EXPECT[op]


@pytest.mark.parametrize("op", sorted(EXPECT))
def test_versions_below_at_above(op: str) -> None:
    got = tuple(run(op, "V4.5", v, "version") for v in ("V4.4.9", "V4.5.0", "V4.5.1"))
    assert got == EXPECT[op]


@pytest.mark.parametrize("op", sorted(EXPECT))
def test_siemens_update_spelling_at_the_bound(op: str) -> None:
    got = tuple(run(op, "V7.5 SP2 Update 16", v, "version")
                for v in ("7.5.2.15", "7.5.2.16", "V7.5 SP2 Update 17"))
    assert got == EXPECT[op]


@pytest.mark.parametrize("op", sorted(EXPECT))
def test_lengths_below_at_above(op: str) -> None:
    assert tuple(run(op, 3, v, "length") for v in (["a"] * 2, ["a"] * 3, ["a"] * 4)) == EXPECT[op]


@pytest.mark.parametrize("op", ["eq", "ne"])
def test_equality_ops_at_the_value(op: str) -> None:
    assert (run(op, 8, 8), run(op, 8, 9)) == ((True, False) if op == "eq" else (False, True))


@pytest.mark.parametrize("op", sorted(EXPECT))
def test_unorderable_values_are_unknown(op: str) -> None:
    assert run(op, 8, True) is None
    assert run(op, 8, "eight") is None
    assert run(op, "V4.5", "not a version", "version") is None
