"""The audit report: per zone SL-T vs SL-A, per asset identity, probe status, findings, patches.

``build_report`` returns plain JSON-ready data (the canonical form); ``render_table``
turns it into text for a terminal.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from otaudit.server.baseline.loader import Baseline

from otaudit.observation import utcnow
from otaudit.server import store
from otaudit.server.db import AssetRow, FindingRow, RejectedMessage
from otaudit.text import device_text, screen_safe

IDENTITY_FIELDS = ("vendor", "product", "model", "order_code", "firmware_version", "serial", "os")
STATUS_ORDER = ("fail", "capability_gap", "unknown", "compensated", "attested", "pass",
                "not_applicable")


def build_report(session: Session, *, zone: str | None = None,
                 exceptions_file: Path | None = None,
                 attestations_file: Path | None = None,
                 baseline: Baseline | None = None,
                 site: str | None = None) -> dict[str, Any]:
    """The report as data, of every site (or ``site``). The zone view (SL-A per FR) is
    evaluated now, per site, from the latest facts and the declared conduits with the given
    site policy (and the exceptions/attestations written through the API) and baseline
    (default: the bundled one); per-asset findings are the ones the
    server stored. Assets and zones carry their ``site``."""
    from otaudit.server.baseline import (
        evaluate,
        load_attestations,
        load_baseline,
        load_exceptions,
    )
    from otaudit.server.services.policy import stored_waivers

    now = utcnow()
    baseline = baseline or load_baseline()
    exceptions = load_exceptions(exceptions_file, baseline) if exceptions_file else []
    attestations = load_attestations(attestations_file, baseline) if attestations_file else []
    observations = store.latest_observations(session, zone=zone, site=site)
    by_site = store.merge_site_facts(observations)
    facts = {(s, a.asset_id): a for s, part in by_site.items() for a in part}
    zone_views: list[dict[str, Any]] = []
    for name in ([site] if site is not None else store.sites(session)):
        zones = store.load_zones(session, name)
        declared = store.declared_zone_facts(session, zone, name)  # conduits, per zone
        evaluation = evaluate(baseline, {z: v.sl_t for z, v in zones.items()},
                              [*by_site.get(name, []), *declared], now=now,
                              exceptions=[*exceptions, *stored_waivers(session, name,
                                                                       "exception")],
                              attestations=[*attestations, *stored_waivers(
                                  session, name, "attestation")])
        zone_views += [{"site": name, **z} for z in evaluation.to_dict().get("zones", [])
                       if not zone or z.get("zone") == zone]
    findings: dict[tuple[str, str], list[dict[str, Any]]] = {}
    query = sa.select(FindingRow).order_by(FindingRow.site, FindingRow.asset_id,
                                           FindingRow.check_id)
    for row in session.scalars(query):
        findings.setdefault((row.site, row.asset_id), []).append(row.detail)
    patches = _patch_rows(session)
    probes_of: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for o in observations:
        probes_of.setdefault((o.site, o.asset_id), []).append(
            {"probe": o.probe, "status": o.status, "reason": o.payload.get("reason"),
             "endpoint": o.payload.get("endpoint"), "observation_id": o.observation_id,
             "finished_at": o.payload.get("finished_at")})
    assets = []
    asset_query = sa.select(AssetRow).order_by(AssetRow.site, AssetRow.zone, AssetRow.asset_id)
    if zone:
        asset_query = asset_query.where(AssetRow.zone == zone)
    if site is not None:
        asset_query = asset_query.where(AssetRow.site == site)
    for asset in session.scalars(asset_query):
        key = (asset.site, asset.asset_id)
        af = facts.get(key)
        identity = {k: af.facts[f"identity.{k}"].value for k in IDENTITY_FIELDS
                    if af and f"identity.{k}" in af.facts}
        assets.append({
            "site": asset.site, "asset_id": asset.asset_id, "name": asset.name,
            "kind": asset.kind, "zone": asset.zone, "identity": identity,
            "probes": probes_of.get(key, []), "findings": findings.get(key, []),
            "advisories": patches.get(key, []),
        })
    totals = Counter(f["status"] for a in assets for f in a["findings"])
    rejected = session.scalar(sa.select(sa.func.count()).select_from(RejectedMessage))
    return {
        "generated_at": now.isoformat(),
        "zones": zone_views,
        "assets": assets,
        "totals": {"assets": len(assets), "findings": dict(totals),
                   "rejected_messages": rejected or 0},
    }


def _patch_rows(session: Session) -> dict[tuple[str, str], list[dict[str, Any]]]:
    from otaudit.server.advisories.patch import patch_status_by_asset

    return patch_status_by_asset(session)


def render_table(report: dict[str, Any], width: int = 120) -> str:
    """Text for a terminal. Device text is never markup, and its control characters
    (``ESC ] 0 ;`` retitling the terminal, carriage returns, bidi overrides) are escaped:
    in the data first, in the output again."""
    report = screen_safe(report)
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None,
                      markup=False, highlight=False)  # device text is never markup
    _zones_table(console, report)
    for asset in report["assets"]:
        _asset_block(console, asset)
    t = report["totals"]
    counts = ", ".join(f"{s} {t['findings'][s]}" for s in STATUS_ORDER if s in t["findings"])
    console.print(f"{t['assets']} assets; findings: {counts or 'none'}; "
                  f"rejected messages: {t['rejected_messages']}")
    return device_text(out.getvalue())


def _zones_table(console: Console, report: dict[str, Any]) -> None:
    if not report["zones"]:
        return
    table = Table(title="Zones: target vs achieved security level per FR", title_justify="left")
    table.add_column("zone")
    frs = ("IAC", "UC", "SI", "DC", "RDF", "TRE", "RA")
    for fr in frs:
        table.add_column(fr, justify="center")
    for zone in report["zones"]:
        sl_t, sl_a = zone.get("sl_t", {}), zone.get("sl_a", {})
        cells = []
        for fr in frs:
            mark = "" if sl_a.get(fr, 0) >= sl_t.get(fr, 0) else " !"
            cells.append(f"{sl_t.get(fr, '-')}/{sl_a.get(fr, '-')}{mark}")
        name = zone.get("zone", "?")
        table.add_row(f"{zone['site']}/{name}" if zone.get("site") else name, *cells)
    console.print(table)
    console.print("cells are SL-T/SL-A; '!' marks a gap\n")


def _asset_block(console: Console, asset: dict[str, Any]) -> None:
    ident = asset["identity"]
    names: list[str] = []
    for key in ("vendor", "product", "model", "order_code"):
        if ident.get(key) and str(ident[key]) not in names:
            names.append(str(ident[key]))
    what = " ".join(names) or "identity unknown"
    fw = ident.get("firmware_version") or ident.get("os") or "?"
    where = f"{asset['site']}/{asset['zone']}" if asset.get("site") else asset["zone"]
    console.print(f"[{where}] {asset['asset_id']} ({asset['kind']}): {what}, "
                  f"firmware {fw}")
    for probe in asset["probes"]:
        reason = f" — {probe['reason']}" if probe.get("reason") else ""
        console.print(f"    {probe['probe']} {probe['endpoint']}: {probe['status']}{reason}")
    table = Table(show_header=True, box=None, padding=(0, 1), pad_edge=False)
    for column in ("status", "check", "requirements", "finding"):
        table.add_column(column, overflow="fold")
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    for f in sorted(asset["findings"], key=lambda f: (rank.get(f["status"], 9), f["check_id"])):
        if f["status"] in ("pass", "not_applicable"):
            continue
        table.add_row(*(Text(str(cell)) for cell in (
            f["status"], f["check_id"], ", ".join(f.get("requirements", [])),
            f.get("message") or f.get("title", ""))))
    if table.row_count:
        console.print(table)
    passed = sum(1 for f in asset["findings"] if f["status"] == "pass")
    console.print(f"    {passed} checks passed")
    for adv in asset["advisories"]:
        console.print(f"    advisory {adv.get('advisory_id')}: {adv.get('status')} "
                      f"{adv.get('summary', '')}")
    console.print("")
