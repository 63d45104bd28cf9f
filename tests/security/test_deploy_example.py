"""The shipped broker example (docs/deploy/mosquitto/otaudit.conf + acl) works as documented:
TLS with a client certificate *and* a password, identity = username, ACL per collector."""

from __future__ import annotations

import asyncio
import secrets
import ssl
import time
import uuid
from pathlib import Path

import aiomqtt
import pytest
from security_pki import (
    DEPLOY,
    CertificateAuthority,
    acl_example,
    keep_user,
    password_file,
    publish,
)

from otaudit.mqtt import client_kwargs, observation_filter
from otaudit.settings import Settings

from conftest import free_tcp_port, port_open
from support.observations import make_observation

pytestmark = pytest.mark.mosquitto


async def test_shipped_broker_config_needs_certificate_and_password(
        tmp_path: Path, mosquitto_factory) -> None:  # type: ignore[no-untyped-def]
    etc = tmp_path / "etc"
    ca = CertificateAuthority.create(etc, "plant")
    broker_cert, broker_key = ca.issue("broker", server_ip="127.0.0.1")
    ca.cert_file.rename(etc / "ca.pem")
    broker_cert.rename(etc / "broker.pem")
    broker_key.rename(etc / "broker.key")
    users = {name: secrets.token_urlsafe(16) for name in ("otaudit-server", "c1")}
    password_file(etc, users)
    prefix = f"otaudit-dep{uuid.uuid4().hex[:6]}/v1"
    (etc / "acl").write_text(acl_example(prefix))
    tls_port = free_tcp_port()
    shipped = (DEPLOY / "mosquitto" / "otaudit.conf").read_text()
    assert "listener 8883 0.0.0.0" in shipped
    config = (shipped.replace("/etc/mosquitto/otaudit/", f"{etc}/")
              .replace("listener 8883 0.0.0.0", f"listener {tls_port} 127.0.0.1"))
    broker = mosquitto_factory(keep_user() + config)
    broker.start()
    deadline = time.monotonic() + 5
    while not port_open("127.0.0.1", tls_port, 0.2):
        assert time.monotonic() < deadline, "the TLS listener of the example did not open"
        await asyncio.sleep(0.05)
    url = f"mqtts://127.0.0.1:{tls_port}"

    def settings(user: str, password: str | None, with_cert: bool = True) -> Settings:
        cert, key = ca.issue(user) if with_cert else (None, None)
        return Settings(_env_file=None, broker_url=url, topic_prefix=prefix,
                        mqtt_username=user, mqtt_password=password,
                        mqtt_ca_file=str(etc / "ca.pem"),
                        mqtt_client_cert=str(cert) if cert else None,
                        mqtt_client_key=str(key) if key else None)

    server = settings("otaudit-server", users["otaudit-server"])
    async with aiomqtt.Client(**client_kwargs(server)) as subscriber:
        await subscriber.subscribe(observation_filter(prefix), qos=1)
        await publish(settings("c1", users["c1"]), f"{prefix}/s1/c1/obs/plc-1",
                      make_observation(site="s1", collector="c1", asset="plc-1").to_json())
        async with asyncio.timeout(5):
            message = await anext(aiter(subscriber.messages))
    assert str(message.topic) == f"{prefix}/s1/c1/obs/plc-1"

    with pytest.raises(aiomqtt.MqttError, match="Not authorized"):  # certificate, no password
        async with aiomqtt.Client(**client_kwargs(settings("c1", None))):
            pass
    # password, no certificate (TLS 1.2 so that the refusal is part of the handshake)
    no_cert = client_kwargs(settings("c1", users["c1"], with_cert=False))
    no_cert["tls_context"].maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(aiomqtt.MqttError, match=r"(?i)handshake failure|certificate"):
        async with aiomqtt.Client(**no_cert):
            pass
    with pytest.raises(aiomqtt.MqttError):  # the plain-text port speaks no MQTT without TLS
        async with aiomqtt.Client("127.0.0.1", tls_port, timeout=2):
            pass
