"""otaudit vs nmap's NSE scripts over the same simulated devices, in the same run.

One plant (``otaudit.simulators.fleet``, standard ports), then:

1. ``otaudit collector run --once`` over its inventory, publishing to a private
   Mosquitto; the benchmark reads the observations back from a persistent session it
   created beforehand. Facts = recorded facts (``unknown`` ones are not counted).
2. nmap with ``modbus-discover``, ``s7-info``, ``snmp-sysdescr`` and ``ssh2-enum-algos``:
   one nmap per protocol, the four in parallel, each given exactly the hosts of its
   protocol (what the inventory tells otaudit). Facts = non-empty named output fields
   per host (see ``count_nmap_facts``).

    sudo .venv/bin/python bench/nmap.py                # N = 1000 (root: ports 502/102/161/22)
    .venv/bin/python bench/nmap.py --devices 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

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
from otaudit.simulators.fleet.layout import SILENT, STANDARD_PORTS

SCRIPTS = {"modbus": "modbus-discover", "s7": "s7-info", "snmp": "snmp-sysdescr",
           "ssh": "ssh2-enum-algos", "enip": "enip-info"}  # nmap 7.93 has no OPC UA script
NMAP_FLAGS = ["-n", "-Pn", "-T4", "--max-retries", "1", "--min-hostgroup", "1024",
              "--max-hostgroup", "4096"]
GOAL_SPEEDUP, GOAL_FACTS = 2.0, 3.0
SESSION_ID = "otaudit-bench-nmap-sink"


@dataclass
class ToolRun:
    tool: str
    seconds: float
    facts: Counter[str] = field(default_factory=Counter)  # per protocol
    hosts_with_facts: Counter[str] = field(default_factory=Counter)
    peak_mib: float = 0.0
    cpu_seconds: float = 0.0
    plant_cpu_seconds: float = 0.0  # the simulators' CPU while this tool ran
    seconds_by_protocol: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.facts.values())


# -- nmap ---------------------------------------------------------------------------------
def count_fields(node: ET.Element) -> int:
    """Non-empty named fields under a structured NSE output node: a keyed ``elem`` is one
    field, a keyed ``table`` of unkeyed values (a list) is one field, a keyed table of
    keyed children is counted by its children."""
    total = 0
    for child in node:
        if child.tag == "elem":
            total += 1 if (child.text or "").strip() else 0
        elif child.tag == "table":
            if any(c.get("key") for c in child):
                total += count_fields(child)
            elif len(child) and any((c.text or "").strip() for c in child.iter("elem")):
                total += 1
    return total


def count_nmap_facts(script: ET.Element) -> int:
    """Facts in one script result: its structured fields, or else its non-empty output
    lines (``snmp-sysdescr`` prints plain text: description and uptime)."""
    output = script.get("output", "")
    if "ERROR" in output or "failed" in output.lower():
        return 0
    if len(script):
        return count_fields(script)
    return sum(1 for line in output.splitlines() if line.strip())


def parse_nmap_xml(path: Path) -> dict[str, int]:
    """host address -> facts found by the scripts on it."""
    facts: dict[str, int] = {}
    root = ET.parse(path).getroot()
    for host in root.iter("host"):
        address = host.find("address")
        if address is None:
            continue
        found = sum(count_nmap_facts(s) for s in host.iter("script"))
        facts[address.get("addr", "?")] = found
    return facts


def run_nmap(hosts_by_protocol: dict[str, list[str]], work: Path, timeout: float
             ) -> tuple[ToolRun, list[str]]:
    nmap = shutil.which("nmap")
    if nmap is None:
        raise SystemExit("nmap is not installed (apt-get install nmap)")
    procs, commands = {}, []
    started = time.monotonic()
    for protocol, hosts in hosts_by_protocol.items():
        if not hosts:
            continue
        (work / f"{protocol}.hosts").write_text("\n".join(hosts) + "\n")
        scan = "-sU" if protocol == "snmp" else "-sS"
        args = [nmap, *NMAP_FLAGS, scan, "-p", str(STANDARD_PORTS[protocol]), "--script",
                SCRIPTS[protocol], "--script-timeout", f"{timeout:g}s", "-oX",
                str(work / f"{protocol}.xml"), "-iL", str(work / f"{protocol}.hosts")]
        commands.append(" ".join(["nmap", *args[1:]]).replace(f"{work}/", ""))
        procs[protocol] = Child(args, stdout=work / f"{protocol}.out",
                                stderr=work / f"{protocol}.err")
    done: dict[str, Finished] = {p: c.wait(3600) for p, c in procs.items()}
    run = ToolRun("nmap", time.monotonic() - started)
    run.seconds_by_protocol = {p: f.seconds for p, f in done.items()}
    run.peak_mib = max(f.max_rss_mib for f in done.values())
    run.cpu_seconds = sum(f.cpu_seconds for f in done.values())
    for protocol in procs:
        for _host, found in parse_nmap_xml(work / f"{protocol}.xml").items():
            run.facts[protocol] += found
            run.hosts_with_facts[protocol] += 1 if found else 0
    return run, commands


# -- otaudit ------------------------------------------------------------------------------
async def open_sink(settings: Settings, broker: str) -> None:
    import aiomqtt

    from otaudit.mqtt import client_kwargs, observation_filter, persistent_session_kwargs

    async with aiomqtt.Client(identifier=SESSION_ID, **client_kwargs(settings, broker),
                              **persistent_session_kwargs(settings)) as client:
        await client.subscribe(observation_filter(settings.topic_prefix), qos=1)


async def drain_sink(settings: Settings, broker: str, expected: int, timeout: float
                     ) -> list[dict]:
    import aiomqtt

    from otaudit.mqtt import client_kwargs, persistent_session_kwargs

    received: list[dict] = []
    async with aiomqtt.Client(identifier=SESSION_ID, **client_kwargs(settings, broker),
                              **persistent_session_kwargs(settings)) as client:
        async with asyncio.timeout(timeout):
            async for message in client.messages:
                received.append(json.loads(bytes(message.payload)))
                if len(received) >= expected:
                    break
    return received


def run_otaudit(inventory: Path, env: dict[str, str], broker: str, work: Path,
                devices: int, timeout: float) -> ToolRun:
    settings = Settings()
    asyncio.run(open_sink(settings, broker))
    # no server here (a sink reads the broker): the outbox ends at the broker's PUBACK
    collector = Child([OTAUDIT, "collector", "run", "--inventory", str(inventory), "--once",
                       "--broker", broker, "--no-progress"],
                      env={**env, "OTAUDIT_RECEIPTS": "false"},
                      stdout=work / "collector.out", stderr=work / "collector.log")
    finished = collector.wait(timeout)
    if finished.returncode != 0:
        raise SystemExit(f"collector failed; see {work / 'collector.log'}")
    observations = asyncio.run(drain_sink(settings, broker, devices, 60))
    run = ToolRun("otaudit", finished.seconds, peak_mib=finished.max_rss_mib,
                  cpu_seconds=finished.cpu_seconds)
    for obs in observations:
        found = len(obs.get("facts") or {})
        run.facts[obs["probe"]] += found
        run.hosts_with_facts[obs["probe"]] += 1 if found else 0
    return run


def per_cpu(run: ToolRun) -> float:
    """Facts per CPU-second of the tool's own processes (not the plant's)."""
    return run.total / max(run.cpu_seconds, 1e-9)


def floors(ours: ToolRun, theirs: ToolRun, timeout: float, silent: bool) -> str:
    """What bounds each tool's wall time on this machine (see bench/README.md)."""
    cores = os.cpu_count() or 1
    target = theirs.seconds / GOAL_SPEEDUP
    cpu_floor = (ours.cpu_seconds + ours.plant_cpu_seconds) / cores
    lines = [
        "- nmap per protocol (wall s): " + ", ".join(
            f"{p} {s:.1f}" for p, s in theirs.seconds_by_protocol.items()),
        f"- the {GOAL_SPEEDUP:g}× goal means otaudit in <= {target:.1f} s; the CPU that "
        f"otaudit's audit used (collector {ours.cpu_seconds:.1f} s + simulated plant answering "
        f"it {ours.plant_cpu_seconds:.1f} s) needs >= {cpu_floor:.1f} s on {cores} cores, "
        f"the plant's share alone {ours.plant_cpu_seconds / cores:.1f} s"]
    if silent:
        lines.append(f"- devices that accept and never answer cost each tool its {timeout:g} s "
                     "deadline: neither can finish sooner")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--probe-timeout", type=float, default=10.0,
                        help="otaudit probe deadline = nmap --script-timeout (seconds)")
    parser.add_argument("--retries", type=int, default=0,
                        help="otaudit retries of unanswered devices (nmap scripts run once)")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--no-faults", action="store_true",
                        help="leave out the offline/silent/slow/garbage devices")
    parser.add_argument("--no-results", action="store_true")
    parser.add_argument("--results-key", default="nmap")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the plant needs ports 502/102/161/22 for nmap's "
                         "port rules, and nmap -sS/-sU need raw sockets")
    work = args.work or Path(tempfile.mkdtemp(prefix="otaudit-bench-nmap-"))
    work.mkdir(parents=True, exist_ok=True)
    layout = generate_layout(args.devices, args.seed, port_mode="standard",
                             faults=not args.no_faults)
    env = {**layout.env(), "OTAUDIT_SSH_KNOWN_HOSTS": str(work / "known_hosts"),
           "OTAUDIT_CONCURRENCY": str(args.concurrency),
           "OTAUDIT_PROBE_TIMEOUT": str(args.probe_timeout), "OTAUDIT_RETRIES": str(args.retries),
           "OTAUDIT_COLLECTOR_ID": "bench-nmap", "OTAUDIT_STATE_DIR": str(work / "state")}
    shutil.rmtree(work / "state", ignore_errors=True)
    (work / "known_hosts").unlink(missing_ok=True)
    with ExitStack() as stack:
        broker = stack.enter_context(private_mosquitto(work / "broker"))
        print(f"starting {args.devices} devices ...", flush=True)
        fleet = stack.enter_context(Fleet(layout, work / "plant"))
        inventory = fleet.write_outputs()["inventory"]
        hosts: dict[str, list[str]] = {p: [] for p in SCRIPTS}
        for device in layout.devices:
            if device.protocol in hosts:
                hosts[device.protocol].append(device.host)
        print("otaudit collector run --once ...", flush=True)
        before = cpu_seconds(fleet.pids)
        ours = run_otaudit(inventory, env, broker, work, len(layout.devices), 1800)
        ours.plant_cpu_seconds = cpu_seconds(fleet.pids) - before
        print("nmap ...", flush=True)
        before = cpu_seconds(fleet.pids)
        theirs, commands = run_nmap(hosts, work, args.probe_timeout)
        theirs.plant_cpu_seconds = cpu_seconds(fleet.pids) - before
    rows = []
    for protocol in SCRIPTS:
        rows.append([protocol, len(hosts[protocol]), ours.hosts_with_facts[protocol],
                     ours.facts[protocol], theirs.hosts_with_facts[protocol],
                     theirs.facts[protocol],
                     f"{ours.facts[protocol] / max(theirs.facts[protocol], 1):.1f}"])
    rows.append(["all", len(layout.devices), sum(ours.hosts_with_facts.values()), ours.total,
                 sum(theirs.hosts_with_facts.values()), theirs.total,
                 f"{ours.total / max(theirs.total, 1):.1f}"])
    text = table(["protocol", "hosts", "otaudit hosts with facts", "otaudit facts",
                  "nmap hosts with facts", "nmap facts", "facts ratio"], rows)
    speed = theirs.seconds / ours.seconds
    silent = any(d.runs == SILENT for d in layout.devices)
    facts_rate = (ours.total / ours.seconds) / max(theirs.total / theirs.seconds, 1e-9)
    ratio = ours.total / max(theirs.total, 1)
    text += "\n\n" + table(
        ["tool", "wall s", "CPU s", "peak RSS MiB", "facts", "facts/s", "facts/CPU s",
         "plant CPU s"],
        [["otaudit collector --once", ours.seconds, ours.cpu_seconds, ours.peak_mib,
          ours.total, f"{ours.total / ours.seconds:.0f}", f"{per_cpu(ours):.0f}",
          ours.plant_cpu_seconds],
         ["nmap (4 in parallel)", theirs.seconds, theirs.cpu_seconds, theirs.peak_mib,
          theirs.total, f"{theirs.total / theirs.seconds:.0f}", f"{per_cpu(theirs):.0f}",
          theirs.plant_cpu_seconds]])
    text += (f"\n\n- otaudit is {speed:.2f}× as fast as nmap (goal >= {GOAL_SPEEDUP:g}×: "
             f"{'met' if speed >= GOAL_SPEEDUP else 'MISSED'}) and extracts {ratio:.1f}× the "
             f"facts (goal >= {GOAL_FACTS:g}×: {'met' if ratio >= GOAL_FACTS else 'MISSED'}); "
             f"facts per second {facts_rate:.1f}×\n"
             f"- facts per CPU-second of the tool itself: otaudit's collector "
             f"{per_cpu(ours):.0f}, nmap {per_cpu(theirs):.0f} (goal >= nmap's: "
             f"{'met' if per_cpu(ours) >= per_cpu(theirs) else 'MISSED'})\n"
             + floors(ours, theirs, args.probe_timeout, silent))
    print("\n" + text)
    if not args.no_results:
        extra = {"nmap": f"{tool_version('nmap')}; flags `{' '.join(NMAP_FLAGS)}`, "
                         f"`--script-timeout {args.probe_timeout:g}s`",
                 "otaudit": f"concurrency {args.concurrency}, probe timeout "
                            f"{args.probe_timeout:g} s, retries {args.retries}, min request "
                            f"interval {Settings().min_request_interval:g} s",
                 "nmap commands": "; ".join(f"`{c}`" for c in commands)}
        update_results(args.results_key, f"## otaudit vs nmap NSE scripts (bench/nmap.py, "
                       f"{'well-behaved devices only' if args.no_faults else 'whole plant'})\n\n"
                       + header(extra) + "\n\n" + text)
        print(f"\nwritten to {Path(__file__).parent / 'RESULTS.md'} (work folder {work})")


if __name__ == "__main__":
    main()
