"""snmpwalk text with symbolic OIDs (``-m ALL``) and the file problems a replay must report."""

from __future__ import annotations

import logging

import pytest
import yaml
from pysnmp.smi import builder, view
from snmp_testkit import LINUX_SNMPREC, probe, values

from otaudit.errors import InputError
from otaudit.simulators.snmp.device import SnmpSimulator, from_profile, recording_profile
from otaudit.simulators.snmp.names import NAMES_FILE, Unresolved, resolve
from otaudit.simulators.snmp.recordings import (
    RecordingError,
    load_recording,
    parse_snmpwalk,
    read_recording,
    read_snmpwalk,
)

# Cisco's multi-line sysDescr printed without quotes (display hint 255a), as net-snmp does
# with MIBs loaded; the sysUpTime alias and a symbolic value OID; a string index.
NET_SNMP_SYMBOLIC = """\
SNMPv2-MIB::sysDescr.0 = STRING: Cisco IOS Software, IE3000 Software (IE3000-UNIVERSALK9-M), \
Version 15.2(4)EA9, RELEASE SOFTWARE (fc2)
Technical Support: http://www.cisco.com/techsupport
Copyright (c) 1986-2019 by Cisco Systems, Inc.
SNMPv2-MIB::sysObjectID.0 = OID: SNMPv2-SMI::enterprises.9.1.959
DISMAN-EVENT-MIB::sysUpTimeInstance = Timeticks: (101714) 0:16:57.14
SNMPv2-MIB::sysContact.0 = STRING:
SNMPv2-MIB::sysName.0 = STRING: ie3000-cell4
SNMPv2-MIB::sysLocation.0 = STRING: Hall 4
SNMPv2-MIB::sysServices.0 = INTEGER: 6
SNMPv2-MIB::sysORID.1 = OID: SNMP-MPD-MIB::snmpMPDCompliance
IF-MIB::ifDescr.1 = STRING: FastEthernet1/1
IF-MIB::ifAdminStatus.1 = INTEGER: up(1)
IF-MIB::ifOperStatus.1 = INTEGER: down(2)
IF-MIB::ifName.1 = STRING: Fa1/1
SNMP-VIEW-BASED-ACM-MIB::vacmSecurityToGroupStatus.2."public" = INTEGER: active(1)
TCP-MIB::tcpListenerProcess.ipv4."0.0.0.0".23 = Gauge32: 0
ENTITY-MIB::entPhysicalSoftwareRev.1001 = STRING: 15.2(4)EA9
CISCO-PRODUCTS-MIB::ciscoIE300024TC.0 = INTEGER: 1
"""


def _symbolic_name(mib_view: view.MibViewController, reverse: dict, oid: tuple) -> str | None:
    """``MODULE::name.index`` for ``oid`` as net-snmp prints it (numeric indexes)."""
    for cut in range(len(oid), 0, -1):
        if oid[:cut] in reverse:
            module_name = reverse[oid[:cut]]
            return module_name + "".join(f".{n}" for n in oid[cut:])
    try:
        prefix, _label, suffix = mib_view.get_node_name(oid)
        module, name, _ = mib_view.get_node_location(prefix)
    except Exception:
        return None
    if len(prefix) < 5:
        return None
    return f"{module}::{name}" + "".join(f".{n}" for n in suffix)


def symbolic_walk(numeric: dict) -> str:
    """The recording as ``snmpwalk -m ALL`` prints it (names for what a MIB names)."""
    mib = builder.MibBuilder()
    mib.load_modules()
    mib_view = view.MibViewController(mib)
    reverse = {tuple(int(p) for p in str(oid).split(".")): name
               for name, oid in yaml.safe_load(NAMES_FILE.read_text()).items()}
    lines = []
    for oid, value in sorted(numeric.items()):
        name = _symbolic_name(mib_view, reverse, oid) or "." + ".".join(map(str, oid))
        kind = type(value).__name__
        if kind == "OctetString":
            raw = bytes(value)
            text = raw.decode("ascii", "replace")
            if raw.isascii() and text.isprintable():
                lines.append(f'{name} = STRING: "{text}"')
            else:
                lines.append(f"{name} = Hex-STRING: {raw.hex(' ').upper()}")
        elif kind == "ObjectIdentifier":
            lines.append(f"{name} = OID: .{value}")
        elif kind in ("Integer32", "Integer"):
            lines.append(f"{name} = INTEGER: {int(value)}")
        elif kind == "TimeTicks":
            lines.append(f"{name} = Timeticks: ({int(value)}) 0:00:00.00")
        elif kind == "IpAddress":
            lines.append(f"{name} = IpAddress: {value.prettyPrint()}")
        elif kind in ("Counter32", "Gauge32", "Counter64"):
            lines.append(f"{name} = {kind}: {int(value)}")
    return "\n".join(lines) + "\n"


def test_names_resolve_like_net_snmp_prints_them():
    assert resolve("SNMPv2-MIB::sysDescr.0") == (1, 3, 6, 1, 2, 1, 1, 1, 0)
    assert resolve("DISMAN-EVENT-MIB::sysUpTimeInstance") == (1, 3, 6, 1, 2, 1, 1, 3, 0)
    assert resolve("iso.3.6.1.2.1.1.5.0") == (1, 3, 6, 1, 2, 1, 1, 5, 0)  # no MIBs installed
    assert resolve("SNMPv2-SMI::enterprises.248.14") == (1, 3, 6, 1, 4, 1, 248, 14)
    assert resolve('TCP-MIB::tcpListenerProcess.ipv4."10.0.0.1".502')[-7:] == \
        (1, 4, 10, 0, 0, 1, 502)
    assert resolve("IF-MIB::ifDescr.'ab'")[-2:] == (97, 98)  # IMPLIED: no length
    assert resolve('X::y."ab"'.replace("X::y", "SNMPv2-MIB::sysORID"))[-3:] == (2, 97, 98)
    for bad in ("VENDOR-MIB::thing.0", "IF-MIB::ifDescr.up", 'TCP-MIB::tcp.ipv4."x"'):
        with pytest.raises(Unresolved):
            resolve(bad)


def test_symbolic_walk_values_quirks_and_unresolved_names_listed():
    recording = read_snmpwalk(NET_SNMP_SYMBOLIC, source="ie3000.txt")
    table = recording.table
    descr = bytes(table[(1, 3, 6, 1, 2, 1, 1, 1, 0)]).decode()
    assert descr.endswith("Copyright (c) 1986-2019 by Cisco Systems, Inc.")
    assert descr.count("\n") == 2
    assert str(table[(1, 3, 6, 1, 2, 1, 1, 2, 0)]) == "1.3.6.1.4.1.9.1.959"
    assert int(table[(1, 3, 6, 1, 2, 1, 1, 3, 0)]) == 101714
    assert bytes(table[(1, 3, 6, 1, 2, 1, 1, 4, 0)]) == b""
    assert int(table[(1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 1)]) == 2
    assert (1, 3, 6, 1, 2, 1, 6, 20, 1, 4, 1, 4, 0, 0, 0, 0, 23) in table
    assert recording.bad_lines == []
    assert len(recording.unresolved) == 1
    assert recording.unresolved[0].startswith("ie3000.txt:18: CISCO-PRODUCTS-MIB::ciscoIE300024TC")
    with pytest.raises(RecordingError, match=r"1 line\(s\) could not be read.*:18: CISCO"):
        parse_snmpwalk(NET_SNMP_SYMBOLIC, source="ie3000.txt")


async def test_symbolic_walk_replays_to_the_facts_of_the_numeric_one(tmp_path, monkeypatch):
    """The real Linux walk printed with names: same OID table, same facts."""
    numeric = load_recording(LINUX_SNMPREC)
    text = symbolic_walk(numeric)
    assert text.count("IF-MIB::") > 50 and text.count("SNMPv2-MIB::") > 5
    path = tmp_path / "linux.symbolic.txt"
    path.write_text(text)
    replayed = load_recording(path)
    comparable = {oid for oid, v in numeric.items()
                  if type(v).__name__ not in ("Opaque", "Null")}
    assert set(replayed) == comparable
    assert all(replayed[oid] == numeric[oid] for oid in comparable)
    monkeypatch.setenv("T_C", "public")
    facts = []
    for source in (LINUX_SNMPREC, path):
        async with SnmpSimulator(recording_profile(source)) as sim:
            facts.append(values(await probe(sim.port, version="v2c",
                                            community={"env": "T_C"})))
    uptime = "snmp.sys_uptime"
    assert {k: v for k, v in facts[0].items() if k != uptime} == \
        {k: v for k, v in facts[1].items() if k != uptime}
    assert facts[1]["snmp.interfaces"] and facts[1]["snmp.sys_descr"].startswith("Linux cray")


def test_iso_prefix_walk_of_a_host_without_mibs():
    table = parse_snmpwalk('iso.3.6.1.2.1.1.5.0 = STRING: "hmi-3"\n'
                           "iso.3.6.1.2.1.1.2.0 = OID: iso.3.6.1.4.1.8072.3.2.10\n")
    assert bytes(table[(1, 3, 6, 1, 2, 1, 1, 5, 0)]) == b"hmi-3"
    assert str(table[(1, 3, 6, 1, 2, 1, 1, 2, 0)]) == "1.3.6.1.4.1.8072.3.2.10"


def test_a_file_without_any_oid_is_a_clear_error(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("Created directory: /var/lib/snmp\nTimeout: No Response from 10.0.0.1\n")
    with pytest.raises(RecordingError, match=r"empty\.txt: the file yields no OID"):
        load_recording(path)
    path.write_text("VENDOR-MIB::thing.0 = STRING: x\nVENDOR-MIB::other.0 = INTEGER: 1\n")
    with pytest.raises(RecordingError, match=r"yields no OID.*2 line\(s\) name an OID no MIB"):
        load_recording(path)


def test_dropped_lines_are_counted_with_first_examples(tmp_path, caplog):
    lines = ["1.3.6.1.2.1.1.1.0|4|ok"] + [f"1.3.6.1.2.1.4.20.1.1.10.xx.0.{n}|64|10.0.0.1"
                                        for n in range(7)]
    path = tmp_path / "redacted.snmprec"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordingError) as err:
        load_recording(path)
    message = str(err.value)
    assert "7 line(s) could not be read" in message and "(and 2 more)" in message
    assert f"{path}:2: not a numeric OID" in message
    with pytest.raises(InputError, match="7 line"):
        from_profile(None, snmprec=path)
    with caplog.at_level(logging.WARNING):
        table = load_recording(path, skip_bad_lines=True)
    assert len(table) == 1 and "were skipped" in caplog.text
    sim = from_profile(None, snmprec=path, skip_bad_lines=True)
    assert len(sim.table) == 1


def test_lines_split_on_lf_only_and_crlf_is_dropped(tmp_path):
    path = tmp_path / "vt.snmprec"
    path.write_bytes(b"1.3.6.1.2.1.1.1.0|4|Quido\r\n1.3.6.1.2.1.17.4.3.1.1.55|4|H!\x0b7 S\r\n")
    recording = read_recording(path)
    assert recording.bad_lines == []
    assert bytes(recording.table[(1, 3, 6, 1, 2, 1, 1, 1, 0)]) == b"Quido"
    assert bytes(recording.table[(1, 3, 6, 1, 2, 1, 17, 4, 3, 1, 1, 55)]) == b"H!\x0b7 S"
