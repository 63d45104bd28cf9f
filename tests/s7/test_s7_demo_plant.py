"""The S7 devices of the demo plant, started and audited the way ``otaudit demo`` does."""

from __future__ import annotations

from pathlib import Path

import yaml

from otaudit.collector.run import audit_assets
from otaudit.collector.targets import load_plan
from otaudit.observation import Observation
from otaudit.settings import Settings
from otaudit.simulators.plant import DEMO_PLANT, start_plant


async def test_demo_plant_s7_devices(tmp_path: Path):
    spec = yaml.safe_load(DEMO_PLANT.read_text())
    spec["devices"] = [d for d in spec["devices"]
                       if any(s["protocol"] == "s7" for s in d["simulators"])]
    assert {d["id"] for d in spec["devices"]} >= {"plc-s7-1200", "plc-s7-1500"}
    only_s7 = tmp_path / "plant.yaml"
    only_s7.write_text(yaml.safe_dump(spec))
    seen: dict[str, Observation] = {}

    async def sink(obs: Observation) -> None:
        seen[obs.asset.id] = obs

    async with start_plant(only_s7) as plant:
        inventory = plant.write_inventory(tmp_path / "inventory.yaml")
        _, plans = load_plan(inventory)
        summary = await audit_assets(plans, sink, settings=Settings(), site=plant.site,
                                     collector="test")
        ports = {d.port for d in plant.all_devices()}
    assert len(ports) == len(spec["devices"])  # several simulated CPUs in one process
    assert summary.observations == len(spec["devices"])
    assert seen["plc-s7-1200"].facts["s7.protection_level"].value == 1
    assert seen["plc-s7-1500"].facts["s7.password_set"].value is True
    assert seen["plc-s7-1500"].facts["identity.order_code"].value == "6ES7 516-3AN02-0AB0"
    if "plc-s7-1200-secure" in seen:
        assert seen["plc-s7-1200-secure"].status.value == "refused"
        assert seen["plc-s7-1200-secure"].facts["s7.classic_access"].value is False
