"""The SSH simulator on its own, driven by a plain asyncssh client."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh
import pytest
from ssh_helpers import PASSWORD, simulator

from otaudit.errors import InputError
from otaudit.simulators import bundled_profile, create_simulator
from otaudit.simulators.ssh.device import PROFILES, from_profile
from otaudit.simulators.ssh.profile import load_profile


async def run(port: int, *commands: str, **options: object) -> list[asyncssh.SSHCompletedProcess]:
    async with asyncssh.connect("127.0.0.1", port, username="auditor", password=PASSWORD,
                                known_hosts=None, client_keys=None, config=None,
                                **options) as conn:
        return [await conn.run(c, check=False) for c in commands]


async def test_linux_shell_answers_like_bash() -> None:
    async with simulator("hmi-weak") as device:
        known, missing, cat_missing, glob = await run(
            device.port, "uname -a", "foo --bar", "cat /etc/shadow", "cat /etc/rsyslog.d/*.conf")
    assert known.exit_status == 0 and known.stdout.startswith("Linux hmi-line1 ")
    assert (missing.exit_status, missing.stderr) == (127, "bash: foo: command not found\n")
    assert (cat_missing.exit_status, cat_missing.stderr) == (
        1, "cat: /etc/shadow: No such file or directory\n")
    assert glob.stderr == "cat: '/etc/rsyslog.d/*.conf': No such file or directory\n"
    commands = [(r.detail["command"], r.detail["known"]) for r in device.log.records
                if r.kind == "exec"]
    assert commands == [("uname -a", True), ("foo --bar", False), ("cat /etc/shadow", True),
                        ("cat /etc/rsyslog.d/*.conf", True)]


async def test_cat_glob_concatenates_matching_files() -> None:
    async with simulator("hmi-hardened") as device:
        [result] = await run(device.port, "cat /etc/rsyslog.d/*.conf")
    assert result.exit_status == 0 and 'type="omfwd"' in result.stdout


async def test_switch_dialects_reject_unknown_commands() -> None:
    async with simulator("switch-ios") as ios_device:
        [bad] = await run(ios_device.port, "show tech-support")
    assert bad.stdout == ("show tech-support\n     ^\n"
                          "% Invalid input detected at '^' marker.\n\n")
    async with simulator("switch-hios") as hios_device:
        [bad_hios, good] = await run(hios_device.port, "reload", "show system info")
    assert bad_hios.stdout == "Error: Invalid command 'reload'\n"
    assert "System name" in good.stdout


async def test_interactive_shell() -> None:
    async with simulator("switch-ios") as device:
        conn = await asyncssh.connect("127.0.0.1", device.port, username="auditor",
                                      password=PASSWORD, known_hosts=None, client_keys=None,
                                      config=None)
        async with conn:
            process = await conn.create_process(term_type="vt100")
            process.stdin.write("show version\nexit\n")
            output = await asyncio.wait_for(process.stdout.read(), 5)
    assert output.startswith("SW-CELL1#Cisco IOS Software, IE4000")
    assert output.rstrip().endswith("SW-CELL1#")
    assert [(r.kind, r.detail["command"]) for r in device.log.records if "command" in r.detail
            ] == [("shell", "show version")]


async def test_auth_attempts_are_logged_without_secrets() -> None:
    async with simulator("hmi-weak") as device:
        with pytest.raises(asyncssh.PermissionDenied):
            await asyncssh.connect("127.0.0.1", device.port, username="mallory",
                                   password="S3cret-guess", known_hosts=None, client_keys=None,
                                   config=None, preferred_auth="password")
    [attempt] = [r for r in device.log.records if r.kind == "auth"]
    assert attempt.detail == {"username": "mallory", "method": "password", "ok": False}
    assert "S3cret-guess" not in str(device.log.records)
    assert device.log.connections == 1


async def test_legacy_profile_offers_only_legacy_algorithms() -> None:
    async with simulator("legacy-ie3000") as device:
        with pytest.raises(asyncssh.KeyExchangeFailed):
            await run(device.port, "show version")
        [result] = await run(device.port, "show version",
                             kex_algs=["diffie-hellman-group14-sha1"],
                             server_host_key_algs=["ssh-rsa"], encryption_algs=["aes128-cbc"],
                             mac_algs=["hmac-sha1"])
    assert "12.2(55)SE" in result.stdout


async def test_host_keys_persist_per_profile_unless_fresh(tmp_path: Path) -> None:
    folder = bundled_profile("ssh", "switch-ios")
    a = from_profile(folder, host_key_dir=str(tmp_path))
    b = from_profile(folder, host_key_dir=str(tmp_path))
    fresh = from_profile(folder, fresh_keys=True)
    assert a.fingerprints() == b.fingerprints() != fresh.fingerprints()
    assert from_profile(folder).fingerprints() == from_profile(folder).fingerprints()
    assert (tmp_path / "ssh_host_ssh_rsa_key").stat().st_mode & 0o777 == 0o600
    async with fresh:
        port = fresh.port
        [before] = await run(port, "show version")
        await fresh.stop()
        await fresh.start()  # same object, same in-memory key
        after = await asyncssh.get_server_host_key("127.0.0.1", port)
    async with from_profile(folder, port=port, host_key_dir=str(tmp_path)):
        key = await asyncssh.get_server_host_key("127.0.0.1", port)
    assert before.exit_status == 0
    assert after is not None and after.get_fingerprint() == fresh.fingerprints()["ssh-rsa"]
    assert key is not None and key.get_fingerprint("sha256") == a.fingerprints()["ssh-rsa"]


def test_bundled_profiles_load_and_name_existing_files() -> None:
    names = sorted(p.name for p in PROFILES.iterdir() if p.is_dir())
    assert names == ["hmi-hardened", "hmi-weak", "hmi-yocto", "legacy-ie3000", "switch-hios",
                     "switch-ios", "windows-hardened", "windows-weak"]
    for name in names:
        profile = load_profile(PROFILES / name)
        assert profile.users["auditor"].password == PASSWORD
        assert profile.commands
    assert create_simulator("ssh", None).profile.name == "hmi-weak"


def test_bad_profiles_and_options_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="colour: unknown field"):
        from_profile(None, colour="red")
    with pytest.raises(InputError):
        from_profile(tmp_path / "missing")
    (tmp_path / "profile.yaml").write_text("personality: vms\n")
    with pytest.raises(InputError, match="personality"):
        from_profile(tmp_path)
    (tmp_path / "profile.yaml").write_text("commands:\n  ls: {file: nope.txt}\n")
    with pytest.raises(InputError, match="missing"):
        from_profile(tmp_path)
    (tmp_path / "profile.yaml").write_text("users: [{password: x}]\n")
    with pytest.raises(InputError, match="malformed"):
        from_profile(tmp_path)


def test_simulator_binds_loopback_only() -> None:
    from otaudit.simulators.base import NotLoopback

    with pytest.raises(NotLoopback):
        from_profile(None, host="0.0.0.0")
