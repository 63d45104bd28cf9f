"""The server's MQTT side: a persistent session that acknowledges a message only once stored.

Messages are acknowledged manually after their batch has been committed, so a server
killed mid-batch gets them again from the broker; ingest is idempotent on observation id.

The touched assets are evaluated off the hot path by an ``Evaluator`` (findings are derived
data): once no batch has come for ``idle`` seconds, at the latest ``max_delay`` seconds after
the first pending one, and always before ``serve`` returns. At start, the assets a stopped
server left unevaluated are queued again (``Ingestor.mark_stale_pending``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
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


class Evaluator:
    """Evaluates the assets the listener stored, coalesced, after the batches' acks."""

    def __init__(self, ingestor: Ingestor, *, idle: float = 0.25, max_delay: float = 5.0,
                 tick: float = 0.05) -> None:
        self.ingestor, self.idle, self.max_delay, self.tick = ingestor, idle, max_delay, tick
        self.last_batch = time.monotonic()
        self.first_pending: float | None = None  # when the oldest pending asset was noticed

    def stored(self) -> None:
        """A batch was stored (call after ``ingest``)."""
        self.last_batch = time.monotonic()
        if self.first_pending is None:
            self.first_pending = self.last_batch

    def due(self) -> bool:
        if not self.ingestor.pending:
            self.first_pending = None
            return False
        now = time.monotonic()
        if self.first_pending is None:  # pending from the start (stale assets)
            self.first_pending = now
        return now - self.last_batch >= self.idle or now - self.first_pending >= self.max_delay

    async def run(self) -> None:
        """Evaluate whenever due, until cancelled; errors are logged and retried later."""
        while True:
            await asyncio.sleep(self.tick)
            if not self.due():
                continue
            try:
                count = await asyncio.to_thread(self.ingestor.evaluate_pending)
                log.debug("evaluated %d assets", count)
            except Exception:
                log.exception("evaluation failed; the assets stay pending")
                await asyncio.sleep(self.max_delay)
            self.first_pending = None

    async def flush(self) -> None:
        await asyncio.to_thread(self.ingestor.flush_evaluation)


async def serve(ingestor: Ingestor, settings: Settings, *, broker_url: str | None = None,
                ready: asyncio.Event | None = None, stop: asyncio.Event | None = None,
                stats: ServerStats | None = None, reconnect_delay: float = 2.0) -> ServerStats:
    """Subscribe and ingest until ``stop`` is set; reconnect when the broker goes away.

    Evaluation runs in the background; everything pending is evaluated before returning, so
    the findings are complete once ``serve`` has returned.
    """
    stats = stats or ServerStats()
    stop = stop or asyncio.Event()
    address = BrokerAddress.parse(broker_url or settings.broker_url)
    stale = await asyncio.to_thread(ingestor.mark_stale_pending)
    if stale:
        log.info("%d assets have observations newer than their findings: re-evaluating", stale)
    evaluator = Evaluator(ingestor)
    background = asyncio.create_task(evaluator.run())
    try:
        while not stop.is_set():
            try:
                await _session(ingestor, evaluator, settings, broker_url, ready, stop, stats)
            except aiomqtt.MqttError as exc:
                log.warning("broker %s: %s; reconnecting in %.0f s", address, exc,
                            reconnect_delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), reconnect_delay)
    finally:
        background.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await background
        await evaluator.flush()
    return stats


async def _session(ingestor: Ingestor, evaluator: Evaluator, settings: Settings,
                   broker_url: str | None, ready: asyncio.Event | None, stop: asyncio.Event,
                   stats: ServerStats) -> None:
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
                evaluator.stored()
        finally:
            stopper.cancel()


async def _ingest(client: aiomqtt.Client, ingestor: Ingestor, batch: list[aiomqtt.Message],
                  stats: ServerStats) -> None:
    items = [(str(m.topic), bytes(m.payload or b"")) for m in batch]
    result = await asyncio.to_thread(ingestor.ingest, items, evaluate=False)
    stats.add(result)
    for message in batch:
        if message.qos > 0:
            client._client.ack(message.mid, message.qos)
    log.debug("ingested batch of %d: %s", len(batch), result)
