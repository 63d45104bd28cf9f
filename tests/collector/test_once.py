"""``collector run --once`` through the outbox: broker down keeps observations; progress bar."""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import sys
import uuid
from pathlib import Path

import aiomqtt
import pytest
from collector_support import (  # noqa: F401 (fixtures)
    broker_acknowledges,
    fake_asset,
    fake_probes,
    private_state_dir,
    write_inventory,
)
from typer.testing import CliRunner

from otaudit.cli.main import app
from otaudit.collector.once import run_once
from otaudit.collector.outbox import Outbox
from otaudit.collector.targets import load_plan
from otaudit.observation import Observation
from otaudit.settings import Settings

from tests_helpers import free_tcp_port

OTAUDIT = str(Path(sys.executable).with_name("otaudit"))


async def test_observations_of_a_run_without_broker_are_published_by_the_next_run(
        tmp_path: Path, mosquitto_url: str) -> None:
    site = f"once-{uuid.uuid4().hex[:6]}"
    inventory = write_inventory(tmp_path / "inv.yaml", site, [fake_asset("a0")],
                                collector="c1")
    runner = CliRunner()
    down = f"mqtt://127.0.0.1:{free_tcp_port()}"
    first = await asyncio.to_thread(runner.invoke, app, [
        "collector", "run", "-i", str(inventory), "--once", "--broker", down])
    assert first.exit_code == 4
    assert f"cannot reach MQTT broker at {down}" in first.output
    assert "1 observation(s) stay in the outbox" in first.output
    box = Outbox.open(Settings(), "c1")
    kept = [Observation.from_json(e.payload).observation_id for e in box.peek()]
    box.close()
    assert len(kept) == 1

    seen = set()
    async with aiomqtt.Client("127.0.0.1", 1883) as sub:
        await sub.subscribe(f"otaudit/v1/{site}/c1/obs/+", qos=1)
        second = await asyncio.to_thread(runner.invoke, app, [
            "collector", "run", "-i", str(inventory), "--once", "--broker", mosquitto_url])
        async with asyncio.timeout(10):
            async for message in sub.messages:
                seen.add(Observation.from_json(message.payload).observation_id)
                if len(seen) == 2:
                    break
    assert second.exit_code == 0, second.output
    assert "1 observation(s) of an earlier run wait in the outbox" in second.output
    assert "2 published and acknowledged" in second.output
    assert kept[0] in seen
    box = Outbox.open(Settings(), "c1")
    assert box.entries == 0
    box.close()


def test_a_terminal_gets_a_progress_bar(tmp_path: Path, mosquitto_url: str) -> None:
    pytest.importorskip("rich")
    site = f"bar-{uuid.uuid4().hex[:6]}"
    assets = [{"id": f"m{i}", "kind": "plc", "zone": "z1",
               "endpoints": {"modbus": {"host": "127.0.0.1", "port": free_tcp_port()}}}
              for i in range(3)]  # nothing listens: refused at once, a quick audit
    inventory = write_inventory(tmp_path / "inv.yaml", site, assets)
    master, slave = pty.openpty()
    env = {**os.environ, "OTAUDIT_RETRIES": "0", "COLUMNS": "100"}
    proc = subprocess.Popen([OTAUDIT, "collector", "run", "-i", str(inventory), "--once",
                             "--broker", mosquitto_url], stdout=subprocess.PIPE,
                            stderr=slave, env=env)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    out, _ = proc.communicate(timeout=30)
    os.close(master)
    text = shown.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "audited" in text and "published" in text and "3/3" in text
    assert b"3 published and acknowledged" in out


async def test_a_signing_key_makes_every_payload_a_signed_envelope_numbered_by_the_outbox(
        tmp_path: Path, mosquitto_url: str) -> None:
    signing = pytest.importorskip("otaudit.signing")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "c1.key"
    key_file.write_bytes(signing.private_pem(key))
    key_file.chmod(0o600)
    site = f"sig-{uuid.uuid4().hex[:6]}"
    inventory, plans = load_plan(write_inventory(
        tmp_path / "inv.yaml", site, [fake_asset("a0"), fake_asset("a1", port=10)],
        collector="c1"))
    settings = Settings(broker_url=mosquitto_url, signing_key_file=str(key_file))
    verifier = signing.Verifier({"c1": key.public_key()})
    got = []
    async with aiomqtt.Client("127.0.0.1", 1883) as sub:
        await sub.subscribe(f"otaudit/v1/{site}/c1/obs/+", qos=1)
        summary = await run_once(inventory, plans, settings)
        async with asyncio.timeout(10):
            async for message in sub.messages:
                got.append(verifier.verify(bytes(message.payload), "c1"))
                if len(got) == 2:
                    break
    assert summary.published == 2
    assert {obs.asset.id for obs, _ in got} == {"a0", "a1"}
    seqs = sorted(seq for _, seq in got)
    assert seqs[0] > 10**15 and seqs[1] > seqs[0]  # the outbox's seq, never reused
