"""Username/password and the shipped ACL example (docs/deploy/mosquitto/acl) on a private Mosquitto.

Each collector may publish only under ``<prefix>/<site>/<its id>/…``; the server reads
observations only. Passwords come from ``OTAUDIT_MQTT_PASSWORD`` / ``OTAUDIT_MQTT_PASSWORD_FILE``.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import aiomqtt
import pytest
from security_pki import acl_example, keep_user, password_file, publish

from otaudit.mqtt import client_kwargs, observation_filter
from otaudit.settings import Settings

from support.observations import make_observation

pytestmark = pytest.mark.mosquitto
PREFIX = "otaudit-acl/v1"


async def drain(client: aiomqtt.Client, quiet: float = 0.5) -> list[str]:
    """Topics received until nothing arrives for ``quiet`` seconds."""
    topics = []
    messages = aiter(client.messages)
    while True:
        try:
            message = await asyncio.wait_for(anext(messages), quiet)
        except TimeoutError:
            return topics
        topics.append(str(message.topic))


@pytest.fixture
def acl_broker(tmp_path: Path, mosquitto_factory):  # type: ignore[no-untyped-def]
    users = {name: secrets.token_urlsafe(16) for name in ("otaudit-server", "c1", "c2")}
    passwd = password_file(tmp_path, users)
    acl = tmp_path / "acl"
    acl.write_text(acl_example(PREFIX))
    broker = mosquitto_factory(keep_user() + f"allow_anonymous false\npassword_file {passwd}\n"
                               f"acl_file {acl}\n")
    broker.start()
    return broker, users


def env_settings(monkeypatch: pytest.MonkeyPatch, url: str, user: str, password: str,
                 tmp_path: Path, *, from_file: bool) -> Settings:
    """Settings exactly as a service gets them: from OTAUDIT_* environment variables."""
    monkeypatch.setenv("OTAUDIT_BROKER_URL", url)
    monkeypatch.setenv("OTAUDIT_MQTT_USERNAME", user)
    monkeypatch.setenv("OTAUDIT_TOPIC_PREFIX", PREFIX)
    monkeypatch.delenv("OTAUDIT_MQTT_PASSWORD", raising=False)
    monkeypatch.delenv("OTAUDIT_MQTT_PASSWORD_FILE", raising=False)
    if from_file:
        path = tmp_path / f"{user}.password"
        path.write_text(password + "\n")
        path.chmod(0o600)
        monkeypatch.setenv("OTAUDIT_MQTT_PASSWORD_FILE", str(path))
    else:
        monkeypatch.setenv("OTAUDIT_MQTT_PASSWORD", password)
    settings = Settings(_env_file=None)
    assert password not in repr(settings)
    return settings


async def test_collector_publishes_only_under_its_own_prefix(
        acl_broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    broker, users = acl_broker
    server = env_settings(monkeypatch, broker.url, "otaudit-server", users["otaudit-server"],
                          tmp_path, from_file=False)
    c1 = env_settings(monkeypatch, broker.url, "c1", users["c1"], tmp_path, from_file=True)
    c2 = env_settings(monkeypatch, broker.url, "c2", users["c2"], tmp_path, from_file=True)

    async with aiomqtt.Client(**client_kwargs(server)) as subscriber, \
            aiomqtt.Client(**client_kwargs(c1)) as c1_reader:
        await subscriber.subscribe(observation_filter(PREFIX), qos=1)
        await c1_reader.subscribe(f"{PREFIX}/#", qos=1)  # a collector may read nothing
        await publish(c1, f"{PREFIX}/s1/c1/obs/plc-1",
                      make_observation(site="s1", collector="c1", asset="plc-1").to_json())
        # c1 (broker identity) publishing under c2's prefix or elsewhere: the broker drops it.
        await publish(c1, f"{PREFIX}/s1/c2/obs/plc-9",
                      make_observation(site="s1", collector="c2", asset="plc-9").to_json())
        await publish(c1, f"{PREFIX}/s1/obs", b"{}")
        await publish(c2, f"{PREFIX}/s1/c2/obs/plc-2",
                      make_observation(site="s1", collector="c2", asset="plc-2").to_json())
        received = await drain(subscriber)
        read_by_c1 = await drain(c1_reader, quiet=0.1)
    assert received == [f"{PREFIX}/s1/c1/obs/plc-1", f"{PREFIX}/s1/c2/obs/plc-2"]
    assert read_by_c1 == []


async def test_wrong_or_missing_password_is_refused(
        acl_broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    broker, users = acl_broker
    wrong = env_settings(monkeypatch, broker.url, "c1", users["c2"], tmp_path, from_file=False)
    with pytest.raises(aiomqtt.MqttError, match="Not authorized") as caught:
        async with aiomqtt.Client(**client_kwargs(wrong)):
            pass
    assert users["c2"] not in str(caught.value)
    with pytest.raises(aiomqtt.MqttError, match="Not authorized"):
        async with aiomqtt.Client("127.0.0.1", broker.port):  # anonymous
            pass
