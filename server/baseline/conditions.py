"""Operators and three-valued evaluation of condition trees.

A node evaluates to ``True``, ``False`` or ``None`` (unknown). A leaf over a fact that
was not collected is unknown, except ``exists`` (false); a value the operator cannot
handle (wrong type, unparsable version) is unknown too, never a failure. Groups follow
Kleene logic:

=========  ======================  ========================  =====================
group      any child False         else any child unknown    else
=========  ======================  ========================  =====================
``all``    False                   unknown                   True
``any``    True if any child True, else unknown if any unknown, else False
``none``   True if no child True and none unknown; False if any child True; else unknown
=========  ======================  ========================  =====================

Because removing a fact can only turn a leaf's True/False into unknown, and every group
is monotone in that sense, a missing fact never turns a result into ``fail``.

``compile_condition(node, params)`` binds ``$parameters`` for one Security Level and
returns a function ``(facts, trace) -> bool | None``; when ``trace`` is a list, every
fact-level leaf appends a ``Trace`` entry (the evidence of the finding).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from otaudit.server.baseline.format import (
    ITEM_OPS,
    AllOf,
    AnyOf,
    Leaf,
    NoneOf,
    is_param,
)
from otaudit.server.baseline.versions import VersionError, VersionKey, version_key

Tri = bool | None
Evaluator = Callable[[Any, "list[Trace] | None"], Tri]
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Trace:
    """One assertion as evaluated: fact, operator, bound expectation, actual value."""

    fact: str
    op: str
    expected: Any
    present: bool
    actual: Any
    result: Tri
    note: str = ""


class Incomparable(Exception):
    """The actual value cannot be handled by the operator (→ unknown)."""


def _category(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str | tuple | VersionKey):  # parsed versions compare with versions
        return "text"
    return "none" if v is None else type(v).__name__


def _what(a: Any) -> str:
    return "no value reported" if a is None else f"{a!r} is a {_category(a)}"


def _same(a: Any, b: Any) -> bool:
    """Equality that does not confuse booleans with 0/1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _equal(a: Any, b: Any) -> bool:
    """``eq``: a value of another kind than expected is not comparable (→ unknown)."""
    if _category(a) != _category(b):
        raise Incomparable(f"{_what(a)}, expected a {_category(b)}")
    return _same(a, b)


def _member(a: Any, items: list[Any]) -> bool:
    return any(_same(a, x) for x in items)


def _in(a: Any, items: list[Any]) -> bool:
    """``in``: a value of a kind none of the items has is not comparable (→ unknown)."""
    if items and all(_category(a) != _category(x) for x in items):
        raise Incomparable(f"{_what(a)}, expected one of {items!r}")
    return _member(a, items)


def _as_list(a: Any) -> list[Any]:
    if not isinstance(a, list):
        raise Incomparable(f"expected a list, got {type(a).__name__}")
    return a


def _ordered(cmp: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def run(a: Any, b: Any) -> bool:
        if isinstance(a, bool) or isinstance(b, bool) or a is None:
            raise Incomparable(f"cannot order {a!r}")
        try:
            return cmp(a, b)
        except TypeError:
            raise Incomparable(f"cannot compare {a!r} with {b!r}") from None
    return run


def _contains(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return b in a
    return _member(b, _as_list(a))


def _intersects(a: Any, b: Any) -> bool:
    return any(_member(x, b) for x in _as_list(a))


def _regex(a: Any, pattern: re.Pattern[str]) -> bool:
    if not isinstance(a, str):
        raise Incomparable(f"regex needs a string, got {type(a).__name__}")
    return pattern.search(a) is not None


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _equal,
    "ne": lambda a, b: not _equal(a, b),
    "in": _in,
    "not_in": lambda a, b: not _in(a, b),
    "lt": _ordered(lambda a, b: a < b),
    "le": _ordered(lambda a, b: a <= b),
    "gt": _ordered(lambda a, b: a > b),
    "ge": _ordered(lambda a, b: a >= b),
    "regex": _regex,
    "not_regex": lambda a, b: not _regex(a, b),
    "contains": _contains,
    "not_contains": lambda a, b: not _contains(a, b),
    "intersects": _intersects,
    "disjoint": lambda a, b: not _intersects(a, b),
}


def _transform(kind: str | None) -> Callable[[Any], Any]:
    if kind is None:
        return lambda v: v
    if kind == "version":
        def to_version(v: Any) -> Any:
            if isinstance(v, list):
                return [to_version(x) for x in v]
            try:
                return version_key(v)
            except VersionError as exc:
                raise Incomparable(str(exc)) from None
        return to_version
    if kind == "length":
        def length(v: Any) -> int:
            if isinstance(v, list | str | dict):
                return len(v)
            raise Incomparable(f"no length for {type(v).__name__}")
        return length

    def lower(v: Any) -> Any:
        if isinstance(v, str):
            return v.lower()
        if isinstance(v, list):
            return [x.lower() if isinstance(x, str) else x for x in v]
        raise Incomparable(f"cannot lower-case {type(v).__name__}")
    return lower


def bind(value: Any, params: Mapping[str, Any]) -> Any:
    """Replace a ``$name`` value by the parameter's value at the level being evaluated."""
    if is_param(value):
        return params[value[1:]]
    return value


def describe(node: Any, params: Mapping[str, Any] | None = None) -> str:
    """Readable form of a condition, with parameters bound when ``params`` is given."""
    if isinstance(node, AllOf | AnyOf | NoneOf):
        kind = "all" if isinstance(node, AllOf) else "any" if isinstance(node, AnyOf) else "none"
        children = getattr(node, kind)
        inner = "; ".join(describe(c, params) for c in children)
        return inner if kind == "all" and len(children) == 1 else f"{kind}({inner})"
    leaf: Leaf = node
    subject = leaf.fact or (f"item.{leaf.key}" if leaf.key else "item")
    if leaf.as_ == "length":
        subject = f"len({subject})"
    elif leaf.as_:
        subject = f"{leaf.as_}({subject})"
    if leaf.op == "exists":
        return f"{subject} exists"
    if leaf.op in ITEM_OPS:
        return f"{subject} {leaf.op} [{describe(leaf.where, params)}]"
    value = bind(leaf.value, params) if params is not None else leaf.value
    return f"{subject} {leaf.op} {_show(value)}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value and " " not in value else repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def compile_condition(node: Any, params: Mapping[str, Any]) -> Evaluator:
    """Compile ``node`` with parameters bound; see the module docstring for semantics."""
    if isinstance(node, AllOf):
        return _group([compile_condition(c, params) for c in node.all], _kleene_all)
    if isinstance(node, AnyOf):
        return _group([compile_condition(c, params) for c in node.any], _kleene_any)
    if isinstance(node, NoneOf):
        return _group([compile_condition(c, params) for c in node.none], _kleene_none)
    return _compile_leaf(node, params)


def _kleene_all(results: list[Tri]) -> Tri:
    if False in results:
        return False
    return None if None in results else True


def _kleene_any(results: list[Tri]) -> Tri:
    if True in results:
        return True
    return None if None in results else False


def _kleene_none(results: list[Tri]) -> Tri:
    found = _kleene_any(results)
    return None if found is None else not found


def _group(children: list[Evaluator], combine: Callable[[list[Tri]], Tri]) -> Evaluator:
    def run(ctx: Any, trace: list[Trace] | None) -> Tri:
        return combine([child(ctx, trace) for child in children])
    return run


def _compile_leaf(leaf: Leaf, params: Mapping[str, Any]) -> Evaluator:
    op = leaf.op
    transform = _transform(leaf.as_)
    expected = bind(leaf.value, params)
    shown = expected
    if op in ("regex", "not_regex"):
        operand: Any = re.compile(expected)
    elif op in ITEM_OPS:
        operand = compile_condition(leaf.where, params)
        shown = describe(leaf.where, params)
    elif op == "exists":
        operand = None
    else:
        try:
            operand = transform(expected)
        except Incomparable:
            operand = expected
    fn = OPERATORS.get(op)
    path = leaf.fact
    key = leaf.key
    shown_op = f"{leaf.as_} {op}" if leaf.as_ else op  # e.g. "length ge" in the evidence

    def get(ctx: Any) -> Any:
        if path is not None:
            rec = ctx.get(path)
            return _MISSING if rec is None else rec.value
        if key is None:
            return ctx
        if isinstance(ctx, Mapping) and key in ctx:
            return ctx[key]
        return _MISSING

    def run(ctx: Any, trace: list[Trace] | None) -> Tri:
        actual = get(ctx)
        note = ""
        if actual is _MISSING:
            result: Tri = False if op == "exists" else None
            note = "not collected"
        elif op == "exists":
            result = True
        else:
            try:
                if op in ITEM_OPS:
                    result, note = _items(op, _as_list(actual), operand)
                else:
                    result = fn(transform(actual), operand)  # type: ignore[misc]
            except Incomparable as exc:
                result, note = None, str(exc)
        if trace is not None:
            name = path if path is not None else f"item.{key}" if key else "item"
            trace.append(Trace(name, shown_op, shown, actual is not _MISSING,
                               None if actual is _MISSING else actual, result, note))
        return result

    return run


def _items(op: str, items: list[Any], where: Evaluator) -> tuple[Tri, str]:
    """Quantify ``where`` over the items; the note says why an item stayed unknown."""
    results = []
    note = ""
    for index, item in enumerate(items):
        inner: list[Trace] = []
        results.append(where(item, inner))
        if results[-1] is None and not note:
            why = next((t for t in inner if t.result is None), None)
            detail = (f"{why.fact} {why.note}" if why and why.present else
                      f"{why.fact} missing" if why else "not comparable")
            note = f"item {index} ({_brief(item)}): {detail}"
    if op == "any_item":
        return _kleene_any(results), note
    if op == "all_items":
        return _kleene_all(results), note
    return _kleene_none(results), note


def _brief(item: Any) -> str:
    if isinstance(item, dict):
        for key in ("name", "host", "id"):
            if key in item:
                return f"{key}={item[key]}"
    text = str(item)
    return text if len(text) <= 40 else text[:37] + "..."


def fact_paths(node: Any) -> list[tuple[str, Leaf]]:
    """Every fact-level leaf of a condition (not the item keys inside ``where``)."""
    if isinstance(node, AllOf | AnyOf | NoneOf):
        out: list[tuple[str, Leaf]] = []
        for child in node.all if isinstance(node, AllOf) else (
                node.any if isinstance(node, AnyOf) else node.none):
            out += fact_paths(child)
        return out
    return [(node.fact, node)] if node.fact else []


def leaves(node: Any) -> list[Leaf]:
    """Every leaf, including those inside ``where``."""
    if isinstance(node, AllOf | AnyOf | NoneOf):
        out: list[Leaf] = []
        for child in node.all if isinstance(node, AllOf) else (
                node.any if isinstance(node, AnyOf) else node.none):
            out += leaves(child)
        return out
    return [node, *(leaves(node.where) if node.where is not None else [])]
