"""The report for machines: SARIF 2.1.0, OSCAL assessment-results and CSV tables.

All three are built from ``report_document`` (``context.py``), so they say what the HTML
report says. SARIF: one run; the rules are the baseline's checks (SR references, rationale,
remediation as help); a result per asset and check, its outcome as ``kind``/``level``
(a compensated finding is a ``fail`` with an accepted external suppression naming the
exception). OSCAL (1.0.6 assessment-results): the assets are inventory items, each
non-trivial check result an observation, each requirement selected at a zone's SL-T a
finding with its objective status and the observations behind it. Identifiers are
UUIDv5 of stable names, so exporting the same data twice gives the same document.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from otaudit import __version__

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
OSCAL_VERSION = "1.0.6"
INFORMATION_URI = "https://github.com/otaudit/otaudit"
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:otaudit")
OSCAL_NS = "urn:otaudit"
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note",
         "info": "note"}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0",
                     "info": "0.0"}


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


# --- SARIF ---------------------------------------------------------------------------------

def sarif_log(document: Mapping[str, Any], checks: Mapping[str, Any]) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run (``checks``: the baseline's checks by id)."""
    ids = sorted(checks)
    index = {cid: i for i, cid in enumerate(ids)}
    rules = [_rule(checks[cid]) for cid in ids]
    results = []
    site = document["meta"]["site"]
    for asset in document["assets"]:
        for f in asset["findings"]:
            if f["check_id"] not in index:
                continue
            results.append(_result(f, asset, site, index[f["check_id"]]))
    meta = document["meta"]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "otaudit", "version": __version__, "semanticVersion": __version__,
                "informationUri": INFORMATION_URI, "rules": rules,
                "properties": {"baselineDigest": meta["baseline"]["digest"]},
            }},
            "automationDetails": {"id": f"otaudit/{site}/{document['generated_at']}"},
            "invocations": [{
                "executionSuccessful": True,
                **({"startTimeUtc": meta["window"]["start"]} if meta["window"]["start"] else {}),
                "endTimeUtc": document["generated_at"],
            }],
            "results": results,
            "properties": {"site": site, "inventoryDigest": meta["inventory"]["digest"],
                           "zones": [{"zone": z["zone"], "slT": z["sl_t"], "slAProven": z["sl_a"],
                                      "slAReachable": z.get("sl_reachable", {})}
                                     for z in document["zones"]]},
        }],
    }


def _rule(check: Any) -> dict[str, Any]:
    refs = check.references
    srs = list(refs.get("iec62443-3-3", []))
    help_text = " ".join(check.remediation.split())
    return {
        "id": check.id, "name": _pascal(check.title),
        "shortDescription": {"text": check.title},
        "fullDescription": {"text": " ".join(check.rationale.split())},
        "help": {"text": f"{help_text} (IEC 62443-3-3 {', '.join(srs)})",
                 "markdown": f"{help_text}\n\nIEC 62443-3-3: {', '.join(srs)}"},
        "defaultConfiguration": {"level": LEVEL.get(check.severity, "warning")},
        "properties": {
            "tags": ["security", "iec62443", *srs],
            "security-severity": SECURITY_SEVERITY.get(check.severity, "5.5"),
            "iec62443-3-3": srs, "iec62443-4-2": list(refs.get("iec62443-4-2", [])),
            "nis2": list(refs.get("nis2", [])), "onFail": check.on_fail,
        },
    }


def _pascal(text: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in text).split()
    return "".join(w[:1].upper() + w[1:] for w in words) or "Check"


def _result(f: Mapping[str, Any], asset: Mapping[str, Any], site: str, rule_index: int
            ) -> dict[str, Any]:
    status = f["status"]
    kind = {"pass": "pass", "not_applicable": "notApplicable", "unknown": "open",
            "attested": "pass"}.get(status, "fail")
    result: dict[str, Any] = {
        "ruleId": f["check_id"], "ruleIndex": rule_index, "kind": kind,
        "level": LEVEL.get(f.get("severity", "medium"), "warning") if kind == "fail" else "none",
        "message": {"text": f.get("message") or f.get("title") or f["check_id"]},
        "locations": [{"logicalLocations": [{
            "name": asset["asset_id"], "kind": "resource",
            "fullyQualifiedName": f"{site}/{asset['zone']}/{asset['asset_id']}"}]}],
        "partialFingerprints": {"otauditAssetCheck/v1": f"{asset['asset_id']}:{f['check_id']}"},
        "properties": {
            "status": status, "zone": asset["zone"], "assetKind": asset["kind"],
            "requirements": f.get("requirements", []), "levelApplied": f.get("level"),
            "evidence": [{k: e.get(k) for k in ("fact", "op", "expected", "value", "result",
                                                 "observation_id", "probe", "note")}
                         for e in f.get("evidence", [])],
        },
    }
    if f.get("original_status"):
        result["properties"]["originalStatus"] = f["original_status"]
    exc = f.get("exception")
    if status == "compensated" and exc:
        result["suppressions"] = [{
            "kind": "external", "status": "accepted",
            "justification": f"{exc.get('id')}: {exc.get('control') or exc.get('justification')}"
                             f" (owner {exc.get('owner')}, until {exc.get('expires')})"}]
    return result


# --- OSCAL ---------------------------------------------------------------------------------

STATE = {"pass": "satisfied", "compensated": "satisfied", "attested": "satisfied",
         "not_applicable": "satisfied"}


def _time(value: Any) -> str:
    """An OSCAL dateTime-with-timezone: UTC, whole seconds ('2026-01-02T03:04:05Z')."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(
        str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _token(text: str) -> str:
    return "".join(c if c.isalnum() or c in ".-_" else "-" for c in text.lower())


def oscal_assessment_results(document: Mapping[str, Any]) -> dict[str, Any]:
    """An OSCAL 1.0.6 ``assessment-results`` document."""
    meta = document["meta"]
    site = meta["site"]
    generated = document["generated_at"]
    items = []
    asset_uuid = {}
    for a in document["assets"]:
        asset_uuid[a["asset_id"]] = _uuid(site, "asset", a["asset_id"])
        props = [{"name": "asset-id", "value": a["asset_id"]},
                 {"name": "asset-type", "value": {"plc": "appliance", "hmi": "workstation"}.get(
                     a["kind"], "network")},
                 {"name": "zone", "ns": OSCAL_NS, "value": a["zone"]}]
        for key, value in a["identity"].items():
            if str(value).strip():
                props.append({"name": key.replace("_", "-"), "ns": OSCAL_NS,
                              "value": str(value).strip()})
        items.append({"uuid": asset_uuid[a["asset_id"]],
                      "description": f"{a['name'] or a['asset_id']} ({a['kind']})",
                      "props": props})
    observations = []
    obs_uuid: dict[tuple[str, str], str] = {}
    for a in document["assets"]:
        for f in a["findings"]:
            if f["status"] == "not_applicable":
                continue
            key = (a["asset_id"], f["check_id"])
            obs_uuid[key] = _uuid(site, "observation", *key)
            collected = max((e["collected_at"] for e in f.get("evidence", [])
                             if e.get("collected_at")), default=generated)
            evidence = [{"href": f"#observation-{e['observation_id']}",
                         "description": f"{e['fact']} {e.get('op')} {e.get('expected')!s}: "
                                        f"{e.get('value')!s} ({e.get('result')})"}
                        for e in f.get("evidence", []) if e.get("observation_id")]
            observations.append({
                "uuid": obs_uuid[key], "title": f"{f['check_id']} on {a['asset_id']}",
                "description": f.get("message") or f["title"],
                "props": [{"name": "status", "ns": OSCAL_NS, "value": f["status"]},
                          {"name": "check", "ns": OSCAL_NS, "value": f["check_id"]}],
                "methods": ["TEST"], "types": ["finding"],
                "subjects": [{"subject-uuid": asset_uuid[a["asset_id"]],
                              "type": "inventory-item"}],
                **({"relevant-evidence": evidence} if evidence else {}),
                "collected": _time(collected),
            })
    findings = []
    for z in document["zones"]:
        for r in z["requirements"]:
            if not r["in_target"]:
                continue
            related = sorted({obs_uuid[(asset, why["id"])] for why in r.get("why", [])
                              if why["source"] == "check" for asset in why.get("assets", [])
                              if (asset, why["id"]) in obs_uuid})
            reason = "pass" if r["satisfied"] else ("fail" if r["status"] in
                                                    ("fail", "capability_gap") else "other")
            lines = [_why_text(w) for w in r.get("why", [])] or ["no reason recorded"]
            findings.append({
                "uuid": _uuid(site, "finding", z["zone"], r["id"]),
                "title": f"{r['id']} {r['title']} in zone {z['zone']}",
                "description": "; ".join(lines),
                "props": [{"name": "zone", "ns": OSCAL_NS, "value": z["zone"]},
                          {"name": "status", "ns": OSCAL_NS, "value": r["status"]},
                          {"name": "target-level", "ns": OSCAL_NS, "value": str(r["target"])}],
                "target": {"type": "objective-id", "target-id": _token(r["id"]),
                           "title": f"IEC 62443-3-3 {r['id']} at SL {r['target']}",
                           "status": {"state": STATE.get(r["status"], "not-satisfied")
                                      if r["satisfied"] else "not-satisfied",
                                      "reason": reason}},
                **({"related-observations": [{"observation-uuid": u} for u in related]}
                   if related else {}),
            })
    window = meta["window"]
    result = {
        "uuid": _uuid(site, "result", generated),
        "title": f"otaudit assessment of {site}",
        "description": "Automated read-only audit against the IEC 62443-3-3 baseline "
                       f"{meta['baseline']['digest']}; per zone SL-A proven / reachable: " +
                       "; ".join(f"{z['zone']} " + " ".join(
                           f"{fr} {z['sl_a'][fr]}/{z.get('sl_reachable', z['sl_a'])[fr]}"
                           for fr in z["sl_t"]) for z in document["zones"]),
        "start": _time(window["start"] or generated),
        **({"end": _time(window["end"])} if window["end"] else {}),
        "local-definitions": {"inventory-items": items} if items else {},
        "reviewed-controls": {"control-selections": [{"include-all": {}}]},
        **({"observations": observations} if observations else {}),
        **({"findings": findings} if findings else {}),
    }
    if not items:
        del result["local-definitions"]
    return {"assessment-results": {
        "uuid": _uuid(site, "assessment-results", generated),
        "metadata": {
            "title": f"otaudit assessment results: {site}", "last-modified": _time(generated),
            "version": __version__, "oscal-version": OSCAL_VERSION,
            "props": [{"name": "baseline-digest", "ns": OSCAL_NS,
                       "value": meta["baseline"]["digest"]},
                      {"name": "site", "ns": OSCAL_NS, "value": site}],
        },
        "import-ap": {"href": f"urn:otaudit:assessment-plan:{_token(site)}",
                      "remarks": "The plan is the otaudit baseline named by its digest."},
        "results": [result],
    }}


def _why_text(w: Mapping[str, Any]) -> str:
    parts = [w["source"] + (f" {w['id']}" if w.get("id") else ""), w.get("status", "")]
    if w.get("text"):
        parts.append(w["text"])
    if w.get("expires"):
        parts.append(f"valid until {w['expires']}")
    return " ".join(p for p in parts if p)


# --- CSV -----------------------------------------------------------------------------------

def csv_tables(document: Mapping[str, Any]) -> dict[str, str]:
    """``findings.csv``, ``requirements.csv``, ``patches.csv``, ``inventory.csv``."""
    findings = [[a["asset_id"], a["zone"], f["check_id"], f["status"],
                 f.get("original_status") or "", f.get("severity", ""),
                 " ".join(f.get("requirements", [])), f.get("message", ""),
                 (f.get("exception") or {}).get("id", ""),
                 "; ".join(f"{e['fact']}={e.get('value')}" for e in f.get("evidence", [])
                           if e.get("present", True))]
                for a in document["assets"] for f in a["findings"]]
    requirements = [[z["zone"], r["id"], r["fr"], r["target"], r["status"],
                     "yes" if r["satisfied"] else "no", r["decided_by"],
                     " | ".join(_why_text(w) for w in r.get("why", []))]
                    for z in document["zones"] for r in z["requirements"] if r["in_target"]]
    patches = [[p["asset_id"], p["zone"], p.get("advisory_id", ""), p.get("cve", ""),
                p.get("state", ""), p.get("cvss", ""), "yes" if p.get("known_exploited") else "",
                p.get("installed_version", ""), p.get("fixed_in") or "",
                p.get("affected_since") or "", p.get("remediation_category") or ""]
               for p in document["patches"]]
    inventory = [[a["asset_id"], a.get("name") or "", a["kind"], a["zone"],
                  a["identity"].get("vendor", ""), a["identity"].get("product", "")
                  or a["identity"].get("model", ""), a["identity"].get("order_code", ""),
                  a["identity"].get("firmware_version", "") or a["identity"].get("os", ""),
                  "yes" if a.get("reached") else "no",
                  "; ".join(f"{p['probe']}:{p['status']}" for p in a["probes"])]
                 for a in document["assets"]]
    return {
        "findings.csv": _csv(["asset", "zone", "check", "status", "original_status", "severity",
                              "requirements", "message", "exception", "facts"], findings),
        "requirements.csv": _csv(["zone", "requirement", "fr", "sl_t", "status", "met",
                                  "decided_by", "why"], requirements),
        "patches.csv": _csv(["asset", "zone", "advisory", "cve", "state", "cvss",
                             "known_exploited", "installed_version", "fixed_in",
                             "affected_since", "remediation"], patches),
        "inventory.csv": _csv(["asset", "name", "kind", "zone", "vendor", "product",
                               "order_code", "firmware", "reached", "probes"], inventory),
    }


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else _cell(v) for v in row])
    return out.getvalue()


def _cell(value: Any) -> str:
    """Text of a cell; a leading =, +, - or @ would be a formula in a spreadsheet."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _number(text) else text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
