"""The probe against every bundled simulator profile: concrete facts, allowlisted commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from ssh_helpers import (
    PASSWORD,
    PASSWORD_VAR,
    commands_seen,
    credentials,
    only_allowlisted,
    probe,
    simulator,
)

from otaudit.observation import ProbeStatus
from otaudit.probes.ssh.facts import FACTS


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)


async def test_weak_hmi(tmp_path: Path) -> None:
    async with simulator("hmi-weak") as device:
        obs = await probe(device.port, tmp_path / "kh", **credentials("hmi-weak"))
    assert obs.status is ProbeStatus.OK, obs.reason
    f = obs.fact
    assert f("identity.os") == "Debian GNU/Linux 12 (bookworm)"
    assert (f("identity.name"), f("identity.vendor")) == ("hmi-line1", "Debian")
    assert (f("os.name"), f("os.version"), f("os.kernel")) == (
        "Debian GNU/Linux", "12", "6.1.0-18-amd64")
    assert f("ssh.banner") == "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2"
    assert f("ssh.weak_kex") == ["diffie-hellman-group14-sha1"]
    assert f("ssh.weak_ciphers") == ["aes128-cbc", "aes256-cbc"]
    assert f("ssh.weak_macs") == ["umac-64-etm@openssh.com", "hmac-sha1-etm@openssh.com",
                                  "umac-64@openssh.com", "hmac-sha1"]  # OpenSSH 9.2 defaults
    assert f("ssh.weak_host_key_algorithms") == ["ssh-rsa"]
    assert f("ssh.auth_methods") == ["publickey", "password"]
    assert f("ssh.password_auth_offered") is True
    assert f("ssh.legacy_algorithms_used") is False
    assert f("ssh.host_key_changed") is False
    assert f("ssh.host_key_fingerprint") == device.fingerprints()["ssh-ed25519"]
    assert f("sshd.permit_root_login") == "yes"
    assert f("sshd.max_auth_tries") == 10
    assert f("sshd.x11_forwarding") is True
    # the simulated wire and the device's own sshd -T agree
    assert f("sshd.ciphers") == f("ssh.ciphers")
    assert f("sshd.kex_algorithms") == f("ssh.kex_algorithms")[:-2]  # + ext-info-s, kex-strict
    assert (f("pwpol.max_days"), f("pwpol.min_days"), f("pwpol.hash_method")) == (
        99999, 0, "sha512")
    assert f("pwpol.lockout_configured") is False
    assert "pam_pwquality" in obs.unknown["pwpol.min_length"]
    assert "pam_faillock" in obs.unknown["pwpol.lockout_deny"]
    assert f("logging.remote_targets") == [
        {"host": "10.10.20.5", "port": 514, "protocol": "udp", "tls": False}]
    assert (f("logging.remote_enabled"), f("logging.remote_tls")) == (True, False)
    assert f("logging.auditd_active") is False
    assert obs.unknown["logging.audit_rules"] == "'auditctl -l': command not found on the device"
    assert (f("time.ntp_sources"), f("time.synchronized")) == (["10.10.20.1"], False)
    listening = {(s["proto"], s["port"], s["process"]) for s in f("services.listening")}
    assert {("tcp", 23, "inetutils-inetd"), ("tcp", 5900, "x11vnc")} <= listening
    assert "x11vnc.service" in f("services.enabled")
    assert {"name": "openssh-server", "version": "1:9.2p1-2+deb12u2"} in f("software.packages")
    assert {"name": "libc6", "version": "2.36-9+deb12u4"} in f("software.packages")
    assert obs.unknown["mgmt.telnet_enabled"] == "not applicable to personality linux"
    assert set(obs.facts) | set(obs.unknown) == set(FACTS)
    assert only_allowlisted(device, "linux")
    assert device.log.max_concurrent == 1


async def test_hardened_hmi(tmp_path: Path) -> None:
    async with simulator("hmi-hardened") as device:
        obs = await probe(device.port, tmp_path / "kh", **credentials("hmi-hardened"))
    assert obs.status is ProbeStatus.OK, obs.reason
    f = obs.fact
    assert f("identity.name") == "hmi-line2"
    for weak in ("ssh.weak_kex", "ssh.weak_ciphers", "ssh.weak_macs",
                 "ssh.weak_host_key_algorithms"):
        assert f(weak) == [], weak
    assert f("ssh.host_key_algorithms") == ["ssh-ed25519"]
    assert (f("sshd.permit_root_login"), f("sshd.max_auth_tries"), f("sshd.log_level")) == (
        "no", 3, "VERBOSE")
    assert (f("pwpol.min_length"), f("pwpol.max_days"), f("pwpol.hash_method")) == (
        12, 90, "yescrypt")
    assert (f("pwpol.lockout_deny"), f("pwpol.lockout_unlock_time")) == (5, 900)
    assert f("logging.remote_targets") == [
        {"host": "10.10.20.5", "port": 6514, "protocol": "tcp", "tls": True}]
    assert f("logging.remote_tls") is True
    assert (f("logging.auditd_active"), f("logging.audit_rules")) == (True, 12)
    assert (f("time.ntp_sources"), f("time.synchronized")) == (
        ["10.10.20.1", "10.10.20.2"], True)
    assert {"name": "libpam-pwquality", "version": "1.4.5-1+b1"} in f("software.packages")
    assert only_allowlisted(device, "linux")


async def test_cisco_ie4000(tmp_path: Path) -> None:
    async with simulator("switch-ios") as device:
        obs = await probe(device.port, tmp_path / "kh", **credentials("switch-ios"))
    assert obs.status is ProbeStatus.OK, obs.reason
    f = obs.fact
    assert (f("identity.vendor"), f("identity.model"), f("identity.firmware_version"),
            f("identity.serial"), f("identity.name")) == (
        "Cisco", "IE-4000-8GT4G4E", "15.2(7)E4", "FDO2130X0AB", "SW-CELL1")
    assert (f("mgmt.telnet_enabled"), f("mgmt.http_enabled"), f("mgmt.https_enabled"),
            f("mgmt.ssh_v2_only")) == (False, False, True, True)
    assert f("aaa.new_model") is True
    assert f("aaa.servers") == [{"protocol": "tacacs+", "host": "10.10.20.8"},
                                {"protocol": "tacacs+", "host": "10.10.20.9"}]
    assert (f("auth.enable_secret_type"), f("auth.password_encryption")) == ("9", True)
    assert [u["name"] for u in f("auth.local_users")] == ["netadmin", "auditor"]
    assert f("logging.hosts") == ["10.10.20.5"]
    assert f("time.ntp_servers") == ["10.10.20.1", "10.10.20.2"]
    [community] = f("snmp.communities")
    assert (community["access"], community["acl"], community["default"]) == (
        "RO", "SNMP-RO", False)
    assert (f("mgmt.banner_configured"), f("interfaces.unused_up")) == (True, 3)
    assert f("ssh.weak_kex") == ["diffie-hellman-group14-sha1"]
    assert obs.unknown["sshd.permit_root_login"] == "not applicable to personality cisco_ios"
    assert commands_seen(device) == ["show version", "show running-config"]


async def test_hirschmann_hios(tmp_path: Path) -> None:
    async with simulator("switch-hios") as device:
        obs = await probe(device.port, tmp_path / "kh", **credentials("switch-hios"))
    assert obs.status is ProbeStatus.OK, obs.reason
    f = obs.fact
    assert (f("identity.vendor"), f("identity.model"), f("identity.product"),
            f("identity.firmware_version"), f("identity.serial"), f("identity.name")) == (
        "Hirschmann", "RSP35-08033O6TT-SK9V9HHSE2S", "HiOS-2S", "09.0.04",
        "942135999000117482", "RSP-CELL2")
    assert (f("mgmt.telnet_enabled"), f("mgmt.http_enabled"), f("mgmt.https_enabled"),
            f("mgmt.ssh_v2_only")) == (True, False, True, True)
    assert f("aaa.servers") == [{"protocol": "radius", "host": "10.10.20.8"}]
    assert f("aaa.new_model") is False  # RADIUS configured but the login list is local only
    assert [(c["access"], c["default"]) for c in f("snmp.communities")] == [
        ("RO", True), ("RW", True)]
    assert (f("interfaces.unused_up"), f("mgmt.banner_configured")) == (2, True)
    assert "enable password" in obs.unknown["auth.enable_secret_type"]
    assert commands_seen(device) == ["show system info", "show running-config script all"]


async def test_legacy_device_needs_allow_legacy(tmp_path: Path) -> None:
    async with simulator("legacy-ie3000") as device:
        refused = await probe(device.port, tmp_path / "kh", **credentials("legacy-ie3000"))
        assert not any(r.kind == "auth" for r in device.log.records)
        allowed = await probe(device.port, tmp_path / "kh",
                              **credentials("legacy-ie3000", allow_legacy=True))
    assert refused.status is ProbeStatus.ERROR
    assert refused.reason == ("cannot log in: the server offers only legacy algorithms and "
                              "allow_legacy is off")
    assert refused.fact("ssh.weak_kex") == ["diffie-hellman-group14-sha1",
                                            "diffie-hellman-group1-sha1"]
    assert refused.fact("ssh.host_key_algorithms") == ["ssh-rsa"]
    assert allowed.status is ProbeStatus.OK, allowed.reason
    f = allowed.fact
    assert f("ssh.legacy_algorithms_used") is True
    assert f("ssh.weak_ciphers") == ["aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc"]
    assert f("ssh.weak_macs") == ["hmac-sha1", "hmac-sha1-96", "hmac-md5", "hmac-md5-96"]
    assert (f("mgmt.telnet_enabled"), f("mgmt.http_enabled"), f("mgmt.ssh_v2_only")) == (
        True, True, False)
    assert (f("auth.enable_secret_type"), f("auth.password_encryption")) == ("plain", False)
    assert [c["default"] for c in f("snmp.communities")] == [True, True]
    assert f("interfaces.unused_up") == 8
    assert f("identity.firmware_version") == "12.2(55)SE"
    # the device's own secrets never reach the observation (evidence is redacted)
    blob = allowed.model_dump_json()
    for device_secret in ("Filler2010", "telnet123", "maint123", "community public",
                          "community private"):
        assert device_secret not in blob, device_secret
