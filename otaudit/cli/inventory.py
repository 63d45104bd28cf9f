"""``otaudit inventory validate|show``: check an inventory file before the collector uses it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from otaudit.errors import ExitCode, InputError

inventory_app = typer.Typer(no_args_is_help=True, add_completion=False,
                            help="Check and show inventory files.")


def _document(path: Path) -> Any:
    from otaudit.yamlio import YamlError, load_yaml

    if not path.is_file():
        raise InputError(path, ["no such file"])
    try:
        return load_yaml(path), None
    except YamlError as exc:
        return None, str(exc)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, [f"cannot read: {exc}"]) from None


@inventory_app.command("validate")
def validate(path: Path = typer.Argument(..., help="inventory YAML")) -> None:
    """Every problem of the file in one pass (file:line, what was expected). Exit 1 when
    there is any."""
    from otaudit.collector.targets import inventory_problems

    doc, syntax = _document(path)
    problems = [syntax] if syntax else inventory_problems(doc)
    if problems:
        typer.echo(f"{path}: {len(problems)} problem(s)")
        for problem in problems:
            typer.echo(f"  - {problem}")
        raise typer.Exit(ExitCode.FOUND)
    data = doc.data
    typer.echo(f"{path}: ok (site {data['site']}, {len(data['zones'])} zones, "
               f"{len(data.get('assets') or [])} assets)")


@inventory_app.command("show")
def show(path: Path = typer.Argument(..., help="inventory YAML"),
         as_json: bool = typer.Option(False, "--json", help="the validated inventory as JSON")
         ) -> None:
    """The inventory as the collector reads it: zones with SL-T, assets with endpoints and
    schedules (secrets shown as their references, never resolved)."""
    from otaudit.collector.targets import load_plan

    inventory, plans = load_plan(path)
    if as_json:
        typer.echo(json.dumps(inventory.model_dump(mode="json", by_alias=True), indent=2))
        return
    typer.echo(f"site {inventory.site}" + (f", collector {inventory.collector}"
                                            if inventory.collector else ""))
    for zone in inventory.zones:
        levels = " ".join(f"{fr} {n}" for fr, n in zone.sl_t.as_dict().items())
        typer.echo(f"zone {zone.id}{f' ({zone.name})' if zone.name else ''}: SL-T {levels}")
    for net in inventory.networks:
        typer.echo(f"network {net.id}{f' ({net.name})' if net.name else ''}: {net.trust}")
    for conduit in inventory.conduits:
        flows = "; ".join(f"{f.protocol}{':' + ','.join(map(str, f.ports)) if f.ports else ''} "
                          f"{f.source} {'<->' if f.bidirectional else '->'} {f.to}"
                          for f in conduit.flows) or "no flows"
        typer.echo(f"conduit {conduit.id}: {' - '.join(conduit.between)}, enforced by "
                   f"{', '.join(conduit.enforced_by) or 'nothing'}; {flows}")
    for plan in plans:
        asset = plan.asset
        typer.echo(f"asset {asset.id} ({asset.kind.value}) in {asset.zone}, schedule "
                   f"{inventory.schedule_of(asset)}")
        for probe, target in plan.jobs:
            options = target.options.model_dump(mode="json", exclude_defaults=True)
            shown = ", ".join(f"{k}={_ref(v)}" for k, v in options.items())
            typer.echo(f"    {probe.name} {target.endpoint}" + (f"  {shown}" if shown else ""))


def _ref(value: Any) -> str:
    if isinstance(value, dict) and set(value) <= {"env", "file"}:
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items() if v) + "}"
    return str(value)


@inventory_app.command("import")
def import_cmd(
    path: Path = typer.Argument(..., help="asset list: .csv (UTF-8, ',' or ';') or .xlsx"),
    mapping: Path = typer.Option(..., "--mapping", "-m",
                                 help="YAML: which column holds which inventory field "
                                      "(format: collector/assetlist.py)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="write the inventory here "
                                    "(default: stdout)"),
) -> None:
    """An inventory from a spreadsheet export; every problem with its row and column."""
    from otaudit.collector.assetlist import import_asset_list, load_mapping
    from otaudit.collector.draft import dump_draft
    from otaudit.collector.targets import inventory_problems
    from otaudit.yamlio import parse_yaml

    if not path.is_file():
        raise InputError(path, ["no such file"])
    data = import_asset_list(path, load_mapping(mapping))
    text = dump_draft(data, f"Imported from {path.name} with {mapping.name} by "
                            "`otaudit inventory import`.")
    problems = inventory_problems(parse_yaml(text, str(out or "imported inventory")))
    if problems:
        raise InputError(path, problems)
    if out:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"{len(data['assets'])} assets in {len(data['zones'])} zones -> {out}",
                   err=True)
    else:
        typer.echo(text, nl=False)


@inventory_app.command("export")
def export_cmd(
    path: Path = typer.Argument(..., help="inventory YAML"),
    out: Path | None = typer.Option(None, "--out", "-o", help="CSV file (default: stdout)"),
) -> None:
    """The inventory as CSV, one row per endpoint (endpoint options are not exported)."""
    from otaudit.collector.assetlist import export_csv
    from otaudit.inventory import load_inventory

    text = export_csv(load_inventory(path)[0])
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)
