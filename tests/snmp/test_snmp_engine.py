"""SNMPv3 engines built from cached MIB code: isolated sessions, no recompiling."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pysnmp.entity.engine import SnmpEngine
from pysnmp.smi import builder
from snmp_testkit import RawAgent, assert_read_only, credentials_for, env_secret, probe, values

from otaudit.probes.snmp import engine as snmp_engine
from otaudit.probes.snmp.client import Credential, NoAnswer, SnmpSession
from otaudit.probes.snmp.parse import SYS_DESCR
from otaudit.simulators import bundled_profile
from otaudit.simulators.snmp.device import SnmpSimulator
from otaudit.simulators.snmp.profile import SnmpProfile, V3User

XC208 = "scalance-xc208-hardened"


async def noop() -> None:
    return None


def _builder(engine: SnmpEngine) -> builder.MibBuilder:
    return engine.message_dispatcher.mib_instrum_controller.get_mib_builder()


async def test_new_engine_loads_what_snmp_engine_loads_without_recompiling(monkeypatch):
    plain, first = SnmpEngine(), snmp_engine.new_engine()
    reads: list[str] = []
    original = builder.DirMibSource.read

    def counting_read(self: Any, name: str) -> Any:
        found = original(self, name)  # OSError: not here (misses are not cached)
        reads.append(name)
        return found

    monkeypatch.setattr(builder.DirMibSource, "read", counting_read)
    second = snmp_engine.new_engine()
    try:
        assert reads == []  # every module found came from the code cache
        for engine in (first, second):
            assert isinstance(_builder(engine), snmp_engine.CachedMibBuilder)
            assert set(_builder(engine).mibSymbols) == set(_builder(plain).mibSymbols)
            for module, symbols in _builder(plain).mibSymbols.items():
                assert set(_builder(engine).mibSymbols[module]) == set(symbols), module
        # each engine executes the code afresh: its own MIB objects, hence its own state
        (first_users,) = _builder(first).import_symbols("SNMP-USER-BASED-SM-MIB",
                                                        "usmUserEntry")
        (second_users,) = _builder(second).import_symbols("SNMP-USER-BASED-SM-MIB",
                                                          "usmUserEntry")
        assert first_users is not second_users
        # the MIB view only maps names and OIDs: one per process, shared
        assert first.cache["mibViewController"] is snmp_engine.mib_view()
        assert second.cache["mibViewController"] is snmp_engine.mib_view()
    finally:
        for engine in (plain, first, second):
            engine.close_dispatcher()


async def test_v3_sessions_never_share_an_engine():
    v3 = Credential("v3", user="u", auth_key="auth-key-123", priv_key="priv-key-123")
    async with RawAgent(lambda data: None) as agent, \
            SnmpSession("127.0.0.1", agent.port, timeout=0.2, retries=0, pace=noop) as one, \
            SnmpSession("127.0.0.1", agent.port, timeout=0.2, retries=0, pace=noop) as two:
        assert one._engine is None and two._engine is None  # none before a v3 request
        for session in (one, two):
            with pytest.raises(NoAnswer):
                await session.get(v3, [SYS_DESCR], quick=True)
        assert one._engine is not None and two._engine is not None
        assert one._engine is not two._engine
    assert one._engine is None and two._engine is None


def _xc208_with_user(auth_key: str, priv_key: str) -> SnmpProfile:
    """Same user name and same engine id on every copy, different keys."""
    profile = SnmpProfile.load(bundled_profile("snmp", XC208))
    profile.agent.users = [V3User(name="otaudit-ro", auth="SHA", auth_key=auth_key,
                                  priv="AES-128", priv_key=priv_key)]
    return profile


async def test_same_v3_user_with_different_keys_on_concurrent_agents(monkeypatch):
    one = _xc208_with_user("one-auth-Kq19x", "one-priv-Rw27y")
    two = _xc208_with_user("two-auth-Pz83c", "two-priv-Lm56d")
    base = credentials_for(one, monkeypatch)  # version v3, user otaudit-ro, SHA / AES-128
    opts_one = {**base, "v3_auth_key": env_secret(monkeypatch, "T_A1", "one-auth-Kq19x"),
                "v3_priv_key": env_secret(monkeypatch, "T_P1", "one-priv-Rw27y")}
    opts_two = {**base, "v3_auth_key": env_secret(monkeypatch, "T_A2", "two-auth-Pz83c"),
                "v3_priv_key": env_secret(monkeypatch, "T_P2", "two-priv-Lm56d")}
    # agent one's key sent to agent two: wrong there, and must not poison anything
    wrong = opts_one
    # Never two probes on one agent at a time (the collector never does that either).
    async with SnmpSimulator(one) as sim_one, SnmpSimulator(two) as sim_two:
        good_one, good_two = await asyncio.gather(
            probe(sim_one.port, **opts_one), probe(sim_two.port, **opts_two))
        bad_two, again_one = await asyncio.gather(
            probe(sim_two.port, **wrong), probe(sim_one.port, **opts_one))
        after_two = await probe(sim_two.port, **opts_two)
    for obs in (good_one, good_two, again_one, after_two):
        assert obs.status.value == "ok", obs.reason
        assert values(obs)["snmp.sys_name"] == "cell1-xc208"
    assert bad_two.status.value == "auth_failed"
    assert "wrong authentication key (WrongDigest)" in bad_two.reason
    assert_read_only(sim_one)
    assert_read_only(sim_two)


async def test_wrong_community_on_one_agent_leaves_the_other_alone(monkeypatch):
    profile = SnmpProfile.load(bundled_profile("snmp", "hirschmann-rs20-weak"))
    good = credentials_for(profile, monkeypatch)
    bad = {**good, "community": env_secret(monkeypatch, "T_BAD_C", "not-the-community")}
    async with SnmpSimulator(profile) as sim_a, SnmpSimulator(profile) as sim_b:
        wrong_a, right_b = await asyncio.gather(
            probe(sim_a.port, **bad), probe(sim_b.port, **good))
        right_a = await probe(sim_a.port, **good)  # one probe per agent at a time
    assert wrong_a.status.value == "timeout"
    assert right_b.status.value == "ok", right_b.reason
    assert right_a.status.value == "ok", right_a.reason
    same = {k: v for k, v in values(right_a).items() if k != "snmp.sys_uptime"}
    assert same == {k: v for k, v in values(right_b).items() if k != "snmp.sys_uptime"}
    assert_read_only(sim_a)
    assert_read_only(sim_b)
