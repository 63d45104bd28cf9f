"""A running plant: every device answers the real probes, addresses stay on 127.0.x.y,
SIGTERM (or a vanished launcher) ends every worker and releases the ports."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from otaudit.collector.targets import plan_inventory
from otaudit.inventory import Inventory
from otaudit.probes.runner import run_probe
from otaudit.simulators.fleet import Fleet, generate_layout
from otaudit.simulators.fleet.politeness import check_politeness

SUBNET = 201  # away from a plant started by hand or by a benchmark (127.0.1.x ...)
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
INTERVAL = 0.02


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    layout = generate_layout(20, seed=1, port_mode="any", subnet=SUBNET)
    running = Fleet(layout, tmp_path / "plant", workers=2).start()
    try:
        for name, value in running.env().items():  # credentials, known-hosts file
            monkeypatch.setenv(name, value)
        yield running
    finally:
        running.stop()


def expected_status(runs: str, variant: str) -> set[str]:
    if runs == "offline" or variant == "s7-1200-refusing":
        return {"refused"}
    if runs == "silent":
        return {"timeout"}
    if runs == "garbage" or variant in ("modbus-garbage", "modbus-drops", "modbus-gateway"):
        return {"error", "refused"}  # a malformed or missing answer, never "ok"
    return {"ok"}


async def test_every_device_answers_its_probe(fleet: Fleet) -> None:
    inventory = Inventory.model_validate(fleet.inventory())
    jobs = [job for plan in plan_inventory(inventory) for job in plan.jobs]
    started = time.monotonic()
    observations = await asyncio.gather(*(
        run_probe(probe, target, collector_id="fleet-test", site=inventory.site, deadline=6.0,
                  min_interval=INTERVAL) for probe, target in jobs))
    assert time.monotonic() - started < 15  # silent devices cost their deadline, no more
    by_id = {d.id: d for d in fleet.layout.devices}
    for obs in observations:
        device = by_id[obs.asset.id]
        assert obs.status.value in expected_status(device.runs, device.variant), (
            device.id, device.variant, obs.status, obs.reason)
        if obs.status.value == "ok":
            assert obs.facts, device.variant
    fleet.stop()
    report = check_politeness(fleet.log_dir, INTERVAL)
    reached = {d.device for d in report.contacted}
    assert reached == {d.id for d in fleet.layout.devices if d.runs != "offline"}
    assert not report.crowded, report.summary()
    assert all(d.max_concurrent == 1 for d in report.devices if d.protocol != "snmp")


def test_devices_listen_on_their_own_127_0_x_y_only(fleet: Fleet) -> None:
    expected = {(d.host, d.port) for d in fleet.layout.devices if d.runs != "offline"}
    bound = set()
    for pid in fleet.pids:
        for conn in psutil.Process(pid).net_connections("inet"):
            if conn.status in (psutil.CONN_LISTEN, psutil.CONN_NONE) and conn.laddr:
                bound.add((conn.laddr.ip, conn.laddr.port))
    assert expected <= bound
    for host, _port in bound:
        address = ipaddress.ip_address(host)
        assert address in LOOPBACK and not host.startswith("127.0.0."), host
    assert len({host for host, _ in expected}) == len(expected)  # one address per device


@pytest.mark.skipif(os.geteuid() != 0, reason="standard ports below 1024 need root")
def test_standard_ports_when_allowed(tmp_path: Path) -> None:
    layout = generate_layout(4, seed=1, port_mode="standard", faults=False, subnet=SUBNET + 1)
    with Fleet(layout, tmp_path / "std", workers=1) as running:
        assert {(d.protocol, d.port) for d in running.layout.devices} == {
            ("modbus", 502), ("s7", 102), ("snmp", 161), ("ssh", 22)}
        tcp = [d for d in running.layout.devices if d.transport == "tcp"]
        for device in tcp:
            with socket.create_connection((device.host, device.port), timeout=5):
                pass


def _start_cli(out: Path, subnet: int) -> tuple[subprocess.Popen[bytes], dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "otaudit.cli.main", "sim", "plant", "--devices", "12", "--seed",
         "4", "--ports", "any", "--subnet", str(subnet), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = out / "plant.json"
    deadline = time.monotonic() + 60
    while not state.exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "plant not ready within 60 s"
        time.sleep(0.1)
    return proc, json.loads(state.read_text())


def _gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                   for p in pids):
            return True
        time.sleep(0.1)
    return False


def _endpoints(state: dict) -> list[tuple[str, str, int]]:
    out = []
    for url in state["endpoints"].values():
        protocol, _, rest = url.partition("://")
        host, _, port = rest.rpartition(":")
        out.append((protocol, host, int(port)))
    return out


def test_sigterm_stops_every_worker_and_releases_the_ports(tmp_path: Path) -> None:
    out = tmp_path / "plant"
    proc, state = _start_cli(out, SUBNET + 2)
    assert len(state["workers"]) == 2 and all(psutil.pid_exists(p) for p in state["workers"])
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert _gone(state["workers"], 10)
    assert "politeness OK" in stdout.decode()
    assert "export PLANT_" in stdout.decode() and "inventory:" in stdout.decode()
    for protocol, host, port in _endpoints(state):
        assert host.startswith(f"127.0.{SUBNET + 2}.")
        kind = socket.SOCK_DGRAM if protocol == "snmp" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind((host, port))  # released: nothing listens there any more
    assert sorted(p.name for p in (out / "requests").iterdir()) == [
        "devices-w0.jsonl", "devices-w1.jsonl", "requests-w0.jsonl", "requests-w1.jsonl"]


def test_workers_end_when_the_launcher_is_killed(tmp_path: Path) -> None:
    proc, state = _start_cli(tmp_path / "plant", SUBNET + 3)
    proc.kill()  # no chance to clean up: the workers see their stdin close
    proc.wait(10)
    assert _gone(state["workers"], 20)
