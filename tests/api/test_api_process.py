"""``otaudit server run --http``: one process ingests from the real Mosquitto and serves the
API on a real socket. Two sites publishing the same asset id stay apart from MQTT to API."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import aiomqtt
from typer.testing import CliRunner

from otaudit.cli.main import app as cli
from otaudit.mqtt import client_kwargs
from otaudit.settings import Settings

from support.observations import make_observation
from tests_helpers import free_tcp_port


def _get(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"}
                                     if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_server_run_serves_the_api_next_to_the_ingest(database_url: str, mosquitto_url: str,
                                                      tmp_path: Path) -> None:
    run = CliRunner().invoke
    assert run(cli, ["server", "init", "--db", database_url]).exit_code == 0
    env = {"OTAUDIT_PASSWORD": "a long password!"}
    for site in ("plant-a", "plant-b"):
        added = run(cli, ["server", "user", "add", f"v-{site}", "--site", site, "--role",
                          "viewer", "--db", database_url], env=env)
        assert added.exit_code == 0, added.output
    made = run(cli, ["server", "token", "create", "--user", "v-plant-a", "--site", "plant-a",
                     "--role", "viewer", "--expires", "1h", "--db", database_url])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("ota_")
    prefix = f"otaudit-test/{uuid.uuid4().hex[:8]}"
    port = free_tcp_port()
    proc_env = {**os.environ, "OTAUDIT_DATABASE_URL": database_url,
                "OTAUDIT_BROKER_URL": mosquitto_url, "OTAUDIT_TOPIC_PREFIX": prefix,
                "OTAUDIT_SERVER_CLIENT_ID": f"srv-{uuid.uuid4().hex[:8]}"}
    proc = subprocess.Popen([sys.executable, "-m", "otaudit.cli.main", "server", "run",
                             "--http", f"127.0.0.1:{port}"], env=proc_env, cwd=tmp_path,
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the API did not come up"
            time.sleep(0.2)
        assert _get(f"{base}/api/v1/sites/plant-a/assets")[0] == 401
        status, body = _get(f"{base}/api/v1/sites/plant-a/assets", token)
        assert (status, body["items"]) == (200, [])
        a = make_observation(site="plant-a", collector="ca", asset="plc-1",
                             facts={"identity.vendor": "Schneider Electric"})
        b = make_observation(site="plant-b", collector="cb", asset="plc-1",
                             facts={"identity.vendor": "Siemens"})

        async def publish() -> None:
            settings = Settings(broker_url=mosquitto_url, topic_prefix=prefix)
            async with aiomqtt.Client(**client_kwargs(settings)) as pub:
                for obs in (a, b):
                    await pub.publish(f"{prefix}/{obs.site}/{obs.collector_id}/obs/plc-1",
                                      obs.to_json(), qos=1)

        asyncio.run(publish())
        deadline = time.monotonic() + 30
        while (status := _get(f"{base}/api/v1/sites/plant-a/assets/plc-1", token))[0] != 200:
            assert time.monotonic() < deadline, f"not ingested: {status}"
            time.sleep(0.2)
        assert status[1]["facts"]["identity.vendor"]["value"] == "Schneider Electric"
        assert _get(f"{base}/api/v1/sites/plant-b/assets/plc-1", token)[0] == 403
        sites = _get(f"{base}/api/v1/sites", token)[1]["items"]
        assert [(s["site"], s["assets"]) for s in sites] == [("plant-a", 1)]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped: 2 stored" in err
    assert token not in err
