"""Silence is weak evidence: a version (or the SNMPv3 engine discovery) is "off" only when a
control request answered *between* two silences to it (fuzz campaign, 2026-12-07: on a
loaded machine a v1 reply came late twice, ``snmp.v1_enabled`` became false — a false pass
of a "v1 must be off" check)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pysnmp.proto import api
from snmp_testkit import PROFILE_DIR, RawAgent, env_secret, probe, values
from test_snmp_bad_input import empty_tables, scripted, system_then

from otaudit.observation import ProbeStatus
from otaudit.simulators import create_simulator
from otaudit.simulators.fuzz.mutators import Mutation
from otaudit.simulators.fuzz.proxy import proxy_for


def version_of(datagram: bytes) -> int:
    return int(api.decodeMessageVersion(datagram))


class BusyAgent(RawAgent):
    """Answers v1/v2c; after the first answered request it is busy for ``busy`` datagrams
    (drops them, whatever they are), then answers again. v3 is never answered."""

    def __init__(self, busy: int) -> None:
        super().__init__(scripted(system_then(empty_tables)))
        self.busy, self.dropped = busy, 0

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received.append(data)
        if len(self.received) > 1 and self.dropped < self.busy:
            self.dropped += 1
            return
        reply = self.respond(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class NoV1Agent(RawAgent):
    """Answers v2c only: v1 switched off (silently dropped, as agents do)."""

    def __init__(self) -> None:
        super().__init__(scripted(system_then(empty_tables)))

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received.append(data)
        if version_of(data) != 1:
            return
        reply = self.respond(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def test_silence_while_the_agent_is_busy_is_unknown_not_off(monkeypatch) -> None:
    """The v1 try, the engine discovery and the control request all fall into the busy
    moment: nothing shows v1 is off (before: two unanswered v1 tries made it false)."""
    async with BusyAgent(busy=3) as agent:
        obs = await probe(agent.port, community=env_secret(monkeypatch, "T_C", "public"),
                          request_timeout=0.5, retries=0)
    assert agent.dropped == 3
    assert obs.status is ProbeStatus.OK, obs.reason
    assert "snmp.v1_enabled" not in obs.facts
    assert "could not be confirmed" in obs.unknown["snmp.v1_enabled"]
    assert "control request" in obs.unknown["snmp.v1_enabled"]
    assert "snmp.versions_answering" not in obs.facts
    assert "v1" in obs.unknown["snmp.versions_answering"]
    assert "snmp.v3_enabled" not in obs.facts and "snmp.v3_enabled" in obs.unknown
    assert values(obs)["snmp.v2c_enabled"] is True
    # the v1 silence was not confirmed (no second v1 request): the control failed first
    assert sum(version_of(d) == 0 for d in agent.received) == 1


async def test_a_busy_moment_that_ends_before_the_control_gives_the_answer(
        monkeypatch) -> None:
    """Busy for the v1 try and the discovery only: the control answers, the confirmation
    of v1 too, so v1 is on."""
    async with BusyAgent(busy=2) as agent:
        obs = await probe(agent.port, community=env_secret(monkeypatch, "T_C", "public"),
                          request_timeout=0.5, retries=0)
    got = values(obs)
    assert got["snmp.v1_enabled"] is True
    assert got["snmp.versions_answering"] == ["v1", "v2c"]
    assert sum(version_of(d) == 0 for d in agent.received) == 2


async def test_a_version_that_never_answers_is_off_with_its_three_requests_as_evidence(
        monkeypatch) -> None:
    """Off needs: a quick try unanswered, a control answered after it, a confirmation with
    the full timeout and retries unanswered; each is evidence of the fact."""
    async with NoV1Agent() as agent:
        obs = await probe(agent.port, community=env_secret(monkeypatch, "T_C", "public"),
                          request_timeout=1.5, retries=1, op_timeout=5.0)
    assert obs.status is ProbeStatus.OK, obs.reason
    fact = obs.facts["snmp.v1_enabled"]
    assert fact.value is False
    evidence = {e.id: e for e in obs.evidence}
    first, control, confirmation = (evidence[i] for i in fact.evidence)
    assert first.request.startswith("snmp v1 GET sysDescr.0")
    assert first.excerpt == "(no answer within 1 s)"  # the quick try
    assert "control" in control.request and control.request.startswith("snmp v2c")
    assert "Test agent" in control.excerpt  # answered
    assert "confirmation" in confirmation.request
    assert confirmation.excerpt == "(no answer within 3 s after 2 tries of 1.5 s)"
    assert sum(version_of(d) == 0 for d in agent.received) == 3  # quick; full with a retry
    assert values(obs)["snmp.versions_answering"] == ["v2c"]
    assert set(fact.evidence) <= set(obs.facts["snmp.versions_answering"].evidence)
    assert obs.facts["snmp.v3_enabled"].value is False
    assert len(obs.facts["snmp.v3_enabled"].evidence) == 3  # discovery, control, again


async def test_a_lost_engine_discovery_reply_is_not_v3_off(
        monkeypatch, tmp_path: Path) -> None:
    """An agent with v2c and v3; the reply to the first engine discovery is lost (before:
    ``snmp.v3_enabled`` false from one unanswered discovery)."""
    profile = yaml.safe_load((PROFILE_DIR / "scalance-xc208-hardened.yaml").read_text())
    profile["agent"]["versions"] = ["v2c", "v3"]
    profile["agent"]["communities"] = [{"community": "public", "access": "ro"}]
    path = tmp_path / "v2c-and-v3.yaml"
    path.write_text(yaml.safe_dump(profile))
    dropped: list[int] = []

    def drop_first_v3(number: int, data: bytes) -> Mutation | None:
        if version_of(data) == 3 and not dropped:
            dropped.append(number)
            return Mutation("early_close", "breaking", b"", close=True)
        return None

    async with create_simulator("snmp", path) as device, \
            proxy_for("snmp", (device.host, device.port), only=drop_first_v3) as proxy:
        obs = await probe(proxy.port, community=env_secret(monkeypatch, "T_C", "public"),
                          request_timeout=1.0, retries=0)
    assert dropped
    fact = obs.facts["snmp.v3_enabled"]
    assert fact.value is True
    assert "confirmation" in {e.id: e for e in obs.evidence}[fact.evidence[0]].request
    assert values(obs)["snmp.engine_id"] == profile["agent"]["engine_id"]



WELL_KNOWN = ("public", "private", "admin", "manager", "cisco")


class RefusesWellKnownAgent(RawAgent):
    """Answers the site's community; drops the well-known ones (as agents do with a wrong
    community). ``dies``: from the first well-known community on it answers nothing more."""

    def __init__(self, dies: bool) -> None:
        super().__init__(scripted(system_then(empty_tables)))
        self.dies, self.defaults_seen = dies, False

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received.append(data)
        default = any(b"\x04" + bytes([len(n)]) + n.encode() in data for n in WELL_KNOWN)
        self.defaults_seen |= default
        if default or (self.dies and self.defaults_seen):
            return
        reply = self.respond(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def test_well_known_communities_refused_while_the_agent_still_answers(
        monkeypatch) -> None:
    async with RefusesWellKnownAgent(dies=False) as agent:
        obs = await probe(agent.port, checks=True, request_timeout=0.5, retries=0,
                          community=env_secret(monkeypatch, "T_C", "site-x7"))
    assert values(obs)["snmp.default_communities_accepted"] == []
    requests = [e.request for e in obs.evidence]
    assert sum("well-known community" in r for r in requests) == len(WELL_KNOWN)
    [control] = [e for e in obs.evidence if "control after the well-known" in e.request]
    assert control.id in obs.facts["snmp.default_communities_accepted"].evidence


async def test_well_known_communities_unanswered_by_a_dead_agent_are_unknown(
        monkeypatch) -> None:
    """Before: the agent going silent made every well-known community 'not accepted' (a
    false pass of the default-community check)."""
    async with RefusesWellKnownAgent(dies=True) as agent:
        obs = await probe(agent.port, checks=True, request_timeout=0.5, retries=0,
                          community=env_secret(monkeypatch, "T_C", "site-x7"))
    assert "snmp.default_communities_accepted" not in obs.facts
    reason = obs.unknown["snmp.default_communities_accepted"]
    assert "control request" in reason and "public" in reason
