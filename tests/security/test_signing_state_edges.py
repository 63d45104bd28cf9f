"""The replay rule of server/signing_state.py at its edges (issue 23: survivors of its
mutation run): duplicates, other content, reused ids, key rotation, concurrent replicas."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from otaudit.server.db import init_db, make_engine, session_factory
from otaudit.server.signing_state import Admission
from otaudit.signing import SignatureRejected, Signer, Verifier

from support.observations import make_observation

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
KEY_A, KEY_B = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()


def _env(seq: int, obs=None, key=KEY_A, collector: str = "c1"):
    obs = obs or make_observation(collector=collector)
    verifier = Verifier({collector: key.public_key()})
    return verifier.verify_envelope(Signer(key, collector).sign(obs, seq), collector)


@pytest.fixture
def sessions(sqlite_url: str):
    engine = make_engine(sqlite_url)
    init_db(engine)
    yield session_factory(engine)
    engine.dispose()


def _admit(factory, envs, earlier=()):
    with factory.begin() as session:
        admission = Admission.read(session, envs, NOW)
        verdicts = [admission.judge(env, earlier) for env in envs]
        lost = admission.write()
    return verdicts, lost


def test_the_same_envelope_again_is_a_duplicate_other_content_a_replay(sessions) -> None:
    first = _env(1)
    assert _admit(sessions, [first]) == ([True], {})
    assert _admit(sessions, [first]) == ([False], {})  # a redelivery
    other = _env(1)
    with pytest.raises(SignatureRejected, match=(
            f"^replay: seq 1 of collector 'c1' was already accepted with different content "
            f"\\(observation {first.obs.observation_id}\\)$")):
        _admit(sessions, [other])


def test_every_sequence_number_and_every_key_has_its_own_row(sessions) -> None:
    envs = [_env(1), _env(2), _env(1, key=KEY_B), _env(1, collector="c2")]
    for env in envs:
        assert _admit(sessions, [env]) == ([True], {})
    assert _admit(sessions, envs) == ([False] * 4, {})


def test_an_observation_id_accepted_earlier_in_the_batch_cannot_come_again(sessions) -> None:
    obs = make_observation()
    first, again = _env(1, obs), _env(2, obs)
    with sessions.begin() as session:
        admission = Admission.read(session, [first, again], NOW)
        assert admission.judge(first, ()) is True
        with pytest.raises(SignatureRejected, match=r"^replay: observation .* is already stored"):
            admission.judge(again, [str(obs.observation_id)])
    assert _admit(sessions, [_env(3)], earlier=["some-other-id"]) == ([True], {})


def test_a_concurrent_replica_that_wrote_first(sessions) -> None:
    """Both read before either writes; the second to write finds the row: a duplicate when
    it is the same envelope, a replay when the content differs (either digest order)."""
    same = _env(1)
    seen = set()
    for seq in range(2, 40):
        mine, theirs = _env(seq), _env(seq)
        with sessions() as s1, sessions() as s2:
            a1 = Admission.read(s1, [theirs], NOW)
            a2 = Admission.read(s2, [mine], NOW)
            assert a1.judge(theirs) and a2.judge(mine)
            assert a1.write() == {}
            s1.commit()
            lost = a2.write()
            s2.commit()
        (verdict,) = lost.values()
        assert isinstance(verdict, SignatureRejected) and verdict.code == "replay"
        assert "accepted concurrently with different content" in str(verdict)
        assert a2.admitted == {}
        seen.add(theirs.digest > mine.digest)
        if seen == {True, False}:
            break
    assert seen == {True, False}
    with sessions() as s1, sessions() as s2:
        a1, a2 = Admission.read(s1, [same], NOW), Admission.read(s2, [same], NOW)
        assert a1.judge(same) and a2.judge(same)
        a1.write()
        s1.commit()
        assert a2.write() == {(same.collector, same.key_id, 1): None}
