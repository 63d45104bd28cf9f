"""Loading a baseline folder (catalogue, checks, controls) with file-and-line problems.

``read_baseline(root)`` returns the baseline and every structural problem found (YAML
syntax, schema, unknown SR/CR/NIS2 ids, bad levels, duplicate ids, undefined or unused
parameters, controls that do not match the checks' references). ``load_baseline`` raises
``InputError`` when there is any. Fact paths are checked by ``lint`` (it needs the fact
catalogue of the probes).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from otaudit.errors import InputError
from otaudit.server.baseline.conditions import leaves
from otaudit.server.baseline.format import (
    ASSET_KINDS,
    LEVELS,
    REQUIREMENT_ID,
    AllOf,
    AnyOf,
    CatalogueFile,
    CatalogueItem,
    Check,
    Control,
    ControlsFile,
    Leaf,
    Nis2File,
    Nis2Point,
    NoneOf,
    is_param,
)
from otaudit.server.drift.policy import DriftFile, DriftPolicy
from otaudit.yamlio import YamlDoc, YamlError, parse_yaml

Loc = tuple[str | int, ...]
BUILTIN_PLACEHOLDERS = frozenset({"level", "asset", "zone", "kind", "expected"})
PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
# Facts that no probe reads: the inventory's declarations (server/declared.py).
DECLARED_PROBES = ("inventory",)


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Requirement:
    """One SR or RE of IEC 62443-3-3 with the levels at which it is selected."""

    id: str
    title: str
    fr: str  # IAC, UC, ...
    sl: tuple[int, ...]
    parent: str | None = None
    order: int = 0

    def applies_at(self, level: int) -> bool:
        return level in self.sl


@dataclass
class Source:
    """Where a piece of the baseline came from (for problems with line numbers).

    Files are parsed with PyYAML's fast loader; the line map (``otaudit.yamlio``, much
    slower) is built only when a problem has to be located.
    """

    file: str
    text: str
    _doc: YamlDoc | None = field(default=None, repr=False)

    @property
    def doc(self) -> YamlDoc:
        if self._doc is None:
            self._doc = parse_yaml(self.text, self.file)
        return self._doc

    def at(self, loc: Loc, message: str) -> Problem:
        return Problem(self.file, self.doc.line_of(_clean(loc)), message)


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loader that refuses duplicate keys (like ``otaudit.yamlio``)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        keys = [self.construct_object(k, deep=True) for k, _ in node.value]
        for i, key in enumerate(keys):
            if key in keys[:i]:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", node.value[i][0].start_mark)
        return super().construct_mapping(node, deep=deep)


_FastLoader.add_constructor("tag:yaml.org,2002:map", _FastLoader.construct_yaml_map)


def _load_text(text: str, name: str) -> Any:
    """The YAML data of ``text``; on any error, ``otaudit.yamlio`` explains it with a line."""
    try:
        return yaml.load(text, Loader=_FastLoader)
    except yaml.YAMLError:
        return parse_yaml(text, name).data  # raises YamlError with the line


@dataclass
class Baseline:
    root: Path
    digest: str
    requirements: dict[str, Requirement]
    components: dict[str, str]
    nis2: dict[str, Nis2Point]
    checks: dict[str, Check]
    controls: dict[str, Control]
    sources: dict[str, Source] = field(default_factory=dict)
    overlay: Path | None = None  # a site's own checks and controls, merged over ``root``
    drift: DriftPolicy = field(default_factory=DriftPolicy)  # drift.yaml: must_not_drift
    _compiled: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def roots(self) -> tuple[Path, ...]:
        """The folders the baseline was read from: the bundled one, then the site overlay."""
        return (self.root,) if self.overlay is None else (self.root, self.overlay)

    def checks_for(self, requirement: str) -> list[str]:
        control = self.controls.get(requirement)
        return list(control.checks) if control else []

    def requirement_fr(self, requirement: str) -> str:
        return self.requirements[requirement].fr


def bundled_root() -> Path:
    """The ``baselines/`` folder shipped with otaudit (package ``otaudit.baselines``)."""
    spec = importlib.util.find_spec("otaudit.baselines")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if (Path(location) / "controls").is_dir():
                return Path(location)
    return Path(__file__).resolve().parents[2] / "baselines"


@functools.cache
def known_probes() -> tuple[str, ...]:
    """Protocols that have a probe: the folders of the installed ``otaudit.probes`` package
    holding a ``probe.py`` (read as data, like the bundled baselines: the server never
    imports probe code), so a new probe needs no change here."""
    spec = importlib.util.find_spec("otaudit.probes")
    found: set[str] = set()
    for location in (spec.submodule_search_locations or []) if spec else []:
        found.update(p.parent.name for p in Path(location).glob("*/probe.py"))
    return tuple(sorted(found))


def check_probes() -> tuple[str, ...]:
    """What a check's ``applies_to.probes`` may name: the probes and the declared facts."""
    return (*known_probes(), *DECLARED_PROBES)


def load_baseline(root: Path | str | None = None, overlay: Path | str | None = None) -> Baseline:
    """Load and validate a baseline folder (default: the bundled one), with a site overlay.

    Raises ``InputError`` listing every problem as ``file:line: message``.
    """
    base, problems = read_baseline(root, overlay)
    if problems or base is None:
        raise InputError(Path(overlay or root or bundled_root()),
                         [str(p) for p in sorted(problems)])
    return base


def _clean(loc: Loc) -> Loc:
    """Drop pydantic's union tags (``<leaf>``) so the location matches the YAML keys."""
    return tuple(p for p in loc if not (isinstance(p, str) and p.startswith("<")))


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def _parse(path: Path, root: Path, model: type[BaseModel],
           problems: list[Problem]) -> tuple[Any, Source | None]:
    name = _rel(path, root)
    try:
        text = path.read_text(encoding="utf-8")
        data = _load_text(text, name)
    except OSError as exc:
        problems.append(Problem(name, None, f"cannot read: {exc.strerror or exc}"))
        return None, None
    except YamlError as exc:
        line = re.match(r"line (\d+): (.*)", str(exc))
        if line:
            problems.append(Problem(name, int(line.group(1)), line.group(2)))
        else:
            problems.append(Problem(name, None, str(exc)))
        return None, None
    source = Source(name, text)
    if not isinstance(data, dict):
        problems.append(Problem(name, 1, "expected a mapping"))
        return None, source
    try:
        return model.model_validate(data), source
    except ValidationError as exc:
        for err in exc.errors():
            loc = _clean(tuple(err.get("loc", ())))
            dotted = ".".join(str(p) for p in loc) or "(top level)"
            msg = "unknown field" if err.get("type") == "extra_forbidden" else err.get("msg")
            problems.append(source.at(loc, f"{dotted}: {msg}"))
        return None, source


def _digest(*roots: Path) -> str:
    sha = hashlib.sha256()
    for n, root in enumerate(roots):
        for sub in ("catalogue", "controls", "checks"):
            for path in sorted((root / sub).rglob("*.yaml")):
                name = f"{n}:{path.relative_to(root)}" if n else str(path.relative_to(root))
                sha.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()


def _levels_ok(sl: list[int]) -> bool:
    """A selection is a non-empty run ending at SL 4 (levels are cumulative)."""
    return bool(sl) and sl == list(range(sl[0], 5)) and sl[0] >= 1


def _read_requirements(root: Path, problems: list[Problem]) -> dict[str, Requirement]:
    cat, src = _parse(root / "catalogue" / "iec62443-3-3.yaml", root, CatalogueFile, problems)
    out: dict[str, Requirement] = {}
    if cat is None or src is None:
        return out
    order = 0
    for i, fr in enumerate(cat.foundational_requirements):
        for j, sr in enumerate(fr.requirements):
            items: list[tuple[CatalogueItem, Loc, str | None]] = [
                (sr, ("foundational_requirements", i, "requirements", j), None)]
            items += [(re_, ("foundational_requirements", i, "requirements", j,
                             "enhancements", k), sr.id) for k, re_ in enumerate(sr.enhancements)]
            for item, loc, parent in items:
                if not REQUIREMENT_ID.match(item.id):
                    problems.append(src.at((*loc, "id"), f"bad requirement id {item.id!r}"))
                if item.id in out:
                    problems.append(src.at((*loc, "id"), f"duplicate requirement id {item.id!r}"))
                if not _levels_ok(item.sl):
                    problems.append(src.at((*loc, "sl"), f"{item.id}: bad levels {item.sl} "
                                           "(expected a run of levels ending at 4)"))
                if parent and not set(item.sl) <= set(out[parent].sl):
                    problems.append(src.at((*loc, "sl"), f"{item.id}: levels {item.sl} are "
                                           f"not within its SR's levels"))
                order += 1
                out[item.id] = Requirement(item.id, item.title, fr.abbrev, tuple(item.sl),
                                           parent, order)
    return out


def _read_components(root: Path, problems: list[Problem]) -> dict[str, str]:
    cat, _ = _parse(root / "catalogue" / "iec62443-4-2.yaml", root, CatalogueFile, problems)
    out: dict[str, str] = {}
    if cat is None:
        return out

    def add(item: Any, title: str) -> None:
        out[item.id] = getattr(item, "title", title) or title
        for re_ in item.enhancements:
            out[re_.id] = re_.title
    for fr in cat.foundational_requirements:
        for cr in fr.requirements:
            add(cr, cr.title)
            for variant in cr.variants:
                add(variant, cr.title)
    return out


def _read_nis2(root: Path, requirements: dict[str, Requirement],
               problems: list[Problem]) -> dict[str, Nis2Point]:
    nis2, src = _parse(root / "catalogue" / "nis2.yaml", root, Nis2File, problems)
    if nis2 is None or src is None:
        return {}
    for i, point in enumerate(nis2.points):
        for j, rid in enumerate(point.evidenced_by):
            if requirements and rid not in requirements:
                problems.append(src.at(("points", i, "evidenced_by", j),
                                       f"unknown IEC 62443-3-3 id {rid!r}"))
    return {p.id: p for p in nis2.points}


def condition_leaves(check: Check) -> Iterator[tuple[Leaf, Loc, bool]]:
    """(leaf, location, in_gate) for every leaf of the gate and the condition."""
    def walk(node: Any, loc: Loc) -> Iterator[tuple[Leaf, Loc]]:
        for kind, cls in (("all", AllOf), ("any", AnyOf), ("none", NoneOf)):
            if isinstance(node, cls):
                for i, child in enumerate(getattr(node, kind)):
                    yield from walk(child, (*loc, kind, i))
                return
        yield node, loc
        if node.where is not None:
            yield from walk(node.where, (*loc, "where"))
    if check.applies_to.when is not None:
        for leaf, loc in walk(check.applies_to.when, ("applies_to", "when")):
            yield leaf, loc, True
    for leaf, loc in walk(check.condition, ("condition",)):
        yield leaf, loc, False


def placeholders(message: str) -> list[str]:
    return PLACEHOLDER.findall(message)


def _check_problems(check: Check, src: Source, requirements: dict[str, Requirement],
                    components: dict[str, str], nis2: dict[str, Nis2Point]) -> list[Problem]:
    out: list[Problem] = []
    stem = Path(src.file).stem
    if stem != check.id:
        out.append(src.at(("id",), f"check id {check.id!r} differs from its file name {stem!r}"))
    known = {"iec62443-3-3": requirements, "iec62443-4-2": components, "nis2": nis2}
    label = {"iec62443-3-3": "IEC 62443-3-3 SR/RE", "iec62443-4-2": "IEC 62443-4-2 CR",
             "nis2": "NIS2 Art. 21(2) point"}
    for ns, ids in check.references.items():
        for i, rid in enumerate(ids):
            if known[ns] and rid not in known[ns]:
                out.append(src.at(("references", ns, i), f"unknown {label[ns]} id {rid!r}"))
        for dup in sorted({r for r in ids if ids.count(r) > 1}):
            out.append(src.at(("references", ns), f"{dup!r} listed twice"))
    for probe in check.applies_to.probes or []:
        if probe not in check_probes():
            out.append(src.at(("applies_to", "probes"),
                              f"unknown probe {probe!r} (known: {', '.join(check_probes())})"))
    for name, value in check.params.items():
        if isinstance(value, dict) and sorted(value) != list(LEVELS):
            out.append(src.at(("params", name), f"parameter {name!r}: bad levels "
                              f"{sorted(value)} (give a value for each of 1, 2, 3, 4)"))
    used: set[str] = set()
    for leaf, loc, in_gate in condition_leaves(check):
        if leaf.op == "exists" and not in_gate:
            out.append(src.at((*loc, "op"), "`exists` is only allowed in applies_to.when "
                              "(a missing fact must stay unknown, never fail)"))
        if leaf.fact is None and not _inside_where(loc):
            out.append(src.at(loc, "a leaf outside `where` must name a `fact`"))
        if leaf.key is not None and not _inside_where(loc):
            out.append(src.at((*loc, "key"), "`key` is only allowed inside `where`"))
        if is_param(leaf.value):
            name = leaf.value[1:]
            used.add(name)
            if name not in check.params:
                out.append(src.at((*loc, "value"), f"undefined parameter {leaf.value!r}"))
    for ph in placeholders(check.message) + placeholders(check.pass_message):
        if ph.startswith("$"):
            used.add(ph[1:])
            if ph[1:] not in check.params:
                out.append(src.at(("message",), f"message uses undefined parameter {ph!r}"))
        elif ph not in BUILTIN_PLACEHOLDERS and "." not in ph:
            out.append(src.at(("message",), f"unknown placeholder {{{ph}}} (a fact path, "
                              f"$parameter or one of {', '.join(sorted(BUILTIN_PLACEHOLDERS))})"))
    for name in sorted(set(check.params) - used):
        out.append(src.at(("params", name), f"parameter {name!r} is never used"))
    for kind in check.applies_to.kinds or []:
        if kind not in ASSET_KINDS:  # pragma: no cover - the schema already restricts this
            out.append(src.at(("applies_to", "kinds"), f"unknown asset kind {kind!r}"))
    return out


def _inside_where(loc: Loc) -> bool:
    return "where" in loc


def _read_checks(roots: list[Path], requirements: dict[str, Requirement],
                 components: dict[str, str], nis2: dict[str, Nis2Point],
                 problems: list[Problem], sources: dict[str, Source]) -> dict[str, Check]:
    """Checks of every root (bundled first); an id defined twice names both files."""
    checks: dict[str, Check] = {}
    first_seen: dict[str, Source] = {}
    for n, root in enumerate(roots):
        folder = root / "checks"
        if not folder.is_dir():
            if n == 0:  # a site overlay may bring controls only
                problems.append(Problem(_rel(folder, root), None, "missing checks folder"))
            continue
        for path in sorted(folder.rglob("*.y*ml")):
            check, src = _parse(path, root, Check, problems)
            if check is None or src is None:
                continue
            if check.id in first_seen:
                other = first_seen[check.id]
                problems.append(src.at(("id",), f"duplicate check id {check.id!r} (first "
                                       f"defined in {other.file}:{other.doc.line_of(('id',))})"))
                continue
            first_seen[check.id] = src
            problems.extend(_check_problems(check, src, requirements, components, nis2))
            checks[check.id] = check
            sources[check.id] = src
    return dict(sorted(checks.items()))


def _read_controls(roots: list[Path], requirements: dict[str, Requirement],
                   checks: dict[str, Check], problems: list[Problem],
                   sources: dict[str, Source]) -> dict[str, Control]:
    """The bundled controls file, then a site's: a site entry adds its checks to the SR's."""
    controls: dict[str, Control] = {}
    listed_by: dict[str, dict[str, tuple[Source, Loc]]] = {}
    for n, root in enumerate(roots):
        path = root / "controls" / "iec62443-3-3.yaml"
        if n and not path.exists():
            continue
        data, src = _parse(path, root, ControlsFile, problems)
        if data is None or src is None:
            continue
        sources["controls" if n == 0 else f"controls:{n}"] = src
        seen_here: set[str] = set()
        for i, control in enumerate(data.controls):
            loc: Loc = ("controls", i)
            if control.id not in requirements:
                problems.append(src.at((*loc, "id"),
                                       f"unknown IEC 62443-3-3 id {control.id!r}"))
                continue
            if control.id in seen_here:
                problems.append(src.at((*loc, "id"), f"duplicate control {control.id!r}"))
                continue
            seen_here.add(control.id)
            for j, cid in enumerate(control.checks):
                if cid not in checks:
                    problems.append(src.at((*loc, "checks", j), f"unknown check {cid!r}"))
                elif control.id in listed_by.get(cid, {}):
                    first, first_loc = listed_by[cid][control.id]
                    problems.append(src.at((*loc, "checks", j), f"{control.id} lists {cid} "
                                           f"twice (also in {first.file}:"
                                           f"{first.doc.line_of(_clean(first_loc))})"))
                    continue
                listed_by.setdefault(cid, {})[control.id] = (src, (*loc, "checks", j))
            if n and control.id in controls:  # a site adds checks to a bundled control
                bundled = controls[control.id]
                added = [c for c in control.checks if c not in bundled.checks]
                controls[control.id] = bundled.model_copy(
                    update={"checks": [*bundled.checks, *added]})
                continue
            if not control.checks and not control.attestation:
                problems.append(src.at(loc, f"{control.id}: no checks; mark it "
                                       "`attestation: true` (decided by an attestation)"))
            if not control.checks and control.unchecked != "unknown":
                problems.append(src.at((*loc, "unchecked"), f"{control.id}: `unchecked` needs "
                                       "checks (attest not_applicable instead)"))
            controls[control.id] = control
    main = sources.get("controls")
    for rid in requirements:
        if rid not in controls and main is not None:
            problems.append(main.at(("controls",), f"{rid} is missing from the controls file "
                                    "(list it with its checks, or `attestation: true`)"))
    for cid, check in checks.items():
        referenced = set(check.requirements())
        listed = listed_by.get(cid, {})
        csrc = sources[cid]
        for rid in sorted(referenced - set(listed)):
            if rid in controls:
                problems.append(csrc.at(("references", "iec62443-3-3"),
                                        f"{cid} references {rid} but controls/iec62443-3-3.yaml "
                                        f"does not list it under {rid}"))
        for rid in sorted(set(listed) - referenced):
            lsrc, lloc = listed[rid]
            problems.append(lsrc.at(lloc, f"{rid} lists {cid}, which does not "
                                    f"reference {rid}"))
    ordered = sorted(controls.values(), key=lambda c: requirements[c.id].order)
    return {c.id: c for c in ordered}


def _read_drift(roots: list[Path], problems: list[Problem],
                sources: dict[str, Source]) -> DriftPolicy:
    """The ``must_not_drift`` rules of every root's optional ``drift.yaml`` (a later root's
    rule replaces an earlier one of the same fact); a fact listed twice in one file is a
    problem. Sources are kept as ``drift`` / ``drift:<n>`` (lint checks the fact names)."""
    policy = DriftPolicy()
    for n, root in enumerate(roots):
        path = root / "drift.yaml"
        if not path.exists():
            continue
        data, src = _parse(path, root, DriftFile, problems)
        if data is None or src is None:
            continue
        sources["drift" if n == 0 else f"drift:{n}"] = src
        seen: set[str] = set()
        for i, rule in enumerate(data.rules()):
            if rule.fact in seen:
                problems.append(src.at(("must_not_drift", i), f"{rule.fact} is listed twice"))
            seen.add(rule.fact)
            policy.rules[rule.fact] = rule
    return policy


def read_baseline(root: Path | str | None = None, overlay: Path | str | None = None
                  ) -> tuple[Baseline | None, list[Problem]]:
    """Read a baseline folder (default: the bundled one) and a site ``overlay`` of own checks
    (``checks/``), controls (``controls/iec62443-3-3.yaml``, adding checks to SRs) and
    fixtures (``tests/``); return the baseline (None when unusable) and every problem."""
    root = Path(root) if root is not None else bundled_root()
    problems: list[Problem] = []
    if not root.is_dir():
        return None, [Problem(str(root), None, "not a directory")]
    roots = [root]
    if overlay is not None:
        overlay = Path(overlay)
        if not overlay.is_dir():
            return None, [Problem(str(overlay), None, "not a directory")]
        if (overlay / "catalogue").exists():
            problems.append(Problem(_rel(overlay / "catalogue", overlay), None,
                                    "a site overlay holds checks/, controls/ and tests/; the "
                                    "catalogue (the standard's ids) comes with otaudit"))
        roots.append(overlay)
    sources: dict[str, Source] = {}
    requirements = _read_requirements(root, problems)
    components = _read_components(root, problems)
    nis2 = _read_nis2(root, requirements, problems)
    checks = _read_checks(roots, requirements, components, nis2, problems, sources)
    controls = _read_controls(roots, requirements, checks, problems, sources)
    drift = _read_drift(roots, problems, sources)
    if not requirements:
        return None, problems
    base = Baseline(root=root, digest=_digest(*roots), requirements=requirements,
                    components=components, nis2=nis2, checks=checks, controls=controls,
                    sources=sources, overlay=overlay, drift=drift)
    return base, problems


__all__ = ["Baseline", "Problem", "Requirement", "bundled_root", "leaves", "load_baseline",
           "read_baseline"]
