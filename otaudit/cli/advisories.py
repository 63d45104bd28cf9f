"""``otaudit advisories import|match|kev update`` and ``otaudit patch status``."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import typer

from otaudit.cli.failon import FailOn, exit_on, fail_on_help, parse_fail_on
from otaudit.errors import ExitCode, InputError

advisories_app = typer.Typer(no_args_is_help=True,
                             help="Vendor advisories (CSAF 2.0): import and match.")
patch_app = typer.Typer(no_args_is_help=True, help="Patch status per asset over time.")
kev_app = typer.Typer(no_args_is_help=True,
                      help="CISA's Known Exploited Vulnerabilities catalogue (patch priority).")
advisories_app.add_typer(kev_app, name="kev")

_DB_HELP = "database URL (default: OTAUDIT_DATABASE_URL / settings)"
PATCH_FAIL_ON = (FailOn.OPEN_ADVISORY, FailOn.UNKNOWN)


def _sessions(db: str | None, *, create: bool = False) -> Any:
    """Engine and sessions of the database; only ``create`` (import) may make one."""
    import otaudit.server.advisories.db  # noqa: F401  (registers the tables)
    from otaudit.server.db import open_database, session_factory
    from otaudit.settings import Settings

    engine = open_database(db or Settings().database_url, create=create)
    return engine, session_factory(engine)


@advisories_app.command("import")
def import_cmd(
    source: str = typer.Argument(..., help="file, folder, .tar.gz, ROLIE feed or "
                                            "provider-metadata URL"),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Import CSAF advisories; rejected documents are listed with their reason.

    Exit 1 when any document was rejected (the others are imported and the summary
    printed), 2 when the source itself is unusable."""
    from otaudit.cli.progress import progress
    from otaudit.server.advisories.importer import import_source, iter_parsed
    from otaudit.server.advisories.patch import refresh_patch_status
    from otaudit.server.advisories.sources import SourceError

    engine, sessions = _sessions(db, create=True)
    try:
        with progress("documents", detail="rejected {task.fields[rejected]}",
                      show=None if not as_json else False) as steps, \
                sessions.begin() as session:
            rejected = 0

            def counted() -> Any:
                nonlocal rejected
                for item in iter_parsed(source):
                    rejected += item.advisory is None
                    steps.advance(rejected=rejected)
                    yield item

            report = import_source(session, source, parsed=counted(),
                                   refresh=refresh_patch_status)
    except SourceError as exc:
        raise InputError(source, [str(exc)]) from exc
    finally:
        engine.dispose()
    data = report.to_dict()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        _print_import(source, report, data)
    if report.rejected:
        raise typer.Exit(ExitCode.FOUND)


def _print_import(source: str, report: Any, data: dict[str, Any]) -> None:
    typer.echo(f"{source}: {data['documents']} documents in {data['seconds']} s — imported "
               f"{data['imported']}, replaced {data['replaced']}, unchanged "
               f"{data['unchanged']}, stale {data['stale']}, rejected {data['rejected']}")
    for document, reason in report.rejected[:20]:
        typer.echo(f"  rejected {document}: {reason}")
    if len(report.rejected) > 20:
        typer.echo(f"  … {len(report.rejected) - 20} more (see --json)")
    if report.quality:
        typer.echo("data-quality problems worked around: " + ", ".join(
            f"{k} {v}" for k, v in report.quality.most_common()))
    typer.echo(f"patch status rows changed: {report.patch_rows_changed}")
    if report.rejected:
        typer.echo(f"{len(report.rejected)} document(s) rejected: exit 1", err=True)


@advisories_app.command("match")
def match_cmd(
    vendor: str = typer.Option(..., "--vendor", help="vendor as the device reports it"),
    product: str = typer.Option(..., "--product", help="product family or name"),
    model: str | None = typer.Option(None, "--model", help="model name or order number (MLFB)"),
    order_code: str | None = typer.Option(None, "--order-code", help="order number"),
    version: str | None = typer.Option(None, "--version", help="installed firmware version"),
    advisories: str | None = typer.Option(None, "--advisories",
                                          help="match against this source in memory (no DB)"),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    fmt: str = typer.Option("table", "--format", help="table or json"),
    show_all: bool = typer.Option(True, "--all/--exposed",
                                  help="every verdict, or only affected / needs_review"),
) -> None:
    """Every advisory verdict for one device, each with the reason that decided it."""
    from otaudit.server.advisories.matcher import Identity

    if fmt not in ("table", "json"):
        raise InputError("--format", [f"{fmt!r}: expected table or json"])
    identity = Identity(vendor=vendor, product=product, model=model,
                        order_code=order_code or _order_like(model), firmware_version=version)
    if advisories:
        from otaudit.server.advisories.importer import load_index
        from otaudit.server.advisories.sources import SourceError

        try:
            index, report = load_index(advisories)
        except SourceError as exc:
            raise InputError(advisories, [str(exc)]) from exc
        loaded = {"source": advisories, "advisories": len(index),
                  "rejected": len(report.rejected)}
    else:
        from otaudit.server.advisories.importer import load_advisories
        from otaudit.server.advisories.matcher import AdvisoryIndex

        engine, sessions = _sessions(db)
        with sessions() as session:
            index = AdvisoryIndex(load_advisories(session))
        engine.dispose()
        loaded = {"source": "database", "advisories": len(index), "rejected": 0}
    verdicts = [v for v in index.match(identity)
                if show_all or v.verdict in ("affected", "needs_review")]
    if fmt == "json":
        typer.echo(json.dumps({"identity": identity.__dict__, **loaded,
                               "verdicts": [v.to_dict() for v in verdicts]}, indent=2))
        return
    typer.echo(f"{len(verdicts)} verdicts from {loaded['advisories']} advisories "
               f"({loaded['source']})")
    for v in verdicts:
        fix = f" fixed in {v.fixed_in}" if v.fixed_in else ""
        typer.echo(f"{v.verdict:13} {v.advisory_id:16} {v.cve:16} CVSS {v.cvss or '-':>4} "
                   f"[{v.basis}]{fix}")
        typer.echo(f"    {v.reason}")


@kev_app.command("update")
def kev_update_cmd(
    file: str | None = typer.Option(None, "--file", help="a KEV catalogue JSON file"),
    url: str | None = typer.Option(None, "--url", help="the catalogue's URL (default: CISA's "
                                   "feed)"),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Replace the stored KEV catalogue; open patch status items on its CVEs are listed first."""
    from otaudit.server.advisories.kev import KEV_URL, KevError, update_kev
    from otaudit.server.advisories.patch import patch_status_rows

    if file and url:
        raise InputError("--file/--url", ["give one source: --file F or --url U"])
    source = file or url or KEV_URL
    engine, sessions = _sessions(db, create=True)
    try:
        with sessions.begin() as session:
            report = update_kev(session, source)
            exploited = [r for r in patch_status_rows(session) if r["known_exploited"]]
    except KevError as exc:
        raise InputError(source, exc.reasons) from exc
    finally:
        engine.dispose()
    data = {**report.to_dict(), "open_items_known_exploited": len(exploited),
            "assets_with_known_exploited": len({r["asset_id"] for r in exploited})}
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"{source}: KEV catalogue {data['version']} ({data['released']}), "
               f"{data['entries']} CVEs; {data['added']} added, {data['removed']} removed "
               "since the last update")
    typer.echo(f"known exploited: {data['open_items_known_exploited']} open or to-review "
               f"items on {data['assets_with_known_exploited']} assets (listed first by "
               "`otaudit patch status`)")


def _order_like(model: str | None) -> str | None:
    """``--model 6ES7 214-1AG40-0XB0`` is an order number (digits and dashes)."""
    if model and any(c.isdigit() for c in model) and "-" in model:
        return model
    return None


@patch_app.command("status")
def status_cmd(
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    zone: str | None = typer.Option(None, "--zone", help="only assets of this zone"),
    site: str | None = typer.Option(None, "--site", help="only this site (default: every "
                                    "site; with --zone, the database's only site)"),
    fmt: str = typer.Option("table", "--format", help="table, json or csv"),
    state: list[str] = typer.Option([], "--state",
                                    help="only these states: open, needs_review, patched"),
    fail_on: str | None = typer.Option(
        None, "--fail-on", help=fail_on_help(PATCH_FAIL_ON) + " (unknown: needs_review)"),
) -> None:
    """Per asset × advisory × CVE: state, fixed-in, remediation, CVSS, since when, days open.

    Tracked are exposures: ``open`` (affected now), ``needs_review`` and ``patched`` (was
    affected, a later observation shows a fixed firmware). Devices already on a fixed
    firmware are not listed; ``otaudit advisories match`` shows every verdict of one device.
    Items whose CVE is in CISA's Known Exploited Vulnerabilities catalogue (``otaudit
    advisories kev update``) come first, with CISA's due date; then by state and CVSS.
    """
    from otaudit.server.services.patches import patch_status

    if fmt not in ("table", "json", "csv"):
        raise InputError("--format", [f"{fmt!r}: expected table, json or csv"])
    states = ("open", "needs_review", "patched")
    if bad := [s for s in state if s not in states]:
        raise InputError("--state", [f"{s!r}: expected one of {', '.join(states)}" for s in bad])
    requested = parse_fail_on(fail_on, PATCH_FAIL_ON)
    engine, sessions = _sessions(db)
    with sessions() as session:
        from otaudit.cli.common import choose_site

        if site is not None or zone is not None:
            site = choose_site(session, site)
        if zone is not None:
            _known_zone(session, zone, site)
        rows = patch_status(session, site, zone=zone, states=state or None)
    engine.dispose()
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        out = io.StringIO()
        columns = list(rows[0]) if rows else ["asset_id", "zone", "advisory_id", "cve", "state"]
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        typer.echo(out.getvalue().rstrip("\n"))
    else:
        typer.echo(_table(rows))
    exit_on(requested, {FailOn.OPEN_ADVISORY: sum(r["state"] == "open" for r in rows),
                        FailOn.UNKNOWN: sum(r["state"] == "needs_review" for r in rows)})


def _known_zone(session: Any, zone: str, site: str | None) -> None:
    from otaudit.errors import UnknownName
    from otaudit.server import store

    zones = store.known_zones(session, site)
    if zone not in zones:
        raise UnknownName("zone", zone, tuple(zones), source="--zone")


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no patch status (no advisories imported, or no asset matches)"
    columns = ("site", "asset_id", "zone", "state", "kev_due_date", "advisory_id", "cve", "cvss",
               "installed_version", "fixed_in", "affected_since", "days_open",
               "remediation_category")
    cells = [[_cell(r.get(c), c) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _cell(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if column == "affected_since":
        return str(value)[:10]
    return str(value)
