"""One Windows station read over SSH and over WinRM: wall time per probe run (median of N),
WS-Man/SSH requests per run, at the collector's default pacing.

    .venv/bin/python bench/winrm.py [--runs 7] [--profile windows-weak] [--min-interval 0.05]

Both transports read the same simulated host (the SSH simulator's Windows profile, and the
WinRM responder answering from it) on loopback; the figure is what the transport costs
per station (WinRM: an unauthenticated POST, Create, then Command/Receive/Signal per
command, Delete, each paced; SSH: banner, auth listing, login, one exec per command).
Prints a table; appends nothing (paste the output into RESULTS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from otaudit.observation import AssetKind, AssetRef
from otaudit.probes.base import ProbeTarget
from otaudit.probes.runner import run_probe
from otaudit.probes.ssh.probe import SshOptions, SshProbe
from otaudit.probes.winrm.probe import WinrmOptions, WinrmProbe
from otaudit.simulators import bundled_profile
from otaudit.simulators.ssh.device import from_profile as ssh_device
from otaudit.simulators.winrm.device import from_profile as winrm_device

VAR = "OTAUDIT_BENCH_WINRM_PASSWORD"
ASSET = AssetRef(id="hmi", kind=AssetKind.HMI, zone="control")


async def _ssh(profile: str, runs: int, interval: float, kh: Path) -> tuple[list[float], int]:
    device = ssh_device(bundled_profile("ssh", profile), fresh_keys=True)
    times = []
    async with device:
        for _ in range(runs):
            target = ProbeTarget(ASSET, device.host, device.port, SshOptions(
                user="auditor", password={"env": VAR}, personality="windows", known_hosts=kh))
            started = time.perf_counter()
            obs = await run_probe(SshProbe(), target, collector_id="b", site="b", deadline=60,
                                  min_interval=interval)
            times.append(time.perf_counter() - started)
            assert obs.status.value == "ok", obs.reason
        requests = len(device.log.records) // runs
    return times, requests


async def _winrm(profile: str, runs: int, interval: float, auth: str
                 ) -> tuple[list[float], int]:
    device = winrm_device(bundled_profile("winrm", profile))
    times = []
    async with device:
        for _ in range(runs):
            target = ProbeTarget(ASSET, device.host, device.port, WinrmOptions(
                user="auditor", password={"env": VAR}, auth=auth,
                cert_sha256=device.cert_sha256))
            started = time.perf_counter()
            obs = await run_probe(WinrmProbe(), target, collector_id="b", site="b",
                                  deadline=60, min_interval=interval)
            times.append(time.perf_counter() - started)
            assert obs.status.value == "ok", obs.reason
        requests = len([r for r in device.log.records if r.kind != "auth"]) // runs + 1
    return times, requests


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--profile", default="windows-weak")
    parser.add_argument("--min-interval", type=float, default=0.05)
    args = parser.parse_args()
    os.environ[VAR] = "otaudit-demo"
    print(f"load average {os.getloadavg()[0]:.2f}; {args.runs} runs each; profile "
          f"{args.profile}; min interval {args.min_interval * 1000:.0f} ms")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("ssh (password)",
                     *await _ssh(args.profile, args.runs, args.min_interval,
                                 Path(tmp) / "kh")))
    for auth in ("basic", "ntlm"):
        rows.append((f"winrm https ({auth})",
                     *await _winrm(args.profile, args.runs, args.min_interval, auth)))
    base = statistics.median(rows[0][1])
    print("| transport | median s | min s | max s | requests/run | ratio to ssh |")
    print("|---|---|---|---|---|---|")
    for name, times, requests in rows:
        median = statistics.median(times)
        print(f"| {name} | {median:.2f} | {min(times):.2f} | {max(times):.2f} | {requests} | "
              f"{median / base:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
