"""Cisco IOS running-config facts read word by word (issue 23: ios.py survivors).

Every config line here has the shape real IOS prints: ``logging host <ip> vrf <name>``,
``logging host ipv6 <addr>``, ``snmp-server community <c> view <v> RO <acl>``,
``snmp-server community <c> RO ipv6 <acl>``, ``username <n> privilege <p> secret <t> <h>``.
"""

from __future__ import annotations

import pytest

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse import ios
from otaudit.probes.ssh.parse.common import Issues, Unknown, community_ref

HASH = "$1$Q0Zl$LN7ONybETL5LJZF1"


def facts(body: str, release: str | None = None, issues: Issues | None = None) -> dict:
    text = f"version 15.2\nhostname sw1\n{body}end\n"
    return ios.ios_config_facts(ios.parse_running_config(text), release, issues)


def test_logging_host_word_positions() -> None:
    found = facts("logging host 10.0.0.1\n"
                  "logging host 10.0.0.2 vrf Mgmt-intf\n"
                  "logging host ipv6 2001:db8::3\n"
                  "logging host ipv6 2001:db8::4 vrf Mgmt-intf\n"
                  "logging 10.0.0.5\n"
                  "logging buffered 4096\n"
                  "logging trap informational\n"
                  "logging source-interface Vlan1\n"
                  "logging host 10.0.0.1 transport udp port 514\n")
    assert found["logging.hosts"] == ["10.0.0.1", "10.0.0.2", "2001:db8::3", "2001:db8::4",
                                      "10.0.0.5"]


@pytest.mark.parametrize("line, host", [
    ("logging host 10.0.0.2 vrf Mgmt-intf", "10.0.0.2"),
    ("logging host ipv6 2001:db8::3", "2001:db8::3"),
    ("logging host ipv6 2001:db8::4 vrf Mgmt-intf", "2001:db8::4"),
    ("logging 10.0.0.5", "10.0.0.5"),
    ("logging host 10.0.0.6", "10.0.0.6"),
    ("logging host zeus.example.net vrf Mgmt-intf", "zeus.example.net"),
    ("logging host 10.0.0.7 vrf Mgmt-intf transport tcp port 1470", "10.0.0.7"),
])
def test_each_logging_host_form_alone(line: str, host: str) -> None:
    assert facts(line + "\n")["logging.hosts"] == [host]


def test_logging_lines_without_a_host() -> None:
    assert facts("logging buffered 4096\nlogging console critical\n")["logging.hosts"] == []


def test_community_view_ipv6_and_acl_positions() -> None:
    found = facts("snmp-server community N1 view V1 RO 10\n"
                  "snmp-server community N2 RO ipv6 V6ACL\n"
                  "snmp-server community N3 RO ipv6 V6ACL 11\n"
                  "snmp-server community N4 view V4 RW\n"
                  "snmp-server community N5 rw 12\n"
                  "snmp-server community N6\n"
                  "snmp-server community N7 RO\n")
    assert found["snmp.communities"] == [
        {**community_ref("N1"), "access": "RO", "acl": "10"},
        {**community_ref("N2"), "access": "RO", "acl": None},
        {**community_ref("N3"), "access": "RO", "acl": "11"},
        {**community_ref("N4"), "access": "RW", "acl": None},
        {**community_ref("N5"), "access": "RW", "acl": "12"},
        {**community_ref("N6"), "access": "RO", "acl": None},
        {**community_ref("N7"), "access": "RO", "acl": None},
    ]


def test_community_view_named_like_access_is_still_a_view() -> None:
    found = facts("snmp-server community N1 view RW RO\n")
    assert found["snmp.communities"] == [{**community_ref("N1"), "access": "RO", "acl": None}]


@pytest.mark.parametrize("body, want", [
    ("username admin privilege 15 secret 5 " + HASH + "\n",
     {"name": "admin", "privilege": 15, "secret_type": "5"}),
    ("username op privilege 0 password 7 045802150C2E\n",
     {"name": "op", "privilege": 0, "secret_type": "7"}),
    ("username ro password 0 plaintext\n",
     {"name": "ro", "privilege": 1, "secret_type": "plain"}),
    ("username nopass privilege 3 nopassword\n",
     {"name": "nopass", "privilege": 3, "secret_type": "none"}),
    ("username ssh-only privilege 15 secret 9 $9$abc$def\n",
     {"name": "ssh-only", "privilege": 15, "secret_type": "9"}),
    ("username last privilege\n", {"name": "last", "privilege": 1, "secret_type": "none"}),
])
def test_local_user_privilege_and_secret(body: str, want: dict) -> None:
    assert facts(body)["auth.local_users"] == [want]


def test_local_user_privilege_not_a_number() -> None:
    issues = Issues()
    found = facts("username a privilege x secret 5 " + HASH + "\n"
                  "username b privilege 2 secret 5 " + HASH + "\n", issues=issues)
    assert found["auth.local_users"] == [{"name": "b", "privilege": 2, "secret_type": "5"}]
    assert [why for _, _, why in issues.items] == ["privilege 'x' is not a number"]


@pytest.mark.parametrize("body, want", [
    ("enable secret 5 " + HASH + "\n", "5"),
    ("enable secret 9 $9$abc$def\n", "9"),
    ("enable secret level 15 5 " + HASH + "\n", "5"),
    ("enable secret plaintext\n", "0"),
    ("enable password 7 045802150C2E\n", "7"),
    ("enable password plaintext\n", "plain"),
    ("enable password 0 plaintext\n", "plain"),
    ("", "none"),
])
def test_enable_secret_type(body: str, want: str) -> None:
    assert facts(body)["auth.enable_secret_type"] == want


def test_enable_secret_is_preferred_to_enable_password() -> None:
    body = "enable password 7 045802150C2E\nenable secret 5 " + HASH + "\n"
    assert facts(body)["auth.enable_secret_type"] == "5"


def test_config_release_major_minor_and_absent() -> None:
    blocks = ios.parse_running_config("version 12.2\nhostname sw\nversion 15.0\nend\n")
    assert ios.config_release(blocks) == "12.2"
    assert ios.config_release(ios.parse_running_config("hostname sw\nend\n")) is None
    assert ios.config_release(ios.parse_running_config("version\nhostname sw\nend\n")) is None


def test_telnet_default_follows_the_release() -> None:
    """A vty without 'transport input' takes the release default (12.x: all); a release
    ios_defaults.yaml does not cover stays unknown; show version's release wins."""
    vty = "hostname sw1\nline vty 0 4\n login local\nline vty 5 15\n transport input ssh\nend\n"
    old = ios.parse_running_config("version 12.2\n" + vty)
    new = ios.parse_running_config("version 15.2\n" + vty)
    bare = ios.parse_running_config("version\n" + vty)
    assert ios._telnet(old) is True
    assert isinstance(ios._telnet(new), Unknown)
    assert isinstance(ios._telnet(bare), Unknown)
    assert ios._telnet(new, "12.2(55)SE12") is True
    assert isinstance(ios._telnet(old, "15.2(4)E8"), Unknown)
    ssh_only = ios.parse_running_config("version 12.2\nhostname sw1\nline vty 0 4\n"
                                         " transport input ssh\nend\n")
    assert ios._telnet(ssh_only) is False


def test_logging_host_without_its_host_is_skipped_and_listed() -> None:
    issues = Issues()
    found = facts("logging host ipv6\nlogging host 10.0.0.1\n", issues=issues)
    assert found["logging.hosts"] == ["10.0.0.1"]
    assert [line for _, line, _ in issues.items] == ["logging host ipv6"]


def test_top_level_comments_and_headers_are_no_blocks() -> None:
    text = ("Building configuration...\n\nCurrent configuration : 1234 bytes\n!\n"
            "! Last configuration change at 10:00:00 UTC Mon Mar 1 2021\nversion 15.2\n!\n"
            "hostname sw1\n!\ninterface Vlan1\n ip address 10.0.0.1 255.255.255.0\n !\n"
            " no shutdown\n!\nend\n")
    blocks = ios.parse_running_config(text)
    assert [(b.line, b.children) for b in blocks] == [
        ("version 15.2", []), ("hostname sw1", []),
        ("interface Vlan1", ["ip address 10.0.0.1 255.255.255.0", "no shutdown"]), ("end", [])]
    assert [b.number for b in blocks] == [6, 8, 10, 15]


def test_multi_line_banner_keeps_every_line() -> None:
    text = ("hostname sw1\nbanner motd ^C\nAuthorized access only\nDisconnect now\n"
            "All activity is logged\n^C\nbanner login ^CSingle line^C\n"
            "banner exec #\nexec one\nexec two#\nline vty 0 4\n transport input ssh\nend\n")
    blocks = ios.parse_running_config(text)
    assert [(b.line, b.children) for b in blocks] == [
        ("hostname sw1", []),
        ("banner motd", ["Authorized access only", "Disconnect now", "All activity is logged"]),
        ("banner login", ["Single line"]),
        ("banner exec", ["exec one", "exec two"]),
        ("line vty 0 4", ["transport input ssh"]), ("end", [])]


def test_aaa_server_protocols() -> None:
    found = facts("tacacs-server host 10.0.0.9 key 7 045802150C2E\n"
                  "radius-server host 10.0.0.10 auth-port 1645 acct-port 1646\n"
                  "tacacs server TAC1\n address ipv4 10.0.0.11\n"
                  "radius server RAD1\n address ipv6 2001:db8::12 auth-port 1812\n"
                  "aaa group server tacacs+ TACG\n server-private 10.0.0.13 key 7 0458\n"
                  "aaa group server radius RADG\n server-private 10.0.0.14 key 7 0458\n")
    assert found["aaa.servers"] == [
        {"protocol": "tacacs+", "host": "10.0.0.9"}, {"protocol": "radius", "host": "10.0.0.10"},
        {"protocol": "tacacs+", "host": "10.0.0.11"},
        {"protocol": "radius", "host": "2001:db8::12"},
        {"protocol": "tacacs+", "host": "10.0.0.13"}, {"protocol": "radius", "host": "10.0.0.14"}]


def test_privilege_not_a_number_quotes_ten_characters() -> None:
    issues = Issues()
    facts("username a privilege fifteen-levels secret 5 " + HASH + "\n", issues=issues)
    assert [why for _, _, why in issues.items] == ["privilege 'fifteen-le' is not a number"]


def test_banner_without_delimiter_or_end() -> None:
    with pytest.raises(ParseError, match="banner without delimiter: 'banner motd'"):
        ios.parse_running_config("hostname sw1\nbanner motd\nend\n")
    with pytest.raises(ParseError, match="unterminated banner login"):
        ios.parse_running_config("hostname sw1\nbanner login ^C\nno end\n")
    blocks = ios.parse_running_config("hostname sw1\nbanner\nend\n")
    assert [b.line for b in blocks] == ["hostname sw1", "banner", "end"]


def test_unused_up_counts_physical_ports_without_use() -> None:
    found = facts("interface GigabitEthernet1/0/1\n"                       # counted
                  "interface GigabitEthernet1/0/2\n shutdown\n"
                  "interface GigabitEthernet1/0/3\n description PLC-7\n"
                  "interface GigabitEthernet1/0/4\n switchport access vlan 10\n"
                  "interface GigabitEthernet1/0/5\n switchport mode access\n"     # counted
                  "interface FastEthernet0/1\n no ip address\n"                  # counted
                  "interface TenGigabitEthernet1/1/1\n channel-group 1 mode active\n"
                  "interface Port-channel1\n"
                  "interface Vlan1\n"
                  "interface GigabitEthernet0/1.100\n")
    assert found["interfaces.unused_up"] == 3


def test_a_server_private_line_without_address_is_ignored() -> None:
    found = facts("aaa group server tacacs+ TACG\n server-private\n"
                  " server-private 10.0.0.13 key 7 0458\n")
    assert found["aaa.servers"] == [{"protocol": "tacacs+", "host": "10.0.0.13"}]


def test_telnet_on_any_vty_wins_over_a_silent_one() -> None:
    text = ("version 15.2\nhostname sw1\nline vty 0 4\n login local\n"
            "line vty 5 15\n transport input telnet\nend\n")
    assert ios._telnet(ios.parse_running_config(text)) is True
    for inputs, want in (("all", True), ("ssh telnet", True), ("ssh", False), ("none", False)):
        text = f"version 15.2\nhostname sw1\nline vty 0 4\n transport input {inputs}\nend\n"
        assert ios._telnet(ios.parse_running_config(text)) is want, inputs
    assert isinstance(ios._telnet(ios.parse_running_config("hostname sw1\nend\n")), Unknown)


def test_http_server_stated_or_unknown() -> None:
    assert facts("ip http server\n")["mgmt.http_enabled"] is True
    assert facts("no ip http server\n")["mgmt.http_enabled"] is False
    assert isinstance(facts("")["mgmt.http_enabled"], Unknown)
    found = facts("ip ssh version 2\naaa new-model\nservice password-encryption\n")
    assert (found["mgmt.ssh_v2_only"], found["aaa.new_model"],
            found["auth.password_encryption"]) == (True, True, True)
    found = facts("")
    assert (found["mgmt.ssh_v2_only"], found["aaa.new_model"],
            found["auth.password_encryption"]) == (False, False, False)


def test_banner_configured_needs_text_in_login_motd_or_exec() -> None:
    assert facts("banner motd ^C^C\n")["mgmt.banner_configured"] is False
    assert facts("banner incoming ^CAuthorized only^C\n")["mgmt.banner_configured"] is False
    assert facts("banner exec ^CAuthorized only^C\n")["mgmt.banner_configured"] is True
    assert facts("banner login ^C\n   \n^C\n")["mgmt.banner_configured"] is False


def test_not_a_running_config() -> None:
    with pytest.raises(ParseError, match="not an IOS running-config"):
        ios.parse_running_config("logging host 10.0.0.1\nip http server\n")
    with pytest.raises(ParseError, match="indented line before any section"):
        ios.parse_running_config(" ip address 10.0.0.1 255.0.0.0\nhostname sw1\n")
    for line in ("hostname sw1", "version 15.2", "interface Vlan1", "end"):
        assert ios.parse_running_config(line + "\n")


def test_aaa_servers_are_listed_once_and_need_an_address() -> None:
    found = facts("tacacs-server host 10.0.0.9\ntacacs-server host 10.0.0.9\n"
                  "tacacs server TAC1\n address ipv4\n address ipv4 10.0.0.9\n"
                  "radius server R\n address ipv4 10.0.0.9\n")
    assert found["aaa.servers"] == [{"protocol": "tacacs+", "host": "10.0.0.9"},
                                    {"protocol": "radius", "host": "10.0.0.9"}]


def test_hostname_and_release_from_show_version_wins() -> None:
    found = facts("", release="12.2(55)SE12")
    assert found["identity.name"] == "sw1"
    assert ios.release_default("vty_transport_input", "12.2(55)SE12")[0] == ["all"]
    assert ios.release_default("vty_transport_input", "15.2(4)E8") is None
    assert ios.release_default("vty_transport_input", "") is None
    assert ios.release_default("vty_transport_input", None) is None


def test_ntp_server_in_two_vrfs_is_listed_once() -> None:
    found = facts("ntp server 10.0.0.1 prefer\nntp server vrf Mgmt-intf 10.0.0.1 key 1\n")
    assert found["time.ntp_servers"] == ["10.0.0.1"]
