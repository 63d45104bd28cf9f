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
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
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
                       advisories: bool = True) -> PipelineResult:
    """Simulators → collector → MQTT → server → database → report, once.

    With ``sign`` the collector signs every envelope with a fresh Ed25519 key and the
    server accepts only envelopes signed by it.
    """
    from otaudit.broker import embedded_broker
    from otaudit.collector.once import run_once
    from otaudit.collector.targets import load_plan
    from otaudit.server.advisories.importer import import_source
    from otaudit.server.db import init_db, make_engine, session_factory
    from otaudit.server.ingest import Ingestor
    from otaudit.server.listener import ServerStats, serve
    from otaudit.server.report import build_report
    from otaudit.server.store import upsert_zones
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
        plant = await stack.enter_async_context(start_plant(plant_file or DEMO_PLANT))
        # SSH host keys are pinned per run folder, not in the user's own known-hosts store.
        stack.enter_context(_env("OTAUDIT_SSH_KNOWN_HOSTS", str(out_dir / "known_hosts")))
        inventory_path = plant.write_inventory(out_dir / "inventory.yaml")
        inventory, plans = load_plan(inventory_path)
        if sign:  # a fresh key pair per run, enrolled for the plant's site
            write_key_pair(keys, collector_id, force=True, sites=[inventory.site])

        engine = make_engine(database_url)
        init_db(engine)
        with session_factory(engine).begin() as session:
            upsert_zones(session, inventory)
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
            summary = await run_once(inventory, plans, settings, broker_url=broker_url)
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
    with session_factory(engine)() as session:  # so the findings read here are complete
        report = build_report(session, exceptions_file=ingestor.exceptions_file,
                              attestations_file=ingestor.attestations_file)
    engine.dispose()
    return PipelineResult(summary.published, stats.stored, stats.duplicates, stats.rejected,
                          time.monotonic() - started, report)


def demo(
    out: Path = typer.Option(Path("otaudit-demo"), "--out", help="output folder"),
    broker: str | None = typer.Option(None, help="use this broker instead of an embedded one"),
    fmt: str = typer.Option("table", "--format", help="table or json on stdout"),
) -> None:
    """Audit the bundled simulated plant end to end; write OUT/report.json."""
    from otaudit.server.report import render_table

    result = asyncio.run(run_pipeline(out, broker_url=broker))
    report_path = out / "report.json"
    report_path.write_text(json.dumps(result.report, indent=2, default=str))
    if fmt == "json":
        typer.echo(json.dumps(result.report, indent=2, default=str))
    else:
        typer.echo(render_table(result.report))
    typer.echo(f"{result.published} observations published, {result.stored} stored in "
               f"{result.seconds:.1f} s; report: {report_path}; inventory: "
               f"{out / 'inventory.yaml'}; database: {out / 'otaudit.db'}")
    examples = _bundled_examples()
    typer.echo("next, with the same site policy the demo used:\n"
               f"  export OTAUDIT_DATABASE_URL=sqlite:///{out.resolve() / 'otaudit.db'}\n"
               f"  export OTAUDIT_EXCEPTIONS_FILE={examples / 'exceptions.yaml'}\n"
               f"  export OTAUDIT_ATTESTATIONS_FILE={examples / 'attestations.yaml'}\n"
               "  otaudit report; otaudit gap; otaudit patch status")
