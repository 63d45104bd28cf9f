"""The gap report: per zone SL-T vs SL-A per FR, coverage, failing SR/REs with evidence,
and the NIS2 Art. 21(2) view — as JSON-ready data or as text for a terminal."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.table import Table

from otaudit.server.baseline.model import (
    FR_ORDER,
    Evaluation,
    Reason,
    TargetCoverage,
    ZoneResult,
)
from otaudit.text import device_text

MAX_FINDINGS_PER_GAP = 10


def gap_data(evaluation: Evaluation, zone: str | None = None) -> dict[str, Any]:
    """JSON-ready gap report (the zones of the evaluation, optionally one zone)."""
    zones = [z for z in evaluation.zones if zone is None or z.zone == zone]
    return {
        "baseline_digest": evaluation.baseline_digest,
        "evaluated_at": evaluation.evaluated_at.isoformat(),
        "warnings": list(evaluation.warnings),
        "zones": [z.model_dump(mode="json") for z in zones],
    }


def render_gap_table(evaluation: Evaluation, zone: str | None = None, width: int = 120,
                     max_findings: int = MAX_FINDINGS_PER_GAP) -> str:
    """Text for a terminal; control characters that device text may carry are escaped
    (``otaudit.text``), whatever field they came in."""
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None,
                      highlight=False, markup=False, soft_wrap=True)
    zones = [z for z in evaluation.zones if zone is None or z.zone == zone]
    if not zones:
        console.print("no zone to report" + (f" (zone {zone!r} unknown)" if zone else ""))
    for z in zones:
        _zone(console, z, max_findings)
    for warning in evaluation.warnings:
        console.print(f"warning: {warning}")
    console.print(f"baseline {evaluation.baseline_digest[:12]}, evaluated "
                  f"{evaluation.evaluated_at.isoformat(timespec='seconds')}")
    return device_text(out.getvalue())


def _zone(console: Console, z: ZoneResult, max_findings: int) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in z.findings.items()) or "none"
    console.print(f"Zone {z.zone}: {z.assets} assets; findings: {counts}")
    levels = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False)
    levels.add_column("")
    for fr in FR_ORDER:
        levels.add_column(fr, justify="center")
    levels.add_row("SL-T", *(str(z.sl_t[fr]) for fr in FR_ORDER))
    levels.add_row("SL-A proven", *(str(z.sl_a[fr]) for fr in FR_ORDER))
    levels.add_row("SL-A reachable", *(str(z.sl_reachable.get(fr, z.sl_a[fr]))
                                       for fr in FR_ORDER))
    levels.add_row("assessed", *(_share(z.assessed.get(fr)) for fr in FR_ORDER))
    levels.add_row("gap", *(f"{z.gap[fr]} !" if z.gap[fr] else "-" for fr in FR_ORDER))
    console.print(levels)
    console.print("proven: unknown counts as not met; reachable: if every unknown were met; "
                  f"assessed: share of the SRs/REs at SL-T decided "
                  f"({_share(z.assessed_total)} overall)")

    cov = Table(title="How the requirements selected at each SL were decided",
                title_justify="left", box=None, padding=(0, 1), pad_edge=False)
    for col in ("SL", "total", "met", "automatic", "compensated", "attested", "n/a",
                "unknown"):
        cov.add_column(col, justify="right")
    for level, c in sorted(z.coverage.items()):
        cov.add_row(str(level), str(c.total), str(c.satisfied), str(c.automatic),
                    str(c.compensated), str(c.attested), str(c.not_applicable), str(c.unknown))
    console.print(cov)

    console.print(f"Requirements not met at SL-T ({len(z.failing)}):")
    if not z.failing:
        console.print("  none")
    for gap in z.failing:
        why = " (its SR is not met)" if gap.parent_unmet else ""
        console.print(f"  {gap.id} {gap.title} [{gap.fr}, SL {gap.level}]: "
                      f"{gap.status}{why}")
        for note in gap.notes:
            console.print(f"      note: {note}")
        for reason in gap.why:
            _reason(console, reason, max_findings)

    nis2 = Table(title="NIS2 Art. 21(2)", title_justify="left", box=None, padding=(0, 1),
                 pad_edge=False)
    for col in ("point", "subject", "met", "unmet requirements", "open findings"):
        nis2.add_column(col, overflow="fold")
    for v in z.nis2:
        met = f"{v.requirements_met}/{v.requirements_in_target}"
        findings = ", ".join(f"{k} {n}" for k, n in v.findings.items()
                             if k not in ("not_applicable",)) or "-"
        nis2.add_row(v.point, v.subject, met, ", ".join(v.requirements_unmet) or "-", findings)
    console.print(nis2)
    console.print("")


def _share(cov: TargetCoverage | None) -> str:
    if cov is None or not cov.total:
        return "-"
    return f"{cov.assessed}/{cov.total}"


def reason_line(r: Reason) -> str:
    """One line for a requirement's reason: source, id, status, text, owner and expiry."""
    head = {"check": f"check {r.id}", "attestation": f"attestation {r.id}",
            "exception": f"exception {r.id}", "control": "control",
            "none": "no evidence"}[r.source]
    parts = [f"{head}: {r.status}" if r.status else head]
    if r.source == "check" and r.assets:
        parts.append(f"on {', '.join(r.assets)}")
    if r.text:
        parts.append(r.text)
    if r.owner:
        parts.append(f"by {r.owner}")
    if r.expires:
        parts.append(f"valid until {r.expires}")
    return " — ".join(parts)


def _reason(console: Console, r: Reason, max_lines: int) -> None:
    console.print(f"      {reason_line(r)}")
    for line in r.evidence[:max_lines]:
        console.print(f"          {line}")
    if len(r.evidence) > max_lines:
        console.print(f"          ... {len(r.evidence) - max_lines} more")
