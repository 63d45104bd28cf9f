"""Fuzzing campaign: the collector's probe path (``run_probe``) against each simulator through
the seeded mutating proxy (``otaudit.simulators.fuzz``), until N fuzzed replies per protocol.

    .venv/bin/python tests/fuzz/campaign.py [--replies 10000] [--seed 1] [--protocols all]
                                            [--workers 4] [--json FILE] [--tracemalloc]
                                            [--rate 0 --runs 200]  (a clean baseline)

(``make fuzz`` runs it with 10,000 replies per protocol; ``test_fuzz_slice.py`` a short
seeded slice.) It prints, per protocol:

- **crashes**: an exception escaped ``run_probe`` (it would stop the collector) — must be 0;
- **probe bugs**: runs that ended in the runner's catch-all (an unexpected exception type
  inside a probe: the run failed cleanly, but the probe did not classify the damage);
- **without status**: runs that did not return an observation within deadline + 5 s;
- **leaked connections**: the simulator's connections still open 10 s after the last run
  (a device keeping dead connections runs out of them) — must be 0;
- **invented facts**, defined precisely: two undamaged runs first give the *clean* facts
  (a path whose value differs between them is *volatile* and left out). A fuzzed run's
  fact is *divergent* when it is reported known and its value differs from the clean one
  (or the path was not known in the clean run). When every mutation of that run was
  *breaking* (truncation, early close, slow trickle, a lying length field, trailing junk —
  nothing that puts new content in a reply), a divergent fact was invented from damage:
  that count must be 0. Divergent facts of runs with an *altering* mutation (bit flips,
  another PDU type, an overwritten byte) are counted apart as *altered*: the damaged reply
  said something else, and the fact's evidence shows what.
- **facts inferred from silence** (SNMP: ``snmp.v1_enabled``, ``v2c_enabled``,
  ``v3_enabled``, ``versions_answering`` — a version or engine discovery that stayed silent
  while the agent answered a control request) are judged by the replies *of that version*
  (the proxy keeps the reply each mutation replaced): when one of them was dropped, delayed
  or broken by the proxy, a divergent fact is **invented** (damage turned into a fact; with
  an altering mutation there it is *altered*); when none of them was touched, the silence
  came from the load of the machine, not from the proxy: a **load artefact**, reported
  apart (it fails no criterion of the campaign, but says the timeout is too short for
  this machine's load, or that the probe's confirmation rule is too weak);
- **peak memory**: the campaign process's peak RSS, its RSS at each tenth of the runs
  (bounded memory: flat after the first tenth); ``--tracemalloc`` adds where traced memory
  grew between the first and the last tenth. Between two runs of a worker the campaign
  empties the simulator's request log (keeping the kinds of request it saw, printed: the
  proof that the probe only read) and forgets the finished run's UDP client ports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otaudit.collector.run import limit_malloc_arenas
from otaudit.observation import AssetKind, AssetRef, Observation
from otaudit.probes.base import Probe, ProbeOptions, ProbeTarget
from otaudit.probes.runner import run_probe
from otaudit.settings import DEFAULT_MIN_REQUEST_INTERVAL
from otaudit.simulators import create_simulator
from otaudit.simulators.fuzz.mutators import Mutation, snmp_version
from otaudit.simulators.fuzz.proxy import proxy_for

PROTOCOLS = ("modbus", "s7", "snmp", "ssh", "enip", "opcua", "winrm")
# facts inferred from silence: path -> the versions whose replies it depends on (None: the
# versions in which the clean and the fuzzed value differ)
SILENCE_INFERRED: dict[str, dict[str, tuple[str, ...] | None]] = {"snmp": {
    "snmp.v1_enabled": ("v1",), "snmp.v2c_enabled": ("v2c",), "snmp.v3_enabled": ("v3",),
    "snmp.versions_answering": None}}
SNMP_WIRE_VERSION = {"v1": 0, "v2c": 1, "v3": 3}
# SNMP request timeout: 1.0 s per try, 1 retry. The probe's default is 2.0 s; 1.0 s is what
# its quick first tries use anyway and what OP_TIMEOUT caps every request to here. The
# 0.3 s of the first campaigns was below what a 2-core machine shared with other work
# guarantees to 16 concurrent runs: v1 replies came late with no mutation at all.
SNMP_REQUEST_TIMEOUT = 1.0
COMMUNITY_VAR, PASSWORD_VAR = "OTAUDIT_FUZZ_COMMUNITY", "OTAUDIT_FUZZ_PASSWORD"
DEADLINE, OP_TIMEOUT = 6.0, 1.0
LEAK_GRACE = 10.0  # seconds for the simulator's connections to close after the last run


@dataclass
class Target:
    protocol: str
    profile: str
    kind: AssetKind
    options: Callable[[int], dict[str, Any]]  # run number -> probe options
    rate: float  # share of replies mutated
    sim_options: dict[str, Any] = field(default_factory=dict)
    device_options: Callable[[Any], dict[str, Any]] = lambda _: {}  # from the simulator
    proxy_options: Callable[[Any], dict[str, Any]] = lambda _: {}  # e.g. TLS termination
    deadline: float = DEADLINE  # of one probe run
    clean_per_proxy: bool = False  # replies name the address the probe reached (OPC UA)
    min_interval: float = DEFAULT_MIN_REQUEST_INTERVAL  # the probe's pacing of requests


def _winrm_options(run: int) -> dict[str, Any]:
    return {"user": "auditor", "password": {"env": PASSWORD_VAR}, "auth": "basic"}


def _winrm_tls(device: Any) -> dict[str, Any]:
    """WinRM is HTTPS: the proxy terminates TLS with the listener's own test certificate
    (and trusts exactly that certificate upstream), so it mutates the HTTP bytes while the
    probe still verifies TLS as in production, pinning that certificate (``cert_sha256``)."""
    return {"tls": device.server_tls_context(), "upstream_tls": device.client_tls_context()}


def _ssh_options(known_hosts: Path) -> Callable[[int], dict[str, Any]]:
    def options(run: int) -> dict[str, Any]:
        base: dict[str, Any] = {"known_hosts": known_hosts}
        if run % 4 == 3:  # one run in four logs in and runs the allowlisted commands
            base |= {"user": "auditor", "password": {"env": PASSWORD_VAR},
                     "personality": "linux"}
        return base
    return options


def targets(workdir: Path) -> dict[str, Target]:
    return {
        "modbus": Target("modbus", "schneider-m340", AssetKind.PLC, lambda _: {"unit": 1},
                         0.4),
        "s7": Target("s7", "s7-1200-weak", AssetKind.PLC, lambda _: {}, 0.3),
        "snmp": Target("snmp", "scalance-x204irt-weak", AssetKind.SWITCH,
                       lambda _: {"community": {"env": COMMUNITY_VAR},
                                  "request_timeout": SNMP_REQUEST_TIMEOUT, "retries": 1,
                                  "max_oids": 500}, 0.15),
        "ssh": Target("ssh", "hmi-weak", AssetKind.HMI,
                      _ssh_options(workdir / "known_hosts"), 0.25,
                      {"host_key_dir": workdir / "ssh-keys"}),
        # the CIP Security port is looked at directly (a TLS handshake, no CIP): only the
        # EtherNet/IP replies on 44818 go through the proxy
        "enip": Target("enip", "compactlogix-5380-cip-security", AssetKind.PLC,
                       lambda _: {}, 0.35, {"tls_port": 0},  # any free port, not 2221
                       device_options=lambda d: d.endpoint_options),
        "opcua": Target("opcua", "opcua-weak", AssetKind.HMI,
                        lambda _: {"read_build_info": True}, 0.2,
                        device_options=lambda d: d.endpoint_options, clean_per_proxy=True),
        # a WinRM run is ~50 WS-Man requests: the default pacing alone took 2.5 s of each;
        # the campaign judges what damaged replies do (pacing has tests of its own, and
        # ctx.pace still runs before each request), so its WinRM runs go unpaced
        "winrm": Target("winrm", "windows-weak", AssetKind.HMI, _winrm_options, 0.08,
                        device_options=lambda d: {"cert_sha256": d.cert_sha256},
                        proxy_options=_winrm_tls, deadline=20.0, min_interval=0.0),
    }


@dataclass
class Report:
    protocol: str
    runs: int = 0
    fuzzed_replies: int = 0
    replies: int = 0
    crashes: list[str] = field(default_factory=list)
    probe_bugs: Counter[str] = field(default_factory=Counter)
    without_status: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    mutations: Counter[str] = field(default_factory=Counter)
    invented: list[dict[str, Any]] = field(default_factory=list)
    altered: int = 0
    load_artefacts: list[dict[str, Any]] = field(default_factory=list)
    volatile: list[str] = field(default_factory=list)
    rss_early_mib: float = 0.0
    rss_tenths_mib: list[float] = field(default_factory=list)  # RSS at each tenth
    request_kinds: set[str] = field(default_factory=set)  # every request the device saw
    max_log_records: int = 0  # the simulator's request log, at most, between two clears
    logged_requests: int = 0  # every request the simulator logged
    max_open_connections: int = 0  # the simulator's open connections, at most, between runs
    open_at_end: int = 0  # still open after every run ended (and a grace): leaked
    growth: list[str] = field(default_factory=list)  # --tracemalloc: top allocation growth
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "runs": self.runs,
                "fuzzed_replies": self.fuzzed_replies, "replies": self.replies,
                "crashes": self.crashes, "probe_bugs": dict(self.probe_bugs),
                "without_status": self.without_status, "statuses": dict(self.statuses),
                "mutations": dict(self.mutations), "invented": self.invented,
                "altered": self.altered, "load_artefacts": self.load_artefacts,
                "volatile": self.volatile,
                "rss_early_mib": round(self.rss_early_mib, 1),
                "rss_tenths_mib": [round(r, 1) for r in self.rss_tenths_mib],
                "request_kinds": sorted(self.request_kinds),
                "max_log_records": self.max_log_records,
                "logged_requests": self.logged_requests,
                "max_open_connections": self.max_open_connections,
                "open_at_end": self.open_at_end,
                "growth": self.growth,
                "seconds": round(self.seconds, 1)}


def rss_mib() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # pragma: no cover
        return 0.0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def known(obs: Observation) -> dict[str, Any]:
    return {path: fact.value for path, fact in obs.facts.items()}


async def probe_once(probe: Probe, target: ProbeTarget, deadline: float = DEADLINE,
                     min_interval: float = DEFAULT_MIN_REQUEST_INTERVAL) -> Observation:
    return await run_probe(probe, target, collector_id="fuzz", site="fuzz",
                           deadline=deadline, op_timeout=OP_TIMEOUT,
                           min_interval=min_interval)


def probe_target(spec: Target, cls: type[Probe], port: int, run: int,
                 device: Any = None) -> ProbeTarget:
    values = spec.options(run) | (spec.device_options(device) if device is not None else {})
    options: ProbeOptions = cls.Options.model_validate(values)
    return ProbeTarget(asset=AssetRef(id=f"{spec.protocol}-fuzz", kind=spec.kind, zone="z"),
                       host="127.0.0.1", port=port, options=options)


async def campaign(protocol: str, replies: int, seed: int, workers: int, workdir: Path,
                   progress: Callable[[str], None] | None = None, *,
                   rate: float | None = None, max_runs: int | None = None) -> Report:
    """Fuzz one protocol until ``replies`` replies were mutated (or ``max_runs`` runs:
    with ``rate`` 0, a clean baseline); returns the report."""
    from otaudit.probes import get_probe

    spec = targets(workdir)[protocol]
    probe = get_probe(protocol)
    cls = type(probe)
    report = Report(protocol)
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        device = create_simulator(protocol, spec.profile, **spec.sim_options)
        await stack.enter_async_context(device)
        upstream = (device.host, device.port)
        proxies = [proxy_for(protocol, upstream, seed=seed * 1000 + w, rate=0.0,
                             **spec.proxy_options(device)) for w in range(workers)]
        for proxy in proxies:
            await stack.enter_async_context(proxy)
        # the clean facts: two undamaged runs (each option variant) through the proxy (each
        # proxy when the device's replies name the address it was reached at)
        clean: dict[tuple[int, int], dict[str, Any]] = {}
        variants = sorted({_variant(spec, run) for run in range(8)})
        fronts = proxies if spec.clean_per_proxy else proxies[:1]
        async def clean_pair(variant: int, proxy: Any) -> None:
            target = probe_target(spec, cls, proxy.port, variant, device)
            first = await probe_once(probe, target, spec.deadline, spec.min_interval)
            second = await probe_once(probe, target, spec.deadline, spec.min_interval)
            a, b = known(first), known(second)
            clean[variant, proxy.port] = {p: v for p, v in a.items()
                                          if b.get(p, object()) == v}
            report.volatile += sorted(set(a) ^ set(b)
                                      | {p for p in a if p in b and a[p] != b[p]})

        for variant in variants:  # the proxies at once (OPC UA: one pair per proxy)
            await asyncio.gather(*(clean_pair(variant, proxy) for proxy in fronts))
        for proxy in proxies:
            proxy.rate = spec.rate if rate is None else rate
            proxy.take_applied()
        run_counter = iter(range(10**9))
        early_mark = False
        snapshots: list[tracemalloc.Snapshot] = []

        async def worker(proxy: Any) -> None:
            nonlocal early_mark
            while report.fuzzed_replies < replies:
                run = next(run_counter)
                if max_runs is not None and run >= max_runs:
                    break
                proxy.reseed(seed * 1_000_003 + run)
                target = probe_target(spec, cls, proxy.port, run, device)
                try:
                    obs = await asyncio.wait_for(
                        probe_once(probe, target, spec.deadline, spec.min_interval),
                        spec.deadline + 5)
                except TimeoutError:
                    report.without_status += 1
                    report.fuzzed_replies += len(proxy.take_applied())
                    tidy(report, device, proxy)
                    continue
                except (Exception, asyncio.CancelledError) as exc:  # would stop the collector
                    if isinstance(exc, asyncio.CancelledError) and cancelled_from_outside():
                        raise
                    # (a CancelledError from a run nobody cancelled ended that run without a
                    # status: uncaught, it ended this worker and the simulator was stopped
                    # under the others, which then "saw no reply" for the rest of the run)
                    report.crashes.append(f"run {run}: {type(exc).__name__}: {exc}"[:300])
                    report.fuzzed_replies += len(proxy.take_applied())
                    tidy(report, device, proxy)
                    continue
                applied = proxy.take_applied()
                tidy(report, device, proxy)
                report.runs += 1
                report.fuzzed_replies += len(applied)
                report.statuses[obs.status.value] += 1
                report.mutations.update(m.name for m in applied)
                if obs.reason and obs.reason.startswith("probe failure:"):
                    report.probe_bugs[obs.reason[:160]] += 1
                judge(report, clean[_variant(spec, run), fronts[0].port if len(fronts) == 1
                                    else proxy.port], obs, applied, run)
                done = report.fuzzed_replies / replies if max_runs is None \
                    else report.runs / max_runs
                tenth = min(10, int(done * 10))
                while len(report.rss_tenths_mib) < tenth:
                    report.rss_tenths_mib.append(rss_mib())
                    if tracemalloc.is_tracing():
                        snapshots.append(tracemalloc.take_snapshot())
                if not early_mark and done >= 0.1:
                    early_mark = True
                    report.rss_early_mib = rss_mib()
                if progress and report.runs % 500 == 0:
                    progress(f"{protocol}: {report.runs} runs, {report.fuzzed_replies} "
                             f"fuzzed replies, {time.monotonic() - started:.0f} s, "
                             f"RSS {rss_mib():.0f} MiB")

        await asyncio.gather(*(worker(p) for p in proxies))
        report.open_at_end = await settled_connections(device)
        report.replies = sum(p.stats.replies for p in proxies)
        if len(snapshots) >= 2:
            report.growth = growth(snapshots[0], snapshots[-1])
    report.volatile = sorted(set(report.volatile))
    report.seconds = time.monotonic() - started
    return report


def cancelled_from_outside() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def settled_connections(device: Any, grace: float = LEAK_GRACE) -> int:
    """The simulator's connections still open once every run has ended, after up to
    ``grace`` seconds for closes in flight: each one is a leak (a device that keeps a dead
    connection forever runs out of them; asyncua refuses every client at 1,000)."""
    until = time.monotonic() + grace
    while device.log.open_connections and time.monotonic() < until:
        await asyncio.sleep(0.05)
    return device.log.open_connections


def tidy(report: Report, device: Any, proxy: Any) -> None:
    """Between two runs of a worker: keep the kinds of request the simulator logged (the
    campaign's proof that it only read) and empty its log; forget finished runs' UDP
    client ports (simulator peers, proxy upstream sockets). Without this the campaign's
    own bookkeeping grew ~20 KB per SNMP run (14 log records, 2 sockets, 2 peers)."""
    report.max_log_records = max(report.max_log_records, len(device.log.records))
    report.logged_requests += len(device.log.records)
    report.max_open_connections = max(report.max_open_connections,
                                       device.log.open_connections)
    report.request_kinds |= device.log.kinds()
    device.log.clear()
    for forget in (getattr(device, "forget_peers", None),
                   getattr(proxy, "forget_clients", None)):
        if forget is not None:
            forget()


def growth(first: tracemalloc.Snapshot, last: tracemalloc.Snapshot, top: int = 12
           ) -> list[str]:
    """Where the traced memory grew between two snapshots (by source line)."""
    stats = last.compare_to(first, "lineno")
    return [f"{s.size_diff / 2**20:+.1f} MiB ({s.count_diff:+d} blocks) "
            f"{s.traceback[0].filename}:{s.traceback[0].lineno}" for s in stats[:top]]


def _variant(spec: Target, run: int) -> int:
    """Runs whose probe options are the same share clean facts: the SSH variants differ."""
    return run % 4 if spec.protocol == "ssh" and run % 4 == 3 else 0


def judge(report: Report, clean: dict[str, Any], obs: Observation, applied: list[Mutation],
          run: int) -> None:
    """Count the divergent facts of one run: invented (only breaking damage), altered, or
    — for a fact inferred from silence whose replies the proxy never touched — a load
    artefact."""
    divergent = [(p, v) for p, v in known(obs).items()
                 if p not in report.volatile and (p not in clean or clean[p] != v)]
    inferred = SILENCE_INFERRED.get(report.protocol, {})
    for path, value in divergent:
        entry = {"run": run, "path": path, "clean": clean.get(path, "<absent>"),
                 "fuzzed": value, "status": obs.status.value,
                 "mutations": [m.name for m in applied]}
        damage = applied
        if path in inferred:
            versions = inferred[path] or _differing_versions(clean.get(path), value)
            damage = touching(applied, versions)
            if not damage:
                report.load_artefacts.append(entry)
                continue
            entry["damaged_replies"] = [m.name for m in damage]
        if any(m.kind == "altering" for m in damage):
            report.altered += 1
        else:
            report.invented.append(entry)


def touching(applied: list[Mutation], versions: tuple[str, ...]) -> list[Mutation]:
    """The mutations that replaced an SNMP reply of one of ``versions``."""
    wire = {SNMP_WIRE_VERSION[v] for v in versions}
    return [m for m in applied if snmp_version(m.reply) in wire]


def _differing_versions(clean: Any, fuzzed: Any) -> tuple[str, ...]:
    if isinstance(clean, list) and isinstance(fuzzed, list):
        return tuple(sorted(set(clean) ^ set(fuzzed)))
    return tuple(SNMP_WIRE_VERSION)


def print_report(report: Report, peak: float) -> None:
    print(f"== {report.protocol}: {report.fuzzed_replies} fuzzed replies "
          f"(of {report.replies} relayed) in {report.runs} runs, {report.seconds:.0f} s")
    print(f"   crashes: {len(report.crashes)}   without status: {report.without_status}   "
          f"invented facts: {len(report.invented)}   altered facts: {report.altered}   "
          f"load artefacts: {len(report.load_artefacts)}")
    print(f"   statuses: {dict(report.statuses)}")
    print(f"   probe bugs (caught by the runner): {sum(report.probe_bugs.values())}")
    for reason, count in report.probe_bugs.most_common(5):
        print(f"     {count:5d}  {reason}")
    for crash in report.crashes[:5]:
        print(f"   crash: {crash}")
    seen: Counter[str] = Counter(f"{i['path']} after {'+'.join(sorted(set(i['mutations'])))}"
                                 for i in report.invented)
    for what, count in seen.most_common(10):
        print(f"   invented {count:4d}x {what}")
    load: Counter[str] = Counter(f"{i['path']} = {i['fuzzed']!r} (clean {i['clean']!r})"
                                 for i in report.load_artefacts)
    for what, count in load.most_common(10):
        print(f"   load artefact {count:4d}x {what} (no reply of that version was touched)")
    print(f"   simulator connections: at most {report.max_open_connections} open between "
          f"runs, {report.open_at_end} still open after the last run (leaked)")
    print(f"   requests the device saw: {', '.join(sorted(report.request_kinds))}")
    print("   RSS at each tenth (MiB): "
          + " ".join(f"{r:.0f}" for r in report.rss_tenths_mib))
    for line in report.growth:
        print(f"   traced growth from the first tenth to the last: {line}")
    print(f"   memory: RSS after the first tenth {report.rss_early_mib:.0f} MiB, "
          f"peak {peak:.0f} MiB")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--protocols", default="all")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, help="share of replies mutated (default: "
                        "each protocol's own); 0 with --runs: a clean baseline")
    parser.add_argument("--runs", type=int, help="stop after this many runs")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--verbose", action="store_true", help="show otaudit's error logs")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="trace allocations; print where memory grew between the first "
                             "and the last tenth (slow: for investigating, not for figures)")
    args = parser.parse_args(argv)
    limit_malloc_arenas()  # as the collector does: the probes' threads share two arenas
    if args.tracemalloc:
        tracemalloc.start()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.CRITICAL)  # libraries log every damaged frame
    if args.verbose:
        logging.getLogger("otaudit").setLevel(logging.ERROR)
    else:  # asyncua's loggers (levels set by the OPC UA simulator) log damage as CRITICAL
        logging.disable(logging.CRITICAL)
    chosen = PROTOCOLS if args.protocols == "all" else tuple(args.protocols.split(","))
    os.environ.setdefault(COMMUNITY_VAR, "public")
    os.environ.setdefault(PASSWORD_VAR, "otaudit-demo")
    results = []
    with tempfile.TemporaryDirectory(prefix="otaudit-fuzz-") as tmp:
        for protocol in chosen:
            report = await campaign(protocol, args.replies, args.seed, args.workers, Path(tmp),
                                    progress=lambda line: print("  ...", line, flush=True),
                                    rate=args.rate, max_runs=args.runs)
            print_report(report, peak_rss_mib())
            results.append(report.as_dict())
    failed = sum(len(r["crashes"]) + r["without_status"] + len(r["invented"])
                 + r["open_at_end"] for r in results)
    if args.rate == 0:  # a clean baseline: every run ok, every fact equal to the clean one
        failed += sum(sum(n for s, n in r["statuses"].items() if s != "ok") + r["altered"]
                      + sum(r["probe_bugs"].values()) for r in results)
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "replies": args.replies,
                                         "peak_rss_mib": round(peak_rss_mib(), 1),
                                         "protocols": results}, indent=2, default=str))
    print(f"peak RSS of the campaign: {peak_rss_mib():.0f} MiB; "
          f"{'FAILED' if failed else 'passed'} (crashes + runs without status + invented "
          f"facts + leaked connections = {failed})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
