"""``otaudit sim ssh --record``: each bundled device recorded and replayed gives the same facts."""

from __future__ import annotations

import pytest
from ssh_helpers import PASSWORD, PASSWORD_VAR, PERSONALITY, credentials, probe, simulator

from otaudit.observation import AssetKind, AssetRef
from otaudit.probes.base import ProbeContext, ProbeTarget
from otaudit.probes.ssh.probe import SshOptions
from otaudit.probes.ssh.record import REPLAY_PASSWORD, record

# A recording cannot carry the device's private host key: the replay presents its own.
NOT_REPLAYABLE = {"ssh.host_key_fingerprint"}


def values(obs) -> dict:
    """Facts a recording must reproduce; a site community's name hash is not one of them
    (the community is a secret: the recording has it removed, well-known ones stay)."""
    out = {k: v.value for k, v in obs.facts.items() if k not in NOT_REPLAYABLE}
    if "snmp.communities" in out:
        out["snmp.communities"] = [{k: v for k, v in c.items()
                                    if k != "name_hash" or c["default"]}
                                   for c in out["snmp.communities"]]
    return out


@pytest.mark.parametrize("name", sorted(PERSONALITY))
async def test_recording_replays_to_identical_facts(name, tmp_path, monkeypatch):
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)
    creds = credentials(name, allow_legacy=name == "legacy-ie3000")
    out = tmp_path / name
    async with simulator(name) as device:
        original = await probe(device.port, tmp_path / "kh1", **creds)
        target = ProbeTarget(asset=AssetRef(id="d", kind=AssetKind.HMI, zone="z"),
                             host="127.0.0.1", port=device.port,
                             options=SshOptions(known_hosts=tmp_path / "kh2",
                                                **creds))
        assert await record(target, ProbeContext(timeout=5.0), out) == [out]
        kinds = {r.kind for r in device.log.records}
    assert "shell" not in kinds
    monkeypatch.setenv(PASSWORD_VAR, REPLAY_PASSWORD)
    async with simulator(out) as replay:
        replayed = await probe(replay.port, tmp_path / "kh3", **creds)
    assert replayed.status is original.status, replayed.reason
    assert values(replayed) == values(original)
    assert replayed.unknown == original.unknown
    recorded = "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    for secret in ("Pl4nt-M0n1t0r", "Filler2010", "telnet123", "maint123"):
        assert secret not in recorded
    assert PASSWORD not in "".join(p.read_text(errors="replace") for p in out.rglob("*")
                                   if p.is_file())


def test_cli_record(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    from ssh_helpers import KEY_DIR_ENV  # noqa: F401 - simulated host keys stay in a temp dir

    from otaudit.simulators.ssh.profile import load_profile

    from tests_helpers import free_tcp_port, wait_for_line

    port = free_tcp_port()
    env = {**os.environ, PASSWORD_VAR: PASSWORD}
    sim = subprocess.Popen([sys.executable, "-m", "otaudit.cli.main", "sim", "ssh", "--profile",
                            "switch-ios", "--port", str(port)], stderr=subprocess.PIPE,
                           text=True, env=env)
    try:
        wait_for_line(sim, "listening")
        out = tmp_path / "sw"
        done = subprocess.run(
            [sys.executable, "-m", "otaudit.cli.main", "sim", "ssh", "--record", "127.0.0.1",
             "--port", str(port), "--out", str(out), "--user", "auditor", "--password-env",
             PASSWORD_VAR, "--personality", "cisco_ios", "--known-hosts",
             str(tmp_path / "kh")], capture_output=True, text=True, timeout=120, env=env)
    finally:
        sim.terminate()
        sim.wait(10)
    assert done.returncode == 0, done.stderr
    profile = load_profile(out)
    assert set(profile.commands) == {"show version", "show running-config"}
    assert profile.users["auditor"].password == REPLAY_PASSWORD
