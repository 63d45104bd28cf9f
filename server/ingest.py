"""Validates and stores incoming observation messages, one transaction per batch, and evaluates
the assets they concern (in that transaction, or later off the hot path).

No message can stop the server. Validation at the door (``check_message``) refuses what the
database could not store (oversized messages, NUL characters, over-long or malformed ids,
see ``otaudit.observation``), messages whose topic and payload disagree, signed messages
outside their collector's enrolment, and observations finished later than the receive time
plus ``CLOCK_TOLERANCE``. Should a batch still fail in the database, it is stored again
in halves, down to the message that fails alone, which is recorded as rejected (a NUL-safe
excerpt) and, like every message of the batch, acknowledged. While the database itself is
unreachable, ``store`` waits and tries again (nothing acknowledged meanwhile).

Every rejection is counted (``Ingestor.counts``) and logged at WARNING, rate-limited
(``RejectionLog``). In the storing transaction each stored observation is compared with its
endpoint's previous one (``otaudit.server.drift.events``: ``IngestResult.drift``). After each
commit, alerts (drift; new fails and newly open advisories of an evaluation) go to the
``alerts`` dispatcher and the result to the ``observers`` (metrics).
``IngestResult.outcomes`` says per message what became of it (the seam for receipts:
``IngestResult.receipts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa
from pydantic import ValidationError

from otaudit.mqtt import parse_observation_topic
from otaudit.observation import (
    MAX_MESSAGE_BYTES,
    Observation,
    contains_nul_escape,
    find_nul,
    utcnow,
)
from otaudit.server import signing_state, store
from otaudit.server.db import session_factory
from otaudit.server.drift import events as drift_events
from otaudit.server.drift.events import DriftInfo
from otaudit.signing import SignatureRejected, VerifiedEnvelope, Verifier, looks_signed

if TYPE_CHECKING:
    from otaudit.server.alerts.dispatch import AlertDispatcher
    from otaudit.server.alerts.model import Alert
    from otaudit.server.baseline.loader import Baseline

log = logging.getLogger(__name__)

CLOCK_TOLERANCE = timedelta(minutes=5)  # how far a collector's clock may run ahead
FORGED = frozenset({"bad_signature", "unknown_key", "unknown_collector", "collector_mismatch",
                    "not_enrolled", "replay", "unsigned", "owner"})
"""Rejection codes that mean someone sent what they may not (counted as ``forged`` too)."""

Outcome = Literal["stored", "duplicate", "rejected"]


class MessageRejected(ValueError):
    """A message refused at the door; ``code`` is a short machine-readable reason."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class StoreUnavailable(RuntimeError):
    """The database cannot be reached and the Ingestor is closing: nothing was stored."""


@dataclass(frozen=True)
class MessageOutcome:
    """What became of one message of a batch (``IngestResult.outcomes``, arrival order).

    ``collector`` is the topic's (None when the topic is not an observation topic);
    ``observation_id`` the payload's when it could be read, even from a rejected message.
    """

    topic: str
    collector: str | None
    observation_id: str | None
    outcome: Outcome
    code: str | None = None  # for a rejected message
    reason: str | None = None
    payload: bytes | None = field(default=None, repr=False)  # a rejected message's payload


@dataclass(repr=False)
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    assets: set[store.AssetKey] = field(default_factory=set)  # (site, asset id) stored
    outcomes: list[MessageOutcome] = field(default_factory=list)
    drift: list[DriftInfo] = field(default_factory=list)  # drift events this batch added
    alerts: list[Alert] = field(default_factory=list)  # of an inline evaluation
    observed: list[datetime] = field(default_factory=list)  # observed_at of those stored

    def add(self, other: IngestResult) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.assets |= other.assets
        self.outcomes += other.outcomes
        self.drift += other.drift
        self.alerts += other.alerts
        self.observed += other.observed

    def __repr__(self) -> str:
        return (f"IngestResult(stored={self.stored}, duplicates={self.duplicates}, "
                f"rejected={self.rejected}, assets={len(self.assets)})")

    @property
    def committed(self) -> list[tuple[str, str]]:
        """``(topic, observation id)`` of every message the server now holds (stored by
        this batch, before, or by a replica): what a receipt acknowledges."""
        return [(o.topic, o.observation_id) for o in self.outcomes
                if o.outcome != "rejected" and o.observation_id is not None]

    @property
    def refused(self) -> list[tuple[str, bytes, str]]:
        """``(topic, payload, reason)`` of every rejected message (kept in
        ``rejected_messages``): it will never be stored as sent."""
        return [(o.topic, o.payload or b"", o.reason or "") for o in self.outcomes
                if o.outcome == "rejected"]

    def receipts(self) -> dict[str, dict[str, list[str]]]:
        """Per collector, the observation ids this batch ``committed`` (stored now or
        before: the server has them) and those it ``rejected`` (will never store as sent).
        Messages without a readable collector or observation id are left out."""
        out: dict[str, dict[str, list[str]]] = {}
        for o in self.outcomes:
            if o.collector is None or o.observation_id is None:
                continue
            entry = out.setdefault(o.collector, {"committed": [], "rejected": []})
            entry["rejected" if o.outcome == "rejected" else "committed"].append(
                o.observation_id)
        return out


def validate_message(prefix: str, topic: str, payload: bytes,
                     verifier: Verifier | None = None) -> Observation:
    """Parse one MQTT message into an Observation; ValueError says what is wrong.

    With a ``verifier`` the payload must be a signed envelope (``otaudit.signing``) of the
    topic's collector; ``SignatureRejected`` (a ValueError) gives the reason. Without one,
    a plain Observation JSON is expected.
    """
    return check_message(prefix, topic, payload, verifier).obs


@dataclass(frozen=True)
class CheckedMessage:
    obs: Observation
    envelope: VerifiedEnvelope | None = None  # None: an unsigned message that was accepted
    stored_json: str | None = None  # what is stored: ``obs`` serialised (``Ingestor.check``)


@dataclass(frozen=True)
class Refusal:
    """Why a message is rejected (``CheckedBatch``)."""

    code: str
    reason: str

    @classmethod
    def of(cls, exc: ValueError) -> Refusal:
        return cls(getattr(exc, "code", None) or "invalid", str(exc))


@dataclass
class CheckedBatch:
    """A batch checked without the database (``Ingestor.check``), in arrival order: each
    message with its ``CheckedMessage``, or why it is rejected."""

    items: list[tuple[str, bytes, CheckedMessage | Refusal]]


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}"
                     for e in exc.errors()[:10])


def check_message(prefix: str, topic: str, payload: bytes, verifier: Verifier | None = None,
                  *, received_at: datetime | None = None,
                  tolerance: timedelta = CLOCK_TOLERANCE) -> CheckedMessage:
    """``validate_message`` that also returns the verified envelope (for the replay rule).

    ``MessageRejected`` / ``SignatureRejected`` (ValueErrors with a ``code``) say why not.
    """
    if len(payload) > MAX_MESSAGE_BYTES:
        raise MessageRejected("oversize", f"message of {len(payload):,} bytes exceeds the "
                              f"limit of {MAX_MESSAGE_BYTES:,} bytes")
    where = parse_observation_topic(prefix, topic)
    if where is None:
        raise MessageRejected("topic", f"topic {topic!r} is not "
                              f"{prefix}/<site>/<collector>/obs/<asset>")
    site, collector, asset = where
    if contains_nul_escape(payload):
        _refuse_nul(payload)
    envelope = None
    if verifier is not None and (not verifier.accepts_unsigned(collector) or looks_signed(payload)):
        envelope = verifier.verify_envelope(payload, collector)
        obs = envelope.obs
    else:
        try:
            obs = Observation.from_json(payload)
        except ValidationError as exc:
            raise MessageRejected("invalid", f"invalid observation: {_problems(exc)}") from None
    pairs = (("site", obs.site, site), ("collector", obs.collector_id, collector),
             ("asset", obs.asset.id, asset))
    mismatches = [f"{name} {got!r} in payload but {want!r} in topic"
                  for name, got, want in pairs if got != want]
    if mismatches:
        raise MessageRejected("mismatch", "topic and payload disagree: " + "; ".join(mismatches))
    if envelope is not None and verifier is not None:
        verifier.check_scope(collector, obs.site, obs.asset.id)
    now = received_at or utcnow()
    if obs.finished_at > now + tolerance:
        raise MessageRejected("future", f"finished_at {obs.finished_at.isoformat()} is later "
                              f"than the receive time {now.isoformat(timespec='seconds')} plus "
                              f"{tolerance.total_seconds():g} s (the collector's clock?)")
    return CheckedMessage(obs, envelope)


def _refuse_nul(payload: bytes) -> None:
    """Raise ``MessageRejected('nul')`` naming the field when a string holds a NUL."""
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return  # not JSON: the parser will say so
    if (path := find_nul(data)) is not None:
        raise MessageRejected("nul", f"{path} contains a NUL character")


def observation_id_of(payload: bytes) -> str | None:
    """The observation id a payload (plain or envelope) names, if it can be read at all:
    lets a receipt tell a collector that this message will never be stored."""
    if len(payload) > MAX_MESSAGE_BYTES:
        return None
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, dict) and isinstance(data.get("observation"), dict):
        data = data["observation"]
    oid = data.get("observation_id") if isinstance(data, dict) else None
    if not isinstance(oid, str) or len(oid) > 36 or "\x00" in oid:
        return None
    return oid


class RejectionLog:
    """Counts rejections by code and logs them at WARNING: at most ``burst`` lines per
    ``window`` seconds, then one line saying how many more were not logged."""

    def __init__(self, burst: int = 10, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.window, self.clock = burst, window, clock
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._window_start = -float("inf")
        self._logged = 0
        self._suppressed = 0

    def rejected(self, topic: str, code: str, reason: str) -> None:
        with self._lock:
            self.counts["rejected"] += 1
            self.counts[f"rejected.{code}"] += 1
            if code in FORGED:
                self.counts["forged"] += 1
            now = self.clock()
            if now - self._window_start >= self.window:
                if self._suppressed:
                    log.warning("%d more rejected messages were not logged in the last %.0f s",
                                self._suppressed, self.window)
                self._window_start, self._logged, self._suppressed = now, 0, 0
            if self._logged >= self.burst:
                self._suppressed += 1
                return
            self._logged += 1
        kind = "forged or misdirected" if code in FORGED else "rejected"
        log.warning("%s message on %s: %s", kind, store.safe_text(topic, 200),
                    store.safe_text(reason, 500))


class Ingestor:
    """Stores observations idempotently and re-evaluates the assets they concern.

    ``ingest`` stores a batch in one transaction (bulk statements, see ``store``): ``check``
    (validation, signatures, serialisation; no database, may overlap the previous batch's
    storage) then ``store`` (the replay rule, duplicates, rejected messages). With
    ``evaluate_inline`` (the default, for direct use) the touched assets are evaluated in the
    same transaction; otherwise they are kept pending and ``evaluate_pending`` evaluates them
    later in transactions of their own (the listener does that off the hot path). Findings
    are derived data: ``mark_stale_pending`` finds the assets a stopped server left
    unevaluated. Storage and evaluation never overlap within one Ingestor, so an evaluation
    sees every batch received before it started (``store.stale_assets`` relies on that).
    Assets are ``(site, asset id)``; each site is evaluated over its own zones.
    """

    EVALUATION_CHUNK = 250  # assets per evaluation transaction (ingest may run in between)
    UNAVAILABLE_RETRY = (0.5, 10.0)  # seconds between tries while the database is down
    LOCK_POLL = 0.005  # seconds between two tries of ``store_with`` to take the lock

    def __init__(self, engine: sa.Engine, *, topic_prefix: str = "otaudit/v1",
                 exceptions_file: Path | None = None, attestations_file: Path | None = None,
                 verifier: Verifier | None = None, evaluate_inline: bool = True,
                 baseline: Baseline | None = None,
                 clock_tolerance: timedelta = CLOCK_TOLERANCE,
                 alerts: AlertDispatcher | None = None):
        from otaudit.server.baseline import load_attestations, load_baseline, load_exceptions

        self.engine = engine
        self.sessions = session_factory(engine)
        self.prefix = topic_prefix
        self.verifier = verifier  # None: plain Observation JSON accepted (no signatures)
        self.evaluate_inline = evaluate_inline
        self.clock_tolerance = clock_tolerance
        self.baseline = baseline or load_baseline()  # bundled, or with a site overlay
        self.exceptions_file, self.attestations_file = exceptions_file, attestations_file
        self.exceptions = (load_exceptions(exceptions_file, self.baseline)
                           if exceptions_file else [])
        self.attestations = (load_attestations(attestations_file, self.baseline)
                             if attestations_file else [])
        self.rejections = RejectionLog()
        self.alerts = alerts  # None: no alert is computed nor sent
        self.observers: list[Callable[[IngestResult], None]] = []  # after each commit (metrics)
        self._lock = threading.Lock()  # one batch or one evaluation at a time
        self._batches_holding = 0  # ``store_with`` batches in flight under ``_lock``
        self._others_waiting = 0  # evaluations (and ``store``) waiting for ``_lock``
        self._waiting_count = threading.Lock()
        self._pending: set[store.AssetKey] = set()
        self._closing = threading.Event()
        if verifier is not None:
            for collector in verifier.unbound():
                log.warning("collector %s has a trusted key but no enrolment scope file "
                            "(%s.scope): its observations are rejected", collector, collector)

    @property
    def counts(self) -> Counter[str]:
        """Rejections so far: ``rejected``, ``rejected.<code>``, ``forged`` (for metrics)."""
        return self.rejections.counts

    @property
    def pending(self) -> int:
        """Assets stored but not evaluated yet."""
        return len(self._pending)

    def close(self) -> None:
        """Stop waiting for an unreachable database (``store`` then raises
        ``StoreUnavailable`` instead of retrying)."""
        self._closing.set()

    def ingest(self, messages: Sequence[tuple[str, bytes]], *,
               evaluate: bool | None = None) -> IngestResult:
        """Store a batch in one transaction; evaluate the touched assets in it (``evaluate``,
        default ``evaluate_inline``) or leave them pending for ``evaluate_pending``."""
        return self.store(self.check(messages), evaluate=evaluate)

    def check(self, messages: Sequence[tuple[str, bytes]]) -> CheckedBatch:
        """Validate a batch (topic, payload, signature) and serialise what will be stored,
        without the database, so that it can run while the previous batch is being stored;
        ``store`` does the rest."""
        items: list[tuple[str, bytes, CheckedMessage | Refusal]] = []
        now = utcnow()
        for topic, payload in messages:
            checked: CheckedMessage | Refusal
            try:
                found = check_message(self.prefix, topic, payload, self.verifier,
                                      received_at=now, tolerance=self.clock_tolerance)
                checked = CheckedMessage(found.obs, found.envelope, found.obs.model_dump_json())
            except ValueError as exc:
                checked = Refusal.of(exc)
            except Exception as exc:
                log.error("checking a message on %s failed: %s", store.safe_text(topic, 200),
                          type(exc).__name__)
                checked = Refusal("check_failed", f"the server could not check this message "
                                  f"({type(exc).__name__})")
            items.append((topic, payload, checked))
        return CheckedBatch(items)

    def store(self, batch: CheckedBatch, *, evaluate: bool | None = None) -> IngestResult:
        """Store a checked batch in one transaction (the replay rule, duplicates, rejected
        messages); evaluate as ``ingest`` says. Should the transaction fail, the batch is
        stored in halves down to the message that fails alone, which is rejected; while the
        database is unreachable this waits and retries (``close`` ends the wait)."""
        inline = self.evaluate_inline if evaluate is None else evaluate
        with self._exclusive():
            result = self.commit(batch, inline=inline)
            if not inline:
                self._pending |= result.assets
        self.settle(result)
        return result

    async def store_with(self, commit: Callable[[Sequence[tuple[str, bytes]]],
                                                Awaitable[IngestResult]],
                         messages: Sequence[tuple[str, bytes]]) -> IngestResult:
        """``ingest`` (evaluation left pending) with check and transaction done by ``commit``
        (a ``StoreWorker``'s, in a process of its own): storage and evaluation still never
        overlap (the lock is taken without blocking the event loop), and the rejections,
        alerts and observers are this Ingestor's.

        Calls may overlap (the listener keeps a second batch queued in the worker while it
        stores the first): the batches in flight share one hold of the lock, and an
        evaluation that waits for it stops further batches from joining, so it gets its turn
        once those in flight are done. Call it from one event loop only."""
        await self._hold_for_storing()
        try:
            result = await commit(messages)
            self._pending |= result.assets
        finally:
            self._batches_holding -= 1
            if not self._batches_holding:
                self._lock.release()
        self.settle(result)
        return result

    async def _hold_for_storing(self) -> None:
        """Join the batches in flight, or take the lock, once nothing else waits for it."""
        while True:
            if not self._others_waiting and (self._batches_holding
                                             or self._lock.acquire(blocking=False)):
                self._batches_holding += 1
                return
            await asyncio.sleep(self.LOCK_POLL)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """The lock for anything but ``store_with`` (an evaluation chunk, ``store``); while
        it waits, no ``store_with`` batch joins those in flight."""
        with self._waiting_count:
            self._others_waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._waiting_count:
                self._others_waiting -= 1
        try:
            yield
        finally:
            self._lock.release()

    def commit(self, batch: CheckedBatch, *, inline: bool = False) -> IngestResult:
        """The transaction of ``store``, without its lock and its ``settle``: what a store
        worker runs (with ``inline`` False)."""
        now = utcnow()
        result = self._attempt(batch.items, now, inline)
        if isinstance(result, Exception):
            log.warning("a batch of %d failed in the database (%s); storing it in halves "
                        "down to single messages", len(batch.items), type(result).__name__)
            result = self._store_split(batch.items, now, inline)
        return result

    def settle(self, result: IngestResult) -> None:
        """After a commit: count and log the rejections, then ``_committed``."""
        for o in result.outcomes:
            if o.outcome == "rejected":
                self.rejections.rejected(o.topic, o.code or "invalid", o.reason or "")
        self._committed(result)

    def _committed(self, result: IngestResult) -> None:
        """After a commit: alerts for its drift and inline evaluation, then the observers."""
        if self.alerts is not None and (result.drift or result.alerts):
            from otaudit.server.alerts.rules import drift_alerts

            self.alerts.submit([*drift_alerts(result.drift), *result.alerts])
        for observer in self.observers:
            try:
                observer(result)
            except Exception:
                log.exception("an ingest observer failed")

    def _transaction(self, items: list[tuple[str, bytes, CheckedMessage | Refusal]],
                     now: datetime, inline: bool) -> IngestResult:
        result = IngestResult()
        with self.sessions.begin() as session:
            self._store(session, items, now, result)
            if result.assets and inline:
                try:  # findings are derived data: a failing evaluation rejects no message
                    with session.begin_nested():
                        result.alerts += self.evaluate(session, result.assets, now)
                except Exception as exc:
                    log.error("evaluating %d assets failed (%s); they stay pending",
                              len(result.assets), type(exc).__name__)
                    self._pending |= result.assets
        return result

    def _attempt(self, items: list[tuple[str, bytes, CheckedMessage | Refusal]],
                 now: datetime, inline: bool) -> IngestResult | Exception:
        """``items`` in one transaction, tried again for as long as the failure is the
        database's own (unreachable, locked, disk full: ``_transient``); returns the error
        that came from the messages."""
        delay, cap = self.UNAVAILABLE_RETRY
        while True:
            try:
                return self._transaction(items, now, inline)
            except Exception as exc:
                if _transient(exc) or not self._database_reachable():
                    log.warning("the database failed (%s): trying again in %.1f s (messages "
                                "stay unacknowledged)", type(exc).__name__, delay)
                    if self._closing.wait(delay):
                        raise StoreUnavailable(f"the database failed: {type(exc).__name__}"
                                               ) from None
                    delay = min(cap, delay * 2)
                    continue
                return exc

    def _store_split(self, items: list[tuple[str, bytes, CheckedMessage | Refusal]],
                     now: datetime, inline: bool) -> IngestResult:
        """Store ``items`` that failed together: each half in a transaction of its own, and so
        on down to the single message that fails alone (about 2 log2(n) transactions per
        offender instead of one per message)."""
        if len(items) == 1:
            return self._store_alone(items[0], now, inline)
        result = IngestResult()
        for part in (items[:len(items) // 2], items[len(items) // 2:]):
            done = self._attempt(part, now, inline)
            result.add(self._store_split(part, now, inline) if isinstance(done, Exception)
                       else done)
        return result

    def _store_alone(self, item: tuple[str, bytes, CheckedMessage | Refusal], now: datetime,
                     inline: bool) -> IngestResult:
        """One message in its own transaction; when that fails, it is recorded as rejected."""
        done = self._attempt([item], now, inline)
        if not isinstance(done, Exception):
            return done
        error = done
        topic, payload, _ = item
        refusal = Refusal("store_failed", f"the database refused this message: "
                          f"{type(error).__name__}: {_first_line(error)}")
        result = IngestResult(rejected=1)
        result.outcomes.append(_rejected(self.prefix, topic, payload, refusal))
        try:
            with self.sessions.begin() as session:
                store.record_rejected(session, topic, payload, refusal.reason, refusal.code)
        except Exception as exc:
            log.error("could not record a rejected message on %s: %s",
                      store.safe_text(topic, 200), type(exc).__name__)
        return result

    def _database_reachable(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception:
            return False
        return True

    def _store(self, session: sa.orm.Session,
               items: list[tuple[str, bytes, CheckedMessage | Refusal]], now: datetime,
               result: IngestResult) -> None:
        accepted: list[tuple[int, CheckedMessage, str]] = []  # with the observation id
        batch_ids: dict[str, tuple[str, str]] = {}  # observation id -> (site, collector)
        outcomes: dict[int, MessageOutcome] = {}
        rejected: list[tuple[int, Refusal]] = []
        envelopes = [c.envelope for _, _, c in items
                     if isinstance(c, CheckedMessage) and c.envelope]
        admission = signing_state.Admission.read(session, envelopes, now) if envelopes else None
        origin: dict[signing_state.Key, int] = {}
        for index, (_topic, _payload, checked) in enumerate(items):
            if isinstance(checked, Refusal):
                rejected.append((index, checked))
                continue
            oid = str(checked.obs.observation_id)
            if checked.envelope and admission:
                try:
                    if not admission.judge(checked.envelope, batch_ids):
                        outcomes[index] = self._outcome(items[index], "duplicate")
                        continue  # the same signed envelope delivered again
                except SignatureRejected as exc:
                    rejected.append((index, Refusal.of(exc)))
                    continue
                origin[signing_state.key_of(checked.envelope)] = index
            owner = (checked.obs.site, checked.obs.collector_id)
            if oid in batch_ids:  # the same observation twice in this batch
                if batch_ids[oid] != owner:
                    rejected.append((index, _reused(oid, *batch_ids[oid])))
                else:
                    outcomes[index] = self._outcome(items[index], "duplicate")
                continue
            batch_ids[oid] = owner
            accepted.append((index, checked, oid))
        if admission and (lost := admission.write()):  # admitted first by a server replica
            accepted = [(i, c, oid) for i, c, oid in accepted
                        if not (c.envelope and signing_state.key_of(c.envelope) in lost)]
            for key, rejection in lost.items():
                if rejection is None:
                    outcomes[origin[key]] = self._outcome(items[origin[key]], "duplicate")
                else:
                    rejected.append((origin[key], Refusal.of(rejection)))
        observations = [c.obs for _, c, _ in accepted]
        prior = drift_events.previous(session, observations)  # before this batch is stored
        values = drift_events.digests(observations)
        new = store.store_observations(session, observations, now,
                                       serialised=[c.stored_json for _, c, _ in accepted],
                                       digests=[values[oid] for _, _, oid in accepted])
        stored = [c.obs for _, c, oid in accepted if oid in new]
        owners = store.observation_owners(
            session, [c.obs for _, c, oid in accepted if oid not in new])
        store.upsert_assets(session, stored, now)
        result.drift += drift_events.detect(session, stored, now, prior, self.baseline.drift,
                                            values=values)
        for index, checked, oid in accepted:
            obs = checked.obs
            if oid in new:
                outcomes[index] = self._outcome(items[index], "stored", oid)
            elif owners.get(oid, (obs.site, obs.collector_id)) != (obs.site, obs.collector_id):
                rejected.append((index, _reused(oid, *owners[oid])))
            else:  # stored before, or by a replica
                outcomes[index] = self._outcome(items[index], "duplicate", oid)
        for index, refusal in rejected:
            topic, payload, _ = items[index]
            store.record_rejected(session, topic, payload, refusal.reason, refusal.code)
            outcomes[index] = _rejected(self.prefix, topic, payload, refusal)
        result.outcomes += [outcomes[i] for i in sorted(outcomes)]
        result.stored += len(stored)
        result.duplicates += sum(o.outcome == "duplicate" for o in outcomes.values())
        result.rejected += len(rejected)
        result.assets.update((obs.site, obs.asset.id) for obs in stored)
        result.observed += [store.observed_at(obs, now) for obs in stored]

    @staticmethod
    def _outcome(item: tuple[str, bytes, CheckedMessage | Refusal], outcome: Outcome,
                 oid: str | None = None) -> MessageOutcome:
        topic, _payload, checked = item
        assert isinstance(checked, CheckedMessage)
        return MessageOutcome(topic, checked.obs.collector_id,
                              oid or str(checked.obs.observation_id), outcome)

    def evaluate(self, session: sa.orm.Session, assets: set[store.AssetKey],
                 now: datetime) -> list[Alert]:
        """Evaluate ``assets`` (site, asset id), each site over its own zones; with
        ``alerts``, return the alerts of new fails and newly open advisories (to submit once
        committed)."""
        from otaudit.server.alerts import rules
        from otaudit.server.services.findings import refresh_findings
        from otaudit.server.services.policy import Policy, stored_waivers

        out: list[Alert] = []
        known: set[store.AssetKey] = set()  # evaluated before: their changes may alert
        by_site: dict[str, set[str]] = {}
        for site, asset in assets:
            by_site.setdefault(site, set()).add(asset)
        for site, ids in sorted(by_site.items()):
            policy = Policy([*self.exceptions, *stored_waivers(session, site, "exception")],
                            [*self.attestations, *stored_waivers(session, site, "attestation")])
            before = None
            if self.alerts is not None:
                before = rules.finding_states(session, site, ids)
                known |= {(site, a) for a in before}
            stored = refresh_findings(session, site, self.baseline, policy, ids, now)
            if before is not None:
                out += rules.new_fail_alerts(site, before, stored)
        was_open = rules.open_advisories(session, known) if known else set()
        _refresh_patch_status(session, assets, now)
        if known:
            out += rules.new_advisory_alerts(
                session, rules.open_advisories(session, known) - was_open)
        return out

    def evaluate_pending(self, limit: int | None = None) -> int:
        """Evaluate pending assets, ``EVALUATION_CHUNK`` per transaction (batches may be stored
        in between); at most ``limit`` assets (all when None). Returns how many."""
        done = 0
        while limit is None or done < limit:
            with self._exclusive():
                size = self.EVALUATION_CHUNK if limit is None else min(self.EVALUATION_CHUNK,
                                                                       limit - done)
                ids = set(sorted(self._pending)[:size])
                if not ids:
                    break
                self._pending -= ids
                try:
                    with self.sessions.begin() as session:
                        alerts = self.evaluate(session, ids, utcnow())
                except BaseException:
                    self._pending |= ids  # derived data: try again later
                    raise
            if alerts and self.alerts is not None:
                self.alerts.submit(alerts)
            done += len(ids)
        return done

    def flush_evaluation(self) -> int:
        """Evaluate everything pending now (before reports are read, or on stop)."""
        return self.evaluate_pending()

    def mark_stale_pending(self) -> int:
        """Queue the assets whose newest observation is newer than their findings (a server
        stopped between storage and evaluation); returns how many."""
        with self._exclusive(), self.sessions() as session:
            stale = store.stale_assets(session)
            self._pending |= stale
        return len(stale)

    def reevaluate_all(self) -> None:
        now = utcnow()
        with self._exclusive(), self.sessions.begin() as session:
            keys = {(site, asset) for site, asset in session.execute(
                sa.select(store.AssetRow.site, store.AssetRow.asset_id))}
            if keys:
                self.evaluate(session, keys, now)
            self._pending -= keys


def _rejected(prefix: str, topic: str, payload: bytes, refusal: Refusal) -> MessageOutcome:
    where = parse_observation_topic(prefix, topic)
    return MessageOutcome(topic, where[1] if where else None, observation_id_of(payload),
                          "rejected", refusal.code, refusal.reason, payload)


def _transient(exc: BaseException) -> bool:
    """A failure of the database itself, not of the messages: connection lost, locked,
    deadlock or serialization conflict, disk full (SQLAlchemy's ``OperationalError``)."""
    if isinstance(exc, sa.exc.OperationalError):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and bool(exc.connection_invalidated)


def _reused(oid: str, site: str, collector: str) -> Refusal:
    return Refusal("owner", f"observation id {oid} is already used by collector {collector!r} "
                   f"of site {site!r}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return store.safe_text(text[0], 300) if text else ""


def _refresh_patch_status(session: sa.orm.Session, assets: set[store.AssetKey],
                          now: datetime) -> None:
    from otaudit.server.advisories.patch import refresh_patch_status

    refresh_patch_status(session, assets, now=now)

