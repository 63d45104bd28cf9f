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

A batch is admitted at once (``Admission``): two queries read what the rule needs for all its
envelopes, which are then judged one by one in arrival order, each seeing those admitted
before it (and, for rule 3, the ids of the observations accepted before it in the batch);
the admitted rows are written with one statement. An envelope that a concurrent server
replica admitted between the reads and that statement is then a duplicate (same digest) or
rejected (other content), as if it had come after the replica's.

Sequence numbers need not arrive in order (an outbox may re-send after a reconnect); each one is
accepted once. Including ``key_id`` in the key means a re-enrolled collector (new key pair)
starts a fresh sequence space; envelopes of a withdrawn key fail as ``unknown_key`` before this
rule is reached.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from otaudit.server.db import Base, ObservationRow, dialect_insert
from otaudit.signing import SignatureRejected, VerifiedEnvelope

CHUNK = 500  # keys per query (SQLite allows 32,766 parameters)

Key = tuple[str, str, int]  # (collector_id, key_id, seq)


class CollectorSequence(Base):
    __tablename__ = "collector_sequences"

    collector_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    digest: Mapped[str] = mapped_column(String(64))
    observation_id: Mapped[str] = mapped_column(String(36), index=True)
    sent_at: Mapped[datetime]
    received_at: Mapped[datetime]


def key_of(env: VerifiedEnvelope) -> Key:
    return env.collector, env.key_id, env.seq


def _different(env: VerifiedEnvelope, known_oid: str) -> SignatureRejected:
    return SignatureRejected("replay", f"seq {env.seq} of collector {env.collector!r} was already "
                             f"accepted with different content (observation {known_oid})")


def _concurrent(env: VerifiedEnvelope) -> SignatureRejected:
    return SignatureRejected("replay", f"seq {env.seq} of collector {env.collector!r} was "
                             "accepted concurrently with different content")


def _reused(env: VerifiedEnvelope, oid: str) -> SignatureRejected:
    return SignatureRejected("replay", f"observation {oid} is already stored; seq {env.seq} of "
                             f"collector {env.collector!r} is a different envelope reusing its id")


@dataclass
class Admission:
    """The replay rule for the envelopes of one batch (see the module docstring).

    ``judge`` each envelope in arrival order, then ``write`` the admitted rows once.
    """

    session: Session
    received_at: datetime
    known: dict[Key, tuple[str, str]] = field(default_factory=dict)  # -> (digest, obs id)
    stored_ids: set[str] = field(default_factory=set)  # observation ids stored before
    admitted: dict[Key, VerifiedEnvelope] = field(default_factory=dict)

    @classmethod
    def read(cls, session: Session, envelopes: Sequence[VerifiedEnvelope],
             received_at: datetime) -> Admission:
        """What the rule needs for these envelopes: two queries per ``CHUNK`` envelopes."""
        admission = cls(session, received_at)
        table = CollectorSequence.__table__
        keys = sorted({key_of(env) for env in envelopes})
        for part in _chunks(keys):
            query = (sa.select(table.c.collector_id, table.c.key_id, table.c.seq,
                               table.c.digest, table.c.observation_id)
                     .where(sa.tuple_(table.c.collector_id, table.c.key_id, table.c.seq)
                            .in_(part)))
            for collector, key_id, seq, digest, oid in session.execute(query):
                admission.known[(collector, key_id, seq)] = (digest, oid)
        ids = sorted({str(env.obs.observation_id) for env in envelopes})
        obs = ObservationRow.__table__
        for part in _chunks(ids):
            admission.stored_ids.update(session.scalars(
                sa.select(obs.c.observation_id).where(obs.c.observation_id.in_(part))))
        return admission

    def judge(self, env: VerifiedEnvelope, earlier_ids: Iterable[str] = ()) -> bool:
        """True to store the observation, False for a harmless duplicate (rule 1); raises
        ``SignatureRejected('replay', ...)`` (rules 2 and 3). ``earlier_ids``: the ids of the
        observations accepted before this envelope in the batch (stored at its end)."""
        key, oid = key_of(env), str(env.obs.observation_id)
        known = self.known.get(key)
        if known is None and oid in earlier_ids:
            raise _reused(env, oid)
        if known is not None:
            if known[0] == env.digest:
                return False
            raise _different(env, known[1])
        if oid in self.stored_ids:
            raise _reused(env, oid)
        self.known[key] = (env.digest, oid)
        self.admitted[key] = env
        return True

    def write(self) -> dict[Key, SignatureRejected | None]:
        """Insert the admitted rows (one statement per ``CHUNK``). Returns the envelopes a
        concurrent replica admitted first: None when it was the same envelope (a duplicate),
        else why it is rejected; their observations must not be stored."""
        if not self.admitted:
            return {}
        table = CollectorSequence.__table__
        insert = dialect_insert(self.session)
        written: set[Key] = set()
        for part in _chunks(sorted(self.admitted)):
            stmt = (insert(table).on_conflict_do_nothing()
                    .returning(table.c.collector_id, table.c.key_id, table.c.seq))
            rows = [{"collector_id": c, "key_id": k, "seq": seq, "digest": env.digest,
                     "observation_id": str(env.obs.observation_id), "sent_at": env.sent_at,
                     "received_at": self.received_at}
                    for (c, k, seq), env in ((key, self.admitted[key]) for key in part)]
            written.update(tuple(row) for row in self.session.execute(stmt, rows))
        lost = [key for key in self.admitted if key not in written]
        if not lost:
            return {}
        theirs = Admission.read(self.session, [self.admitted[key] for key in lost],
                                self.received_at).known
        verdicts: dict[Key, SignatureRejected | None] = {}
        for key in lost:
            env = self.admitted.pop(key)
            digest = theirs.get(key, ("", ""))[0]
            verdicts[key] = None if digest == env.digest else _concurrent(env)
        return verdicts


def _chunks(items: list[Any]) -> list[list[Any]]:
    return [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]
