"""End-to-end audit of a simulated plant: collector → Mosquitto → server → findings stored.

For each N (default 100 and 1,000): start the plant (``otaudit.simulators.fleet``),
start ``otaudit server run`` and then ``otaudit collector run --once`` as separate
processes, and measure from the collector's start until the server has stored every
observation (and the findings evaluated in the same transaction). Peak RSS and CPU time
of collector and server come from ``wait4`` when they exit. Afterwards the simulators'
request logs are checked: at most one connection per device, minimum interval kept.

    .venv/bin/python bench/plant.py                    # N = 100 and 1000, private Mosquitto
    .venv/bin/python bench/plant.py --devices 1000 --broker mqtt://127.0.0.1:1883
    .venv/bin/python bench/plant.py --devices 300 --protocols modbus   # a one-protocol zone
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    OTAUDIT,
    Child,
    Finished,
    cpu_seconds,
    header,
    private_mosquitto,
    table,
    tool_version,
    update_results,
)

from otaudit.settings import Settings
from otaudit.simulators.fleet import Fleet, generate_layout
from otaudit.simulators.fleet.politeness import PolitenessReport, check_politeness

GOAL_SECONDS, GOAL_COLLECTOR_MIB = 60.0, 80.0
GOAL_ONE_PROTOCOL_MIB = 50.0  # a zone of one protocol (issue 22: 300 devices)


@dataclass
class PlantRun:
    devices: int
    observations: int
    wall: float  # collector start → last observation stored by the server
    collector: Finished
    server: Finished
    plant_ready: float
    statuses: Counter[str]
    facts: int
    findings: int
    politeness: PolitenessReport
    sim_cpu: float  # CPU seconds of the simulator workers during the audit
    broker_cpu: float
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.devices / self.wall


async def presubscribe(settings: Settings, broker: str) -> None:
    """Create the server's persistent session and subscription before the server starts,
    so nothing the collector publishes meanwhile is lost (the server resumes it)."""
    import aiomqtt

    from otaudit.mqtt import client_kwargs, observation_filter, persistent_session_kwargs

    async with aiomqtt.Client(identifier=settings.server_client_id,
                              **client_kwargs(settings, broker),
                              **persistent_session_kwargs(settings)) as client:
        await client.subscribe(observation_filter(settings.topic_prefix), qos=1)


def broker_pid(url: str) -> int | None:
    port = int(url.rsplit(":", 1)[1])
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn.pid
    return None


def connected_to(pid: int, port: int) -> bool:
    try:
        return any(c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
                   for c in psutil.Process(pid).net_connections("tcp"))
    except psutil.Error:
        return False


def run_plant(n: int, args: argparse.Namespace, broker: str, work: Path) -> PlantRun:
    run_dir = work / f"plant-{n}"
    for stale in ("otaudit.db", "otaudit.db-wal", "otaudit.db-shm", "state", "known_hosts"):
        path = run_dir / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    layout = generate_layout(n, args.seed, protocols=args.protocols, faults=not args.no_faults)
    env = {**layout.env(), "OTAUDIT_SSH_KNOWN_HOSTS": str(run_dir / "known_hosts"),
           "OTAUDIT_CONCURRENCY": str(args.concurrency),
           "OTAUDIT_PROBE_TIMEOUT": str(args.probe_timeout),
           "OTAUDIT_MIN_REQUEST_INTERVAL": str(args.min_interval),
           "OTAUDIT_COLLECTOR_ID": f"bench-{n}", "OTAUDIT_STATE_DIR": str(run_dir / "state")}
    env["OTAUDIT_RETRIES"] = str(args.retries)
    database = args.database or f"sqlite:///{run_dir / 'otaudit.db'}"
    server_id = f"bench-server-{uuid.uuid4().hex[:8]}"
    broker_port = int(broker.rsplit(":", 1)[1])
    with ExitStack() as stack:
        print(f"[N={n}] starting the plant ...", flush=True)
        fleet = stack.enter_context(Fleet(layout, run_dir, workers=args.workers))
        inventory = fleet.write_outputs()["inventory"]
        print(f"[N={n}] plant ready in {fleet.ready_seconds:.1f} s; starting the server",
              flush=True)
        settings = Settings(server_client_id=server_id)
        asyncio.run(presubscribe(settings, broker))
        server = Child([OTAUDIT, "server", "run", "--inventory", str(inventory), "--db",
                        database, "--broker", broker],
                       env={"OTAUDIT_SERVER_CLIENT_ID": server_id},
                       stderr=run_dir / "server.log")
        stack.callback(server.stop)
        deadline = time.monotonic() + 60
        while not connected_to(server.pid, broker_port):
            if server.poll() or time.monotonic() > deadline:
                raise SystemExit(f"server did not connect; see {run_dir / 'server.log'}")
            time.sleep(0.05)
        time.sleep(0.5)  # subscribe follows the connection
        engine = sa.create_engine(database.replace("postgresql://", "postgresql+psycopg://"))
        stack.callback(engine.dispose)
        sims, mosq = fleet.pids, broker_pid(broker)
        sim_cpu0, broker_cpu0 = cpu_seconds(sims), cpu_seconds([mosq] if mosq else [])
        print(f"[N={n}] auditing ...", flush=True)
        started = time.monotonic()
        collector = Child([OTAUDIT, "collector", "run", "--inventory", str(inventory), "--once",
                           "--broker", broker, "--no-progress"], env=env,
                          stdout=run_dir / "collector.out", stderr=run_dir / "collector.log")
        stack.callback(collector.stop)
        stored, wall, published = 0, 0.0, None
        limit = started + args.timeout
        while True:
            finished = collector.poll()
            if finished and published is None:
                out = (run_dir / "collector.out").read_text()
                match = re.search(r"(\d+) published", out)
                if finished.returncode != 0 or not match:
                    raise SystemExit(f"collector failed ({finished.returncode}); see "
                                     f"{run_dir / 'collector.log'}")
                published = int(match.group(1))
            with engine.connect() as conn:
                stored = conn.scalar(sa.text("SELECT count(*) FROM observations")) or 0
            if published is not None and stored >= published:
                wall = time.monotonic() - started
                break
            if time.monotonic() > limit:
                raise SystemExit(f"not done after {args.timeout:g} s: {stored} stored")
            time.sleep(0.1)
        sim_cpu = cpu_seconds(sims) - sim_cpu0
        broker_cpu = cpu_seconds([mosq] if mosq else []) - broker_cpu0
        collector_done = collector.stop()
        server_done = server.stop()
        with engine.connect() as conn:
            statuses = Counter(dict(conn.execute(sa.text(
                "SELECT status, count(*) FROM observations GROUP BY status")).all()))
            findings = conn.scalar(sa.text("SELECT count(*) FROM findings")) or 0
            payloads = conn.execute(sa.text("SELECT payload FROM observations")).scalars()
            facts = sum(len((_json(p)).get("facts", {})) for p in payloads)
        fleet.stop()
    report = check_politeness(fleet.log_dir, args.min_interval)
    return PlantRun(n, published or 0, wall, collector_done, server_done,
                    fleet.ready_seconds or 0.0, statuses, facts, findings, report, sim_cpu,
                    broker_cpu)


def _json(value: object) -> dict:
    import json

    return json.loads(value) if isinstance(value, str) else dict(value or {})


def summarize(runs: list[PlantRun], args: argparse.Namespace) -> str:
    rows = [[r.devices, r.observations, r.wall, r.rate, r.collector.seconds,
             r.collector.cpu_seconds, r.collector.max_rss_mib, r.server.cpu_seconds,
             r.server.max_rss_mib, r.sim_cpu, r.broker_cpu, r.facts, r.findings,
             " ".join(f"{k} {v}" for k, v in sorted(r.statuses.items()))] for r in runs]
    text = table(["devices", "observations", "wall s", "devices/s", "collector s",
                  "collector CPU s", "collector peak MiB", "server CPU s", "server peak MiB",
                  "simulators CPU s", "broker CPU s", "facts", "findings", "statuses"], rows)
    text += "\n\n" + "\n".join(f"- N={r.devices}: {r.politeness.summary()}" for r in runs)
    goals = []
    one_protocol = args.protocols is not None and len(args.protocols) == 1
    for r in runs:
        if one_protocol:
            small = "met" if r.collector.max_rss_mib <= GOAL_ONE_PROTOCOL_MIB else "MISSED"
            goals.append(f"- N={r.devices}, {''.join(args.protocols)} only: collector peak "
                         f"{r.collector.max_rss_mib:.0f} MiB (goal <= "
                         f"{GOAL_ONE_PROTOCOL_MIB:.0f} MiB for a one-protocol zone: {small})")
        elif r.devices >= 1000:
            fast = "met" if r.wall <= GOAL_SECONDS else "MISSED"
            small = "met" if r.collector.max_rss_mib <= GOAL_COLLECTOR_MIB else "MISSED"
            goals.append(f"- N={r.devices}: wall {r.wall:.1f} s (goal <= {GOAL_SECONDS:.0f} s: "
                         f"{fast}), collector peak {r.collector.max_rss_mib:.0f} MiB (goal <= "
                         f"{GOAL_COLLECTOR_MIB:.0f} MiB: {small})")
    if len(runs) >= 2:
        a, b = runs[0], runs[-1]
        scale = b.devices / a.devices
        goals.append(f"- scaling {a.devices} → {b.devices} devices (×{scale:.0f}): wall ×"
                     f"{b.wall / a.wall:.1f}, collector CPU ×"
                     f"{b.collector.cpu_seconds / max(a.collector.cpu_seconds, 1e-9):.1f}, "
                     f"collector peak RSS ×{b.collector.max_rss_mib / a.collector.max_rss_mib:.2f}"
                     f", server peak RSS ×{b.server.max_rss_mib / a.server.max_rss_mib:.2f}")
    return text + ("\n" + "\n".join(goals) if goals else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--broker", help="mqtt://host:port (default: a private Mosquitto)")
    parser.add_argument("--database", help="server database URL (default: SQLite per run)")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="collector concurrency (default 64; the setting's default is "
                             f"{Settings().concurrency})")
    parser.add_argument("--probe-timeout", type=float, default=Settings().probe_timeout)
    parser.add_argument("--min-interval", type=float, default=Settings().min_request_interval)
    parser.add_argument("--retries", type=int, default=0,
                        help="collector retries of unanswered devices (default 0: a one-shot "
                             "audit where a silent device costs one timeout; the daemon's "
                             f"default is {Settings().retries})")
    parser.add_argument("--protocols", type=lambda text: set(text.split(",")),
                        help="only these protocols (comma list, e.g. modbus: a one-protocol "
                             "zone); default: the whole mix")
    parser.add_argument("--no-faults", action="store_true",
                        help="well-behaved devices only (no silent, garbage or offline ones)")
    parser.add_argument("--workers", type=int, help="plant worker processes (default: cores)")
    parser.add_argument("--timeout", type=float, default=900.0, help="per N, seconds")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--no-results", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument("--results-key", default="plant",
                        help="section of RESULTS.md to (re)write (default: plant)")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="otaudit-bench-plant-"))
    runs = []
    with ExitStack() as stack:
        broker = args.broker or stack.enter_context(private_mosquitto(work / "broker"))
        for n in args.devices:
            runs.append(run_plant(n, args, broker, work))
    text = summarize(runs, args)
    print("\n" + text)
    settings = (f"collector concurrency {args.concurrency}, probe timeout "
                f"{args.probe_timeout:g} s, min request interval {args.min_interval:g} s, "
                f"retries {args.retries}; "
                f"broker {'private Mosquitto' if not args.broker else args.broker} "
                f"({tool_version('mosquitto')}); database "
                f"{(args.database or 'sqlite').split(':')[0]}; plant seed {args.seed}"
                f"{', protocols ' + ','.join(sorted(args.protocols)) if args.protocols else ''}"
                f"{', no faults' if args.no_faults else ''}, "
                f"ready in {', '.join(f'{r.plant_ready:.0f} s' for r in runs)}")
    if not args.no_results:
        update_results(args.results_key, f"## End-to-end plant audit (bench/plant.py, "
                       f"{args.results_key})\n\n"
                       + header({"settings": settings}) + "\n\n" + text)
        print(f"\nwritten to {Path(__file__).parent / 'RESULTS.md'} (work folder {work})")


if __name__ == "__main__":
    main()
