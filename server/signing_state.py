"""Replay protection for signed envelopes: table ``collector_sequences``.

One row per accepted envelope: ``(collector_id, key_id, seq)`` is the primary key and the row
keeps the envelope's digest (sha256 of its canonical signed bytes, see ``otaudit.signing``) and
the observation id it carried.

The rule, applied to an envelope whose signature has already been verified:

1. ``(collector, key_id, seq)`` already accepted with the **same digest**: the exact same signed
   envelope again (a QoS-1 redelivery or an outbox re-send) → counted as a duplicate, nothing
   new is stored.
2. ``(collector, key_id, seq)`` already accepted with a **different digest** → rejected,
   ``replay: seq N of collector C was already accepted with different content``.
3. A new ``seq`` whose observation id is **already stored** (by any earlier envelope or plain
   message) → rejected, ``replay: observation <id> is already stored ...``.
4. Otherwise the envelope is admitted: its row is written in the same transaction as the
   observation, so both commit or neither does.

Sequence numbers need not arrive in order (an outbox may re-send after a reconnect); each one is
accepted once. Including ``key_id`` in the key means a re-enrolled collector (new key pair)
starts a fresh sequence space; envelopes of a withdrawn key fail as ``unknown_key`` before this
rule is reached.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from otaudit.server.db import Base, ObservationRow
from otaudit.signing import SignatureRejected, VerifiedEnvelope


class CollectorSequence(Base):
    __tablename__ = "collector_sequences"

    collector_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    digest: Mapped[str] = mapped_column(String(64))
    observation_id: Mapped[str] = mapped_column(String(36), index=True)
    sent_at: Mapped[datetime]
    received_at: Mapped[datetime]


def _known(session: Session, env: VerifiedEnvelope) -> bool:
    """True for rule 1 (exact duplicate); raises for rule 2; False when the seq is new."""
    row = session.get(CollectorSequence, (env.collector, env.key_id, env.seq))
    if row is None:
        return False
    if row.digest == env.digest:
        return True
    raise SignatureRejected(
        "replay", f"seq {env.seq} of collector {env.collector!r} was already accepted with "
        f"different content (observation {row.observation_id})")


def admit(session: Session, env: VerifiedEnvelope, received_at: datetime) -> bool:
    """Apply the replay rule: True to store the observation, False for a harmless duplicate.

    Raises ``SignatureRejected('replay', ...)`` for a forged or replayed envelope.
    """
    if _known(session, env):
        return False
    oid = str(env.obs.observation_id)
    if session.get(ObservationRow, oid) is not None:
        raise SignatureRejected(
            "replay", f"observation {oid} is already stored; seq {env.seq} of collector "
            f"{env.collector!r} is a different envelope reusing its id")
    row = CollectorSequence(collector_id=env.collector, key_id=env.key_id, seq=env.seq,
                            digest=env.digest, observation_id=oid, sent_at=env.sent_at,
                            received_at=received_at)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # a concurrent server replica admitted this seq first
        if _known(session, env):
            return False
        raise SignatureRejected("replay", f"seq {env.seq} of collector {env.collector!r} "
                                "was accepted concurrently with different content") from None
    return True
