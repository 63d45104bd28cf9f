"""Page data built from the services (no SQL here): what each console page shows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from otaudit.observation import utcnow
from otaudit.server.reporting.charts import FRS, fr_chart
from otaudit.server.services import assets, drift, findings, gap, patches, waivers
from otaudit.server.services.policy import Policy

DRIFT_DAYS = 7


def levels(values: dict[str, int]) -> str:
    """``IAC 2 · UC 1 …`` in FR order."""
    return " · ".join(f"{fr} {values.get(fr, 0)}" for fr in FRS)


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``5 h``, ``3 d``: how long ago, roughly."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def site_overview(session: Session, site: str, asset_count: int, baseline: Any,
                  policy: Policy, cache: gap.EvaluationCache | None = None) -> dict[str, Any]:
    """Zones with SL-T vs proven/reachable SL-A, open exploited advisories, recent drift."""
    evaluation = gap.cached_gap_evaluation(session, site, baseline, policy, cache)
    zones = gap.zone_summaries(evaluation)
    kev = patches.patch_status(session, site, states=["open"], kev=True)
    since = utcnow() - timedelta(days=DRIFT_DAYS)
    recent = drift.list_drift(session, site, since=since)
    return {"site": site, "zones": zones, "kev_open": kev, "drift": recent,
            "assets": asset_count}


def zone_page(session: Session, site: str, zone: str, baseline: Any, policy: Policy,
              cache: gap.EvaluationCache | None = None) -> dict[str, Any]:
    """The FR chart, every requirement with outcome and reasons, assets, exceptions."""
    evaluation = gap.cached_gap_evaluation(session, site, baseline, policy, cache, zone)
    summary = next(z for z in gap.zone_summaries(evaluation) if z["zone"] == zone)
    chart = fr_chart({"zone": zone, "sl_t": summary["sl_t"], "sl_a": summary["sl_a_proven"],
                      "sl_reachable": summary["sl_a_reachable"]})
    scoped = [e for e in policy.exceptions if e.scope.zone in (None, zone)]
    return {"site": site, "zone": zone, "summary": summary, "chart": chart,
            "requirements": gap.requirement_rows(evaluation, zone),
            "assets": assets.list_assets(session, site, zone),
            "exceptions": [e.model_dump(mode="json") for e in scoped]}


def asset_page(session: Session, site: str, asset_id: str) -> dict[str, Any] | None:
    """Identity, facts with their evidence, findings, advisories, drift timeline."""
    detail = assets.asset_detail(session, site, asset_id)
    if detail is None:
        return None
    evidence = {e["id"]: e for e in detail["evidence"]}
    facts = [{"path": path, **fact, "items": [evidence[i] for i in fact["evidence"]
                                              if i in evidence]}
             for path, fact in detail["facts"].items()]
    # software found on a host is "host/component" in the patch rows: shown on the host
    advisories = [r for r in patches.patch_status(session, site)
                  if r["asset_id"].split("/")[0] == asset_id]
    timeline = sorted([*({"at": p["observed_at"], "what": f"observed by {p['probe']}",
                          "detail": p["status"]} for p in detail["probes"]),
                       *({"at": d["after_observed_at"], "what": f"drift: {d['fact']}",
                          "detail": f"{d['before']!r} → {d['after']!r} ({d['severity']})"}
                         for d in drift.list_drift(session, site, asset=asset_id))],
                      key=lambda e: e["at"] or "", reverse=True)
    return {**detail, "fact_rows": facts, "advisories": advisories, "timeline": timeline,
            "findings": findings.list_findings(session, site, asset=asset_id)}


def risk_register(session: Session, site: str, policy: Policy) -> dict[str, Any]:
    """Exceptions and attestations written in the console/API (expired ones too) and
    those from the policy files (read-only here)."""
    stored = waivers.list_waivers(session, site, "exception")
    stored_ids = {w["id"] for w in stored}
    from_files = [e.model_dump(mode="json") for e in policy.exceptions
                  if e.id not in stored_ids]
    return {"stored": stored, "attestations": waivers.list_waivers(session, site, "attestation"),
            "from_files": from_files}


def exception_record(fields: dict[str, str]) -> dict[str, Any]:
    """An exception record from the risk-register form (validated by ``create_waiver``)."""
    scope: dict[str, Any] = {}
    for key, name in (("zone", "zone"), ("assets", "asset"), ("checks", "check"),
                      ("requirements", "requirement")):
        value = fields.get(name, "").strip()
        if value:
            scope[key] = value if key == "zone" else [v.strip() for v in value.split(",")
                                                      if v.strip()]
    record: dict[str, Any] = {"id": fields.get("id", "").strip(),
                              "type": fields.get("type", "compensating_control"),
                              "scope": scope,
                              "justification": fields.get("justification", "").strip(),
                              "owner": fields.get("owner", "").strip(),
                              "expires": fields.get("expires", "").strip()}
    if fields.get("control", "").strip():
        record["control"] = fields["control"].strip()
    return record
