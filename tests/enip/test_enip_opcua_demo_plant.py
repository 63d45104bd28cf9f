"""The EtherNet/IP and OPC UA devices of the demo plant, started and audited the way
``otaudit demo`` does (the inventory gets the ports only the running simulators know)."""

from __future__ import annotations

from pathlib import Path

import yaml

from otaudit.collector.run import audit_assets
from otaudit.collector.targets import load_plan
from otaudit.observation import Observation
from otaudit.settings import Settings
from otaudit.simulators.plant import DEMO_PLANT, start_plant


async def test_demo_plant_enip_and_opcua_devices(tmp_path: Path):
    spec = yaml.safe_load(DEMO_PLANT.read_text())
    spec["devices"] = [d for d in spec["devices"]
                       if any(s["protocol"] in ("enip", "opcua") for s in d["simulators"])]
    assert {d["id"] for d in spec["devices"]} >= {"plc-clx-5580", "plc-cpx-5380-secure",
                                                  "plc-micro850", "hmi-line3-opcua",
                                                  "opcua-pack-line"}
    plant_file = tmp_path / "plant.yaml"
    plant_file.write_text(yaml.safe_dump(spec))
    seen: dict[str, Observation] = {}

    async def sink(obs: Observation) -> None:
        seen[obs.asset.id] = obs

    async with start_plant(plant_file) as plant:
        inventory = plant.write_inventory(tmp_path / "inventory.yaml")
        _, plans = load_plan(inventory)
        await audit_assets(plans, sink, settings=Settings(), site=plant.site,
                           collector="test")
        written = yaml.safe_load(inventory.read_text())
        logs = {d: [r.kind for r in sims[0].log.records] for d, sims in plant.devices.items()}
    assert all(obs.status.value == "ok" for obs in seen.values()), \
        {k: o.reason for k, o in seen.items()}
    tls_ports = {a["id"]: a["endpoints"]["enip"]["tls_port"] for a in written["assets"]
                 if "enip" in a["endpoints"]}
    assert all(tls_ports.values())  # the CIP Security port, or one held closed
    assert seen["plc-clx-5580"].fact("enip.cip_security") is False
    assert seen["plc-clx-5580"].fact("identity.firmware_version") == "32.011"
    assert seen["plc-cpx-5380-secure"].fact("enip.cip_security") is True
    assert seen["plc-cpx-5380-secure"].fact("enip.session_accepted") is False
    assert seen["plc-micro850"].fact("identity.product") == "Micro850"
    weak = seen["hmi-line3-opcua"]
    assert weak.fact("opcua.security_none") is True
    assert weak.fact("identity.vendor") == "Example Automation"  # BuildInfo, anonymous
    hardened = seen["opcua-pack-line"]
    assert hardened.fact("opcua.anonymous") is False
    assert "identity.vendor" in hardened.unknown
    assert "create_session" not in logs["opcua-pack-line"]
    forbidden = {"write", "call", "cip_request", "unsupported", "malformed"}
    assert not any(forbidden & set(kinds) for kinds in logs.values())
