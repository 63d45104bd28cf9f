"""Everything the deliverable shows, assembled once as JSON-ready data.

``report_document`` is the one server-side function behind the HTML/PDF report, the machine
formats (SARIF, OSCAL, CSV) and the evidence package; the future REST API and web console
call it too. It extends ``server.report.build_report`` (zones, assets, findings, patches)
with what a reader without otaudit needs: scope and provenance (site, audit window,
collectors, tool version, baseline and inventory digests), the evidence excerpts behind each
finding, the ten highest risks in plain words, the risk register, the NIS2 Art. 21(2)
mapping and the remediation roadmap.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from otaudit import __version__
from otaudit.observation import utcnow
from otaudit.server import store
from otaudit.server.reporting.roadmap import roadmaps

if TYPE_CHECKING:
    from otaudit.server.baseline.loader import Baseline

FRS = ("IAC", "UC", "SI", "DC", "RDF", "TRE", "RA")
FR_NAMES = {"IAC": "Identification and authentication control", "UC": "Use control",
            "SI": "System integrity", "DC": "Data confidentiality",
            "RDF": "Restricted data flow", "TRE": "Timely response to events",
            "RA": "Resource availability"}
SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}
BAD = ("fail", "capability_gap")
EXCERPT_CHARS = 1200
TOP_RISKS = 10


def file_digest(path: Path | None) -> str | None:
    if path is None or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def report_document(session: Session, *, baseline: Baseline, zone: str | None = None,
                    site: str | None = None, exceptions_file: Path | None = None,
                    attestations_file: Path | None = None,
                    inventory_file: Path | None = None,
                    now: datetime | None = None) -> dict[str, Any]:
    """The report as data (see the module docstring)."""
    from otaudit.server.baseline import load_attestations, load_exceptions
    from otaudit.server.report import build_report

    report = build_report(session, zone=zone, site=site, baseline=baseline,
                          exceptions_file=exceptions_file,
                          attestations_file=attestations_file)
    observations = store.latest_observations(session, zone=zone, site=site)
    excerpts = {o.observation_id: {e["id"]: e for e in o.payload.get("evidence", [])}
                for o in observations}
    for asset in report["assets"]:
        asset["reached"] = any(p["status"] == "ok" for p in asset["probes"])
        for finding in asset["findings"]:
            finding["excerpts"] = _excerpts(finding, excerpts)
        asset["findings"].sort(key=_finding_order)
    from otaudit.server.services.policy import stored_waivers

    exceptions = load_exceptions(exceptions_file, baseline) if exceptions_file else []
    attestations = load_attestations(attestations_file, baseline) if attestations_file else []
    for name in sorted({z["site"] for z in report["zones"]}):  # written through the API
        exceptions += stored_waivers(session, name, "exception")
        attestations += stored_waivers(session, name, "attestation")
    now = now or utcnow()
    zones = report["zones"]
    patches = sorted((dict(p, asset_name=a["name"]) for a in report["assets"]
                      for p in a["advisories"]), key=_patch_order)
    from otaudit.server.declared import zone_links

    records = store.declared_inventories(session, site)
    conduits = {z["zone"]: [link for r in records for link in zone_links(r.document, z["zone"])]
                for z in zones}
    stored = records[0] if len(records) == 1 else None
    started = [o.started_at for o in observations]
    finished = [o.finished_at for o in observations]
    assets = report["assets"]
    return {
        **report,
        "meta": {
            "title": "OT security audit: IEC 62443-3-3 gap report",
            "site": ", ".join(sorted({o.site for o in observations})) or "-",
            "zone_filter": zone,
            "generated_at": report["generated_at"],
            "window": {"start": _iso(min(started)) if started else None,
                       "end": _iso(max(finished)) if finished else None},
            "collectors": sorted({o.collector_id for o in observations}),
            "tool": {"name": "otaudit", "version": __version__},
            "baseline": {"digest": baseline.digest, "overlay": str(baseline.overlay)
                         if baseline.overlay else None, "checks": len(baseline.checks),
                         "requirements": len(baseline.requirements)},
            "inventory": {"file": inventory_file.name if inventory_file else
                          Path(stored.source).name if stored else None,
                          "digest": file_digest(inventory_file) or (stored.digest if stored
                                                                     else None),
                          "declares_conduits": any(r.document.get("conduits")
                                                   for r in records)},
            "policy": {"exceptions": file_digest(exceptions_file),
                       "attestations": file_digest(attestations_file)},
            "assets": {"total": len(assets), "reached": sum(a["reached"] for a in assets),
                       "unreachable": [a["asset_id"] for a in assets if not a["reached"]]},
        },
        "summary": _summary(zones, assets, patches),
        "top_risks": top_risks(assets, patches, zone_risks(zones, baseline.checks)),
        "patches": patches,
        "risk_register": _register(exceptions, attestations, now),
        "nis2": _nis2(zones),
        "roadmap": roadmaps(zones, baseline.checks),
        "conduits": conduits,
        "fr_names": FR_NAMES,
    }


def _iso(value: datetime) -> str:
    from datetime import UTC

    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat(timespec="seconds")


def _finding_order(f: dict[str, Any]) -> tuple[int, int, str]:
    order = {"fail": 0, "capability_gap": 1, "unknown": 2, "compensated": 3, "attested": 4,
             "pass": 5, "not_applicable": 6}
    return (order.get(f["status"], 9), -SEVERITY_RANK.get(f.get("severity", ""), 0),
            f["check_id"])


def _patch_order(p: dict[str, Any]) -> tuple[Any, ...]:
    state = {"open": 0, "needs_review": 1, "patched": 2, "fixed": 3, "not_affected": 4}
    return (not p.get("known_exploited"), state.get(p.get("state"), 9), -(p.get("cvss") or 0),
            p["asset_id"], p.get("advisory_id") or "", p.get("cve") or "")


def _excerpts(finding: dict[str, Any], by_obs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The raw evidence behind a finding's facts (request and reply excerpt), each once,
    with the facts read from it."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for item in finding.get("evidence", []):
        obs = item.get("observation_id")
        for eid in item.get("evidence_ids") or []:
            entry = out.get((obs, eid))
            if entry is not None:
                if item["fact"] not in entry["facts"]:
                    entry["facts"].append(item["fact"])
                continue
            ev = by_obs.get(obs, {}).get(eid)
            if ev is None:
                continue
            text = ev.get("excerpt", "")
            out[(obs, eid)] = {
                "observation_id": obs, "id": eid, "request": ev.get("request", ""),
                "excerpt": text[:EXCERPT_CHARS],
                "cut": len(text) > EXCERPT_CHARS or ev.get("truncated", False),
                "encoding": ev.get("encoding", "text"), "at": ev.get("at"),
                "facts": [item["fact"]]}
    return list(out.values())


def _summary(zones: list[dict[str, Any]], assets: list[dict[str, Any]],
             patches: list[dict[str, Any]]) -> dict[str, Any]:
    findings = Counter(f["status"] for a in assets for f in a["findings"])
    return {
        "findings": dict(findings),
        "zones": [{
            "zone": z["zone"], "sl_t": z["sl_t"], "sl_a": z["sl_a"],
            "sl_reachable": z.get("sl_reachable", z["sl_a"]),
            "assessed": z.get("assessed_total", {}), "assets": z["assets"],
            "unmet": len(z["failing"]),
            "unmet_by_status": dict(Counter(g["status"] for g in z["failing"])),
        } for z in zones],
        "open_advisories": sum(1 for p in patches if p.get("state") == "open"),
        "exploited_open": sum(1 for p in patches
                              if p.get("state") == "open" and p.get("known_exploited")),
    }


def zone_risks(zones: list[dict[str, Any]], checks: dict[str, Any]) -> list[dict[str, Any]]:
    """Failed checks on a zone's declared facts (its conduits), once per zone and check."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for z in zones:
        for r in z["requirements"]:
            for why in r.get("why", []) if r["in_target"] else []:
                if why["source"] != "check" or why.get("status") not in BAD or not any(
                        a.startswith("zone:") for a in why.get("assets", [])):
                    continue
                check = checks.get(why["id"])
                entry = found.setdefault((z["zone"], why["id"]), {
                    "kind": "zone", "severity": check.severity if check else "medium",
                    "asset_id": f"zone:{z['zone']}", "zone": z["zone"], "ref": why["id"],
                    "text": f"Zone {z['zone']} fails \"{check.title if check else why['id']}\" "
                            "(its declared conduits)",
                    "detail": why.get("text", ""), "requirements": []})
                entry["requirements"].append(r["id"])
    return list(found.values())


def top_risks(assets: list[dict[str, Any]], patches: list[dict[str, Any]],
              zone_level: list[dict[str, Any]] = (),  # type: ignore[assignment]
              limit: int = TOP_RISKS) -> list[dict[str, Any]]:
    """The highest risks in plain words: failed checks (on assets and on the zones'
    conduits) by severity, open advisories by known exploitation and CVSS; one line each."""
    risks: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((0, SEVERITY_RANK.get(r["severity"], 2), 0.0), r) for r in zone_level]
    names = {a["asset_id"]: a.get("name") or a["asset_id"] for a in assets}
    for a in assets:
        for f in a["findings"]:
            if f["status"] not in BAD:
                continue
            sev = f.get("severity", "medium")
            what = f.get("message") or ""
            what = what if 0 < len(what) <= 160 else f"fails \"{f['title']}\""
            text = f"{names[a['asset_id']]} ({a['asset_id']}, zone {a['zone']}): {what}"
            risks.append(((0, SEVERITY_RANK.get(sev, 2), 0.0), {
                "kind": "finding", "severity": sev, "asset_id": a["asset_id"],
                "zone": a["zone"], "ref": f["check_id"], "text": text,
                "detail": f.get("message", ""), "requirements": f.get("requirements", [])}))
    for p in patches:
        if p.get("state") != "open":
            continue
        sev = (p.get("severity") or "medium").lower()
        fix = f"fixed in {p['fixed_in']}" if p.get("fixed_in") else "no fixed version known"
        text = (f"{p['asset_name'] or p['asset_id']} ({p['asset_id']}, zone {p['zone']}) runs "
                f"{p.get('installed_version') or 'a version'} affected by {p.get('cve')} "
                f"({p.get('advisory_id')}, CVSS {p.get('cvss')}); {fix}")
        if p.get("known_exploited"):
            text += "; known to be exploited"
        risks.append(((1 if p.get("known_exploited") else 0, SEVERITY_RANK.get(sev, 2),
                       p.get("cvss") or 0.0), {
            "kind": "advisory", "severity": sev, "asset_id": p["asset_id"], "zone": p["zone"],
            "ref": p.get("cve") or p.get("advisory_id"), "text": text,
            "detail": p.get("remediation") or "", "requirements": []}))
    risks.sort(key=lambda r: (r[0][0], r[0][1], r[0][2]), reverse=True)
    return [r for _, r in risks[:limit]]


def _register(exceptions: list[Any], attestations: list[Any], now: datetime
              ) -> list[dict[str, Any]]:
    rows = []
    for e in exceptions:
        rows.append({"id": e.id, "kind": e.type.replace("_", " "), "zone": e.scope.zone or "all",
                     "scope": _scope(e.scope), "owner": e.owner, "expires": e.expires.isoformat(),
                     "expired": e.expired(now), "control": e.control or "",
                     "justification": " ".join(e.justification.split()),
                     "evidence": [f"{x.type}: {x.uri}" for x in e.evidence]})
    for a in attestations:
        rows.append({"id": a.key, "kind": f"attestation ({a.status.replace('_', ' ')})",
                     "zone": a.scope.zone or "all",
                     "scope": a.requirement + (f", compensates {', '.join(a.compensates)}"
                                               if a.compensates else ""),
                     "owner": a.attested_by.name, "expires": a.valid_until.isoformat(),
                     "expired": a.expired(now), "control": a.compensating_control or "",
                     "justification": a.notes or "",
                     "evidence": [f"{x.type}: {x.uri}" for x in a.evidence]})
    return sorted(rows, key=lambda r: (r["expired"], r["expires"], r["id"]))


def _scope(scope: Any) -> str:
    parts = []
    if scope.assets:
        parts.append("assets " + ", ".join(scope.assets))
    if scope.checks:
        parts.append("checks " + ", ".join(scope.checks))
    if scope.requirements:
        parts.append("requirements " + ", ".join(scope.requirements))
    return "; ".join(parts) or "everything in the zone"


def _nis2(zones: list[dict[str, Any]]) -> list[dict[str, Any]]:
    points: dict[str, dict[str, Any]] = {}
    for z in zones:
        for v in z.get("nis2", []):
            row = points.setdefault(v["point"], {"point": v["point"], "subject": v["subject"],
                                                 "zones": []})
            row["zones"].append({"zone": z["zone"], "met": v["requirements_met"],
                                 "in_target": v["requirements_in_target"],
                                 "unknown": v["requirements_unknown"],
                                 "unmet": v["requirements_unmet"],
                                 "failing_checks": v["failing_checks"]})
    return list(points.values())
