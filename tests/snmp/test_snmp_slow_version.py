"""A version that answers slowly is not a version that is off (fuzz campaign, 2026-12-07:
under load, two quick tries of v1 went unanswered and ``snmp.v1_enabled`` became false,
which would pass a "v1 must be off" check)."""

from __future__ import annotations

import asyncio
from typing import Any

from pysnmp.proto import api
from snmp_testkit import RawAgent, env_secret, probe, values
from test_snmp_bad_input import empty_tables, scripted, system_then

V1_DELAY = 2.2  # beyond the quick try (1 s), within the full timeout of the last try (3 s)


class SlowV1Agent(RawAgent):
    """Answers v2c at once and v1 only after ``V1_DELAY`` seconds."""

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append(data)
        reply = self.respond(data)
        if reply is None or self.transport is None:
            return
        if int(api.decodeMessageVersion(data)) == 0:
            asyncio.get_running_loop().call_later(V1_DELAY, self._send, reply, addr)
        else:
            self.transport.sendto(reply, addr)

    def _send(self, reply: bytes, addr: Any) -> None:
        if self.transport is not None:
            self.transport.sendto(reply, addr)


async def test_a_slow_v1_agent_is_v1_enabled(monkeypatch) -> None:
    async with SlowV1Agent(scripted(system_then(empty_tables))) as agent:
        obs = await probe(agent.port, community=env_secret(monkeypatch, "T_C", "public"),
                          request_timeout=3.0, retries=0, deadline=30.0, op_timeout=10.0)
    got = values(obs)
    assert got["snmp.v1_enabled"] is True, obs.unknown
    assert got["snmp.versions_answering"] == ["v1", "v2c"]
