"""Helpers of the OPC UA tests: simulators hosted for the session, one probe run.

OPC UA simulators run in a background event loop, one per profile for the session:
asyncua needs seconds to build a server's address space, the tests only need sockets.
Test modules import the fixtures ``opcua_servers`` and ``opcua_server`` from here.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otaudit.observation import AssetKind, AssetRef, Observation
from otaudit.probes.base import ProbeTarget
from otaudit.probes.opcua.probe import OpcUaOptions, OpcUaProbe
from otaudit.probes.runner import run_probe
from otaudit.simulators import create_simulator
from otaudit.simulators.opcua.device import OpcUaSimulator

PROFILES_DIR = Path(__file__).parents[2] / "simulators" / "opcua" / "profiles"
PROFILES = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
READ_KINDS = {"hello", "open_secure_channel", "get_endpoints", "create_session",
              "activate_session", "read", "close_session", "close_secure_channel"}


async def probe(host: str, port: int, *, min_interval: float = 0.0, deadline: float = 15.0,
                **options: Any) -> Observation:
    target = ProbeTarget(AssetRef(id="hmi-1", kind=AssetKind.HMI, zone="control"), host,
                         port, OpcUaOptions(**options))
    return await run_probe(OpcUaProbe(), target, collector_id="test", site="test",
                           deadline=deadline, min_interval=min_interval)


async def probe_device(device: OpcUaSimulator, **options: Any) -> Observation:
    return await probe(device.host, device.port, **{**device.endpoint_options, **options})


def assert_evidence_backs_every_fact(obs: Observation) -> None:
    ids = {e.id for e in obs.evidence}
    for path, fact in obs.facts.items():
        assert fact.evidence and set(fact.evidence) <= ids, path


class Hosted:
    """A simulator running in its own thread and event loop until ``stop``."""

    def __init__(self, profile: str | Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        device = create_simulator("opcua", profile)
        assert isinstance(device, OpcUaSimulator)
        self.device = device
        asyncio.run_coroutine_threadsafe(device.start(), self.loop).result(120)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.device.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="session")
def opcua_servers() -> Iterator[dict[str, OpcUaSimulator]]:
    """name → running simulator, started on first use and kept for the session."""
    hosted: dict[str, Hosted] = {}

    class Servers(dict):
        def __missing__(self, name: str) -> OpcUaSimulator:
            hosted[name] = Hosted(name)
            self[name] = hosted[name].device
            return self[name]

    yield Servers()
    for server in hosted.values():
        server.stop()


@pytest.fixture
def opcua_server(opcua_servers, request) -> OpcUaSimulator:  # type: ignore[no-untyped-def]
    """The simulator of ``request.param`` (a profile name), its request log emptied once the
    previous test's connection has closed (its last records may come late under load)."""
    device = opcua_servers[request.param]
    deadline = time.monotonic() + 10
    while device.log.open_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    device.log.clear()
    return device
