"""Publishes observations over MQTT with QoS 1 and waits for every acknowledgement."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import aiomqtt

from otaudit.mqtt import BrokerAddress, client_kwargs, observation_topic
from otaudit.observation import Observation
from otaudit.settings import Settings

log = logging.getLogger(__name__)
logging.getLogger("aiomqtt").setLevel(logging.ERROR)  # "N pending publish calls" noise


class BrokerUnavailable(Exception):
    """The broker could not be reached or dropped the connection."""


class Publisher:
    """One MQTT connection; ``publish`` returns once the broker has acknowledged (PUBACK)."""

    def __init__(self, client: aiomqtt.Client, settings: Settings, site: str, collector: str):
        self._client = client
        self._settings = settings
        self._site = site
        self._collector = collector
        self._window = asyncio.Semaphore(10)  # pending publishes (see protocol-stack §5)
        self.published = 0

    def topic_for(self, obs: Observation) -> str:
        return observation_topic(self._settings.topic_prefix, self._site, self._collector,
                                 obs.asset.id)

    async def publish(self, obs: Observation) -> None:
        async with self._window:
            try:
                await self._client.publish(self.topic_for(obs), obs.to_json(), qos=1, timeout=30)
            except aiomqtt.MqttError as exc:
                raise BrokerUnavailable(f"publish of {obs.observation_id} failed: {exc}") from exc
        self.published += 1


@asynccontextmanager
async def connect_publisher(settings: Settings, site: str, collector: str,
                            broker_url: str | None = None) -> AsyncIterator[Publisher]:
    address = BrokerAddress.parse(broker_url or settings.broker_url)
    client = aiomqtt.Client(identifier=f"otaudit-collector-{collector}",
                            **client_kwargs(settings, broker_url))
    try:
        await client.__aenter__()
    except aiomqtt.MqttError as exc:
        raise BrokerUnavailable(f"cannot reach MQTT broker at {address}: {exc}") from None
    try:
        yield Publisher(client, settings, site, collector)
    finally:
        with suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)
