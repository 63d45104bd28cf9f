"""``otaudit collector run``: audit the inventory and publish observations over MQTT."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from otaudit.settings import get_settings

collector_app = typer.Typer(no_args_is_help=True, help="Run the collector.")

EXIT_BROKER = 4


@collector_app.command("run")
def run(
    inventory: Path = typer.Option(..., "--inventory", "-i", help="inventory YAML"),
    once: bool = typer.Option(False, "--once", help="audit every asset once, then exit"),
    broker: str | None = typer.Option(None, help="mqtt://host:port (default: settings)"),
    collector_id: str | None = typer.Option(None, help="collector id (default: settings)"),
) -> None:
    """Audit the inventory's assets and publish each observation (QoS 1)."""
    from otaudit.collector.publisher import BrokerUnavailable
    from otaudit.collector.targets import load_plan

    settings = get_settings(collector_id=collector_id)
    inv, plans = load_plan(inventory)
    if not once:
        typer.echo("error: only --once is available in this version", err=True)
        raise typer.Exit(2)
    from otaudit.collector.once import run_once

    try:
        summary = asyncio.run(run_once(inv, plans, settings, broker_url=broker))
    except* BrokerUnavailable as group:
        for exc in group.exceptions:
            typer.echo(f"error: {exc}", err=True)
        typer.echo("error: not every observation was acknowledged by the broker", err=True)
        raise typer.Exit(EXIT_BROKER) from None
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary.by_status.items()))
    typer.echo(f"audited {len(plans)} assets: {summary.observations} observations ({statuses}); "
               f"{summary.published} published and acknowledged")
