"""MQTT over TLS with client certificates on a private Mosquitto (``require_certificate true``).

Connections are made with ``otaudit.mqtt.client_kwargs(Settings(broker_url="mqtts://…"))``,
as collector and server make them, and the server's subscription filter.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from pathlib import Path

import aiomqtt
import pytest
from security_pki import CertificateAuthority, keep_user, publish, tls_listener_config

from otaudit.mqtt import client_kwargs, observation_filter, observation_topic
from otaudit.observation import Observation
from otaudit.settings import Settings

from support.observations import make_observation

pytestmark = pytest.mark.mosquitto


def tls_settings(url: str, ca: CertificateAuthority, cert: Path | None, key: Path | None,
                 **extra: object) -> Settings:
    return Settings(_env_file=None, broker_url=url, mqtt_ca_file=str(ca.cert_file),
                    mqtt_client_cert=str(cert) if cert else None,
                    mqtt_client_key=str(key) if key else None, **extra)


@pytest.fixture
def tls_broker(tmp_path: Path, mosquitto_factory):  # type: ignore[no-untyped-def]
    """(broker, plant CA, mqtts URL): Mosquitto requiring a client certificate of the CA."""
    ca = CertificateAuthority.create(tmp_path / "pki", "plant")
    broker = mosquitto_factory(keep_user() + tls_listener_config(ca))
    broker.start()
    return broker, ca, f"mqtts://127.0.0.1:{broker.port}"


async def test_collector_with_a_plant_certificate_publishes_over_tls(tls_broker) -> None:  # type: ignore[no-untyped-def]
    broker, ca, url = tls_broker
    prefix = f"otaudit-tls/{uuid.uuid4().hex[:6]}"
    server = tls_settings(url, ca, *ca.issue("otaudit-server"), topic_prefix=prefix)
    collector = tls_settings(url, ca, *ca.issue("c1"), topic_prefix=prefix)
    obs = make_observation(site="s1", collector="c1", asset="plc-1",
                           facts={"identity.firmware_version": "4.2.1"})

    async with aiomqtt.Client(**client_kwargs(server)) as subscriber:
        await subscriber.subscribe(observation_filter(prefix), qos=1)
        await publish(collector, observation_topic(prefix, "s1", "c1", "plc-1"), obs.to_json())
        async with asyncio.timeout(5):
            message = await anext(aiter(subscriber.messages))
    assert str(message.topic) == f"{prefix}/s1/c1/obs/plc-1"
    assert Observation.from_json(bytes(message.payload)) == obs
    log = (broker.workdir / f"mosquitto-{broker.port}.log").read_text()
    assert "u'c1'" in log and "u'otaudit-server'" in log  # the certificate CN is the identity


async def test_certificate_from_another_ca_is_refused(tls_broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    broker, ca, url = tls_broker
    rogue = CertificateAuthority.create(tmp_path / "rogue", "rogue")
    kwargs = client_kwargs(tls_settings(url, ca, *rogue.issue("c1")))

    # TLS 1.2: the broker's "unknown ca" alert ends the handshake, the error names it.
    kwargs["tls_context"].maximum_version = ssl.TLSVersion.TLSv1_2
    started = time.monotonic()
    with pytest.raises(aiomqtt.MqttError, match=r"(?i)unknown ca"):
        async with aiomqtt.Client(**kwargs):
            pass
    assert time.monotonic() - started < 2

    # TLS 1.3 (client_kwargs as it is): the alert comes after the client's handshake, so
    # aiomqtt only sees no CONNACK; still refused, after the client's timeout.
    kwargs = client_kwargs(tls_settings(url, ca, *rogue.issue("c1b"))) | {"timeout": 1.5}
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(**kwargs):
            pass
    log = (broker.workdir / f"mosquitto-{broker.port}.log").read_text()
    assert "certificate verify failed" in log
    assert "u'c1'" not in log  # no rogue client ever got a session


async def test_client_without_certificate_and_client_not_trusting_broker_fail(
        tls_broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _broker, ca, url = tls_broker
    no_cert = client_kwargs(tls_settings(url, ca, None, None)) | {"timeout": 1.5}
    no_cert["tls_context"].maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(aiomqtt.MqttError, match=r"(?i)handshake failure|certificate"):
        async with aiomqtt.Client(**no_cert):
            pass
    # The client verifies the broker: a CA file of another CA means no connection at all.
    rogue = CertificateAuthority.create(tmp_path / "rogue", "rogue")
    wrong_trust = client_kwargs(tls_settings(url, rogue, *ca.issue("c1")))
    with pytest.raises(aiomqtt.MqttError, match="certificate verify failed"):
        async with aiomqtt.Client(**wrong_trust):
            pass
