"""``otaudit collector run``: audit the inventory and publish observations over MQTT.

Without ``--once`` it is the daemon (schedules from the inventory; SIGTERM drains and
exits 0, SIGHUP reloads the inventory). Exit codes: 2 bad input, 3 state directory or
signing key unusable, 4 broker unreachable (or, receipts on, no receipt from the server)
with observations left in the outbox. ``otaudit collector status`` shows the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from otaudit.cli.failon import FailOn, exit_on, fail_on_help, parse_fail_on
from otaudit.errors import ExitCode, StateError
from otaudit.settings import Settings, get_settings

if TYPE_CHECKING:
    from otaudit.collector.run import RunSummary

collector_app = typer.Typer(no_args_is_help=True, help="Run the collector.")

EXIT_STATE = ExitCode.STATE
EXIT_BROKER = ExitCode.UNREACHABLE
ONCE_FAIL_ON = (FailOn.DEVICE_ERROR,)
log = logging.getLogger("otaudit.collector")


@collector_app.command("run")
def run(
    inventory: Path = typer.Option(..., "--inventory", "-i", help="inventory YAML"),
    once: bool = typer.Option(False, "--once", help="audit every asset once, publish, exit"),
    broker: str | None = typer.Option(None, help="mqtt://host:port (default: settings)"),
    collector_id: str | None = typer.Option(None, help="collector id (default: settings)"),
    state_dir: Path | None = typer.Option(None, "--state-dir",
                                          help="outbox folder (default: settings)"),
    progress: bool | None = typer.Option(None, "--progress/--no-progress",
                                         help="progress bar (default: on a terminal)"),
    fail_on: str | None = typer.Option(None, "--fail-on",
                                       help=fail_on_help(ONCE_FAIL_ON) + " (with --once)"),
) -> None:
    """Audit the inventory's assets; every observation goes through the durable outbox.

    Without --once: audit on the inventory's schedules until SIGTERM (drains in-flight
    probes, exits 0); SIGHUP or a changed file reloads the inventory.
    """
    from otaudit.cli.progress import enabled
    from otaudit.collector.outbox import OutboxError
    from otaudit.collector.publisher import BrokerUnavailable, SigningUnavailable

    requested = parse_fail_on(fail_on, ONCE_FAIL_ON)
    if requested and not once:
        raise typer.BadParameter("--fail-on needs --once (the daemon runs until stopped)")
    settings = get_settings(collector_id=collector_id, state_dir=state_dir)
    try:
        if once:
            summary = _once(inventory, settings, broker,
                            enabled() if progress is None else progress)
        else:
            _daemon(inventory, settings, broker)
    except (OutboxError, SigningUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_STATE) from None
    except BrokerUnavailable as exc:
        from otaudit.collector.forwarder import ReceiptsMissing

        typer.echo(f"error: {exc}", err=True)
        typer.echo("error: not every observation was " + (
            "confirmed by the server" if isinstance(exc, ReceiptsMissing)
            else "acknowledged by the broker"), err=True)
        raise typer.Exit(EXIT_BROKER) from None
    if once:
        exit_on(requested, {FailOn.DEVICE_ERROR: sum(
            n for status, n in summary.by_status.items() if status != "ok")})


@collector_app.command("status")
def status(
    inventory: Path | None = typer.Option(None, "--inventory", "-i",
                                          help="take the collector id from this inventory"),
    collector_id: str | None = typer.Option(None, help="collector id (default: settings)"),
    state_dir: Path | None = typer.Option(None, "--state-dir",
                                          help="outbox folder (default: settings)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """The outbox: entries queued and sent awaiting the server's receipt (with the age of the
    oldest), receipted and rejected totals, the quarantine. Reads the file only (works with
    or without a running collector or broker); exit 3 when there is no readable outbox."""
    import json
    import sqlite3

    from otaudit.collector.outbox import outbox_path
    from otaudit.collector.status import outbox_status, render

    settings = get_settings(collector_id=collector_id, state_dir=state_dir)
    collector = settings.collector_id
    if inventory is not None and collector_id is None:
        from otaudit.inventory import load_inventory

        collector = load_inventory(inventory)[0].collector or collector
    try:
        data = outbox_status(outbox_path(settings, collector))
    except (FileNotFoundError, sqlite3.Error) as exc:
        raise StateError(f"no readable outbox: {exc}") from None
    typer.echo(json.dumps(data, indent=2) if as_json else render(data))


def _once(inventory: Path, settings: Settings, broker: str | None,
          show_progress: bool) -> RunSummary:
    from otaudit.collector.once import LOCK_TIMEOUT, run_once
    from otaudit.collector.outbox import Outbox
    from otaudit.collector.run import freeze_startup_heap, limit_malloc_arenas
    from otaudit.collector.targets import load_plan

    limit_malloc_arenas()
    inv, plans = load_plan(inventory)
    freeze_startup_heap()
    collector = inv.collector or settings.collector_id
    outbox = Outbox.open(settings, collector, lock_timeout=LOCK_TIMEOUT)
    try:
        waiting = outbox.entries
        if waiting:
            typer.echo(f"{waiting} observation(s) of an earlier run wait in the outbox "
                       f"{outbox.path}; publishing them too", err=True)
        jobs = sum(len(p.jobs) for p in plans)
        if show_progress:
            summary = _with_progress(
                lambda **hooks: run_once(inv, plans, settings, broker_url=broker, outbox=outbox,
                                         **hooks), audited=jobs, published=jobs + waiting)
        else:
            summary = asyncio.run(run_once(inv, plans, settings, broker_url=broker,
                                           outbox=outbox))
    finally:
        outbox.close()
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary.by_status.items()))
    typer.echo(f"audited {len(plans)} assets: {summary.observations} observations ({statuses}); "
               f"{summary.published} published and acknowledged")
    return summary


def _with_progress(start: Callable[..., Coroutine[Any, Any, RunSummary]], *, audited: int,
                   published: int) -> RunSummary:
    """Run ``start(progress=, on_published=)`` with a progress bar on stderr."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (TextColumn("{task.description:>9}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        audit_bar = bar.add_task("audited", total=audited)
        publish_bar = bar.add_task("published", total=published)
        return asyncio.run(start(progress=lambda _obs: bar.advance(audit_bar),
                                 on_published=lambda _entry: bar.advance(publish_bar)))


def _daemon(inventory: Path, settings: Settings, broker: str | None) -> None:
    from otaudit.collector.daemon import CollectorDaemon
    from otaudit.collector.run import freeze_startup_heap, limit_malloc_arenas

    limit_malloc_arenas()
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)  # a service says what it does (journald)
    daemon = CollectorDaemon(inventory, settings, broker_url=broker)
    # the periodic collections of each pass then skip start-up's objects; the first plan
    # stays frozen after a reload (once, bounded by the inventory's size)
    freeze_startup_heap()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        received = 0

        def on_stop(name: str) -> None:
            nonlocal received
            received += 1
            if received == 1:
                log.info("%s: finishing the probe runs in flight, then exiting", name)
                daemon.stop()
            else:
                log.warning("%s again: exiting now", name)
                assert task is not None
                task.cancel()

        loop.add_signal_handler(signal.SIGTERM, on_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, on_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, daemon.request_reload)
        await daemon.run()

    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        raise typer.Exit(1) from None
