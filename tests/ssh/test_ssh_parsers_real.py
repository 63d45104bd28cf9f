"""Parsers against real outputs: ../shared fixtures (read in place) and copied ntc-templates."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse import ios, pam, sshd, timesync
from otaudit.probes.ssh.parse import logging as logparse
from otaudit.probes.ssh.parse.common import Unknown, community_ref, redact_secrets

NTC = Path(__file__).parents[1] / "fixtures" / "ssh" / "ntc"


def real(shared_dir: Path, *parts: str) -> str:
    return shared_dir.joinpath("fixtures", "real", *parts).read_text()


DEBIAN_CIPHERS = ["chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr",
                  "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]


def test_sshd_t_debian12_default(shared_dir: Path) -> None:
    facts = sshd.sshd_facts(sshd.parse_sshd_t(
        real(shared_dir, "ssh", "debian12_default", "sshd-T_effective.txt")))
    assert facts["sshd.permit_root_login"] == "prohibit-password"  # printed "without-password"
    assert facts["sshd.password_authentication"] is True
    assert facts["sshd.kbd_interactive_authentication"] is False
    assert facts["sshd.permit_empty_passwords"] is False
    assert facts["sshd.pubkey_authentication"] is True
    assert facts["sshd.x11_forwarding"] is True
    assert (facts["sshd.max_auth_tries"], facts["sshd.login_grace_time"],
            facts["sshd.client_alive_interval"], facts["sshd.log_level"]) == (6, 120, 0, "INFO")
    assert facts["sshd.ciphers"] == DEBIAN_CIPHERS
    assert facts["sshd.macs"][-1] == "hmac-sha1" and len(facts["sshd.macs"]) == 10
    assert facts["sshd.kex_algorithms"][0] == "sntrup761x25519-sha512"
    assert len(facts["sshd.kex_algorithms"]) == 11


def test_sshd_t_oe_core(shared_dir: Path) -> None:
    facts = sshd.sshd_facts(sshd.parse_sshd_t(
        real(shared_dir, "ssh", "oe_core", "sshd-T_effective.txt")))
    assert facts["sshd.permit_root_login"] == "prohibit-password"  # '#PermitRootLogin yes'
    assert facts["sshd.kbd_interactive_authentication"] is True
    assert facts["sshd.x11_forwarding"] is False
    assert facts["sshd.client_alive_interval"] == 15
    assert facts["sshd.ciphers"] == DEBIAN_CIPHERS


def test_sshd_config_file_is_not_sshd_t(shared_dir: Path) -> None:
    with pytest.raises(ParseError):
        sshd.parse_sshd_t(real(shared_dir, "linux", "debian12", "sshd_config"))


def test_debian_password_policy(shared_dir: Path) -> None:
    defs = pam.parse_login_defs(real(shared_dir, "linux", "debian12", "login.defs"))
    assert pam.login_defs_facts(defs) == {"pwpol.max_days": 99999, "pwpol.min_days": 0}
    assert (defs["ENCRYPT_METHOD"], defs["LOGIN_RETRIES"]) == ("SHA512", "5")
    stack = pam.parse_pam_stack(real(shared_dir, "linux", "debian12", "pam.d_common-password"))
    assert [line.module for line in stack] == ["pam_unix.so", "pam_deny.so", "pam_permit.so"]
    # PAM hashes with yescrypt although login.defs says SHA512
    assert pam.hash_method(stack, defs) == "yescrypt"
    assert pam.min_length(stack, None) == Unknown(
        "no pam_pwquality/pam_cracklib in the PAM password stack")
    login = pam.parse_pam_stack(real(shared_dir, "linux", "debian12", "pam.d_login"))
    assert pam.lockout(login, None)["pwpol.lockout_configured"] is False
    assert sum(line.type == "@include" for line in login) == 4
    with pytest.raises(ParseError):  # a pam-auth-update profile is not a PAM stack
        pam.parse_pam_stack(real(shared_dir, "linux", "debian12", "pam-configs_unix"))


def test_debian_logging_and_time(shared_dir: Path) -> None:
    assert logparse.parse_rsyslog(real(shared_dir, "linux", "debian12", "rsyslog.conf")) == []
    assert logparse.parse_audisp_remote(
        real(shared_dir, "linux", "debian12", "audit_plugins.d_au-remote.conf"),
        real(shared_dir, "linux", "debian12", "audisp-remote.conf")) is None
    auditd = pam.parse_simple_conf(real(shared_dir, "linux", "debian12", "auditd.conf"))
    assert auditd["log_file"] == "/var/log/audit/audit.log"
    assert timesync.parse_chrony_sources(
        real(shared_dir, "linux", "debian12", "chrony.conf")) == ["2.debian.pool.ntp.org"]


@pytest.mark.parametrize("sample", ["ciscoconfparse_sample_01.ios",
                                    "ciscoconfparse_sample_08.ios"])
def test_cisco_running_configs(shared_dir: Path, sample: str) -> None:
    text = real(shared_dir, "cisco", sample)
    facts = ios.ios_config_facts(ios.parse_running_config(text))
    assert facts["identity.name"] == "Foo"
    assert facts["mgmt.telnet_enabled"] is True  # vty 'transport input telnet ssh'
    assert facts["mgmt.http_enabled"] is (sample.endswith("01.ios"))
    assert facts["mgmt.https_enabled"] is False
    assert facts["mgmt.ssh_v2_only"] is False  # no 'ip ssh version 2'
    assert (facts["aaa.new_model"], facts["aaa.servers"]) == (True, [])
    assert (facts["auth.enable_secret_type"], facts["auth.password_encryption"]) == ("5", True)
    assert facts["auth.local_users"] == [{"name": "ddclient", "privilege": 1, "secret_type": "7"}]
    assert facts["logging.hosts"] == ["172.16.1.5", "172.16.1.7"]
    assert facts["time.ntp_servers"] == ["1.1.1.1"]
    assert facts["snmp.communities"] == [
        {**community_ref("SoMeThaNGwIErd"), "access": "RW", "acl": "99"}]
    assert facts["snmp.communities"][0]["default"] is False
    assert facts["mgmt.banner_configured"] is True
    assert facts["interfaces.unused_up"] == 0  # every Ethernet port has an address
    redacted = redact_secrets(text)
    for secret in ("SoMeThaNGwIErd", "$1$Q0Zl$LN7ONybETL5LJZF1", "107D3D232342041E3A",
                   "023530612D5319347A"):
        assert secret in text and secret not in redacted


@pytest.mark.parametrize("name", sorted(p.stem for p in NTC.glob("*.raw")))
def test_show_version_agrees_with_ntc_templates(name: str) -> None:
    parsed = ios.parse_show_version((NTC / f"{name}.raw").read_text())
    [expected] = yaml.safe_load((NTC / f"{name}.yml").read_text())["parsed_sample"]
    assert parsed["version"] == expected["version"]
    assert parsed["hostname"] == expected["hostname"]
    if expected["serial"]:
        assert parsed["serial"] == expected["serial"][0]
    if expected["hardware"]:
        assert parsed["model"] == expected["hardware"][0]


def test_show_version_concrete_values() -> None:
    parsed = ios.parse_show_version((NTC / "ntc_cisco_ios_show_version1.raw").read_text())
    assert parsed == {"version": "03.06.05E", "hostname": "city-building-4-sw",
                      "model": "WS-C3850-48U", "serial": "FOC11111111",
                      "image": "flash:packages.conf"}
    with pytest.raises(ParseError):
        ios.parse_show_version("% Invalid input detected at '^' marker.\n")
