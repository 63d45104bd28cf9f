"""The collector over a real Mosquitto with scripted probes (no device simulators needed)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiomqtt
import pytest
import yaml
from collector_support import broker_acknowledges, private_state_dir  # noqa: F401 (autouse fixture)
from typer.testing import CliRunner

from otaudit.cli.main import app
from otaudit.collector.once import run_once
from otaudit.collector.targets import load_plan
from otaudit.errors import InputError
from otaudit.observation import Observation
from otaudit.settings import Settings

from support.fake_probe import FakeProbe
from tests_helpers import free_tcp_port


@pytest.fixture(autouse=True)
def fake_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    import otaudit.probes as probes

    monkeypatch.setitem(probes.REGISTRY, "fake", "support.fake_probe:FakeProbe")
    monkeypatch.setitem(probes.REGISTRY, "fake2", "support.fake_probe:FakeProbe")
    FakeProbe.active.clear()
    FakeProbe.max_active.clear()


def inventory(tmp_path: Path, site: str, assets: list[dict]) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({"site": site, "zones": [{"id": "z1", "sl_t": 2}],
                                    "assets": assets}))
    return path


def fake_asset(i: int, behaviour: str = "ok", **endpoints: dict) -> dict:
    eps = {"fake": {"host": f"127.0.0.{i + 1}", "behaviour": behaviour}, **endpoints}
    return {"id": f"a{i}", "kind": "plc", "zone": "z1", "endpoints": eps}


async def test_every_observation_is_published_on_its_asset_topic(
        tmp_path: Path, mosquitto_url: str) -> None:
    site = f"site-{uuid.uuid4().hex[:8]}"
    behaviours = ["ok", "crash", "refused", "parse", "partial"]
    path = inventory(tmp_path, site, [fake_asset(i, b) for i, b in enumerate(behaviours)])
    inv, plans = load_plan(path)
    settings = Settings(broker_url=mosquitto_url, collector_id="c1")
    received: dict[str, Observation] = {}
    async with aiomqtt.Client("127.0.0.1", 1883) as sub:
        await sub.subscribe(f"otaudit/v1/{site}/#", qos=1)
        summary = await run_once(inv, plans, settings)
        async with asyncio.timeout(10):
            async for message in sub.messages:
                obs = Observation.from_json(message.payload)
                received[str(message.topic)] = obs
                if len(received) == len(behaviours):
                    break
    assert summary.published == summary.observations == len(behaviours)
    assert summary.by_status == {"ok": 2, "error": 2, "refused": 1}
    assert set(received) == {f"otaudit/v1/{site}/c1/obs/a{i}" for i in range(5)}
    assert received[f"otaudit/v1/{site}/c1/obs/a1"].reason.startswith("probe failure")


async def test_one_connection_per_device_and_bounded_concurrency(
        tmp_path: Path, mosquitto_url: str) -> None:
    assets = [fake_asset(i, "slow", fake2={"host": f"127.0.0.{i + 1}", "behaviour": "slow"})
              for i in range(6)]
    inv, plans = load_plan(inventory(tmp_path, f"s-{uuid.uuid4().hex[:6]}", assets))
    settings = Settings(broker_url=mosquitto_url, concurrency=3)
    summary = await run_once(inv, plans, settings)
    assert summary.observations == 12
    assert max(FakeProbe.max_active.values()) == 1


def test_endpoint_options_are_validated_with_file_field_and_line(tmp_path: Path) -> None:
    path = inventory(tmp_path, "s", [fake_asset(0, "sideways"),
                                     {"id": "b", "kind": "plc", "zone": "z1",
                                      "endpoints": {"nosuch": {"host": "127.0.0.1"}}}])
    with pytest.raises(InputError) as info:
        load_plan(path)
    text = str(info.value)
    assert str(path) in text
    assert "assets.0.endpoints.fake.behaviour" in text and "line" in text
    assert "unknown protocol 'nosuch'" in text


def test_unreachable_broker_exits_non_zero_saying_so(tmp_path: Path) -> None:
    port = free_tcp_port()
    path = inventory(tmp_path, "s", [fake_asset(0)])
    result = CliRunner().invoke(app, ["collector", "run", "--inventory", str(path), "--once",
                                      "--broker", f"mqtt://127.0.0.1:{port}"])
    assert result.exit_code == 4
    assert f"cannot reach MQTT broker at mqtt://127.0.0.1:{port}" in result.output
