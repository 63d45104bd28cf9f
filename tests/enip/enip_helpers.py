"""Helpers of the EtherNet/IP tests: a simulator per profile and one probe run."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from otaudit.observation import AssetKind, AssetRef, Observation
from otaudit.probes.base import ProbeTarget
from otaudit.probes.enip.probe import EnipOptions, EnipProbe
from otaudit.probes.runner import run_probe
from otaudit.simulators import create_simulator
from otaudit.simulators.enip.device import EnipSimulator

FIXTURES = Path(__file__).parents[1] / "fixtures" / "enip"
PROFILES_DIR = Path(__file__).parents[2] / "simulators" / "enip" / "profiles"
PROFILES = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
READ_KINDS = {"list_identity", "register_session", "get_attributes_all", "unregister_session",
              "tls_handshake"}


def recording(name: str) -> bytes:
    lines = (FIXTURES / name).read_text().splitlines()
    return bytes.fromhex("".join(line for line in lines if not line.startswith("#")))


@asynccontextmanager
async def simulator(profile: str | Path, **options: Any):  # type: ignore[no-untyped-def]
    device = create_simulator("enip", profile, **{"tls_port": 0, **options})
    assert isinstance(device, EnipSimulator)
    async with device:
        yield device


async def probe(host: str, port: int, *, min_interval: float = 0.0, deadline: float = 10.0,
                **options: Any) -> Observation:
    target = ProbeTarget(AssetRef(id="plc-1", kind=AssetKind.PLC, zone="cell"), host, port,
                         EnipOptions(**options))
    return await run_probe(EnipProbe(), target, collector_id="test", site="test",
                           deadline=deadline, min_interval=min_interval)


async def probe_device(device: EnipSimulator, **options: Any) -> Observation:
    options.setdefault("tls_port", device.endpoint_options["tls_port"])
    return await probe(device.host, device.port, **options)


def assert_evidence_backs_every_fact(obs: Observation) -> None:
    ids = {e.id for e in obs.evidence}
    for path, fact in obs.facts.items():
        assert fact.evidence and set(fact.evidence) <= ids, path
