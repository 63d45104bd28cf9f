"""Starts a plant of simulated devices from a plant file and writes the matching inventory.

A plant file (see ``demo_plant.yaml``) lists zones and devices; each device runs one
or more simulators on free loopback ports. ``env`` gives the demo-only credentials the
devices are configured with; the inventory refers to them as ``{env: VAR}`` only.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from otaudit.simulators import create_simulator
from otaudit.simulators.base import SimulatedDevice

DEMO_PLANT = Path(__file__).with_name("demo_plant.yaml")
DEMO_ADVISORIES = Path(__file__).with_name("demo_advisories")  # real CSAF naming demo devices


@dataclass
class RunningPlant:
    site: str
    zones: list[dict[str, Any]]
    assets: list[dict[str, Any]] = field(default_factory=list)
    devices: dict[str, list[SimulatedDevice]] = field(default_factory=dict)
    declared: dict[str, Any] = field(default_factory=dict)  # networks, conduits as given

    def inventory(self) -> dict[str, Any]:
        return {"site": self.site, "zones": self.zones, "assets": self.assets,
                **self.declared}

    def write_inventory(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump(self.inventory(), sort_keys=False))
        return path

    def all_devices(self) -> list[SimulatedDevice]:
        return [d for devices in self.devices.values() for d in devices]


def _keep_started_enforcers(plant: RunningPlant) -> None:
    """A plant file cut down to some devices keeps its conduits, minus the enforcing
    devices it no longer starts (the inventory may only name its own assets)."""
    started = {asset["id"] for asset in plant.assets}
    for conduit in plant.declared.get("conduits", []):
        enforcers = conduit.get("enforced_by")
        if isinstance(enforcers, list):
            conduit["enforced_by"] = [a for a in enforcers if a in started]


@asynccontextmanager
async def start_plant(spec_path: Path = DEMO_PLANT, host: str = "127.0.0.1",
                      set_env: bool = True) -> AsyncIterator[RunningPlant]:
    """Start every simulator of the plant; stop them all when the block ends."""
    spec = yaml.safe_load(spec_path.read_text())
    if set_env:
        for var, value in (spec.get("env") or {}).items():
            os.environ.setdefault(var, str(value))
    plant = RunningPlant(site=spec["site"], zones=spec["zones"],
                         declared={k: spec[k] for k in ("networks", "conduits") if k in spec})
    async with AsyncExitStack() as stack:
        for device in spec["devices"]:
            endpoints: dict[str, Any] = {}
            running = []
            for sim in device["simulators"]:
                simulator = create_simulator(sim["protocol"], sim.get("profile"), host=host,
                                             port=0, **(sim.get("options") or {}))
                await stack.enter_async_context(simulator)
                running.append(simulator)
                # options only the running simulator knows (a second port), then the file's
                endpoints[sim["protocol"]] = {"host": simulator.host, "port": simulator.port,
                                              **getattr(simulator, "endpoint_options", {}),
                                              **(sim.get("endpoint") or {})}
            plant.devices[device["id"]] = running
            asset = {k: device[k] for k in ("id", "name", "kind", "zone") if k in device}
            asset["endpoints"] = endpoints
            for key in ("credential_checks", "vendor", "model"):
                if key in device:
                    asset[key] = device[key]
            plant.assets.append(asset)
        _keep_started_enforcers(plant)
        yield plant
