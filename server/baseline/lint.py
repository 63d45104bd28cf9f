"""``otaudit baseline lint``: every problem of a baseline folder, with file and line.

Structural problems come from the loader (schema, unknown SR/CR/NIS2 ids, bad levels,
duplicate ids, parameters, controls vs references). With the fact catalogue this adds:
unknown fact paths (conditions, gates, message placeholders, fixtures), operators that
do not fit the fact's type, and checks without pass / fail / not-applicable fixtures.

The catalogue is a parameter (path → object with a ``type`` attribute, i.e.
``otaudit.facts.FactSpec``); the CLI passes ``otaudit.probes.fact_catalogue()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from otaudit.server.baseline.fixtures import baseline_fixtures, expectation_kinds
from otaudit.server.baseline.format import ITEM_OPS, ORDER_OPS, Check, Leaf, is_param
from otaudit.server.baseline.loader import (
    Problem,
    Source,
    bundled_root,
    check_probes,
    condition_leaves,
    placeholders,
    read_baseline,
)

NUMERIC = {"int", "float"}
TEXT = {"str", "enum", "version"}


def lint(root: Path | str | None, catalogue: Mapping[str, Any],
         overlay: Path | str | None = None) -> list[Problem]:
    """All problems of the baseline at ``root`` (default: bundled) with a site ``overlay``,
    sorted by file and line."""
    root = Path(root) if root is not None else bundled_root()
    baseline, problems = read_baseline(root, overlay)
    if baseline is None:
        return sorted(set(problems))
    for cid, check in baseline.checks.items():
        problems += _fact_problems(check, baseline.sources[cid], catalogue)
    problems += _drift_problems(baseline.sources, catalogue)
    fixtures = baseline_fixtures(baseline, problems)
    for cid, check in baseline.checks.items():
        src = baseline.sources[cid]
        fixture = fixtures.get(cid)
        if fixture is None:
            problems.append(src.at(("id",), f"{cid} has no fixtures (add tests/{cid}.yaml "
                                   "with pass, fail and not_applicable cases)"))
            continue
        kinds = expectation_kinds(fixture)
        for needed in ("pass", check.on_fail, "not_applicable"):
            if needed not in kinds:
                problems.append(fixture.source.at(("cases",), f"{cid}: no case expecting "
                                                  f"{needed!r}"))
    for cid, fixture in fixtures.items():
        if cid not in baseline.checks:
            problems.append(fixture.source.at(("check",), f"fixture for unknown check {cid!r}"))
            continue
        for i, case in enumerate(fixture.file.cases):
            for path in [*case.facts, *case.unknown]:
                if path not in catalogue:
                    problems.append(fixture.source.at(("cases", i, "facts", path),
                                                      f"unknown fact path {path!r}"))
            for probe in case.probes or {}:
                if probe not in check_probes():
                    problems.append(fixture.source.at(("cases", i, "probes"),
                                                      f"unknown probe {probe!r}"))
    return sorted(set(problems))


def _fact_problems(check: Check, src: Source, catalogue: Mapping[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    for leaf, loc, _ in condition_leaves(check):
        if leaf.fact is None:
            continue
        spec = catalogue.get(leaf.fact)
        if spec is None:
            out.append(src.at((*loc, "fact"), f"unknown fact path {leaf.fact!r}"))
            continue
        problem = _type_problem(leaf, getattr(spec, "type", None), check)
        if problem:
            out.append(src.at((*loc, "op"), f"{leaf.fact} ({spec.type}): {problem}"))
    for field in ("message", "pass_message"):
        for ph in placeholders(getattr(check, field)):
            if "." in ph and not ph.startswith("$") and ph not in catalogue:
                out.append(src.at((field,), f"{field} uses unknown fact path {{{ph}}}"))
    return out


def _drift_problems(sources: Mapping[str, Source], catalogue: Mapping[str, Any]
                    ) -> list[Problem]:
    """Fact names of ``drift.yaml`` files (``must_not_drift``) that no probe produces."""
    out: list[Problem] = []
    for name, src in sources.items():
        if name != "drift" and not name.startswith("drift:"):
            continue
        entries = (src.doc.data or {}).get("must_not_drift") or []
        for i, entry in enumerate(entries):
            fact = entry.get("fact") if isinstance(entry, dict) else entry
            if isinstance(fact, str) and fact not in catalogue:
                out.append(src.at(("must_not_drift", i), f"unknown fact path {fact!r} "
                                  "(must_not_drift names facts of the fact catalogue)"))
    return out


def _values(leaf: Leaf, check: Check) -> list[Any]:
    """The values a leaf is compared with, at every level."""
    if is_param(leaf.value):
        if leaf.value[1:] not in check.params:
            return []  # reported as an undefined parameter
        raw = check.params[leaf.value[1:]]
        return list(raw.values()) if isinstance(raw, dict) else [raw]
    return [leaf.value]


def _type_problem(leaf: Leaf, ftype: str | None, check: Check) -> str | None:
    op, transform = leaf.op, leaf.as_
    if ftype is None or op == "exists":
        return None
    if transform == "length":
        if ftype not in ("list", "dict", "str"):
            return "`as: length` needs a list, dict or string fact"
        ftype = "int"
    elif transform == "version":
        if ftype not in ("version", "str"):
            return "`as: version` needs a version or string fact"
        ftype = "version"
    if op in ORDER_OPS:
        if ftype == "version" and transform != "version":
            return f"compare versions with `as: version` (plain `{op}` compares text)"
        if ftype not in NUMERIC and ftype != "version":
            return f"`{op}` orders numbers or versions, not {ftype}"
        if ftype in NUMERIC:
            for v in _values(leaf, check):
                if isinstance(v, bool) or not isinstance(v, int | float):
                    return f"`{op}` needs a number, got {v!r}"
    if (op in ITEM_OPS or op in ("intersects", "disjoint")) and ftype != "list":
        return f"`{op}` needs a list fact"
    if op in ("regex", "not_regex") and ftype not in TEXT:
        return f"`{op}` needs a text fact"
    if ftype == "bool" and op in ("eq", "ne", "in", "not_in"):
        for v in _values(leaf, check):
            items = v if op in ("in", "not_in") and isinstance(v, list) else [v]
            if any(not isinstance(x, bool) for x in items):
                return f"a boolean fact is compared with {v!r} (use true/false)"
    if ftype in NUMERIC and op in ("eq", "ne"):
        for v in _values(leaf, check):
            if isinstance(v, bool) or not isinstance(v, int | float):
                return f"a number fact is compared with {v!r}"
    return None


__all__ = ["Problem", "lint"]
