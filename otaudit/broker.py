"""An embedded MQTT broker (amqtt) for zero-setup runs on a machine without Mosquitto.

It speaks MQTT 3.1.1 only, has no shared subscriptions and queues nothing for anonymous
offline sessions; production and tests use Mosquitto. It binds loopback only.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class EmbeddedBroker:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@asynccontextmanager
async def embedded_broker(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[EmbeddedBroker]:
    """Run an amqtt broker on ``host:port`` (port 0: a free one) for the block's duration."""
    from amqtt.broker import Broker

    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.ERROR)
    port = port or _free_port(host)
    broker = Broker({
        "listeners": {
            "default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 1000}
        },
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    })
    await broker.start()
    try:
        yield EmbeddedBroker(host, port)
    finally:
        await broker.shutdown()
