"""What a condition says about itself: descriptions, unknown-notes, item notes and the
leaves it reads, each exact (issue 23: mutation survivors of conditions.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from pydantic import TypeAdapter

from otaudit.server.baseline.conditions import (
    Trace,
    compile_condition,
    describe,
    fact_paths,
    leaves,
)
from otaudit.server.baseline.format import Condition
from otaudit.server.baseline.model import FactRecord

NODE = TypeAdapter(Condition)
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
EQ_A = {"fact": "a.b", "op": "eq", "value": 1}
EXISTS_C = {"fact": "c", "op": "exists"}


def facts(**values) -> dict[str, FactRecord]:
    return {k.replace("_", "."): FactRecord(value=v, observation_id="o", probe="p",
                                            collected_at=T0) for k, v in values.items()}


def evaluate(node: dict, ctx: dict) -> tuple[bool | None, list[Trace]]:
    trace: list[Trace] = []
    return compile_condition(NODE.validate_python(node), {})(ctx, trace), trace


@pytest.mark.parametrize(("node", "text"), [
    ({"all": [EQ_A]}, "a.b eq 1"),
    ({"all": [EQ_A, EXISTS_C]}, "all(a.b eq 1; c exists)"),
    ({"all": [EQ_A, EXISTS_C, EQ_A]}, "all(a.b eq 1; c exists; a.b eq 1)"),
    ({"any": [EQ_A]}, "any(a.b eq 1)"),
    ({"none": [EQ_A]}, "none(a.b eq 1)"),
    ({"any": [EQ_A, {"all": [EXISTS_C]}]}, "any(a.b eq 1; c exists)"),
    ({"fact": "svc", "op": "any_item", "where": {"key": "port", "op": "eq", "value": 22}},
     "svc any_item [item.port eq 22]"),
    ({"fact": "svc", "op": "no_item", "where": {"op": "eq", "value": "x"}},
     "svc no_item [item eq x]"),
])
def test_descriptions(node: dict, text: str) -> None:
    assert describe(NODE.validate_python(node)) == text


@pytest.mark.parametrize(("actual", "note"), [
    (None, "no value reported, expected a number"),
    ("abc", "'abc' is a text, expected a number"),
    (True, "True is a bool, expected a number"),
    (0, ""),
])
def test_unknown_notes_name_what_was_reported(actual, note: str) -> None:
    result, trace = evaluate({"fact": "f", "op": "eq", "value": 3}, facts(f=actual))
    assert (result, trace[0].note) == (None if note else False, note)


def test_traces_are_frozen() -> None:
    _, trace = evaluate(EQ_A, facts(a_b=1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        trace[0].result = False  # type: ignore[misc]


SSH_PORT = {"key": "port", "op": "eq", "value": 22}


def test_item_note_names_the_first_unknown_item() -> None:
    items = [{"name": "a", "port": 22}, {"name": "b", "port": "x"}, {"name": "c"}]
    result, trace = evaluate({"fact": "svc", "op": "no_item", "where": SSH_PORT}, facts(svc=items))
    assert result is False
    assert trace[0].note == "item 1 (name=b): item.port 'x' is a text, expected a number"


def test_item_note_for_a_missing_key() -> None:
    items = [{"name": "a", "port": 23}, {"host": "h1"}]
    result, trace = evaluate({"fact": "svc", "op": "any_item", "where": SSH_PORT},
                             facts(svc=items))
    assert result is None
    assert trace[0].note == "item 1 (host=h1): item.port missing"


def test_all_items_is_the_kleene_and() -> None:
    node = {"fact": "svc", "op": "all_items", "where": SSH_PORT}
    assert evaluate(node, facts(svc=[{"port": 22}, {"port": 22}]))[0] is True
    assert evaluate(node, facts(svc=[{"port": 22}, {"port": 23}]))[0] is False
    assert evaluate(node, facts(svc=[{"port": 22}, {}]))[0] is None
    assert evaluate(node, facts(svc=[]))[0] is True


@pytest.mark.parametrize(("item", "shown"), [
    ({"id": 7, "host": "h", "x": 1}, "host=h"),
    ({"id": 7, "x": 1}, "id=7"),
    ({"name": "n", "host": "h", "id": 7}, "name=n"),
    ("p" * 40, "p" * 40),
    ("q" * 41, "q" * 37 + "..."),
    ("r" * 39, "r" * 39),
    ({"x": "y"}, "{'x': 'y'}"),
])
def test_items_are_shown_briefly(item, shown: str) -> None:
    where = {"key": "port", "op": "eq", "value": 22} if isinstance(item, dict) else \
        {"op": "gt", "value": 1}
    _, trace = evaluate({"fact": "svc", "op": "any_item", "where": where}, facts(svc=[item]))
    assert trace[0].note.startswith(f"item 0 ({shown}): ")


def test_fact_paths_and_leaves_of_every_group() -> None:
    inner = {"fact": "svc", "op": "any_item", "where": SSH_PORT}
    for kind in ("all", "any", "none"):
        node = NODE.validate_python({kind: [EQ_A, {"none": [EXISTS_C]}, inner]})
        assert [path for path, _ in fact_paths(node)] == ["a.b", "c", "svc"], kind
        got = [(leaf.fact, leaf.key, leaf.op) for leaf in leaves(node)]
        assert got == [("a.b", None, "eq"), ("c", None, "exists"), ("svc", None, "any_item"),
                       (None, "port", "eq")], kind


def test_traces_keep_the_actual_value_or_none_when_missing() -> None:
    result, trace = evaluate({"fact": "f", "op": "eq", "value": 3}, facts(f=5))
    assert (result, trace[0].present, trace[0].actual) == (False, True, 5)
    result, trace = evaluate({"fact": "f", "op": "eq", "value": 3}, {})
    assert (result, trace[0].present, trace[0].actual, trace[0].note) == (
        None, False, None, "not collected")


@pytest.mark.parametrize(("bound", "actual", "note"), [
    (8, None, "cannot order None"),
    (8, True, "cannot order True"),
    (True, 1, "cannot order 1"),
    (8, "eight", "cannot compare 'eight' with 8"),
])
def test_ordering_refuses_booleans_and_nothing(bound, actual, note: str) -> None:
    result, trace = evaluate({"fact": "f", "op": "lt", "value": bound}, facts(f=actual))
    assert (result, trace[0].note) == (None, note)


def test_lower_case_applies_to_every_text_of_a_list() -> None:
    node = {"fact": "f", "op": "contains", "value": "TelNet", "as": "lower"}
    assert evaluate(node, facts(f=["SSH", "TELNET", 23]))[0] is True
    assert evaluate(node, facts(f=["SSH", 23]))[0] is False
    assert evaluate(node, facts(f="Telnet enabled"))[0] is True
    result, trace = evaluate(node, facts(f=23))
    assert (result, trace[0].note) == (None, "cannot lower-case int")
