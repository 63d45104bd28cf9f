"""Hirschmann HiOS system info and config script read line by line (issue 23: hios.py).

The script lines have the shape of HiOS ``show running-config script all`` (the layout of
the switch-hios simulator profile): ``snmp community ro "public"``,
``logging host add 1 addr <ip> ...``, ``sntp client server add 1 <ip> ...``,
``radius server add 1 <ip> ...``, ``users add``/``users access-role``."""

from __future__ import annotations

from pathlib import Path

import pytest

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse import hios
from otaudit.probes.ssh.parse.common import Issues, Unknown, community_ref

PROFILE = Path(__file__).parents[2] / "simulators" / "ssh" / "profiles" / "switch-hios" / "outputs"
HEADER = "! RSP35 Configuration\n! Version: HiOS-2S-09.0.04\n"


def facts(body: str, ssh: str | None = "2.0", issues: Issues | None = None) -> dict:
    return hios.hios_config_facts(hios.parse_script(HEADER + body), ssh, issues)


def test_profile_script_facts() -> None:
    text = (PROFILE / "show-running-config-script-all").read_text()
    config = hios.parse_script(text)
    assert config.header[:2] == ["RSP35 Configuration", "Version: HiOS-2S-09.0.04"]
    assert "vlan add 10" not in config.lines and "configure" not in config.lines
    assert config.interfaces["1/3"] == ["name \"Robot controller\"", "no shutdown",
                                        "vlan participation include 10", "vlan pvid 10"]
    found = hios.hios_config_facts(config, "2.0")
    assert found["mgmt.telnet_enabled"] is True and found["mgmt.http_enabled"] is False
    assert found["mgmt.https_enabled"] is True and found["mgmt.ssh_v2_only"] is True
    assert found["aaa.servers"] == [{"protocol": "radius", "host": "10.10.20.8"}]
    assert found["aaa.new_model"] is False  # the login list is local only
    assert found["auth.local_users"] == [
        {"name": "admin", "privilege": "administrator", "secret_type": None},
        {"name": "auditor", "privilege": "auditor", "secret_type": None}]
    assert found["logging.hosts"] == ["10.10.20.5"]
    assert found["time.ntp_servers"] == ["10.10.20.1"]
    assert found["snmp.communities"] == [
        {**community_ref("public"), "access": "RO", "acl": None},
        {**community_ref("private"), "access": "RW", "acl": None}]
    assert found["mgmt.banner_configured"] is True
    assert found["interfaces.unused_up"] == 2  # 1/4 and 1/5: empty name, no VLAN, up
    assert found["identity.name"] == "RSP-CELL2"
    assert isinstance(found["auth.enable_secret_type"], Unknown)


def test_profile_system_info() -> None:
    values = hios.parse_system_info((PROFILE / "show-system-info").read_text())
    assert values["System name"] == "RSP-CELL2"
    assert values["System location"] == "Packaging hall, cabinet 2"
    assert hios.system_info_identity(values) == {
        "identity.vendor": "Hirschmann", "identity.name": "RSP-CELL2",
        "identity.model": "RSP35-08033O6TT-SK9V9HHSE2S", "identity.serial": "942135999000117482",
        "identity.hardware_version": "1.05", "identity.product": "HiOS-2S",
        "identity.firmware_version": "09.0.04"}


def test_system_info_needs_three_dots_and_a_known_key() -> None:
    values = hios.parse_system_info("Device hardware description...RSP\nSerial number..42\n")
    assert values == {"Device hardware description": "RSP"}
    with pytest.raises(ParseError, match="not HiOS system info"):
        hios.parse_system_info("System name.........sw\n")
    only_release = hios.parse_system_info("Firmware software release (RAM)....09.0.04\n")
    assert hios.system_info_identity(only_release) == {
        "identity.vendor": "Hirschmann", "identity.firmware_version": "09.0.04"}
    empty = hios.parse_system_info("Device hardware description...\nSystem name....\n")
    assert hios.system_info_identity(empty) == {"identity.vendor": "Hirschmann"}


@pytest.mark.parametrize(("header", "ok"), [
    ("! RSP35 Configuration\n", True), ("! Version: HiOS-2A-09.0.04\n", True),
    ("! Version: Classic-1.0\n", False), ("! Configuration of RSP\n", False)])
def test_script_header(header: str, ok: bool) -> None:
    text = header + "system name sw\n"
    if ok:
        assert hios.parse_script(text).lines == ["system name sw"]
    else:
        with pytest.raises(ParseError, match="not a HiOS script"):
            hios.parse_script(text)


def test_sections_vlan_database_and_configure() -> None:
    config = hios.parse_script(HEADER + "vlan database\nvlan add 10\nexit\nconfigure\n"
                               "interface 1/1\nname \"up\"\nexit\nsystem name sw\n\n")
    assert config.lines == ["system name sw"]
    assert config.interfaces == {"1/1": ["name \"up\""]}


@pytest.mark.parametrize(("line", "state"), [
    ("telnet server", True), ("no telnet server", False), ("", None)])
def test_stated_or_unknown(line: str, state: bool | None) -> None:
    found = facts(line + "\n" if line else "")
    if state is None:
        assert isinstance(found["mgmt.telnet_enabled"], Unknown)
    else:
        assert found["mgmt.telnet_enabled"] is state


@pytest.mark.parametrize(("body", "ssh", "want"), [
    ("ssh server\n", "2.0", True), ("ssh server\n", "1.99", False), ("", "2.0", True),
    ("no ssh server\n", "2.0", None), ("ssh server\n", None, None),
    ("ssh server\n", "3.0", False)])
def test_ssh_v2_only(body: str, ssh: str | None, want: bool | None) -> None:
    value = facts(body, ssh)["mgmt.ssh_v2_only"]
    if want is None:
        assert isinstance(value, Unknown)
    else:
        assert value is want


@pytest.mark.parametrize(("policy", "servers", "aaa"), [
    ("authlists set-policy defaultLogin radius local reject reject reject", True, True),
    ("authlists set-policy defaultLogin local tacacs reject reject reject", True, True),
    ("authlists set-policy defaultLogin radius local reject reject reject", False, False),
    ("authlists set-policy defaultLogin local reject reject reject reject", True, False),
    ("authlists set-policy radius local", True, False)])
def test_aaa_in_use_needs_a_server_and_a_remote_login_method(policy: str, servers: bool,
                                                             aaa: bool) -> None:
    body = ("tacacs server add 1 10.0.0.9 name \"tac\"\n" if servers else "") + policy + "\n"
    found = facts(body)
    assert found["aaa.new_model"] is aaa
    assert found["aaa.servers"] == ([{"protocol": "tacacs+", "host": "10.0.0.9"}]
                                    if servers else [])


def test_collected_values() -> None:
    found = facts("radius server add 1 10.0.0.8 name \"r\"\n"
                  "tacacs server add 2 10.0.0.9\n"
                  "logging host add 1 addr 10.0.0.5 transport udp port 514\n"
                  "logging host add 2 transport udp\n"
                  "sntp client server add 1 10.0.0.1 port 123\n"
                  "sntp client server add 2 10.0.0.2\n"
                  "snmp community RO \"c1\"\n"
                  "users add \"op\"\nusers access-role op operator\nusers add \"guest\"\n"
                  "system name \"Cell 1\"\n")
    assert found["aaa.servers"] == [{"protocol": "radius", "host": "10.0.0.8"},
                                    {"protocol": "tacacs+", "host": "10.0.0.9"}]
    assert found["logging.hosts"] == ["10.0.0.5"]
    assert found["time.ntp_servers"] == ["10.0.0.1", "10.0.0.2"]
    assert found["snmp.communities"] == [{**community_ref("c1"), "access": "RO", "acl": None}]
    assert found["auth.local_users"] == [
        {"name": "op", "privilege": "operator", "secret_type": None},
        {"name": "guest", "privilege": None, "secret_type": None}]
    assert found["identity.name"] == "Cell 1"


def test_bad_lines_are_skipped_and_listed() -> None:
    issues = Issues()
    found = facts("snmp community all \"c1\"\nsnmp community rw \"c2\"\n"
                  "system name \"unbalanced\nusers add\n", issues=issues)
    assert found["snmp.communities"] == [{**community_ref("c2"), "access": "RW", "acl": None}]
    assert [(n, why) for n, _, why in issues.items] == [
        (1, "unknown community access 'all'"),
        (3, "unbalanced quotes in 'system name \"unbalanced'"), (4, "list index out of range")]
    with pytest.raises(ParseError, match="unknown community access"):
        facts("snmp community all \"c1\"\n")


@pytest.mark.parametrize(("banner", "want"), [
    ("system pre-login-banner operation", True), ("cli banner operation", True),
    ("no cli banner operation", False), ("system pre-login-banner text \"x\"", False)])
def test_banner(banner: str, want: bool) -> None:
    assert facts(banner + "\n")["mgmt.banner_configured"] is want


def test_ports_and_names() -> None:
    found = facts("interface 1/1\nname \"\"\nexit\n"
                  "interface 1/2\nname \"x\"\nexit\n"
                  "interface 1/3\nshutdown\nexit\n"
                  "interface 1/4\nvlan pvid 1\nexit\n"
                  "interface vlan/1\nexit\n"
                  "interface 2/10\nno shutdown\nexit\n")
    assert found["interfaces.unused_up"] == 2


def test_a_long_bad_line_is_quoted_to_sixty_characters() -> None:
    line = 'system location "Packaging hall, cabinet 2, second floor of building B west'
    issues = Issues()
    facts(line + "\n", issues=issues)
    assert issues.items[0][2] == f"unbalanced quotes in {line[:60]!r}"


def test_other_users_lines_name_no_user() -> None:
    found = facts("users add \"admin\"\nusers access-role admin administrator\n"
                  "users enable admin\nusers snmpv3 authentication admin sha1\n"
                  "users snmpv3 encryption admin aescfb128\nusers lock-status admin unlock\n")
    assert found["auth.local_users"] == [
        {"name": "admin", "privilege": "administrator", "secret_type": None}]
