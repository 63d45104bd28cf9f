"""``otaudit demo``: audit the bundled simulated plant end to end and print the report.

Broker (embedded amqtt unless ``--broker``), simulators, server and collector all run
in this process on loopback; the database is SQLite in the output folder.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from otaudit.settings import Settings


@dataclass
class PipelineResult:
    published: int
    stored: int
    duplicates: int
    rejected: int
    seconds: float
    report: dict[str, Any]
    # per asset, what its simulators recorded: (kind, detail) of every request
    requests: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _bundled_examples() -> Path:
    from importlib.resources import files

    return Path(str(files("otaudit.baselines").joinpath("examples")))


async def run_pipeline(out_dir: Path, *, broker_url: str | None = None,
                       database_url: str | None = None, plant_file: Path | None = None,
                       settings: Settings | None = None, ingest_timeout: float = 30.0,
                       use_examples: bool = True, sign: bool = True,
                       advisories: bool = True,
                       phase: Callable[[str, int | None], None] | None = None,
                       step: Callable[[], None] | None = None) -> PipelineResult:
    """Simulators → collector → MQTT → server → database → report, once.

    With ``sign`` the collector signs every envelope with a fresh Ed25519 key and the
    server accepts only envelopes signed by it. ``phase(name, steps)`` is called when a
    phase starts (``steps``: how many ``step()`` calls it will make, or None).
    """
    phase = phase or (lambda _name, _steps: None)
    from otaudit.broker import embedded_broker
    from otaudit.collector.once import run_once
    from otaudit.collector.targets import load_plan
    from otaudit.server.advisories.importer import import_source
    from otaudit.server.baseline import load_baseline
    from otaudit.server.db import init_db, make_engine, session_factory
    from otaudit.server.ingest import Ingestor
    from otaudit.server.listener import ServerStats, serve
    from otaudit.server.reporting.context import file_digest, report_document
    from otaudit.server.store import record_inventory, upsert_zones
    from otaudit.signing import verifier_from_settings, write_key_pair
    from otaudit.simulators.plant import DEMO_ADVISORIES, DEMO_PLANT, start_plant

    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    if database_url is None:
        db_file = out_dir / "otaudit.db"
        for stale in out_dir.glob("otaudit.db*"):
            stale.unlink()
        database_url = f"sqlite:///{db_file}"
    async with AsyncExitStack() as stack:
        base = settings or Settings()
        if broker_url is None:
            broker = await stack.enter_async_context(embedded_broker())
            broker_url = broker.url
            base = base.model_copy(update={"mqtt_protocol": "3.1.1"})  # amqtt: MQTT 3.1.1 only
        collector_id = "demo-collector"
        keys = out_dir / "keys"
        settings = base.model_copy(update={
            "broker_url": broker_url, "database_url": database_url,
            "server_client_id": f"otaudit-server-{uuid.uuid4().hex[:8]}",
            "collector_id": collector_id, "probe_timeout": min(base.probe_timeout, 10.0),
            "state_dir": out_dir / "state",
            **({"signing_key_file": str(keys / f"{collector_id}.key"),
                "trusted_keys_dir": str(keys)} if sign else {}),
        })
        phase("starting the simulated plant", None)
        plant = await stack.enter_async_context(start_plant(plant_file or DEMO_PLANT))
        # SSH host keys are pinned per run folder, not in the user's own known-hosts store.
        stack.enter_context(_env("OTAUDIT_SSH_KNOWN_HOSTS", str(out_dir / "known_hosts")))
        inventory_path = plant.write_inventory(out_dir / "inventory.yaml")
        inventory, plans = load_plan(inventory_path)
        if sign:  # a fresh key pair per run, enrolled for the plant's site
            write_key_pair(keys, collector_id, force=True, sites=[inventory.site])

        phase("creating the database and importing advisories", None)
        engine = make_engine(database_url)
        init_db(engine)
        with session_factory(engine).begin() as session:
            upsert_zones(session, inventory)
            record_inventory(session, inventory, file_digest(inventory_path) or "",
                             str(inventory_path))
            if advisories:
                import_source(session, str(DEMO_ADVISORIES))
        examples = _bundled_examples() if use_examples else None
        ingestor = Ingestor(
            engine, topic_prefix=settings.topic_prefix,
            verifier=verifier_from_settings(settings),
            exceptions_file=examples / "exceptions.yaml" if examples else settings.exceptions_file,
            attestations_file=(examples / "attestations.yaml" if examples
                               else settings.attestations_file),
        )
        ready, stop, stats = asyncio.Event(), asyncio.Event(), ServerStats()
        server = asyncio.create_task(serve(ingestor, settings, broker_url=broker_url,
                                           ready=ready, stop=stop, stats=stats))
        try:
            await asyncio.wait_for(ready.wait(), 10)
            phase("auditing (probe runs)", sum(len(p.jobs) for p in plans))
            summary = await run_once(inventory, plans, settings, broker_url=broker_url,
                                     progress=(lambda _obs: step()) if step else None)
            phase("storing and evaluating", None)
            deadline = time.monotonic() + ingest_timeout
            while stats.stored + stats.duplicates < summary.published:
                if time.monotonic() > deadline or server.done():
                    raise RuntimeError(
                        f"server stored {stats.stored} of {summary.published} observations "
                        f"within {ingest_timeout:g} s")
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await server  # serve evaluates every pending asset before it returns
        requests = {asset: [(r.kind, dict(r.detail)) for d in devices for r in d.log.records]
                    for asset, devices in plant.devices.items()}
    with session_factory(engine)() as session:  # so the findings read here are complete
        report = report_document(session, baseline=load_baseline(),
                                 exceptions_file=ingestor.exceptions_file,
                                 attestations_file=ingestor.attestations_file,
                                 inventory_file=inventory_path)
    engine.dispose()
    return PipelineResult(summary.published, stats.stored, stats.duplicates, stats.rejected,
                          time.monotonic() - started, report, requests)


def demo(
    out: Path = typer.Option(Path("otaudit-demo"), "--out", help="output folder"),
    broker: str | None = typer.Option(None, help="use this broker instead of an embedded one"),
    fmt: str = typer.Option("table", "--format", help="table or json on stdout"),
    serve: bool = typer.Option(False, "--serve", help="keep the web console up afterwards "
                               "(prints its URL and a demo login)"),
    http: str = typer.Option("127.0.0.1:8080", "--http", help="the console's HOST:PORT "
                             "with --serve"),
) -> None:
    """Audit the bundled simulated plant end to end; write OUT/report.json, report.html and
    report.pdf; with --serve, then serve the web console on that database."""
    from otaudit.cli.api import parse_http
    from otaudit.errors import InputError
    from otaudit.mqtt import BrokerAddress
    from otaudit.server.report import render_table

    if fmt not in ("table", "json"):
        raise InputError("--format", [f"{fmt!r}: expected table or json"])
    if broker is not None:
        BrokerAddress.parse(broker)
    address = parse_http(http) if serve else None
    with _phases(json_output=fmt == "json") as (phase, step):
        result = asyncio.run(run_pipeline(out, broker_url=broker, phase=phase, step=step))
        phase("writing report.json, report.html and report.pdf", None)
        report_path, html_path, pdf_path = write_reports(result.report, out)
    if fmt == "json":
        typer.echo(json.dumps(result.report, indent=2, default=str))
    else:
        typer.echo(render_table(result.report))
    typer.echo(f"{result.published} observations published, {result.stored} stored in "
               f"{result.seconds:.1f} s; inventory: {out / 'inventory.yaml'}; database: "
               f"{out / 'otaudit.db'}\nreport: {report_path}\n        {html_path}\n"
               f"        {pdf_path}")
    examples = _bundled_examples()
    typer.echo("next, with the same site policy the demo used:\n"
               f"  export OTAUDIT_DATABASE_URL=sqlite:///{out.resolve() / 'otaudit.db'}\n"
               f"  export OTAUDIT_EXCEPTIONS_FILE={examples / 'exceptions.yaml'}\n"
               f"  export OTAUDIT_ATTESTATIONS_FILE={examples / 'attestations.yaml'}\n"
               "  otaudit report; otaudit gap; otaudit patch status")
    if address is not None:
        from otaudit.cli.demo_serve import serve_console

        serve_console(out, f"sqlite:///{out.resolve() / 'otaudit.db'}", *address, examples)


def write_reports(report: dict[str, Any], out: Path) -> tuple[Path, Path, Path]:
    """OUT/report.json, report.html and report.pdf (the PDF last: it needs WeasyPrint's
    system libraries, and a clear error names them)."""
    from otaudit.server.reporting.html import render_html
    from otaudit.server.reporting.pdf import render_pdf

    paths = out / "report.json", out / "report.html", out / "report.pdf"
    paths[0].write_text(json.dumps(report, indent=2, default=str))
    html = render_html(report)
    paths[1].write_text(html, encoding="utf-8")
    render_pdf(html, paths[2])
    return paths


@contextmanager
def _phases(*, json_output: bool) -> Iterator[tuple[Callable[[str, int | None], None],
                                                    Callable[[], None]]]:
    """Phase lines and a bar for the audit phase on stderr (when progress is on)."""
    from otaudit.cli.progress import enabled

    if not enabled(json_output=json_output):
        yield (lambda _name, _steps: None), (lambda: None)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        current: list[int] = []

        def phase(name: str, steps: int | None) -> None:
            if current:
                bar.update(current[-1], completed=bar.tasks[current[-1]].total or 1,
                           total=bar.tasks[current[-1]].total or 1)
            current.append(bar.add_task(name, total=steps))

        def step() -> None:
            if current:
                bar.advance(current[-1])

        yield phase, step
        if current:
            bar.update(current[-1], total=bar.tasks[current[-1]].total or 1,
                       completed=bar.tasks[current[-1]].total or 1)
