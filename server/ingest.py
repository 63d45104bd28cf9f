"""Validates and stores incoming observation messages, one transaction per batch, and evaluates
the assets they concern (in that transaction, or later off the hot path)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from pydantic import ValidationError

from otaudit.mqtt import parse_observation_topic
from otaudit.observation import Observation, utcnow
from otaudit.server import signing_state, store
from otaudit.server.db import session_factory
from otaudit.signing import SignatureRejected, VerifiedEnvelope, Verifier, looks_signed

if TYPE_CHECKING:
    from otaudit.server.baseline.loader import Baseline

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    assets: set[str] = field(default_factory=set)
    # What the listener's receipts say (otaudit.receipt), once the transaction committed:
    committed: list[tuple[str, str]] = field(default_factory=list)  # (topic, observation id)
    refused: list[tuple[str, bytes, str]] = field(default_factory=list)  # (topic, payload, why)


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


@dataclass
class CheckedBatch:
    """A batch checked without the database (``Ingestor.check``), in arrival order: each
    message with its ``CheckedMessage``, or the reason it is rejected."""

    items: list[tuple[str, bytes, CheckedMessage | str]]


def check_message(prefix: str, topic: str, payload: bytes,
                  verifier: Verifier | None = None) -> CheckedMessage:
    """``validate_message`` that also returns the verified envelope (for the replay rule)."""
    where = parse_observation_topic(prefix, topic)
    if where is None:
        raise ValueError(f"topic {topic!r} is not {prefix}/<site>/<collector>/obs/<asset>")
    site, collector, asset = where
    envelope = None
    if verifier is not None and (not verifier.accepts_unsigned(collector) or looks_signed(payload)):
        envelope = verifier.verify_envelope(payload, collector)
        obs = envelope.obs
    else:
        try:
            obs = Observation.from_json(payload)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}"
                for e in exc.errors()[:10]
            )
            raise ValueError(f"invalid observation: {problems}") from None
    pairs = (("site", obs.site, site), ("collector", obs.collector_id, collector),
             ("asset", obs.asset.id, asset))
    mismatches = [f"{name} {got!r} in payload but {want!r} in topic"
                  for name, got, want in pairs if got != want]
    if mismatches:
        raise ValueError("topic and payload disagree: " + "; ".join(mismatches))
    return CheckedMessage(obs, envelope)


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
    """

    EVALUATION_CHUNK = 250  # assets per evaluation transaction (ingest may run in between)

    def __init__(self, engine: sa.Engine, *, topic_prefix: str = "otaudit/v1",
                 exceptions_file: Path | None = None, attestations_file: Path | None = None,
                 verifier: Verifier | None = None, evaluate_inline: bool = True,
                 baseline: Baseline | None = None):
        from otaudit.server.baseline import load_attestations, load_baseline, load_exceptions

        self.engine = engine
        self.sessions = session_factory(engine)
        self.prefix = topic_prefix
        self.verifier = verifier  # None: plain Observation JSON accepted (no signatures)
        self.evaluate_inline = evaluate_inline
        self.baseline = baseline or load_baseline()  # bundled, or with a site overlay
        self.exceptions_file, self.attestations_file = exceptions_file, attestations_file
        self.exceptions = (load_exceptions(exceptions_file, self.baseline)
                           if exceptions_file else [])
        self.attestations = (load_attestations(attestations_file, self.baseline)
                             if attestations_file else [])
        self._lock = threading.Lock()  # one batch or one evaluation at a time
        self._pending: set[str] = set()

    @property
    def pending(self) -> int:
        """Assets stored but not evaluated yet."""
        return len(self._pending)

    def ingest(self, messages: Sequence[tuple[str, bytes]], *,
               evaluate: bool | None = None) -> IngestResult:
        """Store a batch in one transaction; evaluate the touched assets in it (``evaluate``,
        default ``evaluate_inline``) or leave them pending for ``evaluate_pending``."""
        return self.store(self.check(messages), evaluate=evaluate)

    def check(self, messages: Sequence[tuple[str, bytes]]) -> CheckedBatch:
        """Validate a batch (topic, payload, signature) and serialise what will be stored,
        without the database, so that it can run while the previous batch is being stored;
        ``store`` does the rest."""
        items: list[tuple[str, bytes, CheckedMessage | str]] = []
        for topic, payload in messages:
            try:
                checked: CheckedMessage | str = check_message(self.prefix, topic, payload,
                                                              self.verifier)
            except ValueError as exc:
                checked = str(exc)
            else:
                checked = CheckedMessage(checked.obs, checked.envelope,
                                         checked.obs.model_dump_json())
            items.append((topic, payload, checked))
        return CheckedBatch(items)

    def store(self, batch: CheckedBatch, *, evaluate: bool | None = None) -> IngestResult:
        """Store a checked batch in one transaction (the replay rule, duplicates, rejected
        messages); evaluate as ``ingest`` says."""
        inline = self.evaluate_inline if evaluate is None else evaluate
        with self._lock:
            result = IngestResult()
            now = utcnow()
            with self.sessions.begin() as session:
                self._store(session, batch, now, result)
                if result.assets and inline:
                    self.evaluate(session, result.assets, now)
            if not inline:
                self._pending |= result.assets
        return result

    def _store(self, session: sa.orm.Session, batch: CheckedBatch, now: datetime,
               result: IngestResult) -> None:
        accepted: list[CheckedMessage] = []
        batch_ids: set[str] = set()
        rejected: list[tuple[str, bytes, str]] = []
        envelopes = [c.envelope for _, _, c in batch.items
                     if isinstance(c, CheckedMessage) and c.envelope]
        admission = signing_state.Admission.read(session, envelopes, now) if envelopes else None
        origin: dict[signing_state.Key, tuple[str, bytes]] = {}
        topic_of: dict[str, str] = {}  # observation id -> topic, for the receipts
        for topic, payload, checked in batch.items:
            if isinstance(checked, str):
                rejected.append((topic, payload, checked))
                continue
            oid = str(checked.obs.observation_id)
            if checked.envelope and admission:
                try:
                    if not admission.judge(checked.envelope, batch_ids):
                        result.duplicates += 1  # the same signed envelope delivered again
                        result.committed.append((topic, oid))
                        continue
                except SignatureRejected as exc:
                    rejected.append((topic, payload, str(exc)))
                    continue
                origin[signing_state.key_of(checked.envelope)] = (topic, payload)
            if oid in batch_ids:  # the same observation twice in this batch
                result.duplicates += 1
                result.committed.append((topic, oid))
                continue
            batch_ids.add(oid)
            topic_of[oid] = topic
            accepted.append(checked)
        if admission and (lost := admission.write()):  # admitted first by a server replica
            beaten = {signing_state.key_of(c.envelope): str(c.obs.observation_id)
                      for c in accepted if c.envelope and signing_state.key_of(c.envelope) in lost}
            accepted = [c for c in accepted
                        if not (c.envelope and signing_state.key_of(c.envelope) in lost)]
            for key, rejection in lost.items():
                if rejection is None:
                    result.duplicates += 1
                    result.committed.append((origin[key][0], beaten[key]))
                else:
                    rejected.append((*origin[key], str(rejection)))
        observations = [c.obs for c in accepted]
        new = store.store_observations(session, observations, now,
                                       serialised=[c.stored_json for c in accepted])
        stored = [obs for obs in observations if str(obs.observation_id) in new]
        store.upsert_assets(session, stored)
        for topic, payload, reason in rejected:
            store.record_rejected(session, topic, payload, reason)
        result.committed += [(topic_of[str(c.obs.observation_id)], str(c.obs.observation_id))
                             for c in accepted]
        result.refused += rejected
        result.stored += len(stored)
        result.duplicates += len(accepted) - len(stored)  # stored before, or by a replica
        result.rejected += len(rejected)
        result.assets.update(obs.asset.id for obs in stored)

    def evaluate(self, session: sa.orm.Session, asset_ids: set[str], now: datetime) -> None:
        from otaudit.server.baseline import evaluate

        zones = {zid: z.sl_t for zid, z in store.load_zones(session).items()}
        assets = store.latest_asset_facts(session, asset_ids=asset_ids)
        evaluation = evaluate(self.baseline, zones, assets, exceptions=self.exceptions,
                              attestations=self.attestations, now=now)
        store.replace_findings(session, asset_ids, evaluation.findings, now)
        _refresh_patch_status(session, asset_ids, now)

    def evaluate_pending(self, limit: int | None = None) -> int:
        """Evaluate pending assets, ``EVALUATION_CHUNK`` per transaction (batches may be stored
        in between); at most ``limit`` assets (all when None). Returns how many."""
        done = 0
        while limit is None or done < limit:
            with self._lock:
                size = self.EVALUATION_CHUNK if limit is None else min(self.EVALUATION_CHUNK,
                                                                       limit - done)
                ids = set(sorted(self._pending)[:size])
                if not ids:
                    break
                self._pending -= ids
                try:
                    with self.sessions.begin() as session:
                        self.evaluate(session, ids, utcnow())
                except BaseException:
                    self._pending |= ids  # derived data: try again later
                    raise
            done += len(ids)
        return done

    def flush_evaluation(self) -> int:
        """Evaluate everything pending now (before reports are read, or on stop)."""
        return self.evaluate_pending()

    def mark_stale_pending(self) -> int:
        """Queue the assets whose newest observation is newer than their findings (a server
        stopped between storage and evaluation); returns how many."""
        with self._lock, self.sessions() as session:
            stale = store.stale_assets(session)
            self._pending |= stale
        return len(stale)

    def reevaluate_all(self) -> None:
        now = utcnow()
        with self._lock, self.sessions.begin() as session:
            ids = set(session.scalars(sa.select(store.AssetRow.asset_id)))
            if ids:
                self.evaluate(session, ids, now)
            self._pending -= ids


def _refresh_patch_status(session: sa.orm.Session, asset_ids: set[str], now: datetime) -> None:
    from otaudit.server.advisories.patch import refresh_patch_status

    refresh_patch_status(session, asset_ids, now=now)
