"""The SNMP probe against the simulator: bundled profiles, replayed recordings, posture."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from snmp_testkit import (
    CONPOT_WALK,
    LINUX_SNMPREC,
    PROFILES,
    assert_evidence_complete,
    assert_read_only,
    credentials_for,
    env_secret,
    expected_snmp_facts,
    observation_text,
    probe,
    values,
)

import otaudit.probes.snmp as snmp_package
from otaudit.simulators import bundled_profile
from otaudit.simulators.snmp.device import SnmpSimulator, from_profile
from otaudit.simulators.snmp.profile import Community, SnmpProfile

from tests_helpers import free_udp_port

IDENTITY = {
    "scalance-x204irt-weak": {
        "identity.vendor": "Siemens", "identity.product": "SCALANCE X204IRT",
        "identity.model": "SCALANCE X204IRT", "identity.order_code": "6GK5 204-0BA00-2BA3",
        "identity.firmware_version": "V05.04.02", "identity.hardware_version": "9",
        "identity.serial": "SVPL6100042"},
    "scalance-xc208-hardened": {
        "identity.vendor": "Siemens", "identity.product": "SCALANCE XC208",
        "identity.model": "SCALANCE XC208", "identity.order_code": "6GK5 208-0BA00-2AC2",
        "identity.firmware_version": "V04.05.00", "identity.hardware_version": "1",
        "identity.serial": "SVPK9876543"},
    "hirschmann-rs20-weak": {
        "identity.vendor": "Hirschmann", "identity.product": "Railswitch",
        "identity.firmware_version": "L2P-09.0.08", "identity.hardware_version": "1.10"},
}


def test_every_profile_has_identity_expectations():
    assert set(PROFILES) == set(IDENTITY)


@pytest.mark.parametrize("name", PROFILES)
async def test_probe_and_simulator_agree_on_profile(name, monkeypatch):
    profile = SnmpProfile.load(bundled_profile("snmp", name))
    options = credentials_for(profile, monkeypatch)
    async with SnmpSimulator(profile) as sim:
        obs = await probe(sim.port, **options)
    assert obs.status.value == "ok", obs.reason
    got = values(obs)
    for path, value in {**expected_snmp_facts(profile), **IDENTITY[name]}.items():
        assert got.get(path) == value, path
    assert got["snmp.sys_uptime"] >= 0
    for version in ("v1", "v2c"):
        if version in profile.agent.versions:
            assert got[f"snmp.{version}_enabled"] is True
        elif "community" in options:
            assert got[f"snmp.{version}_enabled"] is False
    if "v3" in profile.agent.versions:
        assert got["snmp.engine_id"] == profile.agent.engine_id
        user = profile.agent.users[0]
        assert got["snmp.v3_security_level"] == user.security_level
        assert got["snmp.v3_auth_protocol"] == user.auth
        assert got["snmp.v3_priv_protocol"] == user.priv
    else:
        assert got["snmp.v3_enabled"] is False
        assert "snmp.engine_id" in obs.unknown
    assert "snmp.default_communities_accepted" in obs.unknown  # not opted in
    assert_evidence_complete(obs)
    assert_read_only(sim)
    configured = os.environ["T_SNMP_COMMUNITY"] if "community" in options else None
    assert {r.detail.get("community") for r in sim.log.records} <= {configured, None}


async def test_replayed_linux_recording(monkeypatch):
    async with from_profile(None, snmprec=LINUX_SNMPREC) as sim:
        obs = await probe(sim.port, community=env_secret(monkeypatch, "T_C", "public"))
    got = values(obs)
    assert obs.status.value == "ok", obs.reason
    assert got["snmp.sys_descr"] == ("Linux cray 2.6.21.5-smp #2 SMP Tue Jun 19 14:58:11 CDT "
                                     "2007 i686")
    assert got["snmp.sys_object_id"] == "1.3.6.1.4.1.8072.3.2.10"
    assert got["snmp.sys_uptime"] == 233425120
    assert got["snmp.sys_contact"] == "Root <root@cray> (configure /etc/snmp/snmp.local.conf)"
    assert got["snmp.sys_name"] == "tt"
    assert got["snmp.interfaces"] == [{"index": 1, "name": "lo", "admin": "up", "oper": "up"},
                                      {"index": 2, "name": "eth0", "admin": "up", "oper": "up"}]
    assert got["snmp.entities"] == []  # no ENTITY-MIB in this recording
    assert got["identity.os"] == "Linux 2.6.21.5-smp"
    assert "identity.vendor" in obs.unknown and "identity.firmware_version" in obs.unknown
    assert got["snmp.versions_answering"] == ["v1", "v2c"]
    assert_read_only(sim)


async def test_replayed_conpot_snmpwalk(shared_dir, monkeypatch):
    async with from_profile(None, snmprec=shared_dir / CONPOT_WALK) as sim:
        obs = await probe(sim.port, community=env_secret(monkeypatch, "T_C", "public"))
    got = values(obs)
    assert obs.status.value == "ok", obs.reason
    assert {k: got[k] for k in ("snmp.sys_descr", "snmp.sys_object_id", "snmp.sys_uptime",
                                "snmp.sys_contact", "snmp.sys_name", "snmp.sys_location")} == {
        "snmp.sys_descr": "Siemens, SIMATIC, S7-200", "snmp.sys_object_id": "1.3.6.1.4.1.20408",
        "snmp.sys_uptime": 89, "snmp.sys_contact": "Siemens AG",
        "snmp.sys_name": "CP 443-1 EX40", "snmp.sys_location": "Venus"}
    assert got["identity.vendor"] == "Siemens"
    assert got["identity.product"] == "SIMATIC S7-200"
    assert got["snmp.interfaces"] == [] and got["snmp.interfaces_up_unused"] == 0
    assert_read_only(sim)


async def test_default_communities_only_when_opted_in(monkeypatch):
    profile = SnmpProfile.load(bundled_profile("snmp", "scalance-x204irt-weak"))
    options = credentials_for(profile, monkeypatch)
    async with SnmpSimulator(profile) as sim:
        quiet = await probe(sim.port, **options)
        tried_quiet = {r.detail.get("community") for r in sim.log.records}
        sim.log.clear()
        checked = await probe(sim.port, checks=True, **options)
    assert tried_quiet == {"plant-mon-7Kq2", None}  # None: the v3 engine discovery
    assert "snmp.default_communities_accepted" in quiet.unknown
    assert values(checked)["snmp.default_communities_accepted"] == ["public", "private"]
    tried = {r.detail.get("community") for r in sim.log.records}
    assert {"public", "private", "admin", "manager", "cisco"} <= tried
    assert_read_only(sim)


async def test_hardened_switch_accepts_no_default_community(monkeypatch):
    profile = SnmpProfile.load(bundled_profile("snmp", "scalance-xc208-hardened"))
    async with SnmpSimulator(profile) as sim:
        obs = await probe(sim.port, checks=True, **credentials_for(profile, monkeypatch))
    got = values(obs)
    assert got["snmp.default_communities_accepted"] == []
    assert "snmp.v2c_enabled" in obs.unknown  # no community configured, none accepted
    assert all(not r.detail["accepted"] for r in sim.log.records if "community" in r.detail)
    assert_read_only(sim)


async def test_secrets_never_reach_the_observation(monkeypatch):
    profile = SnmpProfile.load(bundled_profile("snmp", "scalance-xc208-hardened"))
    profile.agent.versions.append("v2c")
    profile.agent.communities.append(Community(community="Zq9-site-community"))
    options = credentials_for(profile, monkeypatch)
    async with SnmpSimulator(profile) as sim:
        good = await probe(sim.port, checks=True, **options)
        bad_key = await probe(sim.port, **{**options, "v3_auth_key": env_secret(
            monkeypatch, "T_BAD", "not-the-key-Hh3")})
    assert good.status.value == "ok" and bad_key.status.value == "auth_failed"
    for obs in (good, bad_key):
        text = observation_text(obs)
        for secret in ("Zq9-site-community", "xc208-auth-Vb81", "xc208-priv-Qe42",
                       "not-the-key-Hh3"):
            assert secret not in text
    # the log names communities and users, never v3 keys
    log_text = repr(sim.log.records)
    assert "xc208-auth-Vb81" not in log_text and "xc208-priv-Qe42" not in log_text
    assert values(good)["snmp.versions_answering"] == ["v2c", "v3"]
    assert_read_only(sim)


async def test_wrong_community_on_v2c_only_agent_is_a_timeout(monkeypatch):
    async with from_profile(bundled_profile("snmp", "hirschmann-rs20-weak")) as sim:
        obs = await probe(sim.port, community=env_secret(monkeypatch, "T_C", "wrong-one"))
    assert obs.status.value == "timeout"
    assert obs.reason == ("no SNMP answer with the configured v2c credential within 0.6 s: "
                          "wrong community or host down — cannot tell which (an SNMPv3 "
                          "engine discovery got no answer either)")
    assert "wrong-one" not in observation_text(obs)
    assert all(not r.detail["accepted"] for r in sim.log.records)
    assert_read_only(sim)


async def test_wrong_community_on_v3_agent_is_auth_failed(monkeypatch):
    async with from_profile(bundled_profile("snmp", "scalance-xc208-hardened")) as sim:
        obs = await probe(sim.port, community=env_secret(monkeypatch, "T_C", "public"))
    assert obs.status.value == "auth_failed"
    assert "answered an SNMPv3 engine discovery (engine 800010e903208756001208)" in obs.reason
    assert values(obs)["snmp.v3_enabled"] is True
    assert "snmp.v2c_enabled" in obs.unknown
    assert_read_only(sim)


async def test_nothing_listening_is_a_timeout_that_cannot_tell(monkeypatch):
    obs = await probe(free_udp_port(), community=env_secret(monkeypatch, "T_C", "public"))
    assert obs.status.value == "timeout"
    assert "cannot tell which" in obs.reason
    assert set(obs.unknown) >= {"snmp.sys_descr", "identity.firmware_version"}


@pytest.mark.parametrize(("change", "meaning"), [
    ({"v3_auth_key": "wrong-auth-key1"}, "wrong authentication key (WrongDigest)"),
    ({"v3_user": "nobody"}, "user unknown to the agent (UnknownUserName)"),
    ({"v3_priv_key": "wrong-priv-key1"}, "wrong privacy key or protocol (DecryptionError)"),
    ({"v3_priv_key": None}, "security level not allowed for this user"),
])
async def test_v3_failures_are_auth_failed(change, meaning, monkeypatch):
    profile = SnmpProfile.load(bundled_profile("snmp", "scalance-xc208-hardened"))
    options = credentials_for(profile, monkeypatch)
    for key, value in change.items():
        if key == "v3_user":
            options[key] = value
        elif value is None:
            options.pop(key)
        else:
            options[key] = env_secret(monkeypatch, "T_WRONG", value)
    async with SnmpSimulator(profile) as sim:
        obs = await probe(sim.port, **options)
    assert obs.status.value == "auth_failed"
    assert meaning in obs.reason
    assert values(obs)["snmp.v3_enabled"] is True  # a USM report is an answer
    assert_read_only(sim)


async def test_v3_auth_no_priv_user_and_v1_only_agent(tmp_path, monkeypatch):
    profile = SnmpProfile.model_validate({
        "name": "t", "system": {"descr": "Moxa test", "name": "edsx"},
        "agent": {"versions": ["v1", "v3"], "communities": [{"community": "c0mm"}],
                  "users": [{"name": "mon", "auth": "MD5", "auth_key": "md5-auth-key"}]},
        "interfaces": [{"index": 3, "name": "3", "admin": "up", "oper": "lowerLayerDown"}]})
    options = credentials_for(profile, monkeypatch)
    async with SnmpSimulator(profile) as sim:
        obs = await probe(sim.port, **options)
    got = values(obs)
    assert obs.status.value == "ok", obs.reason
    assert got["snmp.versions_answering"] == ["v1", "v3"]
    assert got["snmp.v1_enabled"] is True and got["snmp.v2c_enabled"] is False
    assert got["snmp.v3_security_level"] == "authNoPriv"
    assert got["snmp.v3_auth_protocol"] == "MD5"
    assert "snmp.v3_priv_protocol" in obs.unknown
    assert got["snmp.interfaces_up_unused"] == 1
    assert_read_only(sim)


async def test_requests_are_paced(monkeypatch):
    profile = SnmpProfile.load(bundled_profile("snmp", "hirschmann-rs20-weak"))
    async with SnmpSimulator(profile) as sim:
        obs = await probe(sim.port, min_interval=0.05, **credentials_for(profile, monkeypatch))
    assert obs.status.value == "ok"
    gap = sim.log.min_interval()
    assert gap is not None and gap >= 0.045
    assert sim.log.max_concurrent <= 2  # the probe's socket and the v3 discovery socket
    assert_read_only(sim)


async def test_v3_requests_are_paced_from_the_last_datagram_sent(monkeypatch):
    """An SNMPv3 request is pysnmp's engine discovery and then the request itself; the next
    request waits the minimum interval from the second datagram, not from the first."""
    profile = SnmpProfile.load(bundled_profile("snmp", "scalance-xc208-hardened"))
    interval = 0.2
    async with SnmpSimulator(profile) as sim:
        obs = await probe(sim.port, min_interval=interval, deadline=30,
                          **credentials_for(profile, monkeypatch))
    assert obs.status.value == "ok", obs.reason
    records = sorted(sim.log.records, key=lambda r: r.at)
    gaps = [(b.at - a.at, a.kind, b.kind) for a, b in itertools.pairwise(records)
            if not (_discovery(a) and b.peer == a.peer)]  # pysnmp's discovery + its request
    assert len(gaps) >= 5
    # receive stamps jitter by some ms on busy cores; pacing from the first datagram would
    # leave ~10 ms after the second one (far below this bound)
    assert min(gap for gap, *_ in gaps) >= interval * 0.8, gaps
    assert_read_only(sim)


def _discovery(record) -> bool:
    return (record.detail.get("version") == "v3" and not record.detail.get("user")
            and not record.detail.get("varbinds"))


def test_probe_code_cannot_write():
    folder = Path(snmp_package.__file__).parent
    source = "\n".join(p.read_text() for p in folder.glob("*.py"))
    for forbidden in ("set_cmd", "SetRequest", "setCmd"):
        assert forbidden not in source


async def test_ipv6_loopback(monkeypatch):
    try:
        sim = from_profile(bundled_profile("snmp", "hirschmann-rs20-weak"), host="::1")
        await sim.start()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")
    try:
        obs = await probe(sim.port, host="::1", community=env_secret(monkeypatch, "T_C", "public"))
    finally:
        await sim.stop()
    assert obs.status.value == "ok", obs.reason
    assert obs.endpoint == f"[::1]:{sim.port}"
    assert values(obs)["snmp.sys_descr"] == "Hirschmann Railswitch"
    assert_read_only(sim)
