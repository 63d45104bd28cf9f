"""The evaluator: a pure function of (baseline, zones, facts, exceptions, attestations, now).

Per asset, every relevant check (asset kind and probe match ``applies_to``) is evaluated
once per distinct parameter binding (checks with per-level thresholds get up to four).
The finding reported for an asset uses the thresholds of its zone's SL-T (the highest
SL-T among the FRs of the check's requirements); the per-level results feed the zone's
requirement statuses, SL-A and coverage (``sl.py``).

Result of one check on one asset:

==============================  =====================================================
gate ``applies_to.when``        false → ``not_applicable``; unknown → ``unknown``
condition true                  ``pass``
condition false                 ``on_fail`` (``fail`` or ``capability_gap``)
condition unknown               ``unknown`` (a fact missing or not comparable)
==============================  =====================================================

Then exceptions/attestations may turn ``fail``/``capability_gap`` into ``compensated``,
keeping ``original_status``.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from otaudit.server.baseline.conditions import (
    Evaluator,
    Trace,
    compile_condition,
    describe,
)
from otaudit.server.baseline.format import LEVELS, Check
from otaudit.server.baseline.loader import PLACEHOLDER, Baseline
from otaudit.server.baseline.model import (
    AssetFacts,
    Evaluation,
    EvidenceItem,
    Finding,
)
from otaudit.server.baseline.waivers import Attestation, ExceptionRecord

BAD = ("fail", "capability_gap")
RANK = {"not_applicable": 0, "pass": 1, "compensated": 2, "unknown": 3,
        "capability_gap": 4, "fail": 5}
STATUS_OF_RANK = {v: k for k, v in RANK.items()}
_TRI = {True: "true", False: "false", None: "unknown"}
M = TypeVar("M")


def build(cls: type[M], values: dict[str, Any]) -> M:
    """Instantiate a pydantic model from values that are already valid, without validation.

    Leaner than ``model_construct`` (which is the main cost with thousands of findings):
    ``values`` must hold every field of the model (a test checks the callers do).
    """
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Evaluation allocates many small objects and creates no cycles: pause the cyclic GC
    (whose full collections would otherwise rescan every asset and finding)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class Variant:
    """A check with its parameters bound for the levels that share them."""

    levels: tuple[int, ...]
    params: dict[str, Any]
    when: Evaluator | None
    cond: Evaluator
    expected: str
    gate: str


@dataclass
class CompiledCheck:
    check: Check
    kinds: frozenset[str] | None
    probes: tuple[str, ...] | None
    requirements: tuple[str, ...]
    frs: tuple[str, ...]
    variants: list[Variant]
    variant_of: dict[int, int]
    references: dict[str, list[str]]
    rationale: str = ""
    remediation: str = ""
    os: frozenset[str] | None = None  # host OS families (applies_to.os)
    # (requirement, its FR, ((level, variant index), ...)) for folding into zone statuses
    plan: tuple[tuple[str, str, tuple[tuple[int, int], ...]], ...] = ()


@dataclass(slots=True)
class Result:
    status: str
    reason: str
    trace: list[Trace]
    variant: Variant


def compile_check(check: Check, baseline: Baseline) -> CompiledCheck:
    variants: list[Variant] = []
    variant_of: dict[int, int] = {}
    by_binding: dict[str, int] = {}
    for level in LEVELS:
        params = {name: check.param_at(name, level) for name in check.params}
        key = repr(sorted(params.items()))
        if key not in by_binding:
            when = check.applies_to.when
            by_binding[key] = len(variants)
            variants.append(Variant(
                levels=(), params=params,
                when=compile_condition(when, params) if when is not None else None,
                cond=compile_condition(check.condition, params),
                expected=describe(check.condition, params),
                gate=describe(when, params) if when is not None else "",
            ))
        index = by_binding[key]
        variants[index].levels += (level,)
        variant_of[level] = index
    reqs = tuple(sorted(check.requirements(),
                        key=lambda r: baseline.requirements[r].order
                        if r in baseline.requirements else 10**6))
    frs = tuple(dict.fromkeys(baseline.requirements[r].fr for r in reqs
                              if r in baseline.requirements))
    return CompiledCheck(
        check=check,
        kinds=frozenset(check.applies_to.kinds) if check.applies_to.kinds else None,
        probes=tuple(check.applies_to.probes) if check.applies_to.probes else None,
        os=frozenset(check.applies_to.os) if check.applies_to.os else None,
        requirements=reqs, frs=frs, variants=variants, variant_of=variant_of,
        references={k: list(v) for k, v in check.references.items() if k != "iec62443-3-3"},
        rationale=" ".join(check.rationale.split()),
        remediation=" ".join(check.remediation.split()),
        plan=tuple((r, baseline.requirements[r].fr,
                    tuple((n, variant_of[n]) for n in baseline.requirements[r].sl))
                   for r in reqs if r in baseline.requirements),
    )


def compiled(baseline: Baseline) -> dict[str, CompiledCheck]:
    if not baseline._compiled:
        baseline._compiled.update(
            {cid: compile_check(check, baseline) for cid, check in baseline.checks.items()})
    return baseline._compiled


WINDOWS_ONLY_PROBES = frozenset({"winrm"})  # transports only Windows hosts answer


def host_family(asset: AssetFacts) -> str:
    """The host's OS family for ``applies_to.os``: its ``os.family`` fact; without one (the
    run failed before the OS was read), ``windows`` when only a Windows transport ran (its
    Windows checks are then ``unknown``, not ``not_applicable``), else ``linux``."""
    record = asset.facts.get("os.family")
    if record is not None:
        return str(record.value)
    ran = set(asset.probe_status)
    if ran & WINDOWS_ONLY_PROBES and "ssh" not in ran:
        return "windows"
    return "linux"


def irrelevant(cc: CompiledCheck, asset: AssetFacts) -> str | None:
    """Why the check is not about this asset (None when it is)."""
    if cc.kinds is not None and asset.kind not in cc.kinds:
        return f"applies to {', '.join(sorted(cc.kinds))}, not {asset.kind}"
    if cc.probes is not None and not any(p in asset.probe_status for p in cc.probes):
        return f"no {'/'.join(cc.probes)} probe ran on this asset"
    if cc.os is not None:
        family = host_family(asset)
        if family not in cc.os:
            return f"applies to {', '.join(sorted(cc.os))} hosts, not {family}"
    return None


def run_variant(cc: CompiledCheck, variant: Variant, asset: AssetFacts) -> Result:
    trace: list[Trace] = []
    facts = asset.facts
    if variant.when is not None:
        gate = variant.when(facts, trace)
        if gate is False:
            return Result("not_applicable", f"applies only when {variant.gate}", trace, variant)
        if gate is None:
            return Result("unknown", _unknown_reason(cc, asset, trace), trace, variant)
    outcome = variant.cond(facts, trace)
    if outcome is True:
        return Result("pass", "", trace, variant)
    if outcome is False:
        return Result(cc.check.on_fail, "", trace, variant)
    return Result("unknown", _unknown_reason(cc, asset, trace), trace, variant)


def _unknown_reason(cc: CompiledCheck, asset: AssetFacts, trace: list[Trace]) -> str:
    """'fact, fact: reason; fact: other reason' — facts sharing a reason are named together."""
    by_reason: dict[str, list[str]] = {}
    for t in trace:
        if t.result is not None or any(t.fact in facts for facts in by_reason.values()):
            continue
        if not t.present:
            why = asset.unknown.get(t.fact) or _probe_hint(cc, asset) or "not collected"
        else:
            why = t.note or "cannot be compared"
        by_reason.setdefault(why, []).append(t.fact)
    parts = [f"{', '.join(facts)}: {why}" for why, facts in by_reason.items()]
    return "; ".join(parts) or "facts not collected"


def _probe_hint(cc: CompiledCheck, asset: AssetFacts) -> str:
    bad = [f"{p} probe {asset.probe_status[p]}" for p in (cc.probes or asset.probe_status)
           if asset.probe_status.get(p, "ok") != "ok"]
    return ", ".join(bad)


def value_text(value: Any) -> str:
    """A fact value as a short readable text (true/false/none, lists in brackets)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) if not isinstance(v, dict) else
                               "{" + ", ".join(f"{k}: {value_text(x)}" for k, x in v.items()) + "}"
                               for v in value) + "]"
    return str(value)


def render_message(template: str, cc: CompiledCheck, asset: AssetFacts, zone: str,
                   level: int, variant: Variant) -> str:
    def sub(match: Any) -> str:
        name = match.group(1)
        if name.startswith("$"):
            return value_text(variant.params.get(name[1:], match.group(0)))
        builtin = {"level": level, "asset": asset.asset_id, "zone": zone, "kind": asset.kind,
                   "expected": variant.expected}
        if name in builtin:
            return value_text(builtin[name])
        rec = asset.facts.get(name)
        return "?" if rec is None else value_text(rec.value)
    return PLACEHOLDER.sub(sub, template)


def make_finding(cc: CompiledCheck, asset: AssetFacts, zone: str, level: int, result: Result,
                 required: bool) -> Finding:
    check = cc.check
    evidence = []
    actual: dict[str, Any] = {}
    for t in result.trace:
        rec = asset.facts.get(t.fact)
        evidence.append(build(EvidenceItem, {
            "fact": t.fact, "value": t.actual,
            "observation_id": rec.observation_id if rec else None,
            "probe": rec.probe if rec else None,
            "op": t.op, "expected": t.expected, "result": _TRI[t.result], "present": t.present,
            "note": t.note or ("" if t.present else asset.unknown.get(t.fact, "not collected")),
            "collected_at": rec.collected_at if rec else None,
            "evidence_ids": list(rec.evidence) if rec else [],
        }))
        if t.present:
            actual[t.fact] = t.actual
    status = result.status
    if status in BAD:
        message = render_message(check.message, cc, asset, zone, level, result.variant)
    elif status == "pass":
        message = (render_message(check.pass_message, cc, asset, zone, level, result.variant)
                   if check.pass_message else f"{check.title}: ok")
    else:
        message = result.reason
    return build(Finding, {
        "asset_id": asset.asset_id, "zone": zone, "check_id": check.id, "title": check.title,
        "status": status, "severity": check.severity, "requirements": list(cc.requirements),
        "references": {k: list(v) for k, v in cc.references.items()}, "message": message,
        "expected": result.variant.expected, "actual": actual, "evidence": evidence,
        "rationale": cc.rationale, "remediation": cc.remediation, "exception": None,
        "level": level, "required": required, "original_status": None,
        "reason": result.reason, "on_fail": check.on_fail,
    })


@dataclass
class Compensations:
    """Exceptions and compensating attestations, matched against (asset, check, SR)."""

    exceptions: Sequence[ExceptionRecord]
    attestations: Sequence[Attestation]
    now: dt.datetime
    _cache: dict[tuple[Any, ...], list[tuple[dict[str, Any], bool, str]]] = field(
        default_factory=dict)

    _candidates: dict[tuple[str, str], bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.attestations = [a for a in self.attestations if a.status == "compensated"]

    def __bool__(self) -> bool:
        return bool(self.exceptions or self.attestations)

    def may_cover(self, zone: str, check_id: str) -> bool:
        """Cheap pre-filter: could any record cover this check in this zone?"""
        key = (zone, check_id)
        found = self._candidates.get(key)
        if found is None:
            scopes = [e.scope for e in self.exceptions] + [a.scope for a in self.attestations]
            found = self._candidates[key] = any(
                sc.zone in (None, zone) and (sc.checks is None or check_id in sc.checks)
                for sc in scopes)
        return found

    def matches(self, asset_id: str, zone: str, check_id: str, check_reqs: Sequence[str],
                requirement: str | None, level: int) -> list[tuple[dict[str, Any], bool, str]]:
        """(summary, valid, type) of every record covering this finding."""
        key = (asset_id, zone, check_id, requirement, level)
        if key in self._cache:
            return self._cache[key]
        wanted = [requirement] if requirement else list(check_reqs)
        found: list[tuple[dict[str, Any], bool, str]] = []
        for exc in self.exceptions:
            scope = exc.scope
            if not scope.covers_asset(asset_id, zone):
                continue
            if scope.checks is not None and check_id not in scope.checks:
                continue
            if scope.requirements is not None and not set(scope.requirements) & set(wanted):
                continue
            found.append((exc.summary(self.now), not exc.expired(self.now), exc.type))
        for att in self.attestations:
            if not att.scope.covers_asset(asset_id, zone) or not att.covers_level(level):
                continue
            if att.scope.checks is not None and check_id not in att.scope.checks:
                continue
            if not set(att.compensates) & set(wanted):
                continue
            found.append((att.summary(self.now), not att.expired(self.now),
                          "compensating_control"))
        self._cache[key] = found
        return found

    def compensates(self, asset_id: str, zone: str, check_id: str, check_reqs: Sequence[str],
                    requirement: str | None, level: int) -> bool:
        if not self.may_cover(zone, check_id):
            return False
        return any(valid and kind == "compensating_control" for _, valid, kind in
                   self.matches(asset_id, zone, check_id, check_reqs, requirement, level))


def apply_compensations(finding: Finding, comps: Compensations,
                        requirement: str | None = None) -> Finding:
    """Mark a ``fail``/``capability_gap`` finding compensated (or note an expired exception)."""
    if finding.status not in BAD or not comps or not comps.may_cover(finding.zone,
                                                                         finding.check_id):
        return finding
    found = comps.matches(finding.asset_id, finding.zone, finding.check_id,
                          finding.requirements, requirement, finding.level)
    if not found:
        return finding
    valid = [(s, kind) for s, ok, kind in found if ok]
    compensating = [s for s, kind in valid if kind == "compensating_control"]
    if compensating:
        summary = compensating[0]
        control = summary.get("control") or summary.get("justification") or ""
        return finding.model_copy(update={
            "original_status": finding.status, "status": "compensated",
            "exception": summary,
            "message": f"{finding.message} — compensated by {summary['id']}: {control}".strip(),
        })
    if valid:  # accepted risk: annotate only
        summary = valid[0][0]
        return finding.model_copy(update={
            "exception": summary,
            "message": f"{finding.message} — risk accepted by {summary['id']} until "
                       f"{summary['expires']} (still counts as {finding.status})",
        })
    summary = found[0][0]
    return finding.model_copy(update={
        "exception": summary,
        "message": f"{finding.message} — exception {summary['id']} expired on "
                   f"{summary['expires']} and no longer counts",
    })


def _levels_of(zone_levels: Mapping[str, int] | None, frs: Iterable[str]) -> int:
    if not zone_levels:
        return 1
    return max([1, *(zone_levels.get(fr, 0) for fr in frs)])


@dataclass
class ZoneFold:
    """Per (zone, requirement, level): worst status; at the zone's SL-T also the results
    that are not met (for the gap list)."""

    rank: dict[tuple[str, str, int], int] = field(default_factory=dict)
    bad: dict[tuple[str, str, int], list[tuple[AssetFacts, CompiledCheck, Result, str]]] = (
        field(default_factory=lambda: defaultdict(list)))


def evaluate_assets(baseline: Baseline, zone_levels: Mapping[str, Mapping[str, int]],
                    assets: Sequence[AssetFacts], comps: Compensations,
                    ) -> tuple[list[Finding], ZoneFold, list[str]]:
    """Findings (target level) and the per-level fold that the zone results need."""
    checks = compiled(baseline)
    by_kind: dict[str | None, list[CompiledCheck]] = defaultdict(list)
    for cc in checks.values():
        for kind in cc.kinds or (None,):
            by_kind[kind].append(cc)
    requirements = baseline.requirements
    findings: list[Finding] = []
    fold = ZoneFold()
    warnings: list[str] = []
    per_kind: dict[str, list[CompiledCheck]] = {}
    targets: dict[tuple[str, str], tuple[int, bool]] = {}
    ranks, bad = fold.rank, fold.bad
    unknown_rank = RANK["unknown"]
    for asset in sorted(assets, key=lambda a: (a.zone, a.asset_id)):
        zone = asset.zone
        slt = zone_levels.get(zone)
        if slt is None:
            warnings.append(f"asset {asset.asset_id} is in zone {zone!r}, which has no SL-T; "
                            "its findings use SL 1 thresholds and count for no zone")
        candidates = per_kind.get(asset.kind)
        if candidates is None:
            candidates = per_kind[asset.kind] = sorted(
                by_kind.get(asset.kind, []) + by_kind.get(None, []), key=lambda c: c.check.id)
        ran = asset.probe_status
        family = host_family(asset)
        for cc in candidates:
            if cc.probes is not None and not any(p in ran for p in cc.probes):
                continue
            if cc.os is not None and family not in cc.os:
                continue
            results = [run_variant(cc, v, asset) for v in cc.variants]
            target = targets.get((zone, cc.check.id))
            if target is None:
                target = targets[(zone, cc.check.id)] = (
                    _levels_of(slt, cc.frs),
                    bool(slt) and any(requirements[r].applies_at(slt.get(requirements[r].fr, 0))
                                      for r in cc.requirements))
            level, required = target
            finding = make_finding(cc, asset, zone, level, results[cc.variant_of[level]],
                                   required)
            findings.append(apply_compensations(finding, comps))
            if slt is None:
                continue
            covered = comps and comps.may_cover(zone, cc.check.id)
            for rid, fr, steps in cc.plan:
                wanted = slt.get(fr, 0)  # gap findings are only listed at the zone's SL-T
                for n, index in steps:
                    res = results[index]
                    status = res.status
                    if covered and status in BAD and comps.compensates(
                            asset.asset_id, zone, cc.check.id, cc.requirements, rid, n):
                        status = "compensated"
                    key = (zone, rid, n)
                    rank = RANK[status]
                    if rank > ranks.get(key, -1):
                        ranks[key] = rank
                    if rank >= unknown_rank and n == wanted:
                        bad[key].append((asset, cc, res, status))
    return findings, fold, warnings


def evaluate_check(baseline: Baseline, check_id: str, asset: AssetFacts, level: int,
                   ) -> Finding:
    """One check on one asset at one level (fixtures). Irrelevant → ``not_applicable``."""
    cc = compiled(baseline)[check_id]
    why = irrelevant(cc, asset)
    variant = cc.variants[cc.variant_of[level]]
    if why is not None:
        result = Result("not_applicable", why, [], variant)
    else:
        result = run_variant(cc, variant, asset)
    return make_finding(cc, asset, asset.zone, level, result, True)


def normalise_zones(zones: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Accept SecurityLevelVector, Zone (``.sl_t``), a FR→level mapping or one level."""
    out: dict[str, dict[str, int]] = {}
    for zid, value in zones.items():
        if hasattr(value, "sl_t"):
            value = value.sl_t
        if hasattr(value, "as_dict"):
            value = value.as_dict()
        if isinstance(value, int):
            value = dict.fromkeys(("IAC", "UC", "SI", "DC", "RDF", "TRE", "RA"), value)
        out[str(zid)] = {str(k): int(v) for k, v in dict(value).items()}
    return out


def evaluate(baseline: Baseline, zones: Mapping[str, Any], assets: Sequence[AssetFacts], *,
             exceptions: Sequence[ExceptionRecord] = (),
             attestations: Sequence[Attestation] = (),
             now: dt.datetime) -> Evaluation:
    """Evaluate every asset and zone. Pure: same inputs, same output (order included)."""
    from otaudit.server.baseline.sl import zone_results

    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    zone_levels = normalise_zones(zones)
    comps = Compensations(list(exceptions), list(attestations), now)
    with _gc_paused():
        findings, fold, warnings = evaluate_assets(baseline, zone_levels, assets, comps)
        warnings += _reference_warnings(baseline, exceptions, attestations)
        zone_list = zone_results(baseline, zone_levels, assets, findings, fold, attestations,
                                 comps, now)
        findings.sort(key=lambda f: (f.zone, f.asset_id, f.check_id))
    return Evaluation(baseline_digest=baseline.digest, evaluated_at=now, findings=findings,
                      zones=zone_list, warnings=sorted(set(warnings)))


def _reference_warnings(baseline: Baseline, exceptions: Sequence[ExceptionRecord],
                        attestations: Sequence[Attestation]) -> list[str]:
    out = []
    for exc in exceptions:
        for cid in exc.scope.checks or []:
            if cid not in baseline.checks:
                out.append(f"exception {exc.id} names unknown check {cid}")
        for rid in exc.scope.requirements or []:
            if rid not in baseline.requirements:
                out.append(f"exception {exc.id} names unknown requirement {rid}")
    for att in attestations:
        for rid in [att.requirement, *att.compensates]:
            if rid not in baseline.requirements:
                out.append(f"attestation {att.key} names unknown requirement {rid}")
    return out
