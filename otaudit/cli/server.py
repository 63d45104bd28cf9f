"""``otaudit server run`` and ``otaudit report``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path

import typer

from otaudit.settings import get_settings

server_app = typer.Typer(no_args_is_help=True, help="Run the server.")


@server_app.command("run")
def run(
    inventory: Path | None = typer.Option(None, "--inventory", "-i",
                                          help="inventory whose zones (SL-T) to load"),
    broker: str | None = typer.Option(None, help="mqtt://host:port (default: settings)"),
    db: str | None = typer.Option(None, help="database URL (default: settings)"),
    exceptions: Path | None = typer.Option(None, help="exceptions / compensating controls YAML"),
    attestations: Path | None = typer.Option(None, help="attestations YAML"),
) -> None:
    """Subscribe to observations, store them, evaluate baselines, until SIGTERM/Ctrl-C."""
    from otaudit.inventory import load_inventory
    from otaudit.server.db import init_db, make_engine, session_factory
    from otaudit.server.ingest import Ingestor
    from otaudit.server.listener import serve
    from otaudit.server.store import upsert_zones

    settings = get_settings(database_url=db)
    engine = make_engine(settings.database_url)
    init_db(engine)
    if inventory:
        inv, _ = load_inventory(inventory)
        with session_factory(engine).begin() as session:
            upsert_zones(session, inv)
    from otaudit.signing import SigningKeyError, verifier_from_settings

    try:
        verifier = verifier_from_settings(settings)
    except SigningKeyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if verifier is None:
        typer.echo("warning: no trusted collector keys configured (OTAUDIT_TRUSTED_KEYS_DIR): "
                   "accepting unsigned observations", err=True)
    ingestor = Ingestor(engine, topic_prefix=settings.topic_prefix, verifier=verifier,
                        exceptions_file=exceptions or settings.exceptions_file,
                        attestations_file=attestations or settings.attestations_file)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        ready = asyncio.Event()

        async def announce() -> None:
            await ready.wait()
            from otaudit.mqtt import BrokerAddress  # host and port only, never credentials

            address = BrokerAddress.parse(broker or settings.broker_url)
            typer.echo(f"server: subscribed at {address} as "
                       f"{settings.server_client_id}; storing in {engine.url.drivername}", err=True)

        announcer = asyncio.create_task(announce())
        stats = await serve(ingestor, settings, broker_url=broker, stop=stop, ready=ready)
        announcer.cancel()
        typer.echo(f"stopped: {stats.stored} stored, {stats.duplicates} duplicates, "
                   f"{stats.rejected} rejected", err=True)

    asyncio.run(main())


def report(
    db: str | None = typer.Option(None, help="database URL (default: settings)"),
    fmt: str = typer.Option("table", "--format", help="table or json"),
    zone: str | None = typer.Option(None, help="only this zone"),
    out: Path | None = typer.Option(None, help="write to this file instead of stdout"),
    exceptions: Path | None = typer.Option(
        None, help="exceptions YAML for the zone view (default: OTAUDIT_EXCEPTIONS_FILE)"),
    attestations: Path | None = typer.Option(
        None, help="attestations YAML for the zone view (default: OTAUDIT_ATTESTATIONS_FILE)"),
) -> None:
    """Per zone SL-T vs SL-A; per asset: identity, probe status, findings with evidence,
    advisories. Findings are those the server stored with its site policy."""
    from otaudit.server.db import init_db, make_engine, session_factory
    from otaudit.server.report import build_report, render_table

    if fmt not in ("table", "json"):
        raise typer.BadParameter("--format is table or json")
    settings = get_settings(database_url=db)
    engine = make_engine(settings.database_url)
    init_db(engine)
    with session_factory(engine)() as session:
        data = build_report(session, zone=zone,
                            exceptions_file=exceptions or settings.exceptions_file,
                            attestations_file=attestations or settings.attestations_file)
    text = json.dumps(data, indent=2, default=str) if fmt == "json" else render_table(data)
    if out:
        out.write_text(text)
    else:
        typer.echo(text)
