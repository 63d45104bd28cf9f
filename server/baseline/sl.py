"""Zone results: requirement status per level, achieved SL per FR, coverage, gaps, NIS2.

Status of requirement R in zone Z at level n (R selected at n):

1. From checks (controls file): the worst per-asset result of R's checks at level n's
   thresholds, after compensations — ``fail`` > ``capability_gap`` > ``unknown`` >
   ``compensated`` > ``pass`` > ``not_applicable``. No asset of the zone in scope of any
   of the checks, or no checks at all: no automatic evidence (needs an attestation),
   unless the control declares ``unchecked: not_applicable``.
2. Attestations for (R, Z) valid at ``now`` and claimed up to at least n: they never hide
   an automatic ``fail``/``capability_gap`` nor replace a ``pass``; otherwise ``not_met`` /
   ``partially_met`` → ``fail``, ``compensated`` → ``compensated``, ``met`` → ``attested``,
   ``not_applicable`` → ``not_applicable``. Expired ones are ignored (noted).
3. Nothing decided it: ``unknown``.

R is *met* at n when its status is ``pass``, ``compensated``, ``attested`` or
``not_applicable`` and, for an RE, its SR is met at n. SL-A of an FR is the highest n such
that every requirement of the FR selected at levels 1..n is met at that level.

Three numbers tell "failed" from "not assessed": SL-A *proven* (``sl_a``: an unknown
requirement counts as not met), SL-A *reachable* (``sl_reachable``: as if every unknown
turned out met; a fail still counts) and the *coverage* at SL-T (``assessed``: the share of
the requirements selected at the zone's SL-T that something decided). Every requirement row
at SL-T carries ``why``: the checks with their results and the facts they judged (each
evidence item once), the attestations and exceptions with id and expiry.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from otaudit.server.baseline.evaluator import (
    BAD,
    STATUS_OF_RANK,
    Compensations,
    ZoneFold,
    apply_compensations,
    make_finding,
    value_text,
)
from otaudit.server.baseline.format import LEVELS
from otaudit.server.baseline.loader import Baseline, Requirement
from otaudit.server.baseline.model import (
    FR_ORDER,
    AssetFacts,
    Coverage,
    Finding,
    Nis2View,
    Reason,
    RequirementGap,
    RequirementResult,
    TargetCoverage,
    ZoneResult,
)
from otaudit.server.baseline.waivers import Attestation

MET = frozenset({"pass", "compensated", "attested", "not_applicable"})
REACHABLE = MET | {"unknown"}
MAX_EVIDENCE_PER_REASON = 20


def requirement_status(auto: str | None, attestations: Sequence[Attestation], level: int,
                       now: dt.datetime) -> tuple[str, str, list[str], list[str]]:
    """(status, decided_by, attestation ids used, notes) for one requirement at one level."""
    notes: list[str] = []
    valid: list[Attestation] = []
    for att in attestations:
        if att.expired(now):
            notes.append(f"attestation {att.key} expired on {att.valid_until.isoformat()} "
                         "and no longer counts")
        elif att.covers_level(level):
            valid.append(att)
    ids = [a.key for a in valid]
    if auto in BAD:
        return auto, "checks", [], notes
    if auto == "pass":
        return "pass", "checks", [], notes
    if auto == "compensated":
        return "compensated", "compensation", [], notes
    states = {a.status for a in valid}
    if states & {"not_met", "partially_met"}:
        return "fail", "attestation", ids, notes
    if "compensated" in states:
        return "compensated", "attestation", ids, notes
    if "met" in states:
        return "attested", "attestation", ids, notes
    if "not_applicable" in states:
        return "not_applicable", "attestation", ids, notes
    if auto is None:
        return "unknown", "none", [], notes
    return auto, "checks", [], notes


def achieved_levels(requirements: Mapping[str, Requirement],
                    met: Mapping[tuple[str, int], bool]) -> dict[str, int]:
    """SL-A per FR: highest n with every requirement selected at 1..n met at its level."""
    out = {}
    for fr in FR_ORDER:
        achieved = 0
        for n in LEVELS:
            if all(met[(r.id, n)] for r in requirements.values()
                   if r.fr == fr and r.applies_at(n)):
                achieved = n
            else:
                break
        out[fr] = achieved
    return out


def _bucket(status: str, decided_by: str) -> str:
    if status in ("not_applicable", "unknown", "compensated"):
        return status
    return "attested" if decided_by == "attestation" else "automatic"


def zone_results(baseline: Baseline, zone_levels: Mapping[str, Mapping[str, int]],
                 assets: Sequence[AssetFacts], findings: Sequence[Finding], fold: ZoneFold,
                 attestations: Sequence[Attestation], comps: Compensations,
                 now: dt.datetime) -> list[ZoneResult]:
    by_req: dict[str, list[Attestation]] = defaultdict(list)
    for att in attestations:
        by_req[att.requirement].append(att)
    findings_by_zone: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        findings_by_zone[f.zone].append(f)
    assets_by_zone = Counter(a.zone for a in assets if a.kind != "zone")  # not declared facts
    return [
        _zone(baseline, zid, dict(zone_levels[zid]), assets_by_zone.get(zid, 0),
              findings_by_zone.get(zid, []), fold, by_req, comps, now)
        for zid in sorted(zone_levels)
    ]


def _zone(baseline: Baseline, zid: str, sl_t: dict[str, int], n_assets: int,
          findings: Sequence[Finding], fold: ZoneFold, by_req: Mapping[str, list[Attestation]],
          comps: Compensations, now: dt.datetime) -> ZoneResult:
    reqs = baseline.requirements
    status: dict[tuple[str, int], str] = {}
    decided: dict[tuple[str, int], str] = {}
    used: dict[str, list[str]] = {}
    notes: dict[str, list[str]] = {}
    for rid, req in reqs.items():
        control = baseline.controls.get(rid)
        unchecked = "not_applicable" if control and control.unchecked == "not_applicable" \
            else None
        atts = [a for a in by_req.get(rid, ()) if a.scope.zone in (None, zid)]
        for n in req.sl:
            rank = fold.rank.get((zid, rid, n))
            auto = STATUS_OF_RANK[rank] if rank is not None else unchecked
            st, by, ids, extra = requirement_status(auto, atts, n, now)
            status[(rid, n)], decided[(rid, n)] = st, by
            used.setdefault(rid, [])
            used[rid] += [i for i in ids if i not in used[rid]]
            notes.setdefault(rid, [])
            notes[rid] += [x for x in extra if x not in notes[rid]]
    met = _met(reqs, status, MET)
    sl_a = achieved_levels(reqs, met)
    sl_reachable = achieved_levels(reqs, _met(reqs, status, REACHABLE))
    assessed = {fr: TargetCoverage() for fr in FR_ORDER}
    atts_by_key = {a.key: a for atts in by_req.values() for a in atts}
    by_check = _findings_by_requirement(findings)

    coverage = {n: Coverage() for n in LEVELS}
    by_fr = {fr: {n: Coverage() for n in LEVELS} for fr in FR_ORDER}
    results: list[RequirementResult] = []
    failing: list[RequirementGap] = []
    for rid, req in reqs.items():
        for n in req.sl:
            bucket = _bucket(status[(rid, n)], decided[(rid, n)])
            for cov in (coverage[n], by_fr[req.fr][n]):
                cov.total += 1
                setattr(cov, bucket, getattr(cov, bucket) + 1)
                cov.satisfied += met[(rid, n)]
        target = sl_t.get(req.fr, 0)
        in_target = req.applies_at(target)
        st = status[(rid, target)] if in_target else "not_evaluated"
        why: list[Reason] = []
        if in_target:
            cov = assessed[req.fr]
            cov.total += 1
            cov.assessed += st != "unknown"
            bad = _gap_findings(fold, zid, rid, target, comps)
            why = _why(baseline, rid, st, decided[(rid, target)], bad, by_check.get(rid, []),
                       [atts_by_key[i] for i in used.get(rid, []) if i in atts_by_key], now)
        results.append(RequirementResult(
            id=rid, title=req.title, fr=req.fr, sl=list(req.sl), parent=req.parent,
            target=target, in_target=in_target, status=st,
            satisfied=in_target and met[(rid, target)],
            levels={n: status[(rid, n)] for n in req.sl},
            decided_by=decided[(rid, target)] if in_target else "",
            checks=baseline.checks_for(rid), attestations=used.get(rid, []),
            notes=notes.get(rid, []), why=why,
        ))
        if in_target and not met[(rid, target)]:
            parent_unmet = req.parent is not None and not met[(req.parent, target)]
            if parent_unmet and st in MET:
                continue  # the SR is listed; this RE only fails through it
            failing.append(RequirementGap(
                id=rid, title=req.title, fr=req.fr, level=target, status=st,
                parent_unmet=parent_unmet, notes=notes.get(rid, []), findings=bad, why=why,
            ))
    for cov in assessed.values():
        cov.share = cov.assessed / cov.total if cov.total else 1.0
    total = TargetCoverage(total=sum(c.total for c in assessed.values()),
                           assessed=sum(c.assessed for c in assessed.values()))
    total.share = total.assessed / total.total if total.total else 1.0
    return ZoneResult(
        zone=zid, sl_t={fr: sl_t.get(fr, 0) for fr in FR_ORDER}, sl_a=sl_a,
        sl_reachable=sl_reachable, assessed=assessed, assessed_total=total,
        gap={fr: max(0, sl_t.get(fr, 0) - sl_a[fr]) for fr in FR_ORDER},
        assets=n_assets, findings=dict(sorted(Counter(f.status for f in findings).items())),
        coverage=coverage, coverage_by_fr=by_fr, requirements=results, failing=failing,
        nis2=_nis2(baseline, results, findings),
    )


def _met(reqs: Mapping[str, Requirement], status: Mapping[tuple[str, int], str],
         counted: frozenset[str]) -> dict[tuple[str, int], bool]:
    """Per (requirement, level): its status is one of ``counted`` and, for an RE, its SR's
    too (catalogue order: an SR comes before its REs)."""
    met: dict[tuple[str, int], bool] = {}
    for rid, req in reqs.items():
        for n in LEVELS:
            own = status.get((rid, n)) in counted
            met[(rid, n)] = own and (req.parent is None or met[(req.parent, n)])
    return met


def _findings_by_requirement(findings: Sequence[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        for rid in f.requirements:
            out[rid].append(f)
    return out


def _evidence_lines(findings: Sequence[Finding]) -> list[str]:
    """'asset: fact op expected -> value' for the facts the findings judged, each once."""
    lines: dict[str, None] = {}
    for f in findings:
        for e in f.evidence:
            if e.present:
                value = value_text(e.value)
                value = value if len(value) <= 80 else value[:77] + "..."
            else:
                note = e.note if e.note and e.note != "not collected" else ""
                value = f"not collected ({note})" if note else "not collected"
            lines[f"{f.asset_id}: {e.fact} {e.op} {value_text(e.expected)} -> {value}"] = None
    return list(lines)


def _why(baseline: Baseline, rid: str, status: str, decided_by: str,
         bad: Sequence[Finding], zone_findings: Sequence[Finding],
         attestations: Sequence[Attestation], now: dt.datetime) -> list[Reason]:
    """What decided requirement ``rid`` at the zone's SL-T (``bad``: the results that keep
    it from being met at that level; ``zone_findings``: the zone's findings of its checks)."""
    why: list[Reason] = []
    groups: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in bad:
        groups[(f.check_id, f.status)].append(f)
    shown = {f.check_id for f in bad}
    for f in zone_findings:
        if f.check_id not in shown and f.status != "not_applicable":
            groups[(f.check_id, f.status)].append(f)
    rank = {s: i for i, s in enumerate(("fail", "capability_gap", "unknown", "compensated",
                                        "pass"))}
    exceptions: dict[str, dict[str, Any]] = {}
    for (cid, st), group in sorted(groups.items(), key=lambda kv: (rank.get(kv[0][1], 9),
                                                                   kv[0][0])):
        assets = sorted({f.asset_id for f in group})
        evidence = _evidence_lines(group) if st != "pass" else []
        text = group[0].message if len(assets) == 1 else \
            f"{group[0].title}: {st} on {len(assets)} assets"
        if st == "unknown":
            text = "; ".join(dict.fromkeys(f"{f.asset_id}: {f.reason or f.message}"
                                           for f in group))
        why.append(Reason(source="check", id=cid, status=st, text=text, assets=assets,
                          evidence=evidence[:MAX_EVIDENCE_PER_REASON]))
        for f in group:
            if f.exception and f.exception.get("source") == "exception":
                exceptions.setdefault(f.exception["id"], f.exception)
    for exc in exceptions.values():
        why.append(Reason(source="exception", id=exc["id"], status=exc.get("type", ""),
                          text=exc.get("control") or exc.get("justification") or "",
                          expires=exc.get("expires"), owner=exc.get("owner")))
    for att in attestations:
        why.append(Reason(source="attestation", id=att.key, status=att.status,
                          text=att.compensating_control or att.notes or "",
                          expires=att.valid_until.isoformat(), owner=att.attested_by.name,
                          evidence=[f"{e.type}: {e.uri}" for e in att.evidence]))
    if status == "not_applicable" and decided_by == "checks" and not groups:
        control = baseline.controls.get(rid)
        unchecked = control is not None and control.unchecked == "not_applicable"
        why.append(Reason(source="control", status="not_applicable", text=(
            "no asset of the zone is in scope of its checks; the control declares "
            "unchecked: not_applicable" if unchecked else
            "its checks do not apply to the zone's assets")))
    if status == "unknown" and decided_by == "none":
        checks = baseline.checks_for(rid)
        why.append(Reason(source="none", status="unknown", text=(
            f"no asset of the zone in scope of {', '.join(checks)} and no valid attestation"
            if checks else "no automatic check exists; needs an attestation")))
    return why


def _gap_findings(fold: ZoneFold, zid: str, rid: str, level: int,
                  comps: Compensations) -> list[Finding]:
    """The results listed under the gap of ``rid`` at ``level``, each judged at that level
    with the compensations of ``rid`` only. The zone's reported finding is not reused: it
    may be of another level and carries the exceptions of every requirement of its check."""
    out = []
    for asset, cc, result, _status in fold.bad.get((zid, rid, level), []):
        finding = make_finding(cc, asset, zid, level, result, True)
        out.append(apply_compensations(finding, comps, requirement=rid))
    return sorted(out, key=lambda f: (f.asset_id, f.check_id))


def _nis2(baseline: Baseline, results: Sequence[RequirementResult],
          findings: Sequence[Finding]) -> list[Nis2View]:
    by_id = {r.id: r for r in results}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    failing: dict[str, set[str]] = defaultdict(set)
    for f in findings:
        if f.status == "pass":
            continue
        for point in f.references.get("nis2", ()):
            counts[point][f.status] += 1
            if f.status in BAD:
                failing[point].add(f.check_id)
    views = []
    for point in baseline.nis2.values():
        view = Nis2View(point=point.id, subject=point.subject,
                        findings=dict(sorted(counts[point.id].items())),
                        failing_checks=sorted(failing[point.id]))
        for rid in point.evidenced_by:
            r = by_id.get(rid)
            if r is None or not r.in_target:
                continue
            view.requirements_in_target += 1
            if r.satisfied:
                view.requirements_met += 1
                continue
            view.requirements_unmet.append(rid)
            if r.status == "unknown":
                view.requirements_unknown += 1
        views.append(view)
    return views


__all__: list[Any] = ["achieved_levels", "requirement_status", "zone_results"]
