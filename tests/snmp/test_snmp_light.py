"""Light v1/v2c sessions: no SNMP engine, one socket, junk dropped and counted, reads only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.entity import engine as pysnmp_engine
from pysnmp.hlapi.v1arch.asyncio import CommunityData
from pysnmp.proto import api
from pysnmp.proto.api import v2c
from snmp_testkit import (
    RawAgent,
    assert_read_only,
    credentials_for,
    env_secret,
    expected_snmp_facts,
    probe,
    values,
)
from test_snmp_bad_input import empty_tables, scripted, system_then

from otaudit.probes.base import ForbiddenOperation
from otaudit.probes.snmp.client import Credential, NoAnswer, SnmpSession
from otaudit.probes.snmp.engine import mib_view
from otaudit.probes.snmp.parse import SYS_DESCR, SYSTEM_OIDS
from otaudit.simulators import bundled_profile
from otaudit.simulators.snmp.device import SnmpSimulator
from otaudit.simulators.snmp.profile import Community, SnmpProfile

V2C = Credential("v2c", community="public")
GOOD = scripted(system_then(empty_tables))


async def noop() -> None:
    return None


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What reached the event loop's exception handler during the test (must stay empty)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield errors
    loop.set_exception_handler(previous)


def _reencoded(change: Callable[[Any, Any], None]) -> Callable[[bytes], bytes | None]:
    """A good v1/v2c answer, decoded, changed by ``change(module, message)``, re-encoded."""

    def respond(data: bytes) -> bytes | None:
        reply = GOOD(data)
        if reply is None:
            return None
        module = api.PROTOCOL_MODULES[int(api.decodeMessageVersion(reply))]
        message, _ = decoder.decode(reply, asn1Spec=module.Message())
        change(module, message)
        return encoder.encode(message)

    return respond


def _as_version_3(module: Any, message: Any) -> None:
    message.setComponentByPosition(0, 3)


def _other_community(module: Any, message: Any) -> None:
    module.apiMessage.set_community(message, "not-public")


def _as_v1(data: bytes) -> bytes | None:
    """A v1 message carrying the answer to a v2c request (same request id and values)."""
    reply = GOOD(data)
    if reply is None:
        return None
    v1, v2 = api.PROTOCOL_MODULES[0], api.PROTOCOL_MODULES[1]
    answer = v2.apiMessage.get_pdu(decoder.decode(reply, asn1Spec=v2.Message())[0])
    pdu = v1.GetResponsePDU()
    v1.apiPDU.set_defaults(pdu)
    v1.apiPDU.set_request_id(pdu, v2.apiPDU.get_request_id(answer))
    v1.apiPDU.set_varbinds(pdu, v2.apiPDU.get_varbinds(answer))
    message = v1.Message()
    v1.apiMessage.set_defaults(message)
    v1.apiMessage.set_community(message, "public")
    v1.apiMessage.set_pdu(message, pdu)
    return encoder.encode(message)


GARBAGE: dict[str, Callable[[bytes], bytes | None]] = {
    "undecodable": lambda data: b"\x30\x03\x02\x01junk",
    "truncated": lambda data: (GOOD(data) or b"")[:20],
    "trailing bytes": lambda data: (GOOD(data) or b"") + b"\x00\x00",
    "claims SNMPv3": _reencoded(_as_version_3),
    "other community": _reencoded(_other_community),
    "other version": _as_v1,
    "request echoed": lambda data: data,  # a reflector: right id, but no Response PDU
}


@pytest.mark.parametrize("kind", list(GARBAGE))
async def test_garbage_reply_fails_the_run_cleanly(kind, monkeypatch, loop_errors):
    async with RawAgent(GARBAGE[kind]) as agent:
        obs = await probe(agent.port, community=env_secret(monkeypatch, "T_C", "public"))
    assert obs.status.value == "error", obs.reason
    # the GET and its one retry (FAST: retries 1) were both answered with junk
    assert obs.reason.startswith("2 datagram(s) came back"), obs.reason
    assert "none was a valid SNMP answer" in obs.reason
    assert loop_errors == []


async def test_v2c_run_builds_no_engine(monkeypatch):
    profile = SnmpProfile.load(bundled_profile("snmp", "scalance-x204irt-weak"))
    built: list[object] = []
    original = pysnmp_engine.SnmpEngine.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    async with SnmpSimulator(profile) as sim:  # the simulated agent has its own engine
        monkeypatch.setattr(pysnmp_engine.SnmpEngine, "__init__", spy)
        obs = await probe(sim.port, checks=True, **credentials_for(profile, monkeypatch))
    assert obs.status.value == "ok", obs.reason
    assert built == []
    got = values(obs)
    for path, value in expected_snmp_facts(profile).items():
        assert got[path] == value, path
    assert_read_only(sim)


@pytest.mark.parametrize("primary", ["v2c", "v3"])
async def test_v2c_and_v3_in_one_session_share_one_socket(primary, monkeypatch):
    profile = SnmpProfile.load(bundled_profile("snmp", "scalance-xc208-hardened"))
    profile.agent.versions = ["v2c", "v3"]
    profile.agent.communities = [Community(community="c0mm-Xy7")]
    options = {**credentials_for(profile, monkeypatch), "version": primary}
    async with SnmpSimulator(profile) as sim:
        obs = await probe(sim.port, **options)
    assert obs.status.value == "ok", obs.reason
    got = values(obs)
    assert got["snmp.versions_answering"] == ["v2c", "v3"]
    assert got["snmp.v1_enabled"] is False
    assert got["snmp.sys_name"] == "cell1-xc208"
    assert got["snmp.v3_security_level"] == "authPriv"
    assert sim.log.max_concurrent <= 2  # the probe's socket and the v3 discovery socket
    assert_read_only(sim)


class NoisyAgent(RawAgent):
    """RawAgent that sends ``junk`` undecodable datagrams before each answer."""

    def __init__(self, respond: Callable[[bytes], bytes | None], junk: int) -> None:
        super().__init__(respond)
        self.junk = junk

    def datagram_received(self, data: bytes, addr: Any) -> None:
        for _ in range(self.junk):
            if self.transport is not None:
                self.transport.sendto(b"\x30\x82\xff\xff", addr)
        super().datagram_received(data, addr)


async def test_datagrams_are_counted_per_session(loop_errors):
    v3 = Credential("v3", user="u", auth_key="auth-key-123", priv_key="priv-key-123")
    async with NoisyAgent(lambda d: None, 3) as noisy, NoisyAgent(lambda d: None, 0) as silent, \
            SnmpSession("127.0.0.1", noisy.port, timeout=0.3, retries=1, pace=noop) as loud, \
            SnmpSession("127.0.0.1", silent.port, timeout=0.3, retries=1, pace=noop) as quiet:
        results = await asyncio.gather(loud.get(V2C, [SYS_DESCR]),
                                       quiet.get(V2C, [SYS_DESCR]), return_exceptions=True)
        assert [type(r) for r in results] == [NoAnswer, NoAnswer]
        assert [r.stray for r in results] == [6, 0]  # 3 per try, 2 tries
        with pytest.raises(NoAnswer) as v3_junk:
            await loud.get(v3, [SYS_DESCR], quick=True)  # the engine path counts too
        assert v3_junk.value.stray >= 3  # the engine's discovery step may try twice
    assert loop_errors == []


async def test_answer_after_junk_is_taken(loop_errors):
    async with NoisyAgent(GOOD, 2) as agent, \
            SnmpSession("127.0.0.1", agent.port, timeout=0.5, retries=0, pace=noop) as session:
        got = await session.get(V2C, list(SYSTEM_OIDS))
        assert session._dispatcher is not None and session._engine is None
        assert session._dispatcher.cache["mibViewController"] is mib_view()
    assert got[0][1].value == b"Test agent"
    assert loop_errors == []


async def test_dispatcher_refuses_anything_but_reads():
    async with RawAgent(lambda data: None) as agent, \
            SnmpSession("127.0.0.1", agent.port, timeout=0.2, retries=0, pace=noop) as session:
        with pytest.raises(NoAnswer):
            await session.get(V2C, [SYS_DESCR], quick=True)  # opens the socket
        module = api.PROTOCOL_MODULES[1]
        write = module.SetRequestPDU()
        module.apiPDU.set_defaults(write)
        module.apiPDU.set_varbinds(write, [(v2c.ObjectIdentifier(SYS_DESCR),
                                            v2c.OctetString(b"pwned"))])
        assert session._dispatcher is not None
        with pytest.raises(ForbiddenOperation):
            session._dispatcher.send_pdu(CommunityData("public"), session._target, write)
        await asyncio.sleep(0.1)
    assert len(agent.received) == 1  # only the GET left


async def test_cancelled_request_closes_cleanly(loop_errors):
    async with RawAgent(lambda data: None) as agent:
        async def ask() -> None:
            async with SnmpSession("127.0.0.1", agent.port, timeout=5, retries=0,
                                   pace=noop) as session:
                await session.get(V2C, [SYS_DESCR])

        task = asyncio.create_task(ask())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)  # timer ticks after the close find nothing to do
    assert len(agent.received) == 1
    assert loop_errors == []
