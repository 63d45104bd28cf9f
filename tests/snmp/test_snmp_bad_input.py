"""Bad agents: junk, wrong request ids, truncation, loops, endless tables, huge and
non-UTF-8 strings, wrong value types. Each ends its probe run with a clear status."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api
from pysnmp.proto.api import v2c
from snmp_testkit import RawAgent, env_secret, probe, values

SYSTEM_PREFIX = (1, 3, 6, 1, 2, 1, 1)
Answer = Callable[[tuple[int, ...], str], Any]  # (requested oid, pdu kind) -> value


def scripted(answer: Answer, *, request_id_delta: int = 0,
             mangle: Callable[[bytes], bytes] = lambda b: b) -> Callable[[bytes], bytes | None]:
    """A v1/v2c agent that answers every varbind from ``answer``; v3 is ignored."""

    def respond(data: bytes) -> bytes | None:
        version = int(api.decodeMessageVersion(data))
        if version not in (0, 1):
            return None
        module = api.PROTOCOL_MODULES[version]
        request, _ = decoder.decode(data, asn1Spec=module.Message())
        pdu = module.apiMessage.get_pdu(request)
        kind = {0: "GET", 1: "GETNEXT", 5: "GETBULK"}[pdu.tagSet.superTags[-1].tagId]
        response = module.apiMessage.get_response(request)
        reply_pdu = module.apiMessage.get_pdu(response)
        binds = []
        for oid, _ in module.apiPDU.get_varbinds(pdu):
            got = answer(tuple(oid), kind)
            binds.extend(got if isinstance(got, list) else [(oid, got)])
        module.apiPDU.set_varbinds(reply_pdu, binds)
        module.apiPDU.set_request_id(reply_pdu,
                                     int(module.apiPDU.get_request_id(pdu)) + request_id_delta)
        return mangle(encoder.encode(response))

    return respond


def system_then(table: Callable[[tuple[int, ...]], Any], descr: Any = None) -> Answer:
    """System group answers; walks answered by ``table`` (GETNEXT/GETBULK)."""
    system = {1: descr or v2c.OctetString(b"Test agent"), 2: v2c.ObjectIdentifier("1.3.6.1.4"),
              3: v2c.TimeTicks(5), 4: v2c.OctetString(b""), 5: v2c.OctetString(b"t"),
              6: v2c.OctetString(b"")}

    def answer(oid: tuple[int, ...], kind: str) -> Any:
        if kind == "GET":
            if oid[:7] == SYSTEM_PREFIX and len(oid) == 9:
                return system.get(oid[7], v2c.NoSuchInstance())
            return v2c.NoSuchObject()
        return table(oid)

    return answer


def empty_tables(oid: tuple[int, ...]) -> Any:
    return v2c.EndOfMibView()


async def run(respond: Callable[[bytes], bytes | None], monkeypatch: Any, **options: Any):
    async with RawAgent(respond) as agent:
        obs = await probe(agent.port, community=env_secret(monkeypatch, "T_C", "public"),
                          **options)
    return obs, agent


async def test_garbage_replies_are_an_error_not_a_timeout(monkeypatch):
    obs, agent = await run(lambda data: b"\x30\x03\x02\x01junk", monkeypatch)
    assert obs.status.value == "error"
    assert "none was a valid SNMP answer" in obs.reason
    assert "malformed reply or wrong request id" in obs.reason
    assert agent.received  # it did ask


async def test_wrong_request_id_is_an_error(monkeypatch):
    obs, _ = await run(scripted(system_then(empty_tables), request_id_delta=1), monkeypatch)
    assert obs.status.value == "error"
    assert "none was a valid SNMP answer" in obs.reason


async def test_truncated_reply_is_an_error(monkeypatch):
    obs, _ = await run(scripted(system_then(empty_tables), mangle=lambda b: b[: len(b) // 2]),
                       monkeypatch)
    assert obs.status.value == "error"
    assert "none was a valid SNMP answer" in obs.reason


async def test_silent_agent_is_a_timeout(monkeypatch):
    obs, agent = await run(lambda data: None, monkeypatch)
    assert obs.status.value == "timeout"
    assert "cannot tell which" in obs.reason
    assert len(agent.received) == 3  # the GET, its one retry, the v3 engine discovery


async def test_looping_table_stops_with_error(monkeypatch):
    looping = v2c.OctetString(b"again")

    def table(oid: tuple[int, ...]) -> Any:
        return [((1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1, 2, 1), looping)]  # always the same OID

    obs, agent = await run(scripted(system_then(table)), monkeypatch)
    assert obs.status.value == "error"
    assert "non-increasing OID" in obs.reason and "ENTITY-MIB" in obs.reason
    assert values(obs)["snmp.sys_descr"] == "Test agent"  # collected before the loop
    assert len(agent.received) < 10


async def test_endless_table_is_bounded(monkeypatch):
    counter = itertools.count(1)

    def table(oid: tuple[int, ...]) -> Any:
        n = next(counter)
        return [((1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1, 2, n), v2c.OctetString(b"x"))]

    obs, agent = await run(scripted(system_then(table)), monkeypatch, max_oids=40)
    assert obs.status.value == "error"
    assert "more than 40 OIDs (max_oids)" in obs.reason
    assert len(agent.received) <= 45


async def test_huge_and_non_utf8_strings(monkeypatch):
    huge = v2c.OctetString(b"A" * 60_000)
    obs, _ = await run(scripted(system_then(empty_tables, descr=huge)), monkeypatch)
    assert obs.status.value == "ok", obs.reason
    assert values(obs)["snmp.sys_descr"] == "A" * 4096
    assert any("60000 bytes long" in e for e in obs.errors)

    latin = v2c.OctetString(b"Schneider \xc9lectrique \xff\x00\x00")
    obs, _ = await run(scripted(system_then(empty_tables, descr=latin)), monkeypatch)
    assert obs.status.value == "ok", obs.reason
    assert values(obs)["snmp.sys_descr"] == "Schneider Électrique ÿ"
    assert any("not valid UTF-8" in e for e in obs.errors)


async def test_wrong_value_type_is_a_malformed_reply(monkeypatch):
    obs, _ = await run(scripted(system_then(empty_tables, descr=v2c.Integer32(7))), monkeypatch)
    assert obs.status.value == "error"
    assert obs.reason == "malformed reply: sys_descr.0: expected OCTET STRING, got Integer"


async def test_junk_discovery_reply_does_not_break_the_run(monkeypatch):
    good = scripted(system_then(empty_tables))

    def respond(data: bytes) -> bytes | None:
        if int(api.decodeMessageVersion(data)) == 3:
            return b"\x30\x82\xff\xff"  # claims 65535 bytes, has none
        return good(data)

    obs, _ = await run(respond, monkeypatch)
    assert obs.status.value == "ok", obs.reason
    assert any("SNMPv3 engine discovery" in e for e in obs.errors)
    assert "snmp.v3_enabled" in obs.unknown


async def test_get_reply_with_other_oids_is_malformed(monkeypatch):
    def answer(oid: tuple[int, ...], kind: str) -> Any:
        return [((1, 3, 6, 1, 2, 1, 1, 9, 9), v2c.OctetString(b"not what was asked"))]

    obs, _ = await run(scripted(answer), monkeypatch)
    assert obs.status.value == "error"
    assert obs.reason.startswith("malformed reply: GET reply carries 6 varbind(s)")
