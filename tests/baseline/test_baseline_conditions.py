"""Operators, three-valued groups and version ordering."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from otaudit.server.baseline.conditions import Trace, compile_condition, describe
from otaudit.server.baseline.format import Condition, Leaf
from otaudit.server.baseline.model import FactRecord
from otaudit.server.baseline.versions import VersionError, compare, version_key

NODE = TypeAdapter(Condition)
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def facts(**values):
    return {k.replace("__", "."): FactRecord(value=v, observation_id="o", probe="p",
                                             collected_at=T0) for k, v in values.items()}


def run(node, ctx, params=None, trace=None):
    return compile_condition(NODE.validate_python(node), params or {})(ctx, trace)


# Leaves: a.x is True, b.x is False (as facts), c.x is missing.
TRUE = {"fact": "a.x", "op": "eq", "value": True}
FALSE = {"fact": "b.x", "op": "eq", "value": True}
UNKNOWN = {"fact": "c.x", "op": "eq", "value": True}
CTX = facts(a__x=True, b__x=False)
LEAF = {True: TRUE, False: FALSE, None: UNKNOWN}


@pytest.mark.parametrize(("group", "children", "expected"), [
    ("all", [True, True], True), ("all", [True, False], False), ("all", [True, None], None),
    ("all", [False, None], False),
    ("any", [False, False], False), ("any", [False, True], True), ("any", [False, None], None),
    ("any", [True, None], True),
    ("none", [False, False], True), ("none", [False, True], False), ("none", [False, None], None),
    ("none", [True, None], False),
])
def test_group_truth_table(group, children, expected):
    assert run({group: [LEAF[c] for c in children]}, CTX) is expected


@pytest.mark.parametrize(("op", "value", "actual", "expected"), [
    ("eq", 3, 3, True), ("eq", 3, 4, False), ("eq", True, 1, None), ("eq", [], [], True),
    ("ne", "RUN", "STOP", True), ("ne", False, "no", None),
    ("in", ["a", "b"], "a", True), ("in", ["a", "b"], "c", False), ("in", ["a"], 1, None),
    ("not_in", ["MD5"], "SHA", True), ("not_in", ["MD5"], "MD5", False),
    ("lt", 3, 2, True), ("le", 3, 3, True), ("gt", 0, 0, False), ("ge", 12, 15, True),
    ("ge", 12, "15", None), ("ge", 1, True, None), ("lt", 1, None, None),
    ("regex", r"^6ES7 ?[25]1", "6ES7 214-1AG40-0XB0", True),
    ("regex", r"^6ES7 ?[25]1", "6ES7 315-2EH14-0AB0", False), ("regex", r"\S", 5, None),
    ("not_regex", r"^v1", "v2", True),
    ("contains", "x", ["x", "y"], True), ("contains", "z", ["x"], False),
    ("contains", "ssh", "openssh", True), ("not_contains", "x", ["x"], False),
    ("intersects", ["a", "b"], ["b", "c"], True), ("intersects", ["a"], ["c"], False),
    ("disjoint", ["a"], ["c"], True), ("disjoint", ["a"], ["a"], False),
    ("disjoint", ["a"], "a", None),
])
def test_operator(op, value, actual, expected):
    assert run({"fact": "f.x", "op": op, "value": value}, facts(f__x=actual)) is expected


def test_missing_fact_is_unknown_except_exists():
    empty: dict = {}
    for op, value in (("eq", 1), ("ne", 1), ("in", [1]), ("not_in", [1]), ("lt", 1),
                      ("regex", "x"), ("disjoint", ["a"]), ("contains", "a")):
        assert run({"fact": "f.x", "op": op, "value": value}, empty) is None, op
    assert run({"fact": "f.x", "op": "exists"}, empty) is False
    assert run({"fact": "f.x", "op": "exists"}, facts(f__x=None)) is True


def test_transforms():
    ctx = facts(f__v="V4.5.2", f__l=["a", "b"], f__s="SHA512")
    assert run({"fact": "f.v", "op": "ge", "value": "V4.5", "as": "version"}, ctx) is True
    assert run({"fact": "f.v", "op": "lt", "value": "4.10", "as": "version"}, ctx) is True
    assert run({"fact": "f.v", "op": "in", "value": ["v4.5.2"], "as": "version"}, ctx) is True
    assert run({"fact": "f.l", "op": "ge", "value": 2, "as": "length"}, ctx) is True
    assert run({"fact": "f.s", "op": "in", "value": ["sha512"], "as": "lower"}, ctx) is True
    assert run({"fact": "f.s", "op": "ge", "value": "1", "as": "version"}, facts(f__s="n/a")
               ) is None


def test_item_quantifiers():
    users = [{"name": "a", "secret_type": "9"}, {"name": "b", "secret_type": "7"}]
    weak = {"key": "secret_type", "op": "in", "value": ["0", "7"]}
    ctx = facts(u__l=users)
    assert run({"fact": "u.l", "op": "any_item", "where": weak}, ctx) is True
    assert run({"fact": "u.l", "op": "no_item", "where": weak}, ctx) is False
    assert run({"fact": "u.l", "op": "all_items", "where": weak}, ctx) is False
    assert run({"fact": "u.l", "op": "no_item", "where": weak}, facts(u__l=[])) is True
    # an item without the key is unknown, so "no weak item" cannot be concluded
    partial = facts(u__l=[{"name": "c"}])
    assert run({"fact": "u.l", "op": "no_item", "where": weak}, partial) is None
    scalars = facts(s__l=["telnet", "ssh"])
    assert run({"fact": "s.l", "op": "any_item", "where": {"op": "eq", "value": "telnet"}},
               scalars) is True


def test_parameters_are_bound_per_level_and_described():
    node = NODE.validate_python({"fact": "p.n", "op": "ge", "value": "$min"})
    assert compile_condition(node, {"min": 3})(facts(p__n=2), None) is False
    assert compile_condition(node, {"min": 2})(facts(p__n=2), None) is True
    assert describe(node, {"min": 3}) == "p.n ge 3"
    assert describe(node) == "p.n ge $min"


def test_trace_records_fact_leaves():
    trace: list[Trace] = []
    run({"all": [TRUE, UNKNOWN]}, CTX, trace=trace)
    assert [(t.fact, t.present, t.result) for t in trace] == [("a.x", True, True),
                                                              ("c.x", False, None)]


@pytest.mark.parametrize("bad", [
    {"fact": "a.b", "op": "in", "value": "x"},
    {"fact": "a.b", "op": "regex", "value": "("},
    {"fact": "a.b", "op": "exists", "value": 1},
    {"fact": "a.b", "op": "no_item"},
    {"fact": "a.b", "key": "c", "op": "eq", "value": 1},
    {"fact": "a.b", "op": "eq", "value": 1, "where": {"op": "eq", "value": 1}},
    {"all": []},
    {"fact": "a.b", "op": "like", "value": 1},
])
def test_malformed_leaves_are_rejected(bad):
    with pytest.raises(ValidationError):
        NODE.validate_python(bad)


@pytest.mark.parametrize("ordered", [
    ["V2.9", "V2.9.4", "V4.0", "V4.5", "V4.5.2", "V4.10"],
    ["15.2(4)E", "15.2(6)E0a", "15.2(6)E2", "15.2(7)E"],
    ["1.0", "1.0a", "1.0b", "1.1", "2.30", "09.0.04", "10.0"],
    ["V7.5 SP1", "V7.5 SP2 Update 15", "7.5.2.16", "V7.5 SP2 Update 17", "V8.0"],
])
def test_version_order(ordered):
    for older, newer in itertools.pairwise(ordered):
        assert compare(older, newer) == -1, (older, newer)
        assert compare(newer, older) == 1
    assert compare("v4.5", "V4.5") == 0


@pytest.mark.parametrize(("a", "b"), [
    ("V4.5", "V4.5.0"),  # missing components are zeros, as in advisories ("< V4.5" == "< V4.5.0")
    ("V7.5 SP2 Update 16", "7.5.2.16"),  # Siemens' dotted spelling of the same release
    ("V17 Upd4", "V17 Update 4"),
    ("SV4.10", "4.10"),
])
def test_equal_spellings(a, b):
    assert compare(a, b) == 0 and version_key(a) == version_key(b)


def test_one_comparator_for_checks_and_advisories():
    """The baseline's ordering is the advisory matcher's, pair by pair (issue 13 point 8)."""
    from otaudit.server.advisories.versions import compare as adv_compare
    from otaudit.server.advisories.versions import parse_version

    spellings = ["V4.5", "V4.5.0", "4.5.2", "V7.5 SP2 Update 16", "7.5.2.16", "V7.5 SP2 Update 8",
                 "15.2(6)E0a", "15.2(7)E3", "1.03", "1.03D", "SV3.00", "V2.9.4", "V16"]
    for a in spellings:
        for b in spellings:
            pa, pb = parse_version(a), parse_version(b)
            try:
                expected = adv_compare(pa, pb)
            except ValueError:
                with pytest.raises(VersionError):
                    compare(a, b)
                continue
            assert compare(a, b) == expected, (a, b)


def test_other_trains_are_unknown_in_a_condition(ctx_factory=None):
    ctx = facts(f__v="15.2(7)E3")
    assert run({"fact": "f.v", "op": "ge", "value": "15.2(6)EA1", "as": "version"}, ctx) is None


def test_version_without_digits():
    with pytest.raises(VersionError):
        version_key("unknown")


@given(st.lists(st.integers(0, 50), min_size=1, max_size=4),
       st.lists(st.integers(0, 50), min_size=1, max_size=4))
def test_numeric_versions_order_like_tuples(a, b):
    """Dotted numbers order like tuples padded with zeros (4.5 == 4.5.0 < 4.5.1)."""
    va, vb = ".".join(map(str, a)), ".".join(map(str, b))
    n = max(len(a), len(b))
    pa, pb = a + [0] * (n - len(a)), b + [0] * (n - len(b))
    assert compare(va, vb) == (pa > pb) - (pa < pb)


def test_leaf_model_roundtrip():
    leaf = Leaf.model_validate({"fact": "a.b", "op": "ge", "value": 1, "as": "length"})
    assert leaf.as_ == "length"
