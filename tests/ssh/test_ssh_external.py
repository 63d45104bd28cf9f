"""Fidelity against clients nobody here wrote: OpenSSH's ssh and nmap's SSH scripts.

nmap's ssh2-enum-algos / ssh-auth-methods have the port rule ``shortport.ssh`` (port 22 or a
service detected as ssh), so on the simulator's free port they run only when forced with
``--script +name`` (or with ``-sV``; ``+`` is faster and needs no version probes).
"""

from __future__ import annotations

import asyncio
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import asyncssh
import pytest
from ssh_helpers import PASSWORD, PASSWORD_VAR, copy_profile, credentials, probe, simulator

from otaudit.observation import ProbeStatus

from tests_helpers import require_tool

pytestmark = pytest.mark.external_tool
SSH_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "ConnectTimeout=5", "-F", "/dev/null"]
QUIET = ["-o", "LogLevel=ERROR"]


async def run_tool(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode(), err.decode()


def askpass(tmp_path: Path) -> dict[str, str]:
    """Environment that makes OpenSSH read the password from a helper (no sshpass needed)."""
    helper = tmp_path / "askpass.sh"
    helper.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
    helper.chmod(0o700)
    return {**os.environ, "SSH_ASKPASS": str(helper), "SSH_ASKPASS_REQUIRE": "force"}


async def test_openssh_logs_in_with_password_and_key(tmp_path: Path) -> None:
    ssh = require_tool("ssh")
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(tmp_path / "id")
    (tmp_path / "id").chmod(0o600)

    def add_key(spec: dict) -> None:
        spec["users"][0]["authorized_keys"] = [key.export_public_key().decode().strip()]

    folder = copy_profile("hmi-weak", tmp_path, add_key)
    async with simulator(folder) as device:
        rc, out, err = await run_tool(
            ssh, "-p", str(device.port), *SSH_OPTIONS, *QUIET,
            "-o", "PreferredAuthentications=password",
            "-o", "NumberOfPasswordPrompts=1", "auditor@127.0.0.1", "uname -a",
            env=askpass(tmp_path))
        assert (rc, err) == (0, ""), err
        assert out.startswith("Linux hmi-line1 6.1.0-18-amd64 ")
        rc, out, err = await run_tool(
            ssh, "-p", str(device.port), *SSH_OPTIONS, *QUIET, "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes", "-i", str(tmp_path / "id"), "auditor@127.0.0.1",
            "cat /etc/os-release")
        assert rc == 0, err
        assert 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"' in out
        rc, _, err = await run_tool(
            ssh, "-p", str(device.port), *SSH_OPTIONS, *QUIET, "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes", "-i", str(tmp_path / "id"), "auditor@127.0.0.1",
            "systemctl reboot")
        assert (rc, err) == (127, "bash: systemctl: command not found\n")
    methods = [r.detail["method"] for r in device.log.records if r.kind == "auth" and
               r.detail["ok"]]
    # asyncssh asks validate_public_key for the key query and again for the signature
    assert list(dict.fromkeys(methods)) == ["password", "publickey"]


async def test_openssh_needs_legacy_options_for_the_legacy_device(tmp_path: Path) -> None:
    ssh = require_tool("ssh")
    async with simulator("legacy-ie3000") as device:
        base = [ssh, "-p", str(device.port), *SSH_OPTIONS, "-o", "NumberOfPasswordPrompts=1",
                "-o", "PreferredAuthentications=password,keyboard-interactive"]
        rc, _, err = await run_tool(*base, "auditor@127.0.0.1", "show version",
                                    env=askpass(tmp_path))
        assert rc == 255 and "no matching key exchange method found" in err
        rc, out, err = await run_tool(
            *base, "-o", "KexAlgorithms=+diffie-hellman-group14-sha1",
            "-o", "HostKeyAlgorithms=+ssh-rsa", "-o", "Ciphers=+aes128-cbc",
            "auditor@127.0.0.1", "show version", env=askpass(tmp_path))
        assert rc == 0, err
        assert "Version 12.2(55)SE" in out


def nmap_ssh(xml_text: str) -> tuple[dict[str, list[str]], list[str]]:
    root = ET.fromstring(xml_text)
    algos: dict[str, list[str]] = {}
    methods: list[str] = []
    for script in root.iter("script"):
        tables = {t.get("key"): [e.text or "" for e in t.iter("elem")]
                  for t in script.iter("table")}
        if script.get("id") == "ssh2-enum-algos":
            algos = tables
        elif script.get("id") == "ssh-auth-methods":
            methods = tables.get("Supported authentication methods", [])
    return algos, methods


async def nmap_and_probe(tmp_path: Path, profile: str):
    nmap = require_tool("nmap")
    async with simulator(profile) as device:
        rc, out, err = await run_tool(
            nmap, "-Pn", "-sT", "-n", "-p", str(device.port), "--script",
            "+ssh2-enum-algos,+ssh-auth-methods", "--script-args", "ssh.user=auditor",
            "-oX", "-", "127.0.0.1")
        assert rc == 0, err
        obs = await probe(device.port, tmp_path / "kh",
                          **credentials(profile, allow_legacy=True))
    assert obs.status is ProbeStatus.OK, obs.reason
    algos, methods = nmap_ssh(out)
    assert algos["kex_algorithms"] == obs.fact("ssh.kex_algorithms")
    assert algos["server_host_key_algorithms"] == obs.fact("ssh.host_key_algorithms")
    assert algos["encryption_algorithms"] == obs.fact("ssh.ciphers")
    assert algos["mac_algorithms"] == obs.fact("ssh.macs")
    return obs, methods


@pytest.mark.parametrize("profile", ["hmi-weak", "switch-ios", "legacy-ie3000"])
async def test_nmap_agrees_with_the_transport_audit(tmp_path: Path, profile: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)
    obs, methods = await nmap_and_probe(tmp_path, profile)
    assert methods == obs.fact("ssh.auth_methods")
    assert obs.fact("ssh.legacy_algorithms_used") is (profile == "legacy-ie3000")


async def test_nmap_lists_algorithms_of_an_etm_only_server(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """nmap's ssh-auth-methods uses libssh2 (1.10 on Debian 12), which has no *-etm MACs: it
    cannot finish the handshake with the hardened HMI, so only the algorithm lists compare."""
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)
    obs, methods = await nmap_and_probe(tmp_path, "hmi-hardened")
    assert methods == []
    assert obs.fact("ssh.auth_methods") == ["publickey", "password"]
