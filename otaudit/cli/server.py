"""``otaudit server init|run`` and ``otaudit report``."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from otaudit.cli.api import HTTP_HELP, http_server, parse_http, serve_until
from otaudit.cli.common import (
    baseline_option,
    choose_site,
    database,
    db_option,
    site_baseline,
    site_option,
    stop_on_signals,
)
from otaudit.cli.failon import FailOn, exit_on, fail_on_help, parse_fail_on
from otaudit.errors import InputError, StateError, UnknownName
from otaudit.settings import get_settings

if TYPE_CHECKING:
    from otaudit.server.ingest import Ingestor

server_app = typer.Typer(no_args_is_help=True, help="Run the server.")

REPORT_FAIL_ON = (FailOn.FAIL, FailOn.CAPABILITY_GAP, FailOn.UNKNOWN, FailOn.OPEN_ADVISORY,
                  FailOn.DEVICE_ERROR)


@server_app.command("init")
def init(db: str | None = db_option()) -> None:
    """Create the database, or migrate it to this otaudit's schema (idempotent)."""
    from otaudit.server.db import describe_database, parse_database_url

    settings = get_settings(database_url=db)
    engine = database(settings, None, create=True)
    engine.dispose()
    typer.echo(f"database ready: {describe_database(parse_database_url(settings.database_url))}")


@server_app.command("run")
def run(
    inventory: Path | None = typer.Option(None, "--inventory", "-i",
                                          help="inventory whose zones (SL-T) to load"),
    broker: str | None = typer.Option(None, help="mqtt://host:port (default: settings)"),
    db: str | None = db_option(),
    exceptions: Path | None = typer.Option(None, help="exceptions / compensating controls YAML"),
    attestations: Path | None = typer.Option(None, help="attestations YAML"),
    baseline: Path | None = baseline_option(),
    metrics: str | None = typer.Option(None, "--metrics", help="serve Prometheus metrics at "
                                       "HOST:PORT/metrics (e.g. 127.0.0.1:9464)"),
    http: str | None = typer.Option(None, "--http", help=HTTP_HELP + "; same process"),
) -> None:
    """Subscribe to observations, store them, evaluate baselines, until SIGTERM/Ctrl-C;
    with ``--http``, serve the API in the same process (README: one lifecycle); with
    ``--metrics``, Prometheus metrics on their own listener. Drift events are recorded at
    ingest; alerts go to OTAUDIT_ALERT_WEBHOOK_URL / OTAUDIT_ALERT_SYSLOG_TARGET when set."""
    from otaudit.inventory import load_inventory
    from otaudit.server.db import in_memory, parse_database_url, session_factory
    from otaudit.server.ingest import Ingestor
    from otaudit.server.listener import serve
    from otaudit.server.metrics import parse_listen
    from otaudit.server.store import upsert_zones
    from otaudit.signing import SigningKeyError, verifier_from_settings

    address = parse_http(http) if http is not None else None
    settings = get_settings(database_url=db)
    try:
        listen = parse_listen(metrics) if metrics else None
    except ValueError as exc:
        raise InputError("--metrics", [str(exc)]) from None
    checks = site_baseline(settings, baseline)  # linted before anything is written
    inv = load_inventory(inventory)[0] if inventory else None
    from otaudit.receipt import signer_from_settings

    try:
        verifier = verifier_from_settings(settings)
        signer_from_settings(settings)  # the receipt key: unusable is an error now, not later
    except SigningKeyError as exc:
        raise StateError(str(exc)) from None
    from otaudit.server.alerts.dispatch import from_settings as alerts_from_settings

    engine = database(settings, None, create=True)
    alerts = alerts_from_settings(settings, engine)  # bad alert settings stop here
    if inv is not None:
        from otaudit.server.reporting.context import file_digest
        from otaudit.server.store import record_inventory

        with session_factory(engine).begin() as session:
            upsert_zones(session, inv)
            record_inventory(session, inv, file_digest(inventory) or "", str(inventory))
    if verifier is None:
        typer.echo("warning: no trusted collector keys configured (OTAUDIT_TRUSTED_KEYS_DIR): "
                   "accepting unsigned observations", err=True)
    ingestor = Ingestor(engine, topic_prefix=settings.topic_prefix, verifier=verifier,
                        exceptions_file=exceptions or settings.exceptions_file,
                        attestations_file=attestations or settings.attestations_file,
                        baseline=checks, alerts=alerts)
    worker = None
    shared = not in_memory(parse_database_url(settings.database_url))  # other processes too
    if settings.server_store_worker and shared:
        from otaudit.server.store_worker import StoreWorker, WorkerFailed

        worker = StoreWorker(functools.partial(store_ingestor, settings.database_url,
                                               baseline))
        try:
            worker.start()
        except WorkerFailed as exc:
            raise StateError(str(exc)) from None
    from otaudit.server.metrics import ServerMetrics, install
    from otaudit.server.presence import Presence

    presence = Presence(settings.topic_prefix, settings.heartbeat_interval,
                        settings.alert_collector_silent_intervals)
    server_metrics = install(ServerMetrics(engine, presence, settings.topic_prefix))
    ingestor.observers.append(server_metrics.observe)
    exporter = None
    if listen is not None:
        try:
            exporter = server_metrics.serve(*listen)
        except OSError as exc:
            raise StateError(f"cannot serve metrics at {metrics}: {exc.strerror or exc}"
                             ) from None
        typer.echo(f"metrics: http://{metrics}/metrics", err=True)
    app = None
    if address is not None:
        from otaudit.server.api import create_app

        app = create_app(settings.database_url, baseline,
                         exceptions_file=exceptions, attestations_file=attestations,
                         presence=presence)

    async def main() -> None:
        stop = stop_on_signals()
        ready = asyncio.Event()

        async def announce() -> None:
            await ready.wait()
            from otaudit.mqtt import BrokerAddress  # host and port only, never credentials

            address = BrokerAddress.parse(broker or settings.broker_url)
            overlay = f"; site baseline {checks.overlay}" if checks.overlay else ""
            typer.echo(f"server: subscribed at {address} as "
                       f"{settings.server_client_id}; storing in {engine.url.drivername}"
                       f"{overlay}", err=True)

        announcer = asyncio.create_task(announce())
        web = None
        if app is not None and address is not None:
            web = asyncio.create_task(serve_until(http_server(app, *address), stop))
            web.add_done_callback(lambda _: stop.set())  # API down: stop the whole server
            typer.echo(f"server: API on http://{address[0]}:{address[1]}/api/v1, web console "
                       f"on /console/", err=True)
        stats = await serve(ingestor, settings, broker_url=broker, stop=stop, ready=ready,
                            presence=presence, worker=worker)
        announcer.cancel()
        if web is not None:
            stop.set()
            await web
        typer.echo(f"stopped: {stats.stored} stored, {stats.duplicates} duplicates, "
                   f"{stats.rejected} rejected", err=True)

    try:
        asyncio.run(main())
    finally:
        if worker is not None:
            worker.close()
        if alerts is not None:
            alerts.close(timeout=settings.alert_timeout * 2)
        if exporter is not None:
            exporter.shutdown()


def store_ingestor(database_url: str, baseline: Path | None) -> Ingestor:
    """The store worker's Ingestor (``otaudit.server.store_worker``), built in its process
    as ``run`` builds the server's: same database, topic prefix, trusted keys and baseline
    (its drift rules); it is never asked to evaluate, so no exceptions, alerts or metrics."""
    from otaudit.server.db import open_database
    from otaudit.server.ingest import Ingestor
    from otaudit.signing import verifier_from_settings

    settings = get_settings(database_url=database_url)
    return Ingestor(open_database(database_url), topic_prefix=settings.topic_prefix,
                    verifier=verifier_from_settings(settings),
                    baseline=site_baseline(settings, baseline), evaluate_inline=False)


def report(
    db: str | None = db_option(),
    fmt: str = typer.Option("table", "--format",
                            help="table, json, html, pdf, sarif, oscal or csv"),
    zone: str | None = typer.Option(None, help="only this zone"),
    site: str | None = site_option(),
    out: Path | None = typer.Option(None, help="write to this file instead of stdout "
                                    "(needed for pdf; a folder for csv)"),
    exceptions: Path | None = typer.Option(
        None, help="exceptions YAML for the zone view (default: OTAUDIT_EXCEPTIONS_FILE)"),
    attestations: Path | None = typer.Option(
        None, help="attestations YAML for the zone view (default: OTAUDIT_ATTESTATIONS_FILE)"),
    inventory: Path | None = typer.Option(
        None, "--inventory", help="the inventory file audited (its digest goes on the cover)"),
    baseline: Path | None = baseline_option(),
    fail_on: str | None = typer.Option(None, "--fail-on", help=fail_on_help(REPORT_FAIL_ON)),
) -> None:
    """Per zone SL-T vs SL-A; per asset: identity, probe status, findings with evidence,
    advisories. Findings are those the server stored with its site policy. html/pdf: the
    gap report for people; sarif/oscal/csv: for machines."""
    from otaudit.server import store
    from otaudit.server.db import session_factory
    from otaudit.server.reporting.context import report_document
    from otaudit.server.reporting.output import check_format, render_text, write_output

    check_format(fmt, out)
    if inventory is not None and not inventory.is_file():
        raise InputError(inventory, ["no such file"])
    requested = parse_fail_on(fail_on, REPORT_FAIL_ON)
    settings = get_settings(database_url=db)
    checks = site_baseline(settings, baseline)
    engine = database(settings, None)
    with session_factory(engine)() as session:
        site = choose_site(session, site)
        if zone is not None and zone not in (zones := store.known_zones(session, site)):
            raise UnknownName("zone", zone, tuple(zones), source="--zone")
        data = report_document(session, zone=zone, site=site, baseline=checks,
                               exceptions_file=exceptions or settings.exceptions_file,
                               attestations_file=attestations or settings.attestations_file,
                               inventory_file=inventory)
    engine.dispose()
    if out:
        for path in write_output(data, fmt, out, checks):
            if fmt != "table":
                typer.echo(f"wrote {path}", err=True)
    else:
        typer.echo(render_text(data, fmt, checks))
    exit_on(requested, report_conditions(data))


def report_conditions(data: dict[str, Any]) -> dict[FailOn, int]:
    """How often each --fail-on condition occurs in a report."""
    findings = Counter(f["status"] for a in data["assets"] for f in a["findings"])
    return {
        FailOn.FAIL: findings["fail"],
        FailOn.CAPABILITY_GAP: findings["capability_gap"],
        FailOn.UNKNOWN: findings["unknown"],
        FailOn.OPEN_ADVISORY: sum(1 for a in data["assets"] for adv in a["advisories"]
                                  if adv.get("state") == "open"),
        FailOn.DEVICE_ERROR: sum(1 for a in data["assets"] for p in a["probes"]
                                 if p["status"] != "ok"),
    }
