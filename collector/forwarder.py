"""Publishes the outbox to the broker and keeps at it until the server has receipted it.

aiomqtt has no automatic reconnect (protocol-stack §5), so ``run`` is the canonical loop:
connect, subscribe to this collector's receipt topic, publish the queued entries in seq
order (QoS 1, a window of 10 in flight), and on any MQTT error back off (doubling, jittered,
capped; back to the minimum after a connection that worked) and reconnect. A pending publish
does not notice a dropped connection by itself, so a watcher ends the session as soon as
aiomqtt sees the disconnect.

What a PUBACK means (``Settings.receipts``, on by default): a success code only moves the
entry to "sent, awaiting receipt"; the entry leaves the outbox when the server's receipt
(``otaudit.receipt``) names it. An entry whose receipt has not come is published again after
``receipt_timeout``, doubled per attempt up to ``receipt_max_delay``, jittered ±20 %; the
server's ingest is idempotent, so a re-publish is harmless. A PUBACK with a reason code of
0x80 or more (MQTT 5: the broker refused it, e.g. ACL "not authorized") is no
acknowledgement: the entry stays queued and is tried again with the same backoff; the
refusal is counted and logged at WARNING (rate-limited). With receipts off, a successful
PUBACK removes the entry (the guarantee then rests on the broker's persistence).

The daemon also gives it a status topic: published retained on every connect, with a
retained last will ``offline`` that the broker sends when the collector vanishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt

from otaudit.collector.outbox import Entry, Outbox
from otaudit.mqtt import BrokerAddress, client_kwargs, persistent_session_kwargs, receipt_topic
from otaudit.receipt import ReceiptRejected, ReceiptVerifier, decode
from otaudit.settings import Settings
from otaudit.throttle import ThrottledLog

log = logging.getLogger(__name__)
logging.getLogger("aiomqtt").setLevel(logging.ERROR)  # "N pending publish calls" noise

WINDOW = 10  # publishes in flight (protocol-stack §5: best throughput around 10)
BATCH = 100
PUBLISH_TIMEOUT = 30.0
IDLE_CHECK = 1.0  # seconds between two looks at --once's receipt deadline
RECEIPT_SESSION_EXPIRY = 3600  # the broker keeps receipts for a disconnected daemon this long


class BrokerUnavailable(Exception):
    """The broker could not be reached (or kept dropping) and entries remain in the outbox."""


class ReceiptsMissing(BrokerUnavailable):
    """Everything was published, but the server did not receipt it in time (``--once``)."""


class _Disconnected(aiomqtt.MqttError):
    pass


class AckingClient(aiomqtt.Client):
    """aiomqtt's client that also reports the PUBACK reason code of a QoS 1 publish (aiomqtt
    treats every PUBACK as success; MQTT 5 brokers refuse with a code >= 0x80)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refusals: dict[int, Any] = {}
        self.session_present: bool | None = None  # the CONNACK's flag

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any = None) -> None:
        if self.session_present is None:
            self.session_present = bool(getattr(flags, "session_present", False))
        super()._on_connect(client, userdata, flags, reason_code, properties)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any,
                    properties: Any) -> None:
        if getattr(reason_code, "is_failure", False):
            self.refusals[mid] = reason_code
        super()._on_publish(client, userdata, mid, reason_code, properties)

    async def publish_checked(self, topic: str, payload: bytes, timeout: float) -> Any:
        """Publish with QoS 1; None once the broker accepted it, else its refusal code."""
        async with self._outgoing_calls_sem or contextlib.nullcontext():
            info = self._client.publish(topic, payload, 1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
            if not info.is_published():
                confirmation = asyncio.Event()
                with self._pending_call(info.mid, confirmation, self._pending_publishes):
                    await self._wait_for(confirmation.wait(), timeout=timeout)
            return self.refusals.pop(info.mid, None)


async def wait_event(event: asyncio.Event, timeout: float | None) -> None:
    """Wait until ``event`` is set or ``timeout`` seconds have passed. Not ``wait_for``: on
    Python 3.11 it swallows a cancellation that comes as the event is set, and the pump
    must stop when its task group cancels it (a publish failed)."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()


class Forwarder:
    """Drains one outbox to one broker. ``run`` until ``finish``/``close`` says otherwise.

    ``receipts_for=(site, collector)``: the receipt topic to listen on; required when
    ``settings.receipts`` is on.
    """

    def __init__(self, outbox: Outbox, settings: Settings, *, client_id: str,
                 broker_url: str | None = None, status_topic: str | None = None,
                 status_payload: Callable[[str], bytes] | None = None,
                 will_payload: bytes | None = None,
                 on_published: Callable[[Entry], None] | None = None,
                 receipts_for: tuple[str, str] | None = None,
                 receipt_verifier: ReceiptVerifier | None = None,
                 persistent: bool = False, rng: random.Random | None = None) -> None:
        if settings.receipts and receipts_for is None:
            raise ValueError("receipts are on: the forwarder needs the site and collector "
                             "whose receipt topic to read")
        self.outbox = outbox
        self.settings = settings
        self.client_id = client_id
        self.broker_url = broker_url
        self.address = BrokerAddress.parse(broker_url or settings.broker_url)
        self.status_topic = status_topic
        self.status_payload = status_payload
        self.will_payload = will_payload
        self.on_published = on_published  # an entry left the outbox (receipted, or PUBACK)
        self.receipts = settings.receipts
        self.scope = receipts_for
        self.receipt_topic = (receipt_topic(settings.topic_prefix, *receipts_for)
                              if receipts_for else None)
        self.verifier = receipt_verifier
        self.persistent = persistent  # a broker session that queues receipts while away
        self.rng = rng or random.Random()
        self.published = 0  # publishes the broker acknowledged
        self.attempts = 0  # publishes sent (a re-send counts again)
        self.republished = 0  # publishes of entries sent before
        self.refused = 0  # publishes the broker refused (PUBACK reason >= 0x80)
        self.receipted = 0  # entries the server's receipts committed
        self.rejected = 0  # entries the server rejected (moved to the quarantine)
        self.bad_receipts = 0  # receipts ignored (malformed, unsigned, forged)
        self.connected = False
        self.connects = 0
        self.failures = 0  # consecutive failed sessions or connection attempts
        self.delays: deque[float] = deque(maxlen=100)  # the last reconnect pauses, in order
        self.last_error: str | None = None
        self.throttled = ThrottledLog(log)
        self._client: AckingClient | None = None
        self._acked: list[Entry] = []
        self._refused: list[Entry] = []
        self._wakeup = asyncio.Event()
        self._finish = False  # leave once the outbox is empty
        self._max_failures: int | None = None  # ... or after this many failures in a row
        self._progress_at = time.monotonic()  # last receipt (or finish): --once's deadline
        self._stop_publishing = False  # leave as soon as the publishes in flight are done
        self._reconnect = True
        self._had_connection = False  # the current attempt got connected
        self._fatal: Exception | None = None  # ends run() (raised outside the task group)
        self._done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- control --------------------------------------------------------------------------

    def finish(self, max_failures: int | None = None) -> None:
        """Leave ``run`` once the outbox is empty (every entry receipted), after
        ``max_failures`` failed connection attempts, or (receipts on) when no receipt came
        for ``once_receipt_wait`` seconds."""
        self._finish = True
        self._max_failures = max_failures
        self._progress_at = time.monotonic()
        self._poke()

    async def close(self, grace: float) -> None:
        """Shutdown: publish (and collect receipts) for ``grace`` seconds without
        reconnecting, then leave; what is left stays in the outbox for the next start."""
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

    def silence(self) -> float:
        """Seconds since the last receipt (or since this forwarder started or finished)."""
        return time.monotonic() - self._progress_at

    @property
    def delivered(self) -> int:
        """Entries that left the outbox: receipted (receipts on) or acknowledged (off)."""
        return self.receipted if self.receipts else self.published

    def describe(self) -> dict[str, Any]:
        return {"connected": self.connected, "connects": self.connects,
                "published": self.published, "republished": self.republished,
                "refused": self.refused, "receipted": self.receipted,
                "rejected": self.rejected, "bad_receipts": self.bad_receipts}

    # -- the reconnect loop ---------------------------------------------------------------

    async def run(self) -> None:
        """Connect, drain, reconnect with backoff; returns per ``finish``/``close``.

        Raises ``BrokerUnavailable`` when ``finish(max_failures)`` gave up with entries left,
        ``ReceiptsMissing`` when the server's receipts stopped coming.
        """
        delay = self.settings.reconnect_min_delay
        self._task = asyncio.current_task()
        try:
            while True:
                self._had_connection = False
                try:
                    await self._session()
                    return
                except* aiomqtt.MqttError as group:
                    self._lost(group.exceptions[0])
                except* sqlite3.Error as group:  # the outbox failed: reconnect, try again
                    self.connected, self._client = False, None
                    self.failures += 1
                    self.last_error = f"outbox: {group.exceptions[0]}"
                    self.throttled.log(logging.ERROR, "outbox error", "outbox %s: %s; "
                                       "publishing starts over", self.outbox.path,
                                       group.exceptions[0])
                if not self._reconnect:
                    return
                if self._max_failures is not None and self.failures >= self._max_failures:
                    raise BrokerUnavailable(f"cannot reach MQTT broker at {self.address}: "
                                            f"{self.last_error}")
                if self._had_connection:  # it worked until now: the next try comes quickly
                    delay = self.settings.reconnect_min_delay
                pause = delay * self.rng.uniform(0.8, 1.2)
                self.delays.append(pause)
                await self._pause(pause)
                delay = min(delay * 2, self.settings.reconnect_max_delay)
                if self._finish and not self._reconnect:
                    return
        finally:
            self._done.set()

    def _lost(self, exc: BaseException) -> None:
        self.connected = False
        self._client = None
        self.failures += 1
        self.last_error = str(exc) or type(exc).__name__
        if self._had_connection:
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
        await wait_event(self._wakeup, seconds)

    async def _session(self) -> None:
        will = None
        if self.status_topic and self.will_payload is not None:
            will = aiomqtt.Will(self.status_topic, self.will_payload, qos=1, retain=True)
        session = (persistent_session_kwargs(self.settings, RECEIPT_SESSION_EXPIRY)
                   if self.persistent and self.receipts else {})
        client = AckingClient(identifier=self.client_id, will=will,
                              **client_kwargs(self.settings, self.broker_url), **session)
        async with client:
            self.connected = self._had_connection = True
            self.connects += 1
            if self.failures:
                log.warning("reconnected to the MQTT broker at %s after %d failed attempts; "
                            "%d entries in the outbox", self.address, self.failures,
                            self.outbox.entries)
            self.failures = 0
            self._client = client
            if self.receipts and not client.session_present:
                await self._broker_forgot()
            try:
                if self.receipts and self.receipt_topic:
                    await self._subscribe(client)
                if self.status_topic and self.status_payload:
                    await client.publish(self.status_topic, self.status_payload("online"),
                                         qos=1, retain=True, timeout=PUBLISH_TIMEOUT)
                async with asyncio.TaskGroup() as tg:
                    watcher = tg.create_task(self._watch(client))
                    reader = tg.create_task(self._read_receipts(client))
                    await self._pump(client, tg)
                    watcher.cancel()
                    reader.cancel()
                if self._fatal is not None:
                    raise self._fatal
                if self.status_topic and self.status_payload and not self._reconnect:
                    await client.publish(self.status_topic, self.status_payload("offline"),
                                         qos=1, retain=True, timeout=10)
            finally:
                self._client = None
                self.connected = False

    async def _broker_forgot(self) -> None:
        """The broker has no session of ours (restarted without persistence, or we are new):
        what it acknowledged before may be lost with it, so every entry awaiting a receipt is
        published again now rather than after its receipt timeout."""
        count = await self.outbox.call(self.outbox.make_due, time.time())
        if count:
            log.warning("the broker at %s has no session of this collector: %d entries awaiting "
                        "a receipt are published again now", self.address, count)

    async def _subscribe(self, client: AckingClient) -> None:
        assert self.receipt_topic is not None
        granted = await client.subscribe(self.receipt_topic, qos=1, timeout=PUBLISH_TIMEOUT)
        codes = list(granted) if isinstance(granted, list | tuple) else []
        if any(getattr(code, "is_failure", False) or code == 0x80 for code in codes):
            self.throttled.log(logging.ERROR, "subscribe", "the broker refused the "
                               "subscription to %s (%s): receipts cannot arrive and every "
                               "entry stays in the outbox; check the broker ACL",
                               self.receipt_topic, codes[0])

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        """Raise as soon as aiomqtt sees the connection drop (pending publishes do not)."""
        disconnected = client._disconnected  # aiomqtt internal: set by on_disconnect
        await asyncio.wait([disconnected])
        raise _Disconnected(f"disconnected: {disconnected.exception() or 'by the broker'}")

    # -- publishing -----------------------------------------------------------------------

    async def _pump(self, client: AckingClient, tg: asyncio.TaskGroup) -> None:
        """Publish queued entries in seq order, then those due again, until finished."""
        window = asyncio.Semaphore(WINDOW)
        in_flight: set[int] = set()
        cursor = 0  # the highest seq published in this session (fresh entries)
        while True:
            self.outbox.added.clear()
            await self._flush()
            entries: list[Entry] = []
            if not self._stop_publishing:
                entries = await self.outbox.call(self.outbox.fresh, cursor, BATCH)
                if entries:
                    cursor = entries[-1].seq
                else:
                    busy = in_flight | {e.seq for e in self._acked + self._refused}
                    entries = await self.outbox.call(self.outbox.due, time.time(), BATCH,
                                                      busy)
            for entry in entries:
                await window.acquire()
                in_flight.add(entry.seq)
                tg.create_task(self._publish(client, entry, window, in_flight))
            if entries:
                continue
            if not in_flight:
                await self._flush()
                if self._stop_publishing or (self._finish and self.outbox.entries == 0):
                    return
                self._fatal = self._receipts_overdue()
                if self._fatal is not None:
                    return
            await self._idle()

    async def _idle(self) -> None:
        """Wait for a put, an acknowledgement, a receipt or a poke, or until an entry is due
        (or, finishing, until the receipt deadline is worth another look)."""
        timeout: float | None = None
        if not self._stop_publishing:
            due = await self.outbox.call(self.outbox.next_due)
            if due is not None:
                timeout = max(0.0, due - time.time()) + 0.01
        if self._finish:
            timeout = IDLE_CHECK if timeout is None else min(timeout, IDLE_CHECK)
        await wait_event(self.outbox.added, timeout)

    def _receipts_overdue(self) -> ReceiptsMissing | None:
        """Finishing (``--once``) and no receipt came for ``once_receipt_wait`` seconds."""
        if not (self._finish and self.receipts and self._max_failures is not None):
            return None
        if time.monotonic() - self._progress_at <= self.settings.once_receipt_wait:
            return None
        return ReceiptsMissing(
            f"the server did not confirm the published observations within "
            f"{self.settings.once_receipt_wait:g} s (is `otaudit server run` running and "
            f"subscribed to this broker?)")

    async def _publish(self, client: AckingClient, entry: Entry, window: asyncio.Semaphore,
                       in_flight: set[int]) -> None:
        self.attempts += 1
        if entry.attempts:
            self.republished += 1
        try:
            refusal = await client.publish_checked(entry.topic, entry.payload, PUBLISH_TIMEOUT)
        finally:
            window.release()
        if refusal is None:
            self._acked.append(entry)
            self.published += 1
        else:
            self._refused.append(entry)
            self.refused += 1
            self.throttled.warning(
                "refused", "the broker at %s refused the publish of %s (PUBACK reason 0x%02x "
                "%s): not an acknowledgement, the entry stays in the outbox and is tried "
                "again later (%d refusals so far)", self.address, entry.topic,
                int(getattr(refusal, "value", 0)), refusal, self.refused)
        in_flight.discard(entry.seq)
        self.outbox.added.set()  # wake the pump to record it

    def due_at(self, attempt: int) -> float:
        """When an entry published for the ``attempt``-th time is due again."""
        base = self.settings.receipt_timeout * 2 ** max(0, attempt - 1)
        return time.time() + min(base, self.settings.receipt_max_delay) * self.rng.uniform(
            0.8, 1.2)

    async def _flush(self) -> None:
        """Record acknowledgements and refusals (or, receipts off, delete acknowledged)."""
        acked, refused = self._acked, self._refused
        if not acked and not refused:
            return
        self._acked, self._refused = [], []
        try:
            if acked and self.receipts:
                await self.outbox.call(self.outbox.mark_sent,
                                        [(e.seq, self.due_at(e.attempts + 1)) for e in acked])
            elif acked:
                await self.outbox.delete([e.seq for e in acked])
                for entry in acked:
                    if self.on_published:
                        self.on_published(entry)
            if refused:
                await self.outbox.call(self.outbox.mark_refused,
                                        [(e.seq, self.due_at(e.attempts + 1)) for e in refused])
        except sqlite3.Error as exc:  # disk full even without the reserve: try again later
            self._acked, self._refused = acked + self._acked, refused + self._refused
            self.throttled.warning("flush", "outbox %s: cannot record publishes yet: %s",
                                   self.outbox.path, exc)
            await asyncio.sleep(1.0)

    # -- receipts -------------------------------------------------------------------------

    async def _read_receipts(self, client: aiomqtt.Client) -> None:
        if not (self.receipts and self.receipt_topic and self.scope):
            return
        site, collector = self.scope
        async for message in client.messages:
            if str(message.topic) != self.receipt_topic:
                continue
            try:
                receipt = decode(bytes(message.payload or b""), site=site, collector=collector,
                                 verifier=self.verifier)
            except ReceiptRejected as exc:
                self.bad_receipts += 1
                self.throttled.warning("bad receipt", "ignored a receipt on %s: %s (%d "
                                       "ignored so far)", self.receipt_topic, exc,
                                       self.bad_receipts)
                continue
            await self._apply(receipt.committed, [(r.digest, r.reason) for r in receipt.rejected])

    async def _apply(self, committed: list[str], rejected: list[tuple[str, str]]) -> None:
        while True:
            try:
                settled = await self.outbox.apply_receipt(committed, rejected)
                break
            except sqlite3.Error as exc:
                self.throttled.warning("settle", "outbox %s: cannot apply a receipt yet: %s",
                                       self.outbox.path, exc)
                await asyncio.sleep(1.0)
        self._progress_at = time.monotonic()
        self.receipted += len(settled.committed)
        self.rejected += len(settled.rejected)
        for entry, reason in settled.rejected:
            self.throttled.warning(
                "rejected", "the server rejected observation %s (%s): %s; moved to the outbox "
                "quarantine (%d rejected so far)", entry.key, entry.topic, reason,
                self.rejected)
        if self.on_published:
            for entry in settled.committed:
                self.on_published(entry)
        self.outbox.added.set()
