"""Which changes become alerts.

- ``drift``: every drift event (``now_known``/``now_unknown`` are ``info`` and fall below the
  default ``OTAUDIT_ALERT_MIN_SEVERITY`` of ``low``); a ``must_not_drift`` violation keeps
  its rule's severity (``high`` by default).
- ``new_fail``: a check that fails now and did not fail at the asset's previous evaluation.
- ``new_advisory``: an advisory × CVE that is ``open`` on the asset now and was not before;
  those in CISA's KEV catalogue (known exploited) come first and are ``critical``.
- ``collector_silent``: ``collectors.SilenceWatch``.

An asset's first evaluation sets its starting point and alerts nothing (the first audit of a
plant would otherwise send one alert per failing check); its drift starts with its second
observation anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from otaudit.server.alerts.model import SEVERITIES, Alert
from otaudit.server.baseline.model import Finding
from otaudit.server.drift.events import DriftInfo

AssetKey = tuple[str, str]


def _short(value: Any) -> str:
    text = "unknown" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def drift_alerts(events: Iterable[DriftInfo]) -> list[Alert]:
    out = []
    for event in events:
        rule = ", must not drift" if event.policy == "violation" else (
            ", in its maintenance window" if event.policy == "in_window" else "")
        out.append(Alert(
            type="drift", severity=event.severity, site=event.site, asset_id=event.asset_id,
            summary=f"{event.asset_id}: {event.fact} changed from {_short(event.before)} to "
                    f"{_short(event.after)} ({event.kind}{rule})",
            data=event.as_dict()))
    return out


def finding_states(session: Session, site: str, assets: Iterable[str]
                   ) -> dict[str, dict[str, str]]:
    """Per asset of ``site``: check id → current status (before a re-evaluation)."""
    from otaudit.server.db import FindingRow

    ids = sorted(set(assets))
    out: dict[str, dict[str, str]] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(sa.select(FindingRow.asset_id, FindingRow.check_id,
                                         FindingRow.status)
                               .where(FindingRow.site == site,
                                      FindingRow.asset_id.in_(ids[start:start + 500])))
        for asset, check, status in rows:
            out.setdefault(asset, {})[check] = status
    return out


def new_fail_alerts(site: str, before: Mapping[str, Mapping[str, str]],
                    findings: Iterable[Finding]) -> list[Alert]:
    """Fails of assets evaluated before whose check did not fail then."""
    out = []
    for f in findings:
        previous = before.get(f.asset_id)
        if f.status != "fail" or previous is None or previous.get(f.check_id) == "fail":
            continue
        out.append(Alert(
            type="new_fail", severity=f.severity, site=site, asset_id=f.asset_id,
            summary=f"{f.asset_id}: {f.check_id} fails ({f.title})",
            data={"check_id": f.check_id, "title": f.title, "zone": f.zone,
                  "was": previous.get(f.check_id, "not evaluated"), "message": f.message,
                  "requirements": f.requirements}))
    return out


def open_advisories(session: Session, assets: Iterable[AssetKey]) -> set[tuple[str, ...]]:
    """``(site, asset, advisory, cve)`` open now on these assets."""
    from otaudit.server.advisories.db import PatchStatusRow as P

    keys = sorted(set(assets))
    out: set[tuple[str, ...]] = set()
    for start in range(0, len(keys), 500):
        rows = session.execute(sa.select(P.site, P.asset_id, P.advisory_id, P.cve)
                               .where(sa.tuple_(P.site, P.asset_id).in_(keys[start:start + 500]),
                                      P.state == "open"))
        out.update(tuple(r) for r in rows)
    return out


def new_advisory_alerts(session: Session, new: set[tuple[str, ...]]) -> list[Alert]:
    """Alerts for newly open advisories, known exploited (KEV) first."""
    if not new:
        return []
    from otaudit.server.advisories.db import KevEntryRow
    from otaudit.server.advisories.db import PatchStatusRow as P

    cves = sorted({cve for *_, cve in new})
    kev = set(session.scalars(sa.select(KevEntryRow.cve).where(KevEntryRow.cve.in_(cves))))
    rows = {(r.site, r.asset_id, r.advisory_id, r.cve): r for r in session.scalars(
        sa.select(P).where(P.cve.in_(cves), P.state == "open"))}
    out = []
    for key in sorted(new, key=lambda k: (k[3] not in kev, k)):
        site, asset, advisory, cve = key
        row = rows.get(key)
        exploited = cve in kev
        severity = ((row.severity if row is not None else None) or "medium").lower()
        severity = "info" if severity == "none" else severity
        out.append(Alert(
            type="new_advisory",
            severity="critical" if exploited else
            severity if severity in SEVERITIES else "medium",
            site=site, asset_id=asset,
            summary=f"{asset}: {advisory} {cve} is open"
                    f"{' and known exploited (CISA KEV)' if exploited else ''}",
            data={"advisory_id": advisory, "cve": cve, "known_exploited": exploited,
                  "cvss": row.cvss if row else None,
                  "installed_version": row.installed_version if row else None,
                  "fixed_in": row.fixed_in if row else None}))
    return out
