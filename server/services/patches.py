"""Patch status per asset × advisory × CVE, and the advisories that concern a site."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from otaudit.server.advisories.patch import patch_status_rows

STATES = ("open", "needs_review", "patched")


def patch_status(session: Session, site: str | None, *, zone: str | None = None,
                 states: list[str] | None = None, kev: bool | None = None
                 ) -> list[dict[str, Any]]:
    """``otaudit patch status``'s rows (known exploited first), optionally only those
    whose CVE is (``kev=True``) or is not (``False``) in CISA's KEV catalogue."""
    rows = patch_status_rows(session, zone=zone, site=site, include=states or None)
    if kev is not None:
        rows = [r for r in rows if r["known_exploited"] == kev]
    return rows


def site_advisories(session: Session, site: str) -> list[dict[str, Any]]:
    """Each advisory that concerns an asset of ``site``: its CVEs, assets and states."""
    out: dict[str, dict[str, Any]] = {}
    for row in patch_status_rows(session, site=site):
        entry = out.setdefault(row["advisory_id"], {
            "advisory_id": row["advisory_id"], "severity": row.get("severity"),
            "cves": set(), "assets": set(), "states": set(), "known_exploited": False})
        entry["cves"].add(row.get("cve"))
        entry["assets"].add(row["asset_id"])
        entry["states"].add(row["state"])
        entry["known_exploited"] = entry["known_exploited"] or row["known_exploited"]
    return [{**e, "cves": sorted(c for c in e["cves"] if c), "assets": sorted(e["assets"]),
             "states": sorted(e["states"])} for _, e in sorted(out.items())]
