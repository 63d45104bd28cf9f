"""Issue 18's "done when": a firmware change between two audits of a simulated S7 CPU, through
collector → Mosquitto → ``otaudit server run`` (a real process), yields exactly one drift
event, one webhook (HMAC verified) and one syslog message; ``/metrics`` counts it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from prometheus_client.parser import text_string_to_metric_families

from otaudit.server.alerts.webhook import verify
from otaudit.server.db import make_engine
from otaudit.server.drift.events import DriftEvent
from otaudit.simulators import bundled_profile, create_simulator

from support.alert_listeners import udp_syslog, webhook_receiver
from tests_helpers import free_tcp_port

pytestmark = pytest.mark.slow
OTAUDIT = str(Path(sys.executable).with_name("otaudit"))
SECRET = "e2e-webhook-secret-0123456789abcdef"


def profile(tmp_path: Path, firmware: str) -> Path:
    data = yaml.safe_load(bundled_profile("s7", "s7-300-weak").read_text())
    data["module"]["firmware"] = firmware
    path = tmp_path / f"s7-{firmware}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def inventory(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump({
        "site": "plant-d", "zones": [{"id": "cell", "sl_t": 2}],
        "assets": [{"id": "plc-1", "kind": "plc", "zone": "cell",
                    "endpoints": {"s7": {"host": "127.0.0.1", "port": port, "rack": 0,
                                         "slot": 2}}}]}))
    return path


def drift_events(url: str) -> list[tuple[str, str, str, str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("drift_events"):
                return []
            return [tuple(r) for r in conn.execute(sa.select(
                DriftEvent.fact, DriftEvent.kind, DriftEvent.before, DriftEvent.after))]
    finally:
        engine.dispose()


async def audit(tmp_path: Path, firmware: str, env: dict[str, str]) -> None:
    async with create_simulator("s7", profile(tmp_path, firmware)) as sim:
        done = await asyncio.to_thread(subprocess.run, [
            OTAUDIT, "collector", "run", "-i", str(inventory(tmp_path, sim.port)), "--once"],
            env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


async def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_firmware_change_is_one_drift_event_one_webhook_one_syslog(
        tmp_path: Path, mosquitto_url: str) -> None:
    prefix = f"otaudit-test/{uuid.uuid4().hex[:10]}"
    database = f"sqlite:///{tmp_path / 'otaudit.db'}"
    metrics_port = free_tcp_port()
    common = {**os.environ, "OTAUDIT_BROKER_URL": mosquitto_url, "OTAUDIT_TOPIC_PREFIX": prefix}
    with webhook_receiver() as hook, udp_syslog() as syslog:
        server_env = {
            **common, "OTAUDIT_DATABASE_URL": database,
            "OTAUDIT_SERVER_CLIENT_ID": f"srv-{uuid.uuid4().hex[:8]}",
            "OTAUDIT_ALERT_WEBHOOK_URL": hook.url, "OTAUDIT_ALERT_WEBHOOK_SECRET": SECRET,
            "OTAUDIT_ALERT_SYSLOG_TARGET": f"udp://127.0.0.1:{syslog.getsockname()[1]}",
            "OTAUDIT_HEARTBEAT_INTERVAL": "3600"}
        log = tmp_path / "server.log"
        with log.open("wb") as out:
            server = subprocess.Popen([OTAUDIT, "server", "run", "--metrics",
                                       f"127.0.0.1:{metrics_port}"], env=server_env,
                                      stdout=out, stderr=subprocess.STDOUT)
        try:
            await wait_until(lambda: "server: subscribed" in log.read_text(), 30,
                             "the server to subscribe")
            collector_env = {**common, "OTAUDIT_STATE_DIR": str(tmp_path / "state"),
                             "OTAUDIT_COLLECTOR_ID": "c1", "OTAUDIT_RETRIES": "0"}
            await audit(tmp_path, "V3.2.6", collector_env)
            await audit(tmp_path, "V3.2.19", collector_env)
            await wait_until(lambda: drift_events(database) and hook.requests, 30,
                             "the drift event and its webhook")
            syslog.settimeout(10)
            message, _ = syslog.recvfrom(65536)
            await asyncio.sleep(1.0)  # anything more would have come by now
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                        timeout=10) as response:
                scraped = response.read().decode()
        finally:
            server.terminate()
            server.wait(30)
        syslog.settimeout(0.2)
        try:
            extra = syslog.recvfrom(65536)[0]
        except TimeoutError:
            extra = None
    assert drift_events(database) == [("identity.firmware_version", "firmware", "V3.2.6",
                                       "V3.2.19")]
    assert len(hook.requests) == 1, [r.body for r in hook.requests]
    request = hook.requests[0]
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert verify(SECRET.encode(), headers["x-otaudit-timestamp"], request.body,
                  headers["x-otaudit-signature"])
    body = json.loads(request.body)
    assert (body["type"], body["site"], body["asset_id"]) == ("drift", "plant-d", "plc-1")
    assert (body["data"]["before"], body["data"]["after"]) == ("V3.2.6", "V3.2.19")
    assert b'type="drift"' in message and b'fact="identity.firmware_version"' in message
    assert extra is None, extra
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for f in text_string_to_metric_families(scraped) for s in f.samples}
    assert values[("otaudit_drift_events_total", (("kind", "firmware"),
                                                  ("severity", "high")))] == 1
    assert values[("otaudit_ingest_observations_total", (("outcome", "stored"),))] == 2
    assert SECRET not in log.read_text()
