"""No credential leaves its place: a full pipeline run with known secrets, then a search.

``otaudit.cli.demo.run_pipeline`` (simulators → collector → Mosquitto over TLS with a password
→ server → database → report) runs the bundled demo plant plus three assets whose endpoint has
a device password ``{env: VAR}`` (the fake probe puts it in its raw evidence, refused in its
error, and crashing in an exception chain that quotes it as a library would). The collector
signs every observation (``OTAUDIT_SIGNING_KEY_FILE``) and the
server verifies them against the enrolled key. The secrets (MQTT passwords, device password,
the signing key's seed) are then searched, as text, hex and base64, in every MQTT payload (a
sniffer subscribed to ``#``), every log record at every level from DEBUG up, formatted
with its exception and stack (a traceback is where pyasn1 quoted a too-short SNMPv3 key),
the process output, every row of
every table, every file the run wrote (SQLite files and the collector's outbox included), the
report and the broker log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import sqlalchemy as sa
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from security_pki import CertificateAuthority, keep_user, password_file, tls_listener_config

from otaudit import probes, simulators
from otaudit.cli import demo
from otaudit.cli.demo import run_pipeline
from otaudit.mqtt import client_kwargs
from otaudit.server import ingest
from otaudit.server.db import make_engine
from otaudit.settings import Settings
from otaudit.signing import private_pem, public_pem, verifier_from_settings
from otaudit.simulators.plant import DEMO_PLANT

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]
DEVICE_VAR = "OTAUDIT_TEST_DEVICE_PASSWORD"


def forms(secret: str | bytes) -> list[bytes]:
    raw = secret.encode() if isinstance(secret, str) else secret
    return [raw, raw.hex().encode(), base64.b64encode(raw), base64.urlsafe_b64encode(raw)]


def leaks(where: str, data: bytes | str, known: dict[str, list[bytes]]) -> list[str]:
    blob = data.encode() if isinstance(data, str) else data
    return [f"{where}: {name}" for name, needles in known.items()
            if any(needle in blob for needle in needles)]


def signing_key(tmp_path: Path, collector: str) -> tuple[Path, Path, bytes]:
    """(private key file, trusted keys folder, raw 32-byte seed)."""
    key = Ed25519PrivateKey.generate()
    private = tmp_path / f"{collector}.key"
    private.write_bytes(private_pem(key))
    private.chmod(0o600)
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / f"{collector}.pub").write_bytes(public_pem(key.public_key()))
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    return private, trusted, seed


def plant_with_credentials(tmp_path: Path, device_password: str) -> Path:
    spec = yaml.safe_load(DEMO_PLANT.read_text())
    spec["env"] = {**(spec.get("env") or {}), DEVICE_VAR: device_password}
    for asset, behaviour in (("hmi-login", "ok"), ("hmi-refuses", "refused"),
                             ("hmi-crashes", "leaky_crash")):
        spec["devices"].append({
            "id": asset, "kind": "hmi", "zone": spec["zones"][-1]["id"],
            "simulators": [{"protocol": "fake", "endpoint": {
                "behaviour": behaviour, "password": {"env": DEVICE_VAR}}}],
        })
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


async def sniff(settings: Settings, payloads: list[tuple[str, bytes]], ready: asyncio.Event,
                stop: asyncio.Event) -> None:
    async with aiomqtt.Client(**client_kwargs(settings)) as client:
        await client.subscribe("#", qos=1)
        ready.set()
        messages = aiter(client.messages)
        stopper = asyncio.ensure_future(stop.wait())
        getter = asyncio.ensure_future(anext(messages))
        while True:  # no wait_for around anext: a timeout racing a delivery loses it
            await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                message = getter.result()
                payloads.append((str(message.topic), bytes(message.payload or b"")))
                getter = asyncio.ensure_future(anext(messages))
            elif stopper.done():
                getter.cancel()
                return


async def test_full_pipeline_leaks_no_credential(
        tmp_path: Path, mosquitto_factory, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    mqtt_password = "mqttpw-" + secrets.token_urlsafe(12)
    sniffer_password = "sniffpw-" + secrets.token_urlsafe(12)
    device_password = "devpw-" + secrets.token_urlsafe(12)
    plant = plant_with_credentials(tmp_path, device_password)
    plant_env = (yaml.safe_load(plant.read_text()).get("env") or {}).items()
    key_file, trusted, seed = signing_key(tmp_path, "demo-collector")
    pem_body = b"".join(key_file.read_bytes().splitlines()[1:-1])
    known = {"MQTT password": forms(mqtt_password), "sniffer password": forms(sniffer_password),
             "signing key seed": [*forms(seed), pem_body],
             **{f"plant credential {var}": forms(str(value)) for var, value in plant_env}}

    monkeypatch.setitem(simulators.REGISTRY, "fake", "leak_fixtures:from_profile")
    monkeypatch.setitem(probes.REGISTRY, "fake", "support.fake_probe:FakeProbe")
    monkeypatch.setenv(DEVICE_VAR, device_password)
    # run_pipeline resolves the bundled examples folder even with use_examples=False
    monkeypatch.setattr(demo, "_bundled_examples", lambda: tmp_path)

    ca = CertificateAuthority.create(tmp_path / "pki", "plant")
    passwd = password_file(tmp_path, {"demo-collector": mqtt_password,
                                      "auditor": sniffer_password})
    broker = mosquitto_factory(keep_user() + tls_listener_config(ca, require_certificate=False)
                               + f"allow_anonymous false\npassword_file {passwd}\n")
    broker.start()
    url = f"mqtts://127.0.0.1:{broker.port}"
    secret_file = tmp_path / "mqtt.password"
    secret_file.write_text(mqtt_password + "\n")
    secret_file.chmod(0o600)
    for name, value in (("BROKER_URL", url), ("MQTT_USERNAME", "demo-collector"),
                        ("MQTT_PASSWORD_FILE", str(secret_file)),
                        ("MQTT_CA_FILE", str(ca.cert_file)), ("SIGNING_KEY_FILE", str(key_file)),
                        ("TRUSTED_KEYS_DIR", str(trusted)),
                        ("STATE_DIR", str(tmp_path / "out" / "state"))):
        monkeypatch.setenv(f"OTAUDIT_{name}", value)
    settings = Settings(_env_file=None)

    class VerifyingIngestor(ingest.Ingestor):
        """run_pipeline builds its Ingestor without a verifier: give it the server's one."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("verifier", verifier_from_settings(settings))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(ingest, "Ingestor", VerifyingIngestor)
    sniffer = Settings(_env_file=None, mqtt_username="auditor", mqtt_password=sniffer_password,
                       mqtt_password_file=None)

    caplog.set_level(logging.DEBUG)
    for name in ("aiomqtt", "mqtt", "otaudit"):
        caplog.set_level(logging.DEBUG, logger=name)
    payloads: list[tuple[str, bytes]] = []
    ready, stop = asyncio.Event(), asyncio.Event()
    sniffing = asyncio.create_task(sniff(sniffer, payloads, ready, stop))
    await asyncio.wait_for(ready.wait(), 10)
    out = tmp_path / "out"
    try:
        result = await run_pipeline(out, broker_url=url, plant_file=plant, settings=settings,
                                      use_examples=False)
        async with asyncio.timeout(15):  # the sniffer may lag behind the server under load
            while sum("/obs/" in t for t, _ in payloads) < result.published:
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await sniffing
    captured = capfd.readouterr()

    # The credentials were really used: the fake probe logged in with the device password.
    assets = {a["asset_id"]: a for a in result.report["assets"]}
    assert result.published == result.stored and result.rejected == 0
    assert {"hmi-login", "hmi-refuses", "hmi-crashes"} <= set(assets)
    envelopes = [json.loads(p) for t, p in payloads if "/obs/" in t]
    assert envelopes and all(set(e) >= {"sig", "seq", "observation"} for e in envelopes)
    observations = [e["observation"] for e in envelopes]
    login = next(o for o in observations if o["asset"]["id"] == "hmi-login")
    assert login["facts"]["fake.login"]["value"] is True
    assert "[REDACTED]" in login["evidence"][0]["excerpt"]
    refused = next(o for o in observations if o["asset"]["id"] == "hmi-refuses")
    assert refused["status"] == "refused" and "[REDACTED]" in (refused["reason"] or "")
    crashed = next(o for o in observations if o["asset"]["id"] == "hmi-crashes")
    assert crashed["status"] == "error" and "withheld" in (crashed["reason"] or "")
    assert any("probe fake crashed" in r.getMessage() for r in caplog.records)
    assert len(observations) == result.published and caplog.records

    found: list[str] = []
    for topic, payload in payloads:
        found += leaks(f"MQTT payload on {topic}", payload, known)
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    assert {r.levelno for r in caplog.records} >= {logging.DEBUG, logging.INFO, logging.ERROR}
    for record in caplog.records:
        found += leaks(f"log {record.levelname} {record.name}", formatter.format(record), known)
    found += leaks("stdout", captured.out, known) + leaks("stderr", captured.err, known)
    found += leaks("report", json.dumps(result.report, default=str), known)
    engine = make_engine(f"sqlite:///{out / 'otaudit.db'}")
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = conn.execute(sa.select(table)).all()
            found += leaks(f"table {table.name}", repr(rows), known)
        sequences = conn.execute(sa.select(sa.func.count()).select_from(
            metadata.tables["collector_sequences"])).scalar_one()
    engine.dispose()
    assert {"observations", "rejected_messages", "findings"} <= set(metadata.tables)
    assert sequences == result.published  # every stored observation came signed
    assert list((out / "state").glob("outbox-*")), "the collector's outbox is searched too"
    for path in sorted(out.rglob("*")):
        if path.is_file():
            found += leaks(f"file {path.name}", path.read_bytes(), known)
    found += leaks("broker log", (broker.workdir / f"mosquitto-{broker.port}.log").read_bytes(),
                   known)
    assert found == []
