"""``otaudit sim ssh`` and ``otaudit probe ssh`` as separate processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ssh_helpers  # noqa: F401  (keeps simulated host keys out of $HOME)

from otaudit.probes.ssh.allowlist import ALLOWLIST

from tests_helpers import free_tcp_port, wait_for_line

OTAUDIT = Path(sys.executable).with_name("otaudit")
PASSWORD_VAR = "OTAUDIT_TEST_SSH_CLI_PASSWORD"


def env() -> dict[str, str]:
    return {**os.environ, PASSWORD_VAR: "otaudit-demo"}


@contextmanager
def cli_simulator(profile: str, log: Path) -> Iterator[int]:
    """Runs ``otaudit sim ssh``; on exit stops it (SIGTERM), which writes the log."""
    port = free_tcp_port()
    proc = subprocess.Popen([str(OTAUDIT), "sim", "ssh", "--profile", profile, "--port",
                             str(port), "--log", str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env())
    assert proc.stderr is not None
    try:
        wait_for_line(proc, f"ssh simulator listening on 127.0.0.1:{port}")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def probe_cli(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(OTAUDIT), "probe", "ssh", "127.0.0.1", "--port", str(port),
                           *args, "--json"], capture_output=True, text=True, timeout=60,
                          env=env())


def test_cli_probe_against_cli_simulator(tmp_path: Path) -> None:
    known, log = str(tmp_path / "kh"), tmp_path / "sim.jsonl"
    with cli_simulator("switch-ios", log) as port:
        anonymous = probe_cli(port, "--known-hosts", known)
        logged_in = probe_cli(port, "--user", "auditor", "--password-env", PASSWORD_VAR,
                              "--personality", "cisco_ios", "--known-hosts", known)
        no_personality = probe_cli(port, "--user", "auditor", "--password-env", PASSWORD_VAR)
    assert anonymous.returncode == 0, anonymous.stderr
    assert json.loads(anonymous.stdout)["unknown"]["mgmt.telnet_enabled"] == (
        "no credentials configured")
    assert logged_in.returncode == 0, logged_in.stderr
    obs = json.loads(logged_in.stdout)
    assert obs["facts"]["identity.model"]["value"] == "IE-4000-8GT4G4E"
    assert obs["facts"]["ssh.host_key_changed"]["value"] is False
    assert "otaudit-demo" not in logged_in.stdout + logged_in.stderr
    assert no_personality.returncode == 2 and "personality" in no_personality.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    commands = [r["detail"]["command"] for r in records if r["kind"] in ("exec", "shell")]
    assert commands == ["show version", "show running-config"]
    assert set(commands) <= set(ALLOWLIST["cisco_ios"])
    assert "otaudit-demo" not in log.read_text()


def test_cli_legacy_device_without_allow_legacy_exits_1(tmp_path: Path) -> None:
    with cli_simulator("legacy-ie3000", tmp_path / "sim.jsonl") as port:
        refused = probe_cli(port, "--user", "auditor", "--password-env", PASSWORD_VAR,
                            "--personality", "cisco_ios", "--known-hosts", str(tmp_path / "kh"))
        allowed = probe_cli(port, "--user", "auditor", "--password-env", PASSWORD_VAR,
                            "--personality", "cisco_ios", "--allow-legacy",
                            "--known-hosts", str(tmp_path / "kh"))
    assert refused.returncode == 1  # ExitCode.FOUND: the device was not fully read
    assert "allow_legacy is off" in json.loads(refused.stdout)["reason"]
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["facts"]["ssh.legacy_algorithms_used"]["value"] is True
