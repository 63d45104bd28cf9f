"""The SNMP simulator on its own: binding, profiles, versions, access, request log."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import pytest
from pydantic import ValidationError
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    get_cmd,
    usmAesCfb256Protocol,
    usmHMAC192SHA256AuthProtocol,
)
from snmp_testkit import LINUX_SNMPREC, PROFILES, RawAgent, assert_read_only, env_secret, probe

from otaudit.errors import InputError
from otaudit.probes.snmp.parse import build_v3_discovery, parse_v3_report
from otaudit.simulators import bundled_profile, create_simulator
from otaudit.simulators.base import NotLoopback
from otaudit.simulators.snmp.device import from_profile
from otaudit.simulators.snmp.profile import SnmpProfile

from tests_helpers import free_udp_port

SYS_DESCR = "1.3.6.1.2.1.1.1.0"


async def snmp_get(port: int, auth, oid: str = SYS_DESCR, timeout: float = 0.3):
    engine = SnmpEngine()
    try:
        target = await UdpTransportTarget.create(("127.0.0.1", port), timeout=timeout,
                                                 retries=0)
        return await get_cmd(engine, auth, target, ContextData(),
                             ObjectType(ObjectIdentity(oid)), lookupMib=False)
    finally:
        engine.close_dispatcher()


async def discovery(port: int) -> bytes | None:
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()
    agent = RawAgent(lambda data: got.set_result(data) if not got.done() else None)
    transport, _ = await loop.create_datagram_endpoint(lambda: agent,
                                                       remote_addr=("127.0.0.1", port))
    try:
        transport.sendto(build_v3_discovery(99, 1))
        return await asyncio.wait_for(got, 0.3)
    except TimeoutError:
        return None
    finally:
        transport.close()


@pytest.mark.parametrize("name", PROFILES)
def test_bundled_profiles_validate(name):
    profile = SnmpProfile.load(bundled_profile("snmp", name))
    assert profile.system is not None and profile.agent.versions


def test_simulator_binds_loopback_only():
    with pytest.raises(NotLoopback):
        from_profile(None, host="0.0.0.0")
    with pytest.raises(NotLoopback):
        from_profile(None, host="192.168.1.10")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"colour": "red"}, "unknown option"),
    ({"community": "x"}, "--community only applies to --snmprec"),
    ({"snmprec": "/nonexistent.snmprec"}, "No such file"),
])
def test_bad_simulator_options(kwargs, message):
    with pytest.raises(InputError, match=message):
        from_profile(None, **kwargs)
    with pytest.raises(InputError, match="either --profile or --snmprec"):
        from_profile(bundled_profile("snmp", PROFILES[0]), snmprec=LINUX_SNMPREC)


def test_bad_profile_file_names_file_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nsystem: {descr: d}\nagent: {communities: [{community: c}]}\n"
                    "extra:\n  - {oid: 1.3.6.1.4.1.9.0, type: Counter32, value: lots}\n")
    with pytest.raises(InputError, match="bad Counter32 value 'lots'"):
        from_profile(path)
    path.write_text("name: bad\nsystem: {descr: d}\nagent: {versions: [v4]}\n")
    with pytest.raises(InputError, match=r"agent\.versions\.0"):
        from_profile(path)


@pytest.mark.parametrize(("data", "message"), [
    ({"name": "x", "agent": {"versions": ["v2c"]}, "system": {"descr": "d"}},
     "no communities"),
    ({"name": "x", "agent": {"versions": ["v3"], "communities": [{"community": "c"}]},
      "system": {"descr": "d"}}, "no users"),
    ({"name": "x", "agent": {"versions": ["v3"], "users": [
        {"name": "u", "priv": "AES-128", "priv_key": "12345678"}]}, "system": {"descr": "d"}},
     "privacy needs authentication"),
    ({"name": "x"}, "needs 'system' or a 'recording'"),
])
def test_bad_profiles_are_rejected(data, message):
    with pytest.raises(ValidationError, match=message):
        SnmpProfile.model_validate(data)


async def test_port_zero_picks_a_free_port_and_stop_releases_it():
    sim = create_simulator("snmp", None)
    await sim.start()
    port = sim.port
    assert port > 0
    await sim.stop()
    again = create_simulator("snmp", None, port=port)  # the port is free again
    await again.start()
    assert again.port == port
    await again.stop()


async def test_versions_communities_and_users():
    """Weak X204IRT: v1+v2c; hardened XC208: v3 only, authPriv, VACM per user."""
    async with from_profile(bundled_profile("snmp", "scalance-x204irt-weak")) as weak, \
            from_profile(bundled_profile("snmp", "scalance-xc208-hardened")) as hard:
        for mp_model in (0, 1):
            ei, es, _, vbs = await snmp_get(weak.port, CommunityData("public", mpModel=mp_model))
            assert ei is None and not es
            assert bytes(vbs[0][1]).startswith(b"Siemens, SIMATIC NET, SCALANCE X204IRT")
        ei, *_ = await snmp_get(weak.port, CommunityData("nope", mpModel=1))
        assert type(ei).__name__ == "RequestTimedOut"
        assert await discovery(weak.port) is None  # v3 disabled: dropped unanswered
        ei, *_ = await snmp_get(hard.port, CommunityData("public", mpModel=1))
        assert type(ei).__name__ == "RequestTimedOut"  # v2c disabled
        report = parse_v3_report(await discovery(hard.port), 99)
        assert report.engine_id.hex() == "800010e903208756001208" and report.enterprise == 4329
        admin = UsmUserData("netadmin", "xc208-adm-auth-3Lp0", "xc208-adm-priv-8Zt5",
                            authProtocol=usmHMAC192SHA256AuthProtocol,
                            privProtocol=usmAesCfb256Protocol)
        ei, es, _, vbs = await snmp_get(hard.port, admin, "1.3.6.1.2.1.47.1.1.1.1.10.1")
        assert ei is None and bytes(vbs[0][1]) == b"V04.05.00"
    weak_log = [(r.kind, r.detail.get("version"), r.detail.get("community"),
                 r.detail["accepted"]) for r in weak.log.records]
    assert ("GET", "v1", "public", True) in weak_log
    assert ("GET", "v2c", "nope", False) in weak_log
    assert ("GET", "v3", None, False) in weak_log
    hard_log = [(r.kind, r.detail.get("user"), r.detail.get("security_level"),
                 r.detail["accepted"]) for r in hard.log.records]
    assert ("GET", "netadmin", "authPriv", True) in hard_log  # decrypted, then logged as GET
    assert "xc208-adm" not in json.dumps([r.detail for r in hard.log.records])
    assert_read_only(weak)
    assert_read_only(hard)


async def test_malformed_datagrams_are_logged():
    async with from_profile(None) as sim:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=("127.0.0.1", sim.port))
        transport.sendto(b"\x30\x05junk!")
        await asyncio.sleep(0.05)
        transport.close()
        ei, *_ = await snmp_get(sim.port, CommunityData("public", mpModel=1))
        assert ei is None  # the agent survives junk
    assert sim.log.records[0].kind == "MALFORMED"


async def test_sim_cli_replays_a_recording(tmp_path, monkeypatch):
    """``otaudit sim snmp --snmprec FILE``: a separate process the probe then reads."""
    port, log = free_udp_port(), tmp_path / "sim.jsonl"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "otaudit.cli.main", "sim", "snmp", "--snmprec",
        str(LINUX_SNMPREC), "--community", "site-ro", "--port", str(port), "--log", str(log),
        stderr=asyncio.subprocess.PIPE)
    try:
        await asyncio.wait_for(_line_with(proc.stderr, f"listening on 127.0.0.1:{port}"), 20)
        obs = await probe(port, community=env_secret(monkeypatch, "T_C", "site-ro"))
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    assert obs.status.value == "ok", obs.reason
    assert obs.facts["snmp.sys_name"].value == "tt"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records and {r["kind"] for r in records} <= {"GET", "GETBULK"}
    assert {r["detail"].get("community") for r in records} == {"site-ro", None}


async def _line_with(stream: asyncio.StreamReader, needle: str) -> str:
    """The first stderr line containing ``needle`` (earlier lines are not asserted on)."""
    while line := (await stream.readline()).decode():
        if needle in line:
            return line
    raise AssertionError(f"stderr closed before a line with {needle!r}")
