"""The remediation roadmap: per zone, an ordered list of actions that raise SL-A toward SL-T.

Each requirement not met at the zone's SL-T is held back by *causes*, read from its ``why``:
a check that failed (fix it on the assets it names), a check that could not be decided
(make its facts readable), an attestation that says not or partially met (complete it), or
no evidence at all (document and attest it; grouped per FR). An RE also waits for its SR.
An action resolves one cause; a requirement counts as met once all its causes are resolved.
Actions are chosen greedily: next is the one that raises the zone's SL-A (summed over the
FRs, every level counted as in ``sl.py``) the most, then the one that closes the most
requirements, then the most severe. Each action says what SL-A becomes after it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FRS = ("IAC", "UC", "SI", "DC", "RDF", "TRE", "RA")
MET = {"pass", "compensated", "attested", "not_applicable"}
SEVERITY = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}


@dataclass
class Action:
    key: tuple[str, str]
    kind: str  # fix | collect | complete | attest
    title: str
    detail: str = ""
    severity: str = "medium"
    assets: set[str] = field(default_factory=set)
    requirements: set[str] = field(default_factory=set)  # those it is a cause of


def zone_roadmap(zone: Mapping[str, Any], checks: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Ordered actions for one zone (a ``ZoneResult`` as JSON); ``checks``: check id ->
    the baseline's ``Check`` (title, remediation, severity)."""
    rows = {r["id"]: r for r in zone["requirements"]}
    actions: dict[tuple[str, str], Action] = {}
    own: dict[str, set[tuple[str, str]]] = {}
    for gap in zone["failing"]:
        own[gap["id"]] = _causes(gap, rows[gap["id"]], checks, actions)
    for rid, row in rows.items():  # unmet REs listed only through their SR
        if row["in_target"] and not row["satisfied"] and rid not in own:
            own[rid] = set()
    causes: dict[str, set[tuple[str, str]]] = {}
    for rid in own:
        found, parent = set(own[rid]), rows[rid].get("parent")
        while parent:
            found |= own.get(parent, set())
            parent = rows[parent].get("parent")
        causes[rid] = found
    for rid, keys in causes.items():
        for key in keys:
            actions[key].requirements.add(rid)
    done: set[tuple[str, str]] = set()
    closed: set[str] = set()
    current = _levels(rows, closed)
    plan: list[dict[str, Any]] = []
    while len(done) < len(actions):
        best, best_score, best_after, best_closed = None, None, current, closed
        for key, action in actions.items():
            if key in done:
                continue
            now_closed = closed | {r for r, ks in causes.items() if ks <= done | {key}}
            after = _levels(rows, now_closed)
            score = (sum(after.values()) - sum(current.values()),
                     len(now_closed) - len(closed), SEVERITY.get(action.severity, 2),
                     len(action.requirements), key[1])
            if best_score is None or score > best_score:
                best, best_score, best_after, best_closed = key, score, after, now_closed
        assert best is not None
        action = actions[best]
        plan.append({
            "step": len(plan) + 1, "kind": action.kind, "title": action.title,
            "detail": action.detail, "severity": action.severity,
            "assets": sorted(action.assets),
            "requirements": _ordered(action.requirements, rows),
            "closes": _ordered(best_closed - closed, rows),
            "sl_a_after": best_after,
            "raises": {fr: [current[fr], best_after[fr]] for fr in FRS
                       if best_after[fr] > current[fr]},
        })
        done.add(best)
        closed, current = best_closed, best_after
    return plan


def _causes(gap: Mapping[str, Any], row: Mapping[str, Any], checks: Mapping[str, Any],
            actions: dict[tuple[str, str], Action]) -> set[tuple[str, str]]:
    keys: set[tuple[str, str]] = set()
    for why in gap.get("why", []):
        source, status = why["source"], why.get("status", "")
        if source == "check" and status in ("fail", "capability_gap"):
            check = checks.get(why["id"])
            key = ("fix", why["id"])
            action = actions.setdefault(key, Action(
                key, "fix", f"{why['id']}: {check.title if check else why['id']}",
                " ".join(check.remediation.split()) if check else why.get("text", ""),
                check.severity if check else "medium"))
        elif source == "check" and status == "unknown":
            key = ("collect", why["id"])
            title = checks[why["id"]].title if why["id"] in checks else why["id"]
            action = actions.setdefault(key, Action(
                key, "collect", f"Make {why['id']} decidable ({title})",
                "Let the audit read the facts it needs: " + why.get("text", ""), "low"))
        elif source == "attestation" and status in ("not_met", "partially_met"):
            key = ("complete", why["id"])
            action = actions.setdefault(key, Action(
                key, "complete", f"Complete {why['id']} ({status.replace('_', ' ')})",
                why.get("text", ""), "medium"))
        elif source == "none":
            key = ("attest", row["fr"])
            action = actions.setdefault(key, Action(
                key, "attest", f"Document and attest the {row['fr']} requirements without "
                "automatic evidence", "Collect the evidence (procedure, configuration export, "
                "test report) and record an attestation per requirement and zone.", "low"))
        else:
            continue
        action.assets.update(why.get("assets", []) if source == "check" else [])
        keys.add(key)
    return keys


def _levels(rows: Mapping[str, Mapping[str, Any]], closed: set[str]) -> dict[str, int]:
    """SL-A per FR when the requirements in ``closed`` count as met at every level."""
    met: dict[tuple[str, int], bool] = {}
    for rid, row in rows.items():  # catalogue order: SR before its REs
        for n in (1, 2, 3, 4):
            status = row["levels"].get(str(n), row["levels"].get(n))
            own = rid in closed or status in MET
            parent = row.get("parent")
            met[(rid, n)] = own and (parent is None or met.get((parent, n), False))
    out = {}
    for fr in FRS:
        level = 0
        for n in (1, 2, 3, 4):
            if all(met[(rid, n)] for rid, row in rows.items()
                   if row["fr"] == fr and n in row["sl"]):
                level = n
            else:
                break
        out[fr] = level
    return out


def _ordered(ids: set[str], rows: Mapping[str, Any]) -> list[str]:
    order = {rid: i for i, rid in enumerate(rows)}
    return sorted(ids, key=lambda r: order.get(r, 10**6))


def roadmaps(zones: Sequence[Mapping[str, Any]], checks: Mapping[str, Any]
             ) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for zone in zones:
        out[zone["zone"]] = zone_roadmap(zone, checks)
    return dict(out)
