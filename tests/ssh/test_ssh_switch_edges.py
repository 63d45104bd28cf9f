"""Cisco IOS NTP servers and HiOS unused ports read exactly (issue 23: slice survivors)."""

from __future__ import annotations

from otaudit.probes.ssh.parse import hios, ios

HIOS_HEADER = "! RSP Configuration\n! Version: HiOS-2A-09.0.04\n"


def test_ios_ntp_servers_after_vrf_and_address_family_words() -> None:
    text = ("version 15.2\nhostname sw1\n"
            "ntp server vrf MGMT 10.0.0.1 prefer\n"
            "ntp server ip 10.0.0.2\n"
            "ntp server ipv6 2001:db8::3\n"
            "ntp server vrf MGMT ip 10.0.0.4\n"
            "sntp server 10.0.0.5\n"
            "ntp server 10.0.0.1\n"
            "ntp server vrf\n"
            "end\n")
    facts = ios.ios_config_facts(ios.parse_running_config(text))
    assert facts["time.ntp_servers"] == ["10.0.0.1", "10.0.0.2", "2001:db8::3", "10.0.0.4",
                                         "10.0.0.5"]


def test_hios_counts_up_ports_without_name_or_vlan_only() -> None:
    text = HIOS_HEADER + (
        "interface 1/1\n exit\n"                                   # counted
        "interface 1/2\n shutdown\n exit\n"                        # shut down
        "interface 1/3\n name uplink\n exit\n"                     # named
        "interface 1/4\n vlan participation include 10\n exit\n"   # in a VLAN
        "interface 1/5\n vlan pvid 20\n exit\n"                    # in a VLAN
        "interface 1/6\n name\n exit\n"                            # empty name: counted
        "interface vlan/1\n exit\n"                                # not a port
        "interface 1/7\n no shutdown\n exit\n")                    # up: counted
    facts = hios.hios_config_facts(hios.parse_script(text), "2.0")
    assert facts["interfaces.unused_up"] == 3
