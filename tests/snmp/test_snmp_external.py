"""Clients nobody here wrote read the simulator: net-snmp (snmpget, snmpwalk,
snmpbulkwalk) and nmap's snmp-sysdescr / snmp-info; the probe agrees with them.

nmap's snmp-sysdescr port rule is ``port_or_service(161, "snmp", "udp")``: on a high port
the script is forced with ``--script +snmp-sysdescr`` (as in ../shared's nmap field notes);
one test binds 127.0.0.1:161 (we run as root) to check the unforced rule, and skips when
that port is taken or not bindable.
"""

from __future__ import annotations

import asyncio
import re
import socket

import pytest
from snmp_testkit import (
    CONPOT_WALK,
    LINUX_SNMPREC,
    assert_read_only,
    credentials_for,
    env_secret,
    probe,
    values,
)

from otaudit.simulators import bundled_profile
from otaudit.simulators.snmp.device import SnmpSimulator, from_profile
from otaudit.simulators.snmp.profile import SnmpProfile
from otaudit.simulators.snmp.recordings import load_recording, parse_snmpwalk

from tests_helpers import require_tool

pytestmark = pytest.mark.external_tool
V3 = ["-v3", "-l", "authPriv", "-u", "otaudit-ro", "-a", "SHA", "-A", "xc208-auth-Vb81",
      "-x", "AES", "-X", "xc208-priv-Qe42"]
NO_MIBS = ["-m", "", "-On", "-t", "1", "-r", "0"]


async def run(tool: str, *args: str, timeout: float = 60) -> str:
    """Run a client without blocking the event loop the simulator answers on."""
    proc = await asyncio.create_subprocess_exec(
        require_tool(tool), *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def walk_values(text: str) -> dict[str, str]:
    """``.oid = TYPE: value`` lines -> {oid: value as printed}."""
    return {m.group(1): m.group(2) for m in
            re.finditer(r"^\.([\d.]+) = (?:[\w -]+: )?(.*)$", text, re.MULTILINE)}


async def test_net_snmp_reads_the_weak_profile_over_v1_and_v2c():
    profile = SnmpProfile.load(bundled_profile("snmp", "scalance-x204irt-weak"))
    async with SnmpSimulator(profile) as sim:
        where = f"127.0.0.1:{sim.port}"
        v1 = walk_values(await run("snmpwalk", "-v1", "-c", "public", *NO_MIBS, where,
                                   "1.3.6.1.2.1.1"))
        names = walk_values(await run("snmpbulkwalk", "-v2c", "-c", "public", *NO_MIBS, where,
                                      "1.3.6.1.2.1.31.1.1.1.1"))
        oper = walk_values(await run("snmpbulkwalk", "-v2c", "-c", "public", *NO_MIBS, where,
                                     "1.3.6.1.2.1.2.2.1.8"))
    assert v1["1.3.6.1.2.1.1.1.0"] == f'"{profile.system.descr}"'
    assert v1["1.3.6.1.2.1.1.5.0"] == f'"{profile.system.name}"'
    assert v1["1.3.6.1.2.1.1.2.0"] == "." + profile.system.object_id
    assert [v.strip('"') for v in names.values()] == [i.name for i in profile.interfaces]
    assert [int(v) for v in oper.values()] == [1 if i.oper == "up" else 2
                                               for i in profile.interfaces]
    assert_read_only(sim)


async def test_net_snmp_reads_the_hardened_profile_over_v3_only():
    profile = SnmpProfile.load(bundled_profile("snmp", "scalance-xc208-hardened"))
    async with SnmpSimulator(profile) as sim:
        where = f"127.0.0.1:{sim.port}"
        got = walk_values(await run("snmpget", *V3, *NO_MIBS, where, "1.3.6.1.2.1.1.1.0",
                                    "1.3.6.1.2.1.47.1.1.1.1.9.1",
                                    "1.3.6.1.2.1.47.1.1.1.1.11.1"))
        entities = walk_values(await run("snmpbulkwalk", *V3, *NO_MIBS, where,
                                         "1.3.6.1.2.1.47.1.1.1.1.7"))
        proc = await asyncio.create_subprocess_exec(
            require_tool("snmpget"), "-v2c", "-c", "public", *NO_MIBS, where,
            "1.3.6.1.2.1.1.1.0", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
    assert got["1.3.6.1.2.1.1.1.0"] == f'"{profile.system.descr}"'
    assert got["1.3.6.1.2.1.47.1.1.1.1.9.1"] == '"V04.05.00"'
    assert got["1.3.6.1.2.1.47.1.1.1.1.11.1"] == '"SVPK9876543"'
    assert [v.strip('"') for v in entities.values()] == [e.name for e in profile.entities]
    assert proc.returncode != 0 and b"Timeout" in err  # v2c is off
    assert_read_only(sim)


async def test_net_snmp_and_the_probe_agree(monkeypatch):
    profile = SnmpProfile.load(bundled_profile("snmp", "hirschmann-rs20-weak"))
    async with SnmpSimulator(profile) as sim:
        where = f"127.0.0.1:{sim.port}"
        system = walk_values(await run("snmpwalk", "-v2c", "-c", "public", *NO_MIBS, where,
                                       "1.3.6.1.2.1.1"))
        hm = walk_values(await run("snmpget", "-v2c", "-c", "public", *NO_MIBS, where,
                                   "1.3.6.1.4.1.248.14.1.1.2.0"))
        admin = walk_values(await run("snmpbulkwalk", "-v2c", "-c", "public", *NO_MIBS, where,
                                      "1.3.6.1.2.1.2.2.1.7"))
        obs = await probe(sim.port, **credentials_for(profile, monkeypatch))
    got = values(obs)
    assert f'"{got["snmp.sys_descr"]}"' == system["1.3.6.1.2.1.1.1.0"]
    assert f'"{got["snmp.sys_location"]}"' == system["1.3.6.1.2.1.1.6.0"]
    assert got["snmp.sys_object_id"] == system["1.3.6.1.2.1.1.2.0"].lstrip(".")
    assert got["identity.firmware_version"] in hm["1.3.6.1.4.1.248.14.1.1.2.0"]
    assert [1 if i["admin"] == "up" else 2 for i in got["snmp.interfaces"]] == \
        [int(v) for v in admin.values()]
    assert_read_only(sim)


async def test_net_snmp_reads_a_replayed_snmprec_exactly():
    """Every OID of the recording comes back through snmpbulkwalk with the same value."""
    recorded = load_recording(LINUX_SNMPREC)
    async with from_profile(None, snmprec=LINUX_SNMPREC) as sim:
        text = await run("snmpbulkwalk", "-v2c", "-c", "public", *NO_MIBS,
                         f"127.0.0.1:{sim.port}", ".1")
    walked = parse_snmpwalk(text)
    assert walked.keys() == recorded.keys()
    differing = {oid for oid in recorded if walked[oid] != recorded[oid]}
    # net-snmp prints the 3 UCD laLoadFloat Opaque values as decoded floats ("Float: 0.46")
    assert differing == {(1, 3, 6, 1, 4, 1, 2021, 10, 1, 6, n) for n in (1, 2, 3)}
    assert_read_only(sim)


async def test_net_snmp_reproduces_the_conpot_recording(shared_dir):
    """Replaying conpot's snmpwalk and walking it again gives the same lines.

    The recording holds only the system group, so our walk ends at the end of the MIB
    view (net-snmp prints "No more variables left ..."); conpot's MIB went on.
    """
    original = (shared_dir / CONPOT_WALK).read_text().splitlines()
    async with from_profile(None, snmprec=shared_dir / CONPOT_WALK) as sim:
        text = await run("snmpwalk", "-v2c", "-c", "public", "-On", "-t", "1", "-r", "0",
                         f"127.0.0.1:{sim.port}", "1.3.6.1.2.1.1")
    lines = text.splitlines()
    assert lines[-1].startswith(".1.3.6.1.2.1.1.8.0 = No more variables left in this MIB View")
    assert lines[:-1] == [line for line in original if line.startswith(".")]
    assert_read_only(sim)


async def nmap(*args: str) -> str:
    return await run("nmap", "-sU", "-Pn", "-n", "--max-retries", "0", "--max-rtt-timeout",
                     "300ms", *args, "127.0.0.1", timeout=90)


async def test_nmap_snmp_sysdescr_reads_profile_and_recording(shared_dir):
    profile = SnmpProfile.load(bundled_profile("snmp", "scalance-x204irt-weak"))
    async with SnmpSimulator(profile) as sim:
        out = await nmap("-p", str(sim.port), "--script", "+snmp-sysdescr")
    assert f"| snmp-sysdescr: {profile.system.descr}\n" in out
    assert re.search(r"\|_  System uptime: .* \(\d+ timeticks\)", out)
    assert_read_only(sim)
    async with from_profile(None, snmprec=shared_dir / CONPOT_WALK) as sim:
        out = await nmap("-p", str(sim.port), "--script", "+snmp-sysdescr")
    assert "| snmp-sysdescr: Siemens, SIMATIC, S7-200\n" in out
    assert "(89 timeticks)" in out
    assert_read_only(sim)


async def test_nmap_snmp_info_reads_the_v3_engine_id():
    async with from_profile(bundled_profile("snmp", "scalance-xc208-hardened")) as sim:
        out = await nmap("-p", str(sim.port), "--script", "+snmp-info")
    assert "enterprise: Siemens AG" in out
    assert "engineIDData: 208756001208" in out
    assert_read_only(sim)


async def test_nmap_unforced_on_port_161(monkeypatch):
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 161))
    except OSError as exc:
        pytest.skip(f"127.0.0.1:161 not bindable here: {exc}")
    async with from_profile(bundled_profile("snmp", "hirschmann-rs20-weak"), port=161) as sim:
        out = await nmap("-p", "161", "--script", "snmp-sysdescr")
        obs = await probe(161, community=env_secret(monkeypatch, "T_C", "public"))
    assert "161/udp open  snmp" in out
    assert "| snmp-sysdescr: Hirschmann Railswitch" in out
    assert values(obs)["snmp.sys_descr"] == "Hirschmann Railswitch"
    assert_read_only(sim)


async def test_counter64_is_hidden_from_snmpv1():
    """RFC 2576: an SNMPv1 GETNEXT skips Counter64 objects (v1 cannot carry them)."""
    async with from_profile(None, snmprec=LINUX_SNMPREC) as sim:
        where = f"127.0.0.1:{sim.port}"
        v1 = await run("snmpwalk", "-v1", "-c", "public", *NO_MIBS, where, "1.3.6.1.2.1.31.1.1.1")
        v2 = await run("snmpbulkwalk", "-v2c", "-c", "public", *NO_MIBS, where,
                       "1.3.6.1.2.1.31.1.1.1")
    assert "Counter64" in v2 and "Counter64" not in v1
    assert ".1.3.6.1.2.1.31.1.1.1.1.2 = STRING: \"eth0\"" in v1
    assert_read_only(sim)
