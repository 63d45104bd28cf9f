"""Raw broker throughput vs the server's ingest rate, for SQLite and PostgreSQL.

The messages are real observations: a plant with one device of every kind is audited
once (in process), then its observations are replicated over ``--assets`` asset ids
(fresh observation ids, topics matching the payloads) into ``--messages`` envelopes.

1. raw: a subscriber process (aiomqtt, QoS 1) counts the envelopes that a publisher
   (aiomqtt, QoS 1, 10 publishes in flight, as the collector) sends through Mosquitto.
   Both connect with the server's protocol settings (``client_kwargs(Settings())``: MQTT 5
   unless OTAUDIT_MQTT_PROTOCOL says 3.1.1), and the subscriber decodes packets with the
   server's decoder (``share_property_tables``), so both paths pay the same MQTT costs.
2. server: ``otaudit server run`` (its own process) receives the same envelopes and
   validates and stores them (acknowledged after the commit, persistent session); the rate
   runs from the first publish, once the server is subscribed (as the raw subscriber), until
   the last one is stored (every 10 ms a key lookup of the last message published, which
   one publisher's broker delivers last, then a count; counting every 10 ms scanned the
   table and took a fifth of a core from the server). The findings are evaluated after the
   acks, coalesced per asset: "findings current after" is the time until no stored asset has
   observations newer than its findings.

Ratio = server rate / raw rate (goal >= 0.6). The raw path runs twice: with paho's stock
decoder ("ratio to stock raw": a plain aiomqtt subscriber, the raw path as issue 9 defines
it) and with the server's faster decoder ("ratio to raw": the stricter ceiling, because the
server itself no longer pays paho's full decoding cost). Both verdicts are printed.
``--repeat`` rounds (default 3) each run both raw paths and then the server; the verdicts are
the medians of each round's own ratios, so a change in the machine's load between rounds
does not decide them.

    .venv/bin/python bench/ingest.py                     # SQLite and PostgreSQL
    .venv/bin/python bench/ingest.py --databases sqlite --messages 5000
    OTAUDIT_BENCH_PYSPY=/tmp/prof .venv/bin/python bench/ingest.py   # + py-spy of the server
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    OTAUDIT,
    Child,
    header,
    private_mosquitto,
    table,
    tool_version,
    update_results,
)

from otaudit.settings import Settings

POSTGRES_ADMIN = os.environ.get("OTAUDIT_TEST_POSTGRES",
                                "postgresql+psycopg://postgres@127.0.0.1:5432/test")
GOAL_RATIO = 0.6
WINDOW = 10  # publishes in flight, as collector/publisher.py
READY = b"server: subscribed at"  # what ``otaudit server run`` logs once it is subscribed
POLL = 0.01  # seconds between two looks for the last observation
LAST_STORED = sa.text("SELECT 1 FROM observations WHERE observation_id = :id")


def protocol() -> str:
    """The MQTT version both paths use: the server's setting (``client_kwargs``)."""
    return f"MQTT {Settings().mqtt_protocol}, QoS 1"


@dataclass
class Rate:
    label: str
    messages: int
    seconds: float
    cpu_seconds: float = 0.0
    peak_mib: float = 0.0
    evaluated_seconds: float | None = None  # until every stored asset's findings are current

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds


# -- the corpus -----------------------------------------------------------------------------
def build_corpus(work: Path, seed: int) -> tuple[list[bytes], dict]:
    """Observations of one device of every kind (real probes against the fleet)."""
    from otaudit.collector.run import audit_assets
    from otaudit.collector.targets import load_plan
    from otaudit.simulators.fleet import Fleet, generate_layout

    layout = generate_layout(25, seed, port_mode="any")
    os.environ.update(layout.env())
    observations = []
    (work / "corpus-plant" / "known_hosts").unlink(missing_ok=True)
    with Fleet(layout, work / "corpus-plant") as fleet:
        os.environ.update(fleet.env())
        inventory_path = fleet.write_outputs()["inventory"]
        inventory, plans = load_plan(inventory_path)

        async def sink(obs: object) -> None:
            observations.append(obs)

        settings = Settings(probe_timeout=3.0, retries=0, concurrency=25)
        asyncio.run(audit_assets(plans, sink, settings=settings, site=inventory.site,
                                 collector="bench-ingest"))
    return [o.to_json() for o in observations], layout.inventory()


def replicate(corpus: list[bytes], messages: int, assets: int, prefix: str
              ) -> list[tuple[str, bytes]]:
    """``messages`` envelopes over ``assets`` asset ids, each a fresh observation."""
    from otaudit.mqtt import observation_topic
    from otaudit.observation import Observation

    base = [Observation.from_json(c) for c in corpus]
    out = []
    for k in range(messages):
        obs = base[k % len(base)]
        asset = f"{obs.asset.id}-{(k % assets) // len(base):04d}"
        copy = obs.model_copy(update={"observation_id": uuid.uuid4(),
                                      "asset": obs.asset.model_copy(update={"id": asset})})
        out.append((observation_topic(prefix, copy.site, copy.collector_id, asset),
                    copy.to_json()))
    return out


# -- MQTT ---------------------------------------------------------------------------------
async def publish_all(broker: str, messages: list[tuple[str, bytes]]) -> float:
    """Publish with QoS 1 (PUBACK awaited, ``WINDOW`` in flight); return the start time."""
    import aiomqtt

    from otaudit.mqtt import client_kwargs

    window = asyncio.Semaphore(WINDOW)
    async with aiomqtt.Client(identifier=f"bench-pub-{uuid.uuid4().hex[:6]}",
                              **client_kwargs(Settings(), broker)) as client:
        started = time.monotonic()

        async def one(topic: str, payload: bytes) -> None:
            try:
                await client.publish(topic, payload, qos=1, timeout=60)
            finally:
                window.release()

        async with asyncio.TaskGroup() as tg:
            for topic, payload in messages:
                await window.acquire()
                tg.create_task(one(topic, payload))
    return started


async def subscribe_count(broker: str, expected: int, ready_file: Path, timeout: float,
                          server_decoder: bool = True) -> None:
    """Subscriber role: count ``expected`` messages, print the time the last arrived."""
    import aiomqtt

    from otaudit.mqtt import client_kwargs, observation_filter
    from otaudit.server.listener import ReadAhead, share_property_tables

    settings = Settings()
    if server_decoder and settings.mqtt_protocol == "5":
        share_property_tables()  # decode PUBLISH packets as the server does
    client = aiomqtt.Client(identifier=f"bench-sub-{uuid.uuid4().hex[:6]}",
                            **client_kwargs(settings, broker))
    if server_decoder:
        ReadAhead.install(client._client)  # and read the socket as the server does
    async with client:
        await client.subscribe(observation_filter(settings.topic_prefix), qos=1)
        ready_file.write_text("ready")
        count = 0
        async with asyncio.timeout(timeout):
            async for message in client.messages:
                json.loads(bytes(message.payload))  # the consumer at least parses it
                count += 1
                if count >= expected:
                    break
        print(json.dumps({"last": time.monotonic(), "count": count}), flush=True)


def raw_rate(broker: str, messages: list[tuple[str, bytes]], work: Path,
             server_decoder: bool = True) -> Rate:
    """The raw path; ``server_decoder``: the subscriber reads and decodes as the server does
    (``ReadAhead``, ``share_property_tables``), else as stock paho and aiomqtt."""
    ready = work / "subscriber.ready"
    ready.unlink(missing_ok=True)
    out = work / "subscriber.out"
    sub = Child([sys.executable, __file__, "--role", "subscriber", "--broker", broker,
                 "--expected", str(len(messages)), "--ready-file", str(ready)]
                + ([] if server_decoder else ["--stock-decoder"]),
                stdout=out, stderr=work / "subscriber.err")
    deadline = time.monotonic() + 30
    while not ready.exists():
        if sub.poll() or time.monotonic() > deadline:
            raise SystemExit(f"subscriber did not start; see {work / 'subscriber.err'}")
        time.sleep(0.02)
    started = asyncio.run(publish_all(broker, messages))
    finished = sub.wait(600)
    last = json.loads(out.read_text().strip().splitlines()[-1])["last"]
    # time.monotonic() is system-wide on Linux (CLOCK_MONOTONIC), so both sides compare
    how = "server's decoder" if server_decoder else "stock paho decoder"
    return Rate(f"raw aiomqtt → Mosquitto → aiomqtt ({how})", len(messages), last - started,
                finished.cpu_seconds, finished.max_rss_mib)


# -- the server ---------------------------------------------------------------------------
async def presubscribe(settings: Settings, broker: str) -> None:
    import aiomqtt

    from otaudit.mqtt import client_kwargs, observation_filter, persistent_session_kwargs

    async with aiomqtt.Client(identifier=settings.server_client_id,
                              **client_kwargs(settings, broker),
                              **persistent_session_kwargs(settings)) as client:
        await client.subscribe(observation_filter(settings.topic_prefix), qos=1)


def scratch_postgres(stack: ExitStack) -> str:
    name = f"otaudit_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = :n"), {"n": name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    stack.callback(drop)
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def _profile(pid: int, label: str) -> subprocess.Popen | None:
    """With OTAUDIT_BENCH_PYSPY=PREFIX, py-spy records the server and its store worker
    (PREFIX.<label>.txt, raw collapsed stacks) until it stops; py-spy must be installed
    (`pip install py-spy`)."""
    prefix = os.environ.get("OTAUDIT_BENCH_PYSPY")
    if not prefix:
        return None
    spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen([str(spy), "record", "--format", "raw", "-r", "250",
                             "--subprocesses", "--pid", str(pid), "-o",
                             f"{prefix}.{label}.txt"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def observation_id_of(payload: bytes) -> str:
    return json.loads(payload)["observation_id"]


def server_rate(label: str, database: str, broker: str, messages: list[tuple[str, bytes]],
                inventory: Path, work: Path) -> Rate:
    server_id = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    settings = Settings(server_client_id=server_id)
    asyncio.run(presubscribe(settings, broker))
    log = work / f"server-{label}.log"
    server = Child([OTAUDIT, "server", "run", "--inventory", str(inventory), "--db", database,
                    "--broker", broker], env={"OTAUDIT_SERVER_CLIENT_ID": server_id},
                   stderr=log)
    engine = sa.create_engine(database.replace("postgresql://", "postgresql+psycopg://"))
    profiler = None
    try:
        deadline = time.monotonic() + 60
        while READY not in log.read_bytes():  # as the raw subscriber: timed once subscribed
            if server.poll() or time.monotonic() > deadline:
                raise SystemExit(f"server did not start; see {log}")
            time.sleep(0.02)
        profiler = _profile(server.proc.pid, label)
        started = asyncio.run(publish_all(broker, messages))
        deadline = time.monotonic() + 1800
        last = {"id": observation_id_of(messages[-1][1])}
        stored = 0
        while True:  # the last message published is stored last (one publisher, in order):
            with engine.connect() as conn:  # a key lookup, not a count that scans the table
                if conn.scalar(LAST_STORED, last):
                    stored = conn.scalar(sa.text("SELECT count(*) FROM observations")) or 0
            if stored >= len(messages):
                seconds = time.monotonic() - started
                break
            if server.poll() or time.monotonic() > deadline:
                raise SystemExit(f"server stored {stored} of {len(messages)}; see {log}")
            time.sleep(POLL)
        from otaudit.server.db import session_factory
        from otaudit.server.store import stale_assets

        while True:  # evaluation runs after the acks: wait until the findings are current
            with session_factory(engine)() as session:
                if not stale_assets(session):
                    evaluated = time.monotonic() - started
                    break
            if server.poll() or time.monotonic() > deadline:
                raise SystemExit(f"server did not evaluate every asset; see {log}")
            time.sleep(0.1)
    finally:
        finished = server.stop()
        engine.dispose()
        if profiler is not None:
            profiler.wait(30)
    return Rate(f"server ingest, {label}", len(messages), seconds, finished.cpu_seconds,
                finished.max_rss_mib, evaluated)


def median_rate(rates: list[Rate]) -> Rate:
    """The round with the median duration (its own CPU, memory and evaluation figures)."""
    return sorted(rates, key=lambda r: r.seconds)[(len(rates) - 1) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--broker", help="mqtt://host:port (default: a private Mosquitto)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of raw + server runs; medians are reported")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--no-results", action="store_true")
    parser.add_argument("--role", choices=["subscriber"], help=argparse.SUPPRESS)
    parser.add_argument("--expected", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stock-decoder", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "subscriber":
        asyncio.run(subscribe_count(args.broker, args.expected, args.ready_file, 600,
                                    server_decoder=not args.stock_decoder))
        return

    work = args.work or Path(tempfile.mkdtemp(prefix="otaudit-bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    print("building the corpus (one device of every kind, audited once) ...", flush=True)
    corpus, inventory = build_corpus(work, args.seed)
    inventory_path = work / "zones.yaml"
    import yaml

    inventory_path.write_text(yaml.safe_dump({**inventory, "assets": []}, sort_keys=False))
    messages = replicate(corpus, args.messages, args.assets, Settings().topic_prefix)
    size = sum(len(p) for _, p in messages) / len(messages)
    rounds: list[list[Rate]] = []
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    with ExitStack() as stack:
        broker = args.broker or stack.enter_context(private_mosquitto(work / "broker"))
        urls = {}
        for db in databases:
            if db not in ("sqlite", "postgres"):
                raise SystemExit(f"unknown database {db!r}: sqlite or postgres")
        for n in range(args.repeat):
            print(f"round {n + 1}/{args.repeat}: raw broker throughput, {len(messages)} "
                  f"messages of {size:,.0f} bytes, {protocol()} on both paths ...", flush=True)
            rates = [raw_rate(broker, messages, work),
                     raw_rate(broker, messages, work, server_decoder=False)]
            for db in databases:
                print(f"round {n + 1}/{args.repeat}: server ingest into {db} ...", flush=True)
                if db == "sqlite":
                    (work / "ingest.db").unlink(missing_ok=True)
                    urls[db] = f"sqlite:///{work / 'ingest.db'}"
                else:
                    urls[db] = scratch_postgres(stack)
                rates.append(server_rate(db, urls[db], broker, messages, inventory_path, work))
            rounds.append(rates)
    rates = [median_rate([r[i] for r in rounds]) for i in range(len(rounds[0]))]
    raw, stock = rates[0], rates[1]
    rows = [[r.label, r.messages, r.seconds, r.per_second, r.cpu_seconds, r.peak_mib,
             f"{r.per_second / raw.per_second:.3f}", f"{r.per_second / stock.per_second:.3f}",
             "" if r.evaluated_seconds is None else f"{r.evaluated_seconds:.2f}"] for r in rates]
    text = table(["path", "messages", "seconds", "messages/s", "consumer CPU s",
                  "consumer peak MiB", "ratio to raw", "ratio to stock raw",
                  "findings current after s"], rows)
    if args.repeat > 1:
        text = (f"Medians of {args.repeat} rounds (each round: raw, stock raw, then each "
                "database; the ratio verdicts are the medians of each round's own ratios, "
                "so a load change between rounds cancels out)\n\n" + text)
    verdicts = []
    for i, r in enumerate(rates[2:], start=2):
        as_defined = statistics.median(x[i].per_second / x[1].per_second for x in rounds)
        strict = statistics.median(x[i].per_second / x[0].per_second for x in rounds)
        each = ", ".join(f"{x[i].per_second / x[1].per_second:.2f}" for x in rounds)
        verdicts.append(
            f"- {r.label}: {as_defined:.3f} of a stock aiomqtt subscriber (the issue's raw "
            f"path; goal >= {GOAL_RATIO}: {'met' if as_defined >= GOAL_RATIO else 'MISSED'}"
            f"{f'; rounds {each}' if len(rounds) > 1 else ''}); "
            f"{strict:.3f} of a subscriber decoding as fast as the server "
            f"({'met' if strict >= GOAL_RATIO else 'MISSED'} against that stricter ceiling)")
    text += "\n\n" + "\n".join(verdicts)
    print("\n" + text)
    if not args.no_results:
        extra = {"messages": f"{len(messages)} observations of {size:,.0f} bytes on average "
                             f"(JSON), {len(corpus)} real ones replicated over {args.assets} "
                             f"assets; {protocol()} on both paths (the server's settings), "
                             f"{WINDOW} publishes in flight",
                 "broker": f"{'private Mosquitto' if not args.broker else args.broker} "
                           f"({tool_version('mosquitto')})",
                 "postgres": tool_version("psql")}
        update_results("ingest", "## Broker throughput vs server ingest (bench/ingest.py)\n\n"
                       + header(extra) + "\n\n" + text)
        print(f"\nwritten to {Path(__file__).parent / 'RESULTS.md'} (work folder {work})")


if __name__ == "__main__":
    main()
