"""Probe behaviour: no credentials, bad credentials, host keys, bad servers, bounded output."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import asyncssh
import pytest
from ssh_helpers import (
    PASSWORD,
    PASSWORD_VAR,
    copy_profile,
    credentials,
    only_allowlisted,
    probe,
    raw_server,
    simulator,
)

from otaudit.observation import ProbeStatus
from otaudit.probes.base import ForbiddenOperation
from otaudit.probes.ssh.algorithms import MODERN
from otaudit.probes.ssh.allowlist import ALLOWLIST
from otaudit.probes.ssh.client import MAX_OUTPUT, open_session
from otaudit.probes.ssh.facts import LOGIN_FACTS, TRANSPORT
from otaudit.probes.ssh.known_hosts import KnownHosts
from otaudit.probes.ssh.probe import SshOptions

from tests_helpers import free_tcp_port


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)


def auth_records(device) -> list:
    return [r for r in device.log.records if r.kind == "auth"]


async def test_without_credentials_only_the_transport_is_audited(tmp_path: Path) -> None:
    async with simulator("hmi-weak") as device:
        obs = await probe(device.port, tmp_path / "kh")
    assert obs.status is ProbeStatus.OK
    assert set(TRANSPORT) - {"ssh.legacy_algorithms_used"} <= set(obs.facts)
    assert obs.fact("ssh.auth_methods") == ["publickey", "password"]
    assert all(obs.unknown[p] == "no credentials configured" for p in LOGIN_FACTS)
    assert auth_records(device) == [] and not [r for r in device.log.records if r.kind == "exec"]
    assert [r.detail["username"] for r in device.log.records if r.kind == "auth_begin"] == [
        "otaudit"]
    pinned = (tmp_path / "kh").read_text().split()
    assert pinned[:2] == [f"[127.0.0.1]:{device.port}", "ssh-ed25519"]
    # every fact names evidence that exists
    ids = {e.id for e in obs.evidence}
    assert all(f.evidence and set(f.evidence) <= ids for f in obs.facts.values())


async def test_wrong_password_is_auth_failed_and_never_leaks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "Wr0ng-Secret-4711"
    monkeypatch.setenv(PASSWORD_VAR, wrong)
    caplog.set_level(logging.DEBUG)
    async with simulator("hmi-weak") as device:
        obs = await probe(device.port, tmp_path / "kh", **credentials("hmi-weak"))
    assert obs.status is ProbeStatus.AUTH_FAILED
    assert obs.reason == "login as 'auditor': authentication failed"
    assert [(r.detail["username"], r.detail["ok"]) for r in auth_records(device)] == [
        ("auditor", False)]
    assert obs.fact("ssh.host_key_changed") is False  # the key was checked before the login
    assert wrong not in obs.model_dump_json()
    assert wrong not in caplog.text
    assert all(wrong not in str(r.detail) for r in device.log.records)


async def test_right_password_never_leaks(tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with simulator("switch-ios") as device:
        obs = await probe(device.port, tmp_path / "kh", **credentials("switch-ios"))
    assert obs.status is ProbeStatus.OK
    assert PASSWORD not in obs.model_dump_json() and PASSWORD not in caplog.text
    assert all(PASSWORD not in str(r.detail) for r in device.log.records)


async def test_host_key_pinned_kept_and_changed(tmp_path: Path) -> None:
    store = tmp_path / "kh"
    async with simulator("hmi-hardened") as device:
        first = await probe(device.port, store, **credentials("hmi-hardened"))
        port, fingerprint = device.port, device.fingerprints()["ssh-ed25519"]
        await device.stop()
        await device.start()  # same device object: same key after a restart
        assert device.port == port
        second = await probe(port, store, **credentials("hmi-hardened"))
    async with simulator("hmi-hardened", port=port, fresh_keys=True) as imposter:
        changed = await probe(port, store, **credentials("hmi-hardened"))
        anonymous = await probe(port, store)
    assert first.status is second.status is ProbeStatus.OK
    assert first.fact("ssh.host_key_fingerprint") == fingerprint
    assert second.fact("ssh.host_key_fingerprint") == fingerprint
    assert second.fact("ssh.host_key_changed") is False
    assert changed.status is ProbeStatus.ERROR
    assert changed.reason.startswith("host key changed: presented SHA256:")
    assert changed.fact("ssh.host_key_changed") is True
    assert changed.fact("ssh.host_key_fingerprint") == imposter.fingerprints()["ssh-ed25519"]
    assert changed.unknown["os.name"] == "host key changed; not logged in"
    assert auth_records(imposter) == []  # no credential was sent to the new key
    assert anonymous.status is ProbeStatus.ERROR and anonymous.fact("ssh.host_key_changed")
    assert len(store.read_text().splitlines()) == 1  # the pin is not replaced


async def test_key_authentication(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_ed25519"
    key.write_private_key(key_file)
    public = key.export_public_key().decode().strip()

    def allow_key(spec: dict) -> None:
        spec["users"] = [{"name": "auditor", "authorized_keys": [public]}]
        spec["auth_methods"] = ["publickey"]

    folder = copy_profile("hmi-hardened", tmp_path, allow_key)
    monkeypatch.setenv("OTAUDIT_TEST_SSH_KEY", key.export_private_key().decode())
    async with simulator(folder) as device:
        by_file = await probe(device.port, tmp_path / "kh", user="auditor", key=key_file,
                              personality="linux")
        by_ref = await probe(device.port, tmp_path / "kh", user="auditor",
                             key={"env": "OTAUDIT_TEST_SSH_KEY"}, personality="linux")
    assert by_file.status is by_ref.status is ProbeStatus.OK, (by_file.reason, by_ref.reason)
    assert by_file.fact("ssh.auth_methods") == ["publickey"]
    assert by_file.fact("ssh.password_auth_offered") is False
    assert by_ref.fact("os.kernel") == "6.1.0-28-amd64"
    assert [r.detail["method"] for r in auth_records(device)][-1] == "publickey"
    assert "PRIVATE KEY" not in by_ref.model_dump_json()


async def test_not_an_ssh_server(tmp_path: Path) -> None:
    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(5)  # keeps the connection open, like many web servers

    async with raw_server(http) as port:
        obs = await probe(port, tmp_path / "kh", deadline=3)
    assert obs.status is ProbeStatus.ERROR
    assert obs.reason == "not an SSH server: it sent 'HTTP/1.1 400 Bad Request\\r\\n'"
    assert not obs.facts


@pytest.mark.parametrize(("reply", "reason"), [
    (b"SSH-1.5-Cisco-1.25\r\n", "SSH protocol 1.5 only (no SSH-2)"),
    (b"SSH-2.0-x\r\n" + b"\xff" * 64, "malformed reply: implausible packet length 4294967295"),
    (b"SSH-2.0-x\r\n\x00\x00\x00\x1c\x04\x15" + bytes(26),
     "malformed reply: expected SSH_MSG_KEXINIT (20), got message 21"),
    (b"\x16\x03\x01\x00\xa5\x01\x00\n", "not an SSH server: it sent '\\x16\\x03\\x01\\x00"),
])
async def test_odd_ssh_servers(tmp_path: Path, reply: bytes, reason: str) -> None:
    async def odd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(reply)
        await writer.drain()
        await asyncio.sleep(5)

    async with raw_server(odd) as port:
        obs = await probe(port, tmp_path / "kh", deadline=3)
    assert obs.status is ProbeStatus.ERROR
    assert (obs.reason or "").startswith(reason), obs.reason


@pytest.mark.parametrize("greeting", [b"", b"SSH-2.0-OpenSSH_9.2p1\r\n"])
async def test_silent_server_times_out(tmp_path: Path, greeting: bytes) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        await asyncio.sleep(10)

    async with raw_server(silent) as port:
        obs = await probe(port, tmp_path / "kh", deadline=5, op_timeout=0.4)
    assert obs.status is ProbeStatus.TIMEOUT
    assert obs.reason == f"no SSH banner and KEXINIT from 127.0.0.1:{port} within 0.4 s"


async def test_closed_port_is_refused(tmp_path: Path) -> None:
    obs = await probe(free_tcp_port(), tmp_path / "kh")
    assert obs.status is ProbeStatus.REFUSED


async def test_huge_garbage_and_hanging_outputs_spoil_only_their_facts(tmp_path: Path) -> None:
    def break_outputs(spec: dict) -> None:
        spec["commands"]["dpkg-query -W"] = "outputs/huge"
        spec["commands"]["ss -tlnupH"] = "outputs/garbage"
        spec["commands"]["auditctl -l"] = {"hang": True}

    folder = copy_profile("hmi-hardened", tmp_path, break_outputs)
    (folder / "outputs" / "huge").write_bytes(b"pkg\t1.0\n" * (3 * MAX_OUTPUT // 8))
    (folder / "outputs" / "garbage").write_bytes(bytes(range(256)) * 8)
    async with simulator(folder) as device:
        obs = await probe(device.port, tmp_path / "kh", deadline=20, op_timeout=1.0,
                          **credentials("hmi-hardened"))
    assert obs.status is ProbeStatus.OK, obs.reason
    assert obs.unknown["software.packages"] == f"'dpkg-query -W' output exceeded {MAX_OUTPUT} bytes"
    assert obs.unknown["services.listening"].startswith("could not parse 'ss -tlnupH': ")
    assert obs.unknown["logging.audit_rules"] == "'auditctl -l' gave no complete answer within 1 s"
    assert obs.fact("pwpol.min_length") == 12 and obs.fact("services.enabled")
    huge = next(e for e in obs.evidence if "dpkg-query" in e.request)
    assert huge.truncated and len(huge.excerpt) <= 2048
    assert only_allowlisted(device, "linux")


async def test_connection_lost_mid_session(tmp_path: Path) -> None:
    def drop(spec: dict) -> None:
        spec["commands"]["sshd -T"] = {"disconnect": True}

    async with simulator(copy_profile("hmi-weak", tmp_path, drop)) as device:
        obs = await probe(device.port, tmp_path / "kh", **credentials("hmi-weak"))
    assert obs.status is ProbeStatus.ERROR
    total = len(ALLOWLIST["linux"])
    assert (obs.reason or "").startswith(f"connection lost after 2 of {total} commands")
    assert obs.fact("os.kernel") == "6.1.0-18-amd64"  # read before the drop
    assert obs.unknown["sshd.permit_root_login"] == "'sshd -T' was not run"


async def test_session_refuses_commands_outside_the_allowlist(tmp_path: Path) -> None:
    async with simulator("hmi-weak") as device:
        session, _, _ = await open_session(
            "127.0.0.1", device.port, username="auditor", password=PASSWORD, client_key=None,
            personality="linux", algs=MODERN, store=KnownHosts(tmp_path / "kh"), timeout=5)
        try:
            for command in ("rm -rf /", "uname -a; reboot", "cat /etc/shadow", "show version"):
                with pytest.raises(ForbiddenOperation):
                    await session.run(command)
            assert (await session.run("uname -a")).exit_status == 0
        finally:
            await session.close()
    assert [r.detail["command"] for r in device.log.records if r.kind == "exec"] == ["uname -a"]


def test_cli_options() -> None:
    opts = SshOptions.from_cli({"user": "auditor", "password-env": "PW", "personality": "linux",
                                "allow-legacy": True, "known-hosts": "/tmp/kh"})
    assert opts.password is not None and opts.password.env == "PW"
    assert (opts.allow_legacy, str(opts.known_hosts)) == (True, "/tmp/kh")
    keyed = SshOptions.from_cli({"user": "u", "key": "/k/id", "personality": "cisco_ios"})
    assert isinstance(keyed.key, Path)
    assert SshOptions.from_cli({}).has_credentials is False
    with pytest.raises(ValueError, match="personality"):
        SshOptions.from_cli({"user": "u", "password-env": "PW"})
    with pytest.raises(ValueError, match="needs a user"):
        SshOptions.from_cli({"password-env": "PW", "personality": "linux"})
    with pytest.raises(ValueError):
        SshOptions.from_cli({"personality": "junos"})


def test_default_known_hosts_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OTAUDIT_SSH_KNOWN_HOSTS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert KnownHosts().path == tmp_path / "otaudit" / "known_hosts"
    monkeypatch.setenv("OTAUDIT_SSH_KNOWN_HOSTS", str(tmp_path / "x"))
    assert KnownHosts().path == tmp_path / "x"


def test_simulator_and_probe_never_import_each_other() -> None:
    root = Path(__file__).parents[2]
    for folder, other in (("simulators/ssh", "otaudit.probes"),
                          ("probes/ssh", "otaudit.simulators")):
        for source in (root / folder).rglob("*.py"):
            assert other not in source.read_text(), source


def test_known_hosts_file_is_private(tmp_path: Path) -> None:
    store = KnownHosts(tmp_path / "sub" / "kh")
    store.pin("10.0.0.1", 22, asyncssh.generate_private_key("ssh-ed25519"))
    assert oct(os.stat(store.path).st_mode & 0o777) == "0o600"
    assert store.path.read_text().startswith("10.0.0.1 ssh-ed25519 ")
