"""``otaudit collector run`` as a real process: SIGTERM drain, last will, SIGHUP reload."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiomqtt
from collector_support import broker_acknowledges, private_state_dir, write_inventory  # noqa: F401 (fixture)

from otaudit.observation import Observation
from otaudit.simulators import create_simulator

from tests_helpers import free_tcp_port

OTAUDIT = str(Path(sys.executable).with_name("otaudit"))


def modbus_asset(name: str, port: int) -> dict[str, Any]:
    return {"id": name, "kind": "plc", "zone": "z1",
            "endpoints": {"modbus": {"host": "127.0.0.1", "port": port, "unit": 1}}}


@asynccontextmanager
async def collector(tmp_path: Path, inventory: Path, broker: str,
                    **env: str) -> AsyncIterator[asyncio.subprocess.Process]:
    log = (tmp_path / "collector.log").open("w")
    environment = {**os.environ, "OTAUDIT_STATE_DIR": str(tmp_path / "state"),
                   "OTAUDIT_RECONNECT_MIN_DELAY": "0.1", **env}
    proc = await asyncio.create_subprocess_exec(
        OTAUDIT, "collector", "run", "--inventory", str(inventory), "--broker", broker,
        stdout=log, stderr=log, env=environment)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()


class Listener:
    """Everything published under one site, decoded."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[tuple[str, dict[str, Any]]] = []

    async def next(self, match: Any, timeout: float = 15) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            async for message in self.client.messages:
                if not message.payload:
                    continue
                item = (str(message.topic), json.loads(message.payload))
                self.messages.append(item)
                if match(*item):
                    return item[1]
        raise AssertionError("unreachable")


@asynccontextmanager
async def listening(site: str) -> AsyncIterator[Listener]:
    async with aiomqtt.Client("127.0.0.1", 1883) as client:
        await client.subscribe(f"otaudit/v1/{site}/#", qos=1)
        try:
            yield Listener(client)
        finally:  # clear the retained status on the shared broker
            with suppress(aiomqtt.MqttError):
                await client.publish(f"otaudit/v1/{site}/c1/status", b"", qos=1, retain=True)


def is_obs(asset: str):  # type: ignore[no-untyped-def]
    return lambda topic, data: topic.endswith(f"/obs/{asset}")


def is_status(state: str):  # type: ignore[no-untyped-def]
    return lambda topic, data: topic.endswith("/status") and data.get("state") == state


async def test_sigterm_drains_the_probe_in_flight_and_exits_zero(
        tmp_path: Path, mosquitto_url: str) -> None:
    accepted = asyncio.Event()

    async def silent_device(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()  # a device that accepts and never answers: the probe stays in flight
        await reader.read()
        writer.close()

    device = await asyncio.start_server(silent_device, "127.0.0.1", 0)
    port = device.sockets[0].getsockname()[1]
    site = f"term-{uuid.uuid4().hex[:6]}"
    inventory = write_inventory(tmp_path / "inv.yaml", site, [modbus_asset("slow", port)],
                                collector="c1")
    async with device, listening(site) as bus, collector(
            tmp_path, inventory, mosquitto_url, OTAUDIT_PROBE_TIMEOUT="3",
            OTAUDIT_RETRY_BACKOFF="60", OTAUDIT_SCHEDULE_JITTER="0") as proc:
        await bus.next(is_status("online"))
        await asyncio.wait_for(accepted.wait(), 15)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 15)
        took = time.monotonic() - sent
        obs = await bus.next(is_obs("slow"), timeout=5)
        final = await bus.next(is_status("offline"), timeout=5)
    log = (tmp_path / "collector.log").read_text()
    assert code == 0, log
    assert took < 3 + 4, f"exit took {took:.1f} s"
    assert Observation.model_validate(obs).status == "timeout"  # the in-flight run, stored
    assert final["reason"] == "shutdown" and final["outbox"]["entries"] == 0
    assert "SIGTERM: finishing the probe runs in flight" in log


async def test_status_is_retained_online_and_the_last_will_says_offline_after_kill_9(
        tmp_path: Path, mosquitto_url: str) -> None:
    site = f"will-{uuid.uuid4().hex[:6]}"
    inventory = write_inventory(tmp_path / "inv.yaml", site,
                                [modbus_asset("gone", free_tcp_port())], collector="c1")
    async with listening(site) as bus, collector(tmp_path, inventory, mosquitto_url) as proc:
        online = await bus.next(is_status("online"))
        assert online["collector"] == "c1" and online["pid"] == proc.pid
        assert {"outbox", "runs", "last_run", "observations"} <= set(online)
        async with aiomqtt.Client("127.0.0.1", 1883) as late:  # a newcomer sees it: retained
            await late.subscribe(f"otaudit/v1/{site}/c1/status", qos=1)
            assert await Listener(late).next(is_status("online"), timeout=5)
        proc.kill()
        await proc.wait()
        will = await bus.next(is_status("offline"))
        assert will["reason"] == "connection lost"
        async with aiomqtt.Client("127.0.0.1", 1883) as late:
            await late.subscribe(f"otaudit/v1/{site}/c1/status", qos=1)
            retained = await Listener(late).next(lambda t, d: True, timeout=5)
        assert retained["state"] == "offline"


async def test_sighup_reloads_the_inventory_and_keeps_it_when_the_new_one_is_bad(
        tmp_path: Path, mosquitto_url: str) -> None:
    site = f"hup-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "inv.yaml"
    schedules = [{"id": "default", "interval": "1s"}]
    async with create_simulator("modbus", "schneider-m340") as plc:  # type: ignore[attr-defined]
        assets = [modbus_asset("a0", plc.port)]
        write_inventory(path, site, assets, schedules, collector="c1")
        async with listening(site) as bus, collector(
                tmp_path, path, mosquitto_url, OTAUDIT_INVENTORY_POLL_INTERVAL="0",
                OTAUDIT_DEVICE_MIN_INTERVAL="0.2", OTAUDIT_HEARTBEAT_INTERVAL="60") as proc:
            await bus.next(is_obs("a0"))
            path.write_text(path.read_text().replace("zone: z1", "zone: nowhere"))
            proc.send_signal(signal.SIGHUP)
            rejected = await bus.next(lambda t, d: t.endswith("/status")
                                      and d["inventory"]["reload_errors"] == 1)
            assert "unknown zone 'nowhere'" in rejected["inventory"]["last_reload_error"]
            bus.messages.clear()
            await bus.next(is_obs("a0"))  # still auditing with the previous inventory
            write_inventory(path, site, [*assets, modbus_asset("a1", plc.port)], schedules,
                            collector="c1")
            proc.send_signal(signal.SIGHUP)
            added = await bus.next(is_obs("a1"))
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 15) == 0
    assert added["facts"]["identity.vendor"]["value"] == "Schneider Electric"
    log = (tmp_path / "collector.log").read_text()
    assert "inventory reload (SIGHUP) failed, keeping the previous inventory" in log
    assert "inventory reloaded (SIGHUP): 2 assets" in log
