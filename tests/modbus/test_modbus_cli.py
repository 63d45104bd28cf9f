"""``otaudit sim modbus`` and ``otaudit probe modbus`` as separate processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests_helpers import free_tcp_port

OTAUDIT = Path(sys.executable).with_name("otaudit")


def port_open(port: int) -> bool:
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class SimProcess:
    port: int
    log: Path
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: the simulator writes its request log and exits
            self.proc.wait(10)
        if self.proc.stderr:
            self.proc.stderr.close()


@pytest.fixture
def sim_process(tmp_path: Path) -> Iterator[SimProcess]:
    """``otaudit sim modbus --profile schneider-m221`` on a free port, with its log file."""
    port, log = free_tcp_port(), tmp_path / "requests.jsonl"
    proc = subprocess.Popen([str(OTAUDIT), "sim", "modbus", "--profile", "schneider-m221",
                             "--port", str(port), "--log", str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while not port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"simulator did not start: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        time.sleep(0.05)
    sim = SimProcess(port, log, proc)
    yield sim
    sim.stop()


def otaudit_probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(OTAUDIT), "probe", "modbus", "127.0.0.1", *args, "--json"],
                          capture_output=True, text=True, timeout=30)


def test_cli_probe_reads_a_simulator_run_by_the_cli(sim_process: SimProcess) -> None:
    port = sim_process.port
    done = otaudit_probe("--port", str(port), "--unit", "1")
    assert done.returncode == 0, done.stderr
    obs = json.loads(done.stdout)
    assert obs["status"] == "ok" and obs["probe"] == "modbus"
    assert obs["endpoint"] == f"127.0.0.1:{port}"
    assert obs["facts"]["identity.vendor"]["value"] == "Schneider Electric"
    assert obs["facts"]["identity.order_code"]["value"] == "TM221CE24R"
    assert obs["facts"]["identity.firmware_version"]["value"] == "1.10.2.2"
    assert obs["facts"]["modbus.device_id_objects"]["value"]["0x06"] == "CONVEYOR_2"

    bad_unit = otaudit_probe("--port", str(port), "--unit", "9")  # not configured → 0B
    assert bad_unit.returncode == 1  # ExitCode.FOUND: not fully read
    assert "exception 0B" in json.loads(bad_unit.stdout)["reason"]


def test_sim_log_file_lists_only_reads(sim_process: SimProcess) -> None:
    assert otaudit_probe("--port", str(sim_process.port)).returncode == 0
    sim_process.stop()
    assert sim_process.proc.returncode == 0
    records = [json.loads(line) for line in sim_process.log.read_text().splitlines()]
    assert records and {r["kind"] for r in records} == {"fc43/14"}
    assert len({r["connection"] for r in records}) == 1  # (the readiness check was another)


def test_cli_probe_of_a_closed_port_is_refused() -> None:
    done = otaudit_probe("--port", str(free_tcp_port()))
    assert done.returncode == 1  # ExitCode.FOUND: not fully read
    assert json.loads(done.stdout)["status"] == "refused"
