"""Validates, stores and evaluates incoming observation messages, one transaction per batch."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from pydantic import ValidationError

from otaudit.mqtt import parse_observation_topic
from otaudit.observation import Observation, utcnow
from otaudit.server import signing_state, store
from otaudit.server.db import session_factory
from otaudit.signing import VerifiedEnvelope, Verifier, looks_signed

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    assets: set[str] = field(default_factory=set)


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
    """Stores observations idempotently and re-evaluates the assets they concern."""

    def __init__(self, engine: sa.Engine, *, topic_prefix: str = "otaudit/v1",
                 exceptions_file: Path | None = None, attestations_file: Path | None = None,
                 verifier: Verifier | None = None):
        from otaudit.server.baseline import load_attestations, load_baseline, load_exceptions

        self.engine = engine
        self.sessions = session_factory(engine)
        self.prefix = topic_prefix
        self.verifier = verifier  # None: plain Observation JSON accepted (no signatures)
        self.baseline = load_baseline()
        self.exceptions_file, self.attestations_file = exceptions_file, attestations_file
        self.exceptions = (load_exceptions(exceptions_file, self.baseline)
                           if exceptions_file else [])
        self.attestations = (load_attestations(attestations_file, self.baseline)
                             if attestations_file else [])

    def ingest(self, messages: Sequence[tuple[str, bytes]]) -> IngestResult:
        """Store a batch in one transaction, then evaluate the touched assets."""
        result = IngestResult()
        now = utcnow()
        with self.sessions.begin() as session:
            for topic, payload in messages:
                try:
                    checked = check_message(self.prefix, topic, payload, self.verifier)
                    obs = checked.obs
                    if checked.envelope and not signing_state.admit(session, checked.envelope,
                                                                    now):
                        result.duplicates += 1  # the same signed envelope delivered again
                        continue
                except ValueError as exc:
                    store.record_rejected(session, topic, payload, str(exc))
                    result.rejected += 1
                    continue
                if store.store_observation(session, obs, now):
                    result.stored += 1
                    result.assets.add(obs.asset.id)
                else:
                    result.duplicates += 1
            if result.assets:
                session.flush()
                self.evaluate(session, result.assets, now)
        return result

    def evaluate(self, session: sa.orm.Session, asset_ids: set[str], now: datetime) -> None:
        from otaudit.server.baseline import evaluate

        zones = {zid: z.sl_t for zid, z in store.load_zones(session).items()}
        assets = store.latest_asset_facts(session, asset_ids=asset_ids)
        evaluation = evaluate(self.baseline, zones, assets, exceptions=self.exceptions,
                              attestations=self.attestations, now=now)
        store.replace_findings(session, asset_ids, evaluation.findings, now)
        _refresh_patch_status(session, asset_ids, now)

    def reevaluate_all(self) -> None:
        now = utcnow()
        with self.sessions.begin() as session:
            ids = set(session.scalars(sa.select(store.AssetRow.asset_id)))
            if ids:
                self.evaluate(session, ids, now)


def _refresh_patch_status(session: sa.orm.Session, asset_ids: set[str], now: datetime) -> None:
    try:
        from otaudit.server.advisories.patch import refresh_patch_status
    except ModuleNotFoundError:  # advisories not installed in this build
        return
    refresh_patch_status(session, asset_ids, now=now)


def describe(result: IngestResult) -> str:
    return json.dumps({"stored": result.stored, "duplicates": result.duplicates,
                       "rejected": result.rejected})
