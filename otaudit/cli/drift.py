"""``otaudit drift``: what changed between audits (``otaudit.server.drift``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import typer

from otaudit.cli.common import choose_site, database, db_option, site_option
from otaudit.errors import InputError
from otaudit.settings import get_settings

FORMATS = ("table", "json")
COLUMNS = ("detected_at", "asset_id", "probe", "fact", "kind", "severity", "policy", "before",
           "after")


def parse_since(value: str | None) -> datetime | None:
    """``--since``: an ISO date (``2026-12-01``, midnight UTC) or date and time (UTC unless
    it names an offset)."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InputError("--since", [f"{value!r}: expected a date YYYY-MM-DD or an ISO "
                                     "date and time (2026-12-01T06:00)"]) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def drift(
    site: str | None = site_option(),
    since: str | None = typer.Option(None, "--since", help="only events detected from this "
                                     "date (YYYY-MM-DD, UTC) or ISO date and time"),
    asset: str | None = typer.Option(None, "--asset", help="only this asset"),
    fmt: str = typer.Option("table", "--format", help="table or json"),
    db: str | None = db_option(),
) -> None:
    """Drift events: per asset endpoint, each fact that changed from one audit to the next
    (before, after, both observation ids as evidence). ``violation``: a fact the baseline
    says must not drift (baselines/drift.yaml) changed outside its maintenance window."""
    from otaudit.server.db import session_factory
    from otaudit.server.services.drift import list_drift

    if fmt not in FORMATS:
        raise InputError("--format", [f"{fmt!r}: expected {' or '.join(FORMATS)}"])
    when = parse_since(since)
    settings = get_settings(database_url=db)
    engine = database(settings, None)
    with session_factory(engine)() as session:
        chosen = choose_site(session, site)
        rows = list_drift(session, chosen, since=when, asset=asset) if chosen else []
    engine.dispose()
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        typer.echo("no drift events")
        return
    typer.echo(render_table(rows))


def _cell(column: str, row: dict[str, Any]) -> str:
    value = row[column]
    if column == "detected_at":
        return str(value)[:19].replace("T", " ")
    if value is None:
        return "-" if column != "before" and column != "after" else "(unknown)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 40 else text[:37] + "..."


def render_table(rows: list[dict[str, Any]]) -> str:
    """The events as aligned columns (long values cut; ``--format json`` has them whole)."""
    cells = [[_cell(c, r) for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
              for row in cells]
    return "\n".join(lines)
