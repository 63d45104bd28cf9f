"""The SNMP switches of the demo plant, started and audited the way ``otaudit demo`` does."""

from __future__ import annotations

from pathlib import Path

import yaml

from otaudit.collector.run import audit_assets
from otaudit.collector.targets import load_plan
from otaudit.observation import Observation
from otaudit.settings import Settings
from otaudit.simulators.plant import DEMO_PLANT, start_plant

DEMO_ENV = {"OTAUDIT_DEMO_SNMP_COMMUNITY": "plant-mon-7Kq2",
            "OTAUDIT_DEMO_SNMP_V3_AUTH_KEY": "xc208-auth-Vb81",
            "OTAUDIT_DEMO_SNMP_V3_PRIV_KEY": "xc208-priv-Qe42"}


async def test_demo_plant_switches(tmp_path: Path, monkeypatch):
    for name, value in DEMO_ENV.items():
        monkeypatch.setenv(name, value)
    spec = yaml.safe_load(DEMO_PLANT.read_text())
    spec["devices"] = [d for d in spec["devices"]
                       if any(s["protocol"] == "snmp" for s in d["simulators"])]
    assert {d["id"] for d in spec["devices"]} == {"sw-cell1", "sw-line1"}
    for device in spec["devices"]:  # loopback answers in ms: shorten the silent-agent waits
        device["simulators"][0]["endpoint"]["request_timeout"] = 0.3
    only_snmp = tmp_path / "plant.yaml"
    only_snmp.write_text(yaml.safe_dump(spec))
    seen: dict[str, Observation] = {}

    async def sink(obs: Observation) -> None:
        seen[obs.asset.id] = obs

    async with start_plant(only_snmp) as plant:
        inventory = plant.write_inventory(tmp_path / "inventory.yaml")
        assert "plant-mon-7Kq2" not in inventory.read_text()  # only secret references
        _, plans = load_plan(inventory)
        await audit_assets(plans, sink, settings=Settings(), site=plant.site, collector="test")
        devices = plant.all_devices()
    hardened, weak = seen["sw-cell1"], seen["sw-line1"]
    assert hardened.status.value == "ok", hardened.reason
    assert weak.status.value == "ok", weak.reason
    assert hardened.fact("snmp.versions_answering") == ["v3"]
    assert hardened.fact("snmp.v3_security_level") == "authPriv"
    assert hardened.fact("snmp.default_communities_accepted") == []
    assert hardened.fact("identity.order_code") == "6GK5 208-0BA00-2AC2"
    assert weak.fact("snmp.versions_answering") == ["v1", "v2c"]
    assert weak.fact("snmp.v3_enabled") is False
    assert weak.fact("snmp.default_communities_accepted") == ["public", "private"]
    assert weak.fact("identity.firmware_version") == "V05.04.02"
    for obs in seen.values():
        text = obs.model_dump_json()
        assert all(secret not in text for secret in DEMO_ENV.values())
    for device in devices:
        assert "SET" not in device.log.kinds()
