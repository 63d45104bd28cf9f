"""Publishes the outbox to the broker in order, and keeps at it across broker outages.

aiomqtt has no automatic reconnect (protocol-stack §5), so ``run`` is the canonical loop:
connect, publish the oldest entries (QoS 1, a window of 10 in flight; ``publish``
returns on PUBACK), delete them from the outbox once acknowledged, and on any MQTT error
back off (doubling, jittered, capped) and reconnect, re-sending every entry that was not
acknowledged. A pending publish does not notice a dropped connection by itself, so a
watcher ends the session as soon as aiomqtt sees the disconnect.

The daemon also gives it a status topic: published retained on every connect, with a
retained last will ``offline`` that the broker sends when the collector vanishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

import aiomqtt

from otaudit.collector.outbox import Entry, Outbox
from otaudit.mqtt import BrokerAddress, client_kwargs
from otaudit.settings import Settings

log = logging.getLogger(__name__)
logging.getLogger("aiomqtt").setLevel(logging.ERROR)  # "N pending publish calls" noise

WINDOW = 10  # publishes in flight (protocol-stack §5: best throughput around 10)
BATCH = 100
PUBLISH_TIMEOUT = 30.0


class BrokerUnavailable(Exception):
    """The broker could not be reached (or kept dropping) and entries remain in the outbox."""


class _Disconnected(aiomqtt.MqttError):
    pass


class Forwarder:
    """Drains one outbox to one broker. ``run`` until ``finish``/``close`` says otherwise."""

    def __init__(self, outbox: Outbox, settings: Settings, *, client_id: str,
                 broker_url: str | None = None, status_topic: str | None = None,
                 status_payload: Callable[[str], bytes] | None = None,
                 will_payload: bytes | None = None,
                 on_published: Callable[[Entry], None] | None = None) -> None:
        self.outbox = outbox
        self.settings = settings
        self.client_id = client_id
        self.broker_url = broker_url
        self.address = BrokerAddress.parse(broker_url or settings.broker_url)
        self.status_topic = status_topic
        self.status_payload = status_payload
        self.will_payload = will_payload
        self.on_published = on_published
        self.published = 0  # acknowledged publishes
        self.attempts = 0  # publishes sent (a re-send after an outage counts again)
        self.connected = False
        self.connects = 0
        self.failures = 0  # consecutive failed sessions or connection attempts
        self.last_error: str | None = None
        self._client: aiomqtt.Client | None = None
        self._acked: list[int] = []
        self._wakeup = asyncio.Event()
        self._finish = False  # leave once the outbox is empty
        self._max_failures: int | None = None  # ... or after this many failures in a row
        self._stop_publishing = False  # leave as soon as the publishes in flight are done
        self._reconnect = True
        self._done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- control --------------------------------------------------------------------------

    def finish(self, max_failures: int | None = None) -> None:
        """Leave ``run`` once the outbox is empty, or after ``max_failures`` failed attempts."""
        self._finish = True
        self._max_failures = max_failures
        self._poke()

    async def close(self, grace: float) -> None:
        """Shutdown: publish what fits in ``grace`` seconds without reconnecting, then leave."""
        self._finish = True
        self._reconnect = False
        self._poke()
        try:
            await asyncio.wait_for(asyncio.shield(self._done.wait()), grace)
        except TimeoutError:
            self._stop_publishing = True
            self._poke()
            try:  # publishes in flight end within PUBLISH_TIMEOUT; a connect within 10 s
                await asyncio.wait_for(asyncio.shield(self._done.wait()), PUBLISH_TIMEOUT)
            except TimeoutError:
                if self._task is not None:
                    self._task.cancel()

    def _poke(self) -> None:
        self._wakeup.set()
        self.outbox.added.set()

    async def publish_status(self, payload: bytes) -> bool:
        """Refresh the retained status now (heartbeat); False when not connected."""
        client = self._client
        if client is None or not self.status_topic:
            return False
        try:
            await client.publish(self.status_topic, payload, qos=1, retain=True, timeout=10)
        except aiomqtt.MqttError:
            return False  # the session notices the disconnect itself
        return True

    # -- the reconnect loop ---------------------------------------------------------------

    async def run(self) -> None:
        """Connect, drain, reconnect with backoff; returns per ``finish``/``close``.

        Raises ``BrokerUnavailable`` when ``finish(max_failures)`` gave up with entries left.
        """
        delay = self.settings.reconnect_min_delay
        self._task = asyncio.current_task()
        try:
            while True:
                try:
                    await self._session()
                    return
                except* aiomqtt.MqttError as group:
                    exc = group.exceptions[0]
                    self._lost(exc)
                if not self._reconnect:
                    return
                if self._max_failures is not None and self.failures >= self._max_failures:
                    raise BrokerUnavailable(f"cannot reach MQTT broker at {self.address}: "
                                            f"{self.last_error}")
                await self._pause(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.settings.reconnect_max_delay)
                if self._finish and not self._reconnect:
                    return
        finally:
            self._done.set()

    def _lost(self, exc: BaseException) -> None:
        was_connected = self.connected
        self.connected = False
        self._client = None
        self.failures += 1
        self.last_error = str(exc) or type(exc).__name__
        if was_connected:
            log.warning("lost the MQTT broker at %s: %s; %d entries wait in the outbox",
                        self.address, self.last_error, self.outbox.entries)
        elif self.failures == 1:
            log.warning("cannot reach the MQTT broker at %s: %s; retrying (entries stay in the "
                        "outbox)", self.address, self.last_error)
        else:
            log.debug("broker %s still unreachable (%d attempts): %s", self.address,
                      self.failures, self.last_error)

    async def _pause(self, seconds: float) -> None:
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), seconds)

    async def _session(self) -> None:
        will = None
        if self.status_topic and self.will_payload is not None:
            will = aiomqtt.Will(self.status_topic, self.will_payload, qos=1, retain=True)
        client = aiomqtt.Client(identifier=self.client_id, will=will,
                                **client_kwargs(self.settings, self.broker_url))
        async with client:
            self.connected = True
            self.connects += 1
            if self.failures:
                log.warning("reconnected to the MQTT broker at %s after %d failed attempts; "
                            "%d entries to publish", self.address, self.failures,
                            self.outbox.entries)
            self.failures = 0
            self._client = client
            try:
                if self.status_topic and self.status_payload:
                    await client.publish(self.status_topic, self.status_payload("online"),
                                         qos=1, retain=True, timeout=PUBLISH_TIMEOUT)
                async with asyncio.TaskGroup() as tg:
                    watcher = tg.create_task(self._watch(client))
                    await self._pump(client, tg)
                    watcher.cancel()
                if self.status_topic and self.status_payload and not self._reconnect:
                    await client.publish(self.status_topic, self.status_payload("offline"),
                                         qos=1, retain=True, timeout=10)
            finally:
                self._client = None
                self.connected = False

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        """Raise as soon as aiomqtt sees the connection drop (pending publishes do not)."""
        disconnected = client._disconnected  # aiomqtt internal: set by on_disconnect
        await asyncio.wait([disconnected])
        raise _Disconnected(f"disconnected: {disconnected.exception() or 'by the broker'}")

    async def _pump(self, client: aiomqtt.Client, tg: asyncio.TaskGroup) -> None:
        """Publish entries in seq order until finished; acknowledged ones leave the outbox."""
        window = asyncio.Semaphore(WINDOW)
        in_flight: set[asyncio.Task[None]] = set()
        last = 0
        while True:
            self.outbox.added.clear()
            await self._flush()
            entries = [] if self._stop_publishing else await asyncio.to_thread(
                self.outbox.peek, last, BATCH)
            for entry in entries:
                await window.acquire()
                task = tg.create_task(self._publish(client, entry, window))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                last = entry.seq
            if entries:
                continue
            if not in_flight:
                await self._flush()
                if self._stop_publishing or (self._finish and self.outbox.entries == 0):
                    return
            await self.outbox.added.wait()  # a put, an acknowledgement or a poke

    async def _publish(self, client: aiomqtt.Client, entry: Entry,
                       window: asyncio.Semaphore) -> None:
        self.attempts += 1
        try:
            await client.publish(entry.topic, entry.payload, qos=1, timeout=PUBLISH_TIMEOUT)
        finally:
            window.release()
        self._acked.append(entry.seq)
        self.published += 1
        if self.on_published:
            self.on_published(entry)
        self.outbox.added.set()  # wake the pump to delete it

    async def _flush(self) -> None:
        if self._acked:
            done, self._acked = self._acked, []
            await self.outbox.delete(done)
