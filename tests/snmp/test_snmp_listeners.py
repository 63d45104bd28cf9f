"""TCP/UDP listener tables -> services.listening and mgmt.* (the facts the SSH path gives)."""

from __future__ import annotations

import pytest
from snmp_testkit import LINUX_SNMPREC, probe, values

from otaudit.probes.base import ParseError
from otaudit.probes.snmp.parse import Val, parse_listeners, parse_oid, reachable
from otaudit.simulators.snmp.device import SnmpSimulator, recording_profile


def vb(oid: str, value: int) -> tuple[tuple[int, ...], Val]:
    return parse_oid(oid), Val("Integer", value)


def test_all_four_tables():
    rows = parse_listeners(
        [vb("1.3.6.1.2.1.6.20.1.4.1.4.0.0.0.0.502", 0),
         vb("1.3.6.1.2.1.6.20.1.4.2.16.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.23", 7)],
        [vb("1.3.6.1.2.1.6.13.1.1.0.0.0.0.80.0.0.0.0.0", 2),
         vb("1.3.6.1.2.1.6.13.1.1.10.0.0.5.22.10.0.0.9.51000", 5)],  # established
        [vb("1.3.6.1.2.1.7.7.1.8.1.4.0.0.0.0.161.0.0.0.1", 0),
         vb("1.3.6.1.2.1.7.7.1.8.1.4.10.0.0.5.5000.1.4.10.0.0.9.6000.1", 0)],  # connected
        [vb("1.3.6.1.2.1.7.5.1.2.127.0.0.1.123", 123)])
    assert rows == [
        {"proto": "tcp", "address": "::1", "port": 23, "process": None},
        {"proto": "tcp", "address": "0.0.0.0", "port": 80, "process": None},
        {"proto": "tcp", "address": "0.0.0.0", "port": 502, "process": None},
        {"proto": "udp", "address": "127.0.0.1", "port": 123, "process": None},
        {"proto": "udp", "address": "0.0.0.0", "port": 161, "process": None}]
    assert reachable(rows, "tcp", 502) and reachable(rows, "tcp", 80)
    assert not reachable(rows, "tcp", 23)  # loopback only
    assert not reachable(rows, "udp", 123) and not reachable(rows, "tcp", 443)
    with pytest.raises(ParseError):
        parse_listeners([vb("1.3.6.1.2.1.6.20.1.4.1.4.0.0", 0)], [], [], [])


async def test_real_linux_walk_listeners(monkeypatch):
    """The Net-SNMP Linux walk (legacy tcpConnTable/udpTable) through simulator and probe."""
    monkeypatch.setenv("T_C", "public")
    async with SnmpSimulator(recording_profile(LINUX_SNMPREC)) as sim:
        obs = await probe(sim.port, version="v2c", community={"env": "T_C"})
    facts = values(obs)
    listening = {(r["proto"], r["port"]) for r in facts["services.listening"]}
    assert {("tcp", 22), ("tcp", 25), ("tcp", 6000), ("udp", 123)} <= listening
    assert ("tcp", 631) in listening  # bound to 127.0.0.1 only, still listed
    assert {"proto": "tcp", "address": "::", "port": 80, "process": None} in \
        facts["services.listening"]  # tcpListenerTable, IPv6 wildcard
    assert facts["mgmt.http_enabled"] is True and facts["mgmt.telnet_enabled"] is False
    assert facts["mgmt.modbus_listening"] is False
    assert obs.facts["mgmt.telnet_enabled"].evidence


async def test_no_listener_table_is_unknown(monkeypatch, tmp_path):
    path = tmp_path / "system-only.snmprec"
    path.write_text("1.3.6.1.2.1.1.1.0|4|Hirschmann Railswitch\n"
                    "1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.248.14.10.22\n")
    monkeypatch.setenv("T_C", "public")
    async with SnmpSimulator(recording_profile(path)) as sim:
        obs = await probe(sim.port, version="v2c", community={"env": "T_C"})
    assert "no TCP listener table" in obs.unknown["mgmt.telnet_enabled"]
    assert "services.listening" in obs.unknown


async def test_bundled_profiles_serve_their_listeners(monkeypatch):
    from otaudit.simulators import bundled_profile
    from otaudit.simulators.snmp.device import from_profile

    monkeypatch.setenv("T_C", "public")
    async with from_profile(bundled_profile("snmp", "hirschmann-rs20-weak")) as sim:
        facts = values(await probe(sim.port, version="v2c", community={"env": "T_C"}))
    assert (facts["mgmt.telnet_enabled"], facts["mgmt.http_enabled"],
            facts["mgmt.https_enabled"]) == (True, True, False)
    assert {"proto": "udp", "address": "0.0.0.0", "port": 161, "process": None} in \
        facts["services.listening"]
