"""Helpers for the SNMP tests: run the probe against a simulator, expected facts, raw agents."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from otaudit.observation import AssetKind, AssetRef, Observation
from otaudit.probes.base import ProbeTarget
from otaudit.probes.runner import run_probe
from otaudit.probes.snmp.options import SnmpOptions
from otaudit.probes.snmp.probe import SnmpProbe
from otaudit.settings import DEFAULT_MIN_REQUEST_INTERVAL
from otaudit.simulators import bundled_profile
from otaudit.simulators.base import SimulatedDevice
from otaudit.simulators.snmp.profile import SnmpProfile

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "snmp"
LINUX_SNMPREC = FIXTURES / "linux-full-walk.snmprec"
CONPOT_WALK = Path("fixtures/real/conpot/observed/snmpwalk_v2c_public_system.txt")
PROFILE_DIR = bundled_profile("snmp", "scalance-x204irt-weak").parent
PROFILES = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
READ_KINDS = {"GET", "GETNEXT", "GETBULK"}
FAST = {"request_timeout": 0.3, "retries": 1}  # quick checks: 0.3 s, one try


def target_for(host: str, port: int, *, checks: bool = False, **options: Any) -> ProbeTarget:
    return ProbeTarget(asset=AssetRef(id="sw-test", kind=AssetKind.SWITCH, zone="control"),
                       host=host, port=port, options=SnmpOptions.model_validate(options),
                       credential_checks=checks)


async def probe(port: int, *, host: str = "127.0.0.1", checks: bool = False,
                deadline: float = 15.0, op_timeout: float | None = 5.0,
                min_interval: float = DEFAULT_MIN_REQUEST_INTERVAL, **options: Any) -> Observation:
    options = {**FAST, **options}
    return await run_probe(SnmpProbe(), target_for(host, port, checks=checks, **options),
                           collector_id="test", site="test", deadline=deadline,
                           op_timeout=op_timeout, min_interval=min_interval)


def values(obs: Observation) -> dict[str, Any]:
    return {path: fact.value for path, fact in obs.facts.items()}


def assert_read_only(device: SimulatedDevice) -> None:
    """The simulator saw only read requests (and never a SET).

    An SNMPv3 PDU with privacy that the agent rejected (wrong key) stays ``ENCRYPTED``:
    its type is unknowable, but it was never executed; ``MALFORMED`` is a datagram that
    is no SNMP at all (nmap's UDP probes, junk).
    """
    kinds = device.log.kinds()
    assert "SET" not in kinds, device.log.records
    assert kinds <= READ_KINDS | {"ENCRYPTED", "MALFORMED"}, kinds
    assert all(not r.detail["accepted"] for r in device.log.records if r.kind == "ENCRYPTED")


def assert_evidence_complete(obs: Observation) -> None:
    ids = {e.id for e in obs.evidence}
    for path, fact in obs.facts.items():
        assert fact.evidence, f"{path} has no evidence"
        assert set(fact.evidence) <= ids, path


def env_secret(monkeypatch: Any, name: str, value: str) -> dict[str, str]:
    monkeypatch.setenv(name, value)
    return {"env": name}


def credentials_for(profile: SnmpProfile, monkeypatch: Any) -> dict[str, Any]:
    """Probe options with the profile's first read community and/or first v3 user."""
    agent, options = profile.agent, {}
    if agent.users and "v3" in agent.versions:
        user = agent.users[0]
        options.update(version="v3", v3_user=user.name)
        if user.auth:
            options.update(v3_auth_protocol=user.auth,
                           v3_auth_key=env_secret(monkeypatch, "T_SNMP_AUTH", user.auth_key))
        if user.priv:
            options.update(v3_priv_protocol=user.priv,
                           v3_priv_key=env_secret(monkeypatch, "T_SNMP_PRIV", user.priv_key))
    if agent.communities and {"v1", "v2c"} & set(agent.versions):
        read_only = [c for c in agent.communities if c.access == "ro"]
        options["community"] = env_secret(monkeypatch, "T_SNMP_COMMUNITY",
                                          read_only[-1].community)
        if "version" not in options:
            options["version"] = "v2c" if "v2c" in agent.versions else "v1"
    return options


def expected_snmp_facts(profile: SnmpProfile) -> dict[str, Any]:
    """What the probe must report for a profile (system group, tables, versions)."""
    system = profile.system
    assert system is not None
    interfaces = [{"index": i.index, "name": i.name, "admin": i.admin, "oper": i.oper}
                  for i in sorted(profile.interfaces, key=lambda i: i.index)]
    entities = [{"index": e.index, "descr": e.descr, "class": e.entity_class, "name": e.name,
                 "hardware_rev": e.hardware_rev, "firmware_rev": e.firmware_rev,
                 "software_rev": e.software_rev, "serial": e.serial, "mfg": e.mfg,
                 "model": e.model} for e in sorted(profile.entities, key=lambda e: e.index)]
    versions = profile.agent.versions
    return {
        "snmp.sys_descr": system.descr, "snmp.sys_object_id": system.object_id,
        "snmp.sys_contact": system.contact, "snmp.sys_name": system.name,
        "snmp.sys_location": system.location, "identity.name": system.name,
        "snmp.interfaces": interfaces,
        "snmp.interfaces_up_unused": sum(1 for i in interfaces
                                         if i["admin"] == "up" and i["oper"] == "down"),
        "snmp.entities": entities,
        "snmp.versions_answering": [v for v in ("v1", "v2c", "v3") if v in versions],
        "snmp.v3_enabled": "v3" in versions,
    }


def observation_text(obs: Observation) -> str:
    return json.dumps(json.loads(obs.to_json()))


# --- a raw UDP "agent" that answers what a test tells it to -------------------------------

Responder = Callable[[bytes], bytes | None]


class RawAgent(asyncio.DatagramProtocol):
    """Loopback UDP endpoint; ``respond(datagram) -> reply | None`` decides each answer."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.received: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append(data)
        reply = self.respond(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    async def __aenter__(self) -> RawAgent:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self,
                                                           local_addr=("127.0.0.1", 0))
        self.port = transport.get_extra_info("sockname")[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.transport is not None:
            self.transport.close()
