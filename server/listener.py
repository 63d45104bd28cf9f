"""The server's MQTT side: a persistent session that acknowledges a message only once stored.

Messages are acknowledged manually after their batch has been committed, so a server
killed mid-batch gets them again from the broker; ingest is idempotent on observation id.
After each commit the server publishes, per collector, a receipt (``otaudit.receipt``)
naming the observations now in the database (stored by this batch or before) and the
messages it rejected for good; the collector keeps each entry until then, so a message the
broker lost (a crash without persistence, a wiped session) is published again. Replicas on
a ``$share`` group each receipt what they commit. Receipts are published without waiting
for the broker's PUBACK: a lost receipt only means one more re-publish.

A batch is validated while the one before it is being stored (``_session``). The touched
assets are evaluated off the hot path by an ``Evaluator`` (findings are derived data): once
no batch has come for ``idle`` seconds, at the latest ``max_delay`` seconds after the first
pending one, and always before ``serve`` returns. At start, the assets a stopped server left
unevaluated are queued again (``Ingestor.mark_stale_pending``).

Over MQTT 5 the server asks the broker for up to ``RECEIVE_MAXIMUM`` unacknowledged messages
(Mosquitto's default is 20, which would cap a batch at 20 and stall the broker during each
commit). While serving, the garbage collector skips the start-up heap (``lean_gc``), paho
decodes MQTT 5 PUBLISH properties with lookup tables built once (``share_property_tables``)
and reads the socket through ``ReadAhead``. With a ``StoreWorker`` each batch is checked and
stored in a process of its own (``otaudit.server.store_worker``). A batch that cannot be
stored ends the session at once, its messages unacknowledged (the broker keeps them).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import aiomqtt
from paho.mqtt import client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from otaudit.mqtt import (
    BrokerAddress,
    client_kwargs,
    observation_filter,
    parse_observation_topic,
    persistent_session_kwargs,
    receipt_topic,
)
from otaudit.receipt import ReceiptSigner, encode, group, rejection, signer_from_settings
from otaudit.server.ingest import Ingestor, IngestResult
from otaudit.server.presence import Presence, parse_status_topic, status_filter
from otaudit.server.store_worker import StoreWorker
from otaudit.settings import Settings

log = logging.getLogger(__name__)
MAX_BATCH = 200
WORKER_BATCHES = 2  # batches in a store worker at once: one stored, the next one queued
RECEIVE_MAXIMUM = 4 * MAX_BATCH  # unacknowledged messages the broker may send (MQTT 5)
READ_AHEAD = 256 * 1024  # bytes ``ReadAhead`` asks the socket for at a time
GC_THRESHOLDS = (200_000, 20, 10)  # while serving; Python's defaults are (700, 10, 10)
_lean_gc: list[tuple[int, ...]] = []  # the thresholds to restore, once per open block


@dataclass
class ServerStats:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    receipts: int = 0  # receipts published

    def add(self, result: IngestResult) -> None:
        self.stored += result.stored
        self.duplicates += result.duplicates
        self.rejected += result.rejected


class Evaluator:
    """Evaluates the assets the listener stored, coalesced, after the batches' acks.

    Not while a batch is between the broker and its commit (``handling``), unless the oldest
    pending asset has waited ``max_delay``: a slow batch is no pause in the traffic.
    """

    def __init__(self, ingestor: Ingestor, *, idle: float = 0.25, max_delay: float = 5.0,
                 tick: float = 0.05) -> None:
        self.ingestor, self.idle, self.max_delay, self.tick = ingestor, idle, max_delay, tick
        self.last_batch = time.monotonic()
        self.first_pending: float | None = None  # when the oldest pending asset was noticed
        self.in_flight = 0  # batches being checked or stored

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        """A batch is being checked or stored meanwhile."""
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self.last_batch = time.monotonic()

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
        if now - self.first_pending >= self.max_delay:
            return True
        return not self.in_flight and now - self.last_batch >= self.idle

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


class ReceiptSender:
    """Publishes the receipts of a committed batch (QoS 1, not awaited)."""

    def __init__(self, prefix: str, server: str, signer: ReceiptSigner | None = None) -> None:
        self.prefix, self.server, self.signer = prefix, server, signer

    def receipts(self, result: IngestResult) -> list[tuple[str, bytes]]:
        """``(topic, payload)`` of each receipt the batch calls for."""
        settled: list[tuple[tuple[str, str], Any]] = []
        for topic, oid in result.committed:
            if where := parse_observation_topic(self.prefix, topic):
                settled.append(((where[0], where[1]), oid))
        for topic, payload, reason in result.refused:
            if where := parse_observation_topic(self.prefix, topic):
                settled.append(((where[0], where[1]), rejection(payload, reason)))
        return [(receipt_topic(self.prefix, r.site, r.collector), encode(r, self.signer))
                for r in group(settled, self.server)]

    def send(self, client: aiomqtt.Client, result: IngestResult) -> int:
        sent = 0
        for topic, payload in self.receipts(result):
            info = client._client.publish(topic, payload, qos=1)  # paho: queued, not awaited
            sent += info.rc == 0
        return sent


class SharedTableProperties(Properties):
    """paho's ``Properties`` with its lookup tables built once instead of per packet.

    paho builds them (27 properties, a ``list.index`` call each) for every MQTT 5 PUBLISH it
    decodes, then scans all 27 names to clear the new object: a quarter of the CPU of
    receiving a message. The tables are constants that paho only reads.
    """

    _tables: ClassVar[dict[str, Any]] = {}
    _own: ClassVar[frozenset[str]] = frozenset({"packetType", "types", "names", "properties"})

    def __init__(self, packetType: int) -> None:  # paho's parameter name
        if not self._tables:
            prototype = Properties(PacketTypes.PUBLISH)
            type(self)._tables = {name: getattr(prototype, name)
                                  for name in ("types", "names", "properties")}
        self.__dict__.update(self._tables, packetType=packetType)

    def clear(self) -> None:
        """Delete the properties set (attributes other than paho's own four)."""
        for name in [n for n in self.__dict__ if n not in self._own]:
            delattr(self, name)


def share_property_tables() -> bool:
    """Let paho's packet decoder use ``SharedTableProperties``; False (nothing changed) when
    paho's decoder is not the one this was written for (paho-mqtt 2.2)."""
    try:
        from paho.mqtt import _packet
    except ImportError:
        return False
    if _packet.__dict__.get("Properties") not in (Properties, SharedTableProperties):
        return False
    _packet.Properties = SharedTableProperties
    return True


class ReadAhead:
    """Serves paho's reads of one client from one large ``recv`` at a time.

    paho reads each packet in three or four ``recv`` calls (the command byte, the remaining
    length a byte at a time, then the rest), and aiomqtt's reader callback decodes about one
    packet per wake-up of the event loop. With ``install`` paho's reads come from a buffer
    filled by ``recv(size)``, and each wake-up decodes every packet that buffer holds.
    """

    def __init__(self, client: mqtt.Client, size: int = READ_AHEAD) -> None:
        self.size = size
        self._recv = client._sock_recv  # paho's own: errors and end of stream as before
        self._loop_read = client.loop_read
        self._data = b""
        self._pos = 0
        self.reads = 0  # ``recv`` calls made (for tests)

    @classmethod
    def install(cls, client: mqtt.Client, size: int = READ_AHEAD) -> ReadAhead:
        """Route ``client``'s socket reads through a new ReadAhead (paho-mqtt 2.x)."""
        reader = cls(client, size)
        client._sock_recv = reader.recv  # type: ignore[method-assign]
        client.loop_read = reader.loop_read  # type: ignore[method-assign]
        return reader

    def pending(self) -> int:
        """Bytes received and not yet handed to paho."""
        return len(self._data) - self._pos

    def recv(self, bufsize: int) -> bytes:
        if self._pos >= len(self._data):
            self.reads += 1
            self._data, self._pos = self._recv(max(bufsize, self.size)), 0
            if not self._data:
                return self._data  # the end of the stream: paho sees it as before
        chunk = self._data[self._pos:self._pos + bufsize]
        self._pos += len(chunk)
        return chunk

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """paho's ``loop_read`` until the buffer is empty: the socket will not signal the
        packets already read from it again."""
        while True:
            rc = self._loop_read(max_packets)
            if rc != mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS or not self.pending():
                return rc


@contextlib.contextmanager
def lean_gc() -> Iterator[None]:
    """Cheaper garbage collection for the block: the objects that exist now (modules, baseline,
    engine) are frozen out of the collector's reach, and a young collection waits for 200,000
    new live objects instead of 700 (batches in flight stay below; their objects are freed by
    reference counting). With Python's defaults, collections took about a third of the
    server's CPU in bench/ingest.py. Blocks may overlap (two servers in one process); the
    last one out restores the collector."""
    if not _lean_gc:
        _lean_gc.append(gc.get_threshold())
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
    else:
        _lean_gc.append(_lean_gc[0])
    try:
        yield
    finally:
        previous = _lean_gc.pop()
        if not _lean_gc:
            gc.set_threshold(*previous)
            gc.unfreeze()


async def serve(ingestor: Ingestor, settings: Settings, *, broker_url: str | None = None,
                ready: asyncio.Event | None = None, stop: asyncio.Event | None = None,
                stats: ServerStats | None = None, reconnect_delay: float = 2.0,
                presence: Presence | None = None,
                worker: StoreWorker | None = None) -> ServerStats:
    """Subscribe and ingest until ``stop`` is set; reconnect when the broker goes away.

    Evaluation runs in the background; everything pending is evaluated before returning, so
    the findings are complete once ``serve`` has returned. With ``presence`` the collectors'
    status topics are followed too (last seen; with the ingestor's alerts, a silent collector
    is alerted, checked every ``SILENCE_CHECK`` seconds at most). With a started ``worker``
    each batch is checked and stored in the worker's process (``otaudit.server.store_worker``),
    else in threads of this one.
    """
    stats = stats or ServerStats()
    stop = stop or asyncio.Event()
    receipts = (ReceiptSender(settings.topic_prefix, settings.server_client_id,
                              signer_from_settings(settings)) if settings.receipts else None)
    if settings.mqtt_protocol == "5" and not share_property_tables():
        log.debug("paho's packet decoder is not the known one: properties decoded as paho does")
    address = BrokerAddress.parse(broker_url or settings.broker_url)
    stale = await asyncio.to_thread(ingestor.mark_stale_pending)
    if stale:
        log.info("%d assets have observations newer than their findings: re-evaluating", stale)
    evaluator = Evaluator(ingestor)
    background = asyncio.create_task(evaluator.run())
    watch = (asyncio.create_task(_watch_silence(presence, ingestor, settings))
             if presence is not None and ingestor.alerts is not None else None)
    try:
        with lean_gc():
            while not stop.is_set():
                try:
                    await _session(ingestor, evaluator, settings, broker_url, ready, stop,
                                   stats, receipts, presence, worker)
                except aiomqtt.MqttError as exc:
                    log.warning("broker %s: %s; reconnecting in %.0f s", address, exc,
                                reconnect_delay)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), reconnect_delay)
    finally:
        for task in (background, watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await evaluator.flush()
        if worker is not None:
            worker.leave_loop()
    return stats


SILENCE_CHECK = 30.0  # seconds between two looks for silent collectors (at most)


async def _watch_silence(presence: Presence, ingestor: Ingestor, settings: Settings) -> None:
    """Alert each collector silent for ``alert_collector_silent_intervals`` heartbeats."""
    period = max(0.05, min(SILENCE_CHECK, settings.heartbeat_interval / 2))
    while True:
        await asyncio.sleep(period)
        if silent := presence.silent():
            assert ingestor.alerts is not None
            ingestor.alerts.submit(silent)


def _take_status(client: aiomqtt.Client, presence: Presence,
                 batch: list[aiomqtt.Message]) -> list[aiomqtt.Message]:
    """Record and acknowledge the status messages of ``batch``; return the others."""
    rest = []
    for message in batch:
        if parse_status_topic(presence.prefix, str(message.topic)) is None:
            rest.append(message)
            continue
        presence.status(str(message.topic), bytes(message.payload or b""))
        if message.qos > 0:
            client._client.ack(message.mid, message.qos)
    return rest


def session_kwargs(settings: Settings) -> dict[str, Any]:
    """The persistent session, and over MQTT 5 a receive maximum of ``RECEIVE_MAXIMUM``."""
    kwargs = persistent_session_kwargs(settings)
    if "properties" in kwargs:  # MQTT 5 CONNECT properties
        kwargs["properties"].ReceiveMaximum = RECEIVE_MAXIMUM
    return kwargs


async def _session(ingestor: Ingestor, evaluator: Evaluator, settings: Settings,
                   broker_url: str | None, ready: asyncio.Event | None, stop: asyncio.Event,
                   stats: ServerStats, receipts: ReceiptSender | None = None,
                   presence: Presence | None = None, worker: StoreWorker | None = None
                   ) -> None:
    """One broker connection. Batches go through a two-stage pipeline: a batch is received
    and (without a ``worker``) checked (``Ingestor.check``: validation, signatures) while the
    one before it is stored, and each is receipted and acknowledged, in order, once its
    transaction has committed. A ``worker`` holds up to ``WORKER_BATCHES`` batches: the next
    one waits in it while one is stored, so it never waits for this process in between."""
    client = aiomqtt.Client(identifier=settings.server_client_id,
                            **client_kwargs(settings, broker_url), **session_kwargs(settings))
    client._client.manual_ack_set(True)  # ack after commit (paho feature aiomqtt does not wrap)
    ReadAhead.install(client._client)
    async with client:
        topic = observation_filter(settings.topic_prefix, settings.server_shared_group)
        await client.subscribe(topic, qos=1)
        if presence is not None:
            await client.subscribe(status_filter(settings.topic_prefix), qos=1)
        if ready:
            ready.set()
        stopper = asyncio.create_task(stop.wait())
        storing: deque[asyncio.Task[None]] = deque()  # batches stored, then acked, in order
        depth = WORKER_BATCHES if worker is not None else 1
        getter: asyncio.Future[aiomqtt.Message] | None = None
        try:
            messages = aiter(client.messages)
            while not stop.is_set():
                getter = getter or asyncio.ensure_future(anext(messages))
                done, _ = await asyncio.wait({getter, stopper, *storing},
                                             return_when=asyncio.FIRST_COMPLETED)
                for finished in [task for task in storing if task in done]:
                    storing.remove(finished)  # its failure ends the session now, not
                    finished.result()  # when a message comes
                if getter not in done:
                    if stopper in done:
                        break
                    continue
                batch = [getter.result()]
                getter = None
                while worker is not None and len(storing) >= depth:  # the batch grows
                    await storing.popleft()  # while the worker works
                while len(batch) < MAX_BATCH and not client._queue.empty():
                    batch.append(client._queue.get_nowait())
                if presence is not None and not (batch := _take_status(client, presence,
                                                                       batch)):
                    continue
                items = [(str(m.topic), bytes(m.payload or b"")) for m in batch]
                if worker is not None:  # the worker checks as well
                    commit = functools.partial(ingestor.store_with, worker.commit, items)
                else:
                    with evaluator.handling():
                        checked = await asyncio.to_thread(ingestor.check, items)
                    commit = functools.partial(asyncio.to_thread, ingestor.store, checked,
                                               evaluate=False)
                while len(storing) >= depth:
                    await storing.popleft()
                storing.append(asyncio.create_task(
                    _store(client, commit, evaluator, batch, stats, receipts,
                           after=storing[-1] if storing else None)))
        finally:
            stopper.cancel()
            if getter is not None:
                getter.cancel()
            # their messages are acknowledged before the connection closes
            ended = await asyncio.gather(*storing, return_exceptions=True)
            storing.clear()
            if failure := next((e for e in ended if isinstance(e, BaseException)), None):
                raise failure


async def _store(client: aiomqtt.Client, commit: Callable[[], Awaitable[IngestResult]],
                 evaluator: Evaluator, batch: list[aiomqtt.Message], stats: ServerStats,
                 receipts: ReceiptSender | None = None,
                 after: asyncio.Task[None] | None = None) -> None:
    """Store ``batch``, then receipt and acknowledge it, after the batch before it
    (``after``): MQTT wants acknowledgements in the order the messages came."""
    with evaluator.handling():
        result = await commit()
    if after is not None:
        await after
    stats.add(result)
    evaluator.stored()
    if receipts is not None:
        stats.receipts += receipts.send(client, result)
    for message in batch:
        if message.qos > 0:
            client._client.ack(message.mid, message.qos)
    log.debug("ingested batch of %d: %s", len(batch), result)
