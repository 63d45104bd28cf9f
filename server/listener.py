"""The server's MQTT side: a persistent session that acknowledges a message only once stored.

Messages are acknowledged manually after their batch has been committed, so a server
killed mid-batch gets them again from the broker; ingest is idempotent on observation id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import aiomqtt

from otaudit.mqtt import (
    BrokerAddress,
    client_kwargs,
    observation_filter,
    persistent_session_kwargs,
)
from otaudit.server.ingest import Ingestor, IngestResult
from otaudit.settings import Settings

log = logging.getLogger(__name__)
MAX_BATCH = 200


@dataclass
class ServerStats:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0

    def add(self, result: IngestResult) -> None:
        self.stored += result.stored
        self.duplicates += result.duplicates
        self.rejected += result.rejected


async def serve(ingestor: Ingestor, settings: Settings, *, broker_url: str | None = None,
                ready: asyncio.Event | None = None, stop: asyncio.Event | None = None,
                stats: ServerStats | None = None, reconnect_delay: float = 2.0) -> ServerStats:
    """Subscribe and ingest until ``stop`` is set; reconnect when the broker goes away."""
    stats = stats or ServerStats()
    stop = stop or asyncio.Event()
    address = BrokerAddress.parse(broker_url or settings.broker_url)
    while not stop.is_set():
        try:
            await _session(ingestor, settings, broker_url, ready, stop, stats)
        except aiomqtt.MqttError as exc:
            log.warning("broker %s: %s; reconnecting in %.0f s", address, exc, reconnect_delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), reconnect_delay)
    return stats


async def _session(ingestor: Ingestor, settings: Settings, broker_url: str | None,
                   ready: asyncio.Event | None, stop: asyncio.Event, stats: ServerStats) -> None:
    client = aiomqtt.Client(identifier=settings.server_client_id,
                            **client_kwargs(settings, broker_url),
                            **persistent_session_kwargs(settings))
    client._client.manual_ack_set(True)  # ack after commit (paho feature aiomqtt does not wrap)
    async with client:
        topic = observation_filter(settings.topic_prefix, settings.server_shared_group)
        await client.subscribe(topic, qos=1)
        if ready:
            ready.set()
        stopper = asyncio.create_task(stop.wait())
        try:
            messages = aiter(client.messages)
            while not stop.is_set():
                getter = asyncio.ensure_future(anext(messages))
                done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                batch = [getter.result()]
                while len(batch) < MAX_BATCH and not client._queue.empty():
                    batch.append(client._queue.get_nowait())
                await _ingest(client, ingestor, batch, stats)
        finally:
            stopper.cancel()


async def _ingest(client: aiomqtt.Client, ingestor: Ingestor, batch: list[aiomqtt.Message],
                  stats: ServerStats) -> None:
    items = [(str(m.topic), bytes(m.payload or b"")) for m in batch]
    result = await asyncio.to_thread(ingestor.ingest, items)
    stats.add(result)
    for message in batch:
        if message.qos > 0:
            client._client.ack(message.mid, message.qos)
    log.debug("ingested batch of %d: %s", len(batch), result)
