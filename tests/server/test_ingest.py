"""Batch ingest: bulk storage keeps every guarantee; evaluation can be deferred and recovered.

SQLite and PostgreSQL (``database_url``).
"""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from otaudit.observation import Observation, utcnow
from otaudit.server import signing_state, store
from otaudit.server.db import (
    AssetRow,
    FindingRow,
    ObservationRow,
    RejectedMessage,
    init_db,
    make_engine,
    session_factory,
)
from otaudit.server.ingest import Ingestor
from otaudit.server.signing_state import CollectorSequence
from otaudit.signing import Signer, VerifiedEnvelope, Verifier

from support.observations import make_observation

FACTS = {"identity.vendor": "Schneider Electric", "identity.firmware_version": "V1.0"}


def topic(obs: Observation) -> str:
    return f"otaudit/v1/{obs.site}/{obs.collector_id}/obs/{obs.asset.id}"


def message(obs: Observation) -> tuple[str, bytes]:
    return topic(obs), obs.to_json()


def engine_for(url: str) -> sa.Engine:
    engine = make_engine(url)
    init_db(engine)
    return engine


def findings(engine: sa.Engine) -> set[tuple[str, str, str]]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(FindingRow.asset_id, FindingRow.check_id,
                                          FindingRow.status)).all())


def test_a_batch_stores_each_observation_once_and_counts_the_rest(database_url: str) -> None:
    engine = engine_for(database_url)
    earlier = make_observation(asset="plc-1", facts=FACTS)
    assert Ingestor(engine).ingest([message(earlier)]).stored == 1
    first = make_observation(asset="plc-1", minutes=10, zone="cell-2", facts=FACTS)
    older = make_observation(asset="plc-1", minutes=5, zone="cell-3", facts=FACTS)
    other = make_observation(asset="plc-2", facts=FACTS)
    batch = [message(first), message(first),          # the same observation twice in a batch
             message(earlier),                        # already stored by an earlier batch
             ("otaudit/v1/plant-a/c1/obs/plc-9", b"{broken"),
             message(older), message(other)]
    # a second server (another Ingestor) takes the same batch: everything is a duplicate
    result = Ingestor(engine).ingest(batch)
    again = Ingestor(engine).ingest(batch)
    assert (result.stored, result.duplicates, result.rejected) == (3, 2, 1)
    assert result.assets == {("plant-a", "plc-1"), ("plant-a", "plc-2")}
    assert (again.stored, again.duplicates, again.rejected) == (0, 5, 1)
    with session_factory(engine)() as session:
        assert session.query(ObservationRow).count() == 4
        reasons = list(session.scalars(sa.select(RejectedMessage.reason)))
        plc = session.get(AssetRow, ("plant-a", "plc-1"))
        assert plc is not None
        # as if stored one by one: the batch's last observation sets the zone, the newest
        # finish time is last_seen
        assert plc.zone == "cell-3"
        assert store._aware(plc.last_seen) == first.finished_at
        stored = session.get(ObservationRow, str(first.observation_id))
        assert stored is not None and stored.payload == json.loads(first.to_json())
    assert len(reasons) == 2 and all(r.startswith("invalid observation") for r in reasons)
    engine.dispose()


def test_replay_rule_applies_message_by_message_within_one_batch(database_url: str) -> None:
    engine = engine_for(database_url)
    key = Ed25519PrivateKey.generate()
    signer, verifier = Signer(key, "c1"), Verifier({"c1": key.public_key()})
    obs = make_observation(asset="plc-1", facts=FACTS)
    changed = obs.model_copy(update={"probe_version": "2"})
    later = make_observation(asset="plc-2", facts=FACTS)
    good = signer.sign(obs, 1)
    batch = [(topic(obs), good),                      # stored
             (topic(obs), good),                      # the same envelope again: duplicate
             (topic(obs), signer.sign(changed, 1)),   # seq 1 with other content: replay
             (topic(obs), signer.sign(obs, 2)),       # new seq reusing a stored id: replay
             (topic(later), signer.sign(later, 2)),   # seq 2 was not accepted: stored
             (topic(later), signer.sign(later, 3))]   # new seq reusing the batch's id: replay
    result = Ingestor(engine, verifier=verifier).ingest(batch)
    assert (result.stored, result.duplicates, result.rejected) == (2, 1, 3)
    with engine.connect() as conn:
        reasons = list(conn.scalars(sa.select(RejectedMessage.reason)
                                    .order_by(RejectedMessage.id)))
        sequences = set(conn.execute(sa.select(CollectorSequence.seq,
                                               CollectorSequence.observation_id)))
    assert reasons[0].startswith("replay: seq 1 of collector 'c1' was already accepted")
    assert reasons[1].startswith(f"replay: observation {obs.observation_id} is already stored")
    assert reasons[2].startswith(f"replay: observation {later.observation_id} is already")
    assert sequences == {(1, str(obs.observation_id)), (2, str(later.observation_id))}
    engine.dispose()


def test_a_signed_batch_is_admitted_with_one_read_and_one_insert(database_url: str) -> None:
    engine = engine_for(database_url)
    key = Ed25519PrivateKey.generate()
    signer, verifier = Signer(key, "c1"), Verifier({"c1": key.public_key()})
    observations = [make_observation(asset=f"plc-{i}", facts=FACTS) for i in range(60)]
    batch = [(topic(obs), signer.sign(obs, seq)) for seq, obs in enumerate(observations)]
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "collector_sequences" in statement:
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    result = Ingestor(engine, verifier=verifier).ingest(batch + batch[:5])  # 5 redelivered
    sa.event.remove(engine, "before_cursor_execute", count)
    assert (result.stored, result.duplicates, result.rejected) == (60, 5, 0)
    assert len(statements) == 2  # one read of the known sequences, one insert of the new
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(CollectorSequence)) == 60
    engine.dispose()


def test_envelopes_a_replica_admitted_meanwhile_are_duplicates_or_rejected(
        database_url: str) -> None:
    """Another server commits two of the batch's sequence numbers between the batch's reads
    and its insert: the same envelope is then a duplicate, another one a replay."""
    engine = engine_for(database_url)
    key = Ed25519PrivateKey.generate()
    signer, verifier = Signer(key, "c1"), Verifier({"c1": key.public_key()})
    first, second, third = (make_observation(asset=f"plc-{i}", facts=FACTS) for i in range(3))

    def envelope(obs: Observation, seq: int) -> VerifiedEnvelope:
        return verifier.verify_envelope(signer.sign(obs, seq), "c1")

    mine = [envelope(first, 1), envelope(second, 2), envelope(third, 3)]
    theirs = [mine[0], envelope(make_observation(asset="plc-9", facts=FACTS), 2)]
    sessions = session_factory(engine)
    with sessions.begin() as session:
        admission = signing_state.Admission.read(session, mine, utcnow())
        with sessions.begin() as replica:  # commits first
            replica_admission = signing_state.Admission.read(replica, theirs, utcnow())
            assert all(replica_admission.judge(env) for env in theirs)
            assert replica_admission.write() == {}
        assert all(admission.judge(env) for env in mine)  # as far as the reads could tell
        lost = admission.write()
    assert set(lost) == {("c1", signer.key_id, 1), ("c1", signer.key_id, 2)}
    assert lost[("c1", signer.key_id, 1)] is None  # the same envelope: a duplicate
    rejection = lost[("c1", signer.key_id, 2)]
    assert rejection is not None and str(rejection).startswith(
        "replay: seq 2 of collector 'c1' was accepted concurrently with different content")
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.select(CollectorSequence.seq,
                                           CollectorSequence.observation_id)).all())
    assert rows == {1: str(first.observation_id), 2: str(theirs[1].obs.observation_id),
                    3: str(third.observation_id)}
    engine.dispose()


def test_deferred_evaluation_matches_inline_and_survives_a_restart(
        database_url: str, tmp_path: Path) -> None:
    batch = [message(make_observation(asset=f"plc-{i % 3}", minutes=i, facts=FACTS))
             for i in range(9)]
    inline = engine_for(f"sqlite:///{tmp_path / 'inline.db'}")
    Ingestor(inline).ingest(batch)
    expected = findings(inline)
    assert {a for a, _, _ in expected} == {"plc-0", "plc-1", "plc-2"}

    engine = engine_for(database_url)
    crashed = Ingestor(engine, evaluate_inline=False)
    result = crashed.ingest(batch)
    assert result.stored == 9 and crashed.pending == 3
    assert findings(engine) == set()  # stored and acknowledged, not evaluated yet
    with session_factory(engine)() as session:
        assert store.stale_assets(session) == {("plant-a", f"plc-{i}") for i in range(3)}

    restarted = Ingestor(engine, evaluate_inline=False)  # the first one "crashed"
    assert restarted.mark_stale_pending() == 3
    assert restarted.flush_evaluation() == 3 and restarted.pending == 0
    assert findings(engine) == expected
    with session_factory(engine)() as session:
        assert store.stale_assets(session) == set()

    # a newer observation of one asset makes only that asset stale again
    newer = make_observation(asset="plc-1", minutes=60,
                             facts={**FACTS, "identity.firmware_version": "V2.0"})
    restarted.ingest([message(newer)])
    with session_factory(engine)() as session:
        assert store.stale_assets(session) == {("plant-a", "plc-1")}
    assert Ingestor(engine, evaluate_inline=False).mark_stale_pending() == 1
    assert restarted.evaluate_pending(limit=1) == 1
    with session_factory(engine)() as session:
        assert store.stale_assets(session) == set()
    inline.dispose()
    engine.dispose()


def test_evaluation_chunks_leave_nothing_behind(sqlite_url: str) -> None:
    engine = engine_for(sqlite_url)
    ingestor = Ingestor(engine, evaluate_inline=False)
    ingestor.EVALUATION_CHUNK = 2
    ingestor.ingest([message(make_observation(asset=f"plc-{i}", facts=FACTS))
                     for i in range(5)])
    assert ingestor.evaluate_pending(limit=3) == 3 and ingestor.pending == 2
    assert ingestor.evaluate_pending() == 2 and ingestor.pending == 0
    assert {a for a, _, _ in findings(engine)} == {f"plc-{i}" for i in range(5)}
    engine.dispose()
