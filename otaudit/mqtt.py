"""MQTT connection settings and topic names shared by collector and server."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from otaudit.errors import InputError
from otaudit.settings import Settings

OBSERVATION_SEGMENT = "obs"
RECEIPT_SEGMENT = "receipt"


def observation_topic(prefix: str, site: str, collector: str, asset: str) -> str:
    """``otaudit/v1/<site>/<collector>/obs/<asset>``: one topic per asset (QoS 1)."""
    return f"{prefix}/{site}/{collector}/{OBSERVATION_SEGMENT}/{asset}"


def observation_filter(prefix: str, shared_group: str | None = None) -> str:
    """Subscription filter for every observation; ``$share/<group>/…`` splits replicas."""
    plain = f"{prefix}/+/+/{OBSERVATION_SEGMENT}/+"
    return f"$share/{shared_group}/{plain}" if shared_group else plain


def receipt_topic(prefix: str, site: str, collector: str) -> str:
    """``otaudit/v1/<site>/<collector>/receipt``: the server's receipts for that collector
    (QoS 1; only servers may write it, only that collector may read it: see the ACL in
    docs/deploy/mosquitto/acl)."""
    return f"{prefix}/{site}/{collector}/{RECEIPT_SEGMENT}"


def parse_observation_topic(prefix: str, topic: str) -> tuple[str, str, str] | None:
    """``(site, collector, asset)`` of an observation topic, or None if it is not one."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1 :].split("/")
    if len(parts) != 4 or parts[2] != OBSERVATION_SEGMENT or not all(parts):
        return None
    return parts[0], parts[1], parts[3]


class BadBrokerUrl(InputError, ValueError):
    """A broker URL otaudit cannot use."""


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
            raise BadBrokerUrl("broker URL", [
                f"{url!r}: expected mqtt://host[:port] or mqtts://host[:port]"],
                hint="--broker or OTAUDIT_BROKER_URL")
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(parts.hostname, parts.port or (8883 if tls else 1883), tls)

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def client_kwargs(settings: Settings, url: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``aiomqtt.Client`` from settings (credentials never logged)."""
    import aiomqtt

    address = BrokerAddress.parse(url or settings.broker_url)
    kwargs: dict[str, Any] = {"hostname": address.host, "port": address.port, "timeout": 10}
    kwargs["protocol"] = (aiomqtt.ProtocolVersion.V5 if settings.mqtt_protocol == "5"
                          else aiomqtt.ProtocolVersion.V311)
    if settings.mqtt_username:
        kwargs["username"] = settings.mqtt_username
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        if settings.mqtt_password_file:
            password = Path(settings.mqtt_password_file).read_text().rstrip("\r\n")
        kwargs["password"] = password
    if address.tls:
        context = ssl.create_default_context(cafile=settings.mqtt_ca_file)
        if settings.mqtt_client_cert:
            context.load_cert_chain(settings.mqtt_client_cert, settings.mqtt_client_key)
        kwargs["tls_context"] = context
    return kwargs


def persistent_session_kwargs(settings: Settings, expiry: int | None = None) -> dict[str, Any]:
    """A broker-side session that outlives disconnects (queued QoS 1 messages survive) for
    ``expiry`` seconds (default ``mqtt_session_expiry``; MQTT 5 only)."""
    if settings.mqtt_protocol == "5":
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = settings.mqtt_session_expiry if expiry is None \
            else expiry
        return {"clean_start": False, "properties": properties}
    return {"clean_session": False}
