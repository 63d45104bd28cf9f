"""Poison cannot stop the server: what the adversarial run of 2026-12-06 sent, and what the
database refuses past the door, on SQLite and PostgreSQL (``database_url``).

Each poison is rejected with its reason and a NUL-safe excerpt, in the same batch as good
messages that are all stored; ``ingest`` never raises.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from otaudit.observation import MAX_MESSAGE_BYTES, Observation
from otaudit.server.db import ObservationRow, RejectedMessage, init_db, make_engine
from otaudit.server.ingest import Ingestor, RejectionLog, StoreUnavailable
from otaudit.signing import Signer, Verifier, canonical_bytes

from support.observations import make_observation
from support.poison import poison_trigger, raw


def topic(obs: Observation, asset: str | None = None) -> str:
    return f"otaudit/v1/{obs.site}/{obs.collector_id}/obs/{asset or obs.asset.id}"


def sign_raw(signer: Signer, key: Ed25519PrivateKey, observation: dict[str, object],
             seq: int = 1) -> bytes:
    """A valid envelope around any observation JSON (what a compromised collector can do)."""
    fields = {k: v for k, v in signer.envelope(make_observation(), seq).items() if k != "sig"}
    fields["observation"] = observation
    sig = base64.b64encode(key.sign(canonical_bytes(fields))).decode()
    return json.dumps({**fields, "sig": sig}).encode()


def stored_ids(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(sa.select(ObservationRow.observation_id)))


def rejections(engine: sa.Engine) -> list[tuple[str | None, str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            sa.select(RejectedMessage.code, RejectedMessage.reason,
                      RejectedMessage.payload_excerpt).order_by(RejectedMessage.id))]


def test_the_adversarial_runs_poison_is_rejected_and_good_messages_stored(
        database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    key = Ed25519PrivateKey.generate()
    signer = Signer(key, "c1")
    base = make_observation(asset="plc-1", facts={"identity.vendor": "Acme"})
    good = [make_observation(asset=f"plc-{i}", facts={"identity.vendor": "Acme"})
            for i in range(3)]
    nul_zone = raw(base, asset__zone="cell\x00-1")  # what a signature would cover too
    poison = [
        (topic(base), b'{"a": "\x00"}not json'),                       # 17 bytes, NUL, no JSON
        (topic(base), nul_zone),                                       # NUL in zone
        (topic(base), raw(base, probe="p" * 40)),                      # varchar(32)
        (topic(base, "a" * 100), raw(base, asset__id="a" * 100)),     # varchar(64)
        (topic(base), raw(base, facts={"identity.vendor": {"value": "a\x00b"}})),
        (topic(base), raw(base, site="s" * 65)),
        (topic(base), raw(base, reason="r" * 5000)),
        (topic(base), raw(base, asset__name="n" * 300)),
        (topic(base), b"\xff\xfe\x00garbage"),
        (topic(base), b"[" * 10_000),
        (topic(base), b"{}" + b" " * MAX_MESSAGE_BYTES),
    ]
    batch = [(topic(good[0]), good[0].to_json()), *poison[:6],
             (topic(good[1]), good[1].to_json()), *poison[6:],
             (topic(good[2]), good[2].to_json())]
    result = Ingestor(engine).ingest(batch)
    assert (result.stored, result.duplicates, result.rejected) == (3, 0, len(poison))
    assert stored_ids(engine) == {str(o.observation_id) for o in good}
    found = rejections(engine)
    assert len(found) == len(poison)
    assert all("\x00" not in text for row in found for text in row if text)
    codes = [code for code, _, _ in found]
    assert codes == ["invalid", "nul", "invalid", "invalid", "nul", "invalid", "invalid",
                     "invalid", "invalid", "invalid", "oversize"]
    assert "asset.zone contains a NUL character" in found[1][1]
    assert "probe" in found[2][1] and "asset.id" in found[3][1]
    assert "\\x00" in found[0][2]  # the excerpt keeps the NUL, visibly
    outcomes = [(o.outcome, o.code) for o in result.outcomes]
    assert [o for o, _ in outcomes].count("stored") == 3 and len(outcomes) == len(batch)
    # signed: the same poison inside a validly signed envelope is rejected just the same
    signed = Ingestor(engine, verifier=Verifier({"c1": key.public_key()}))
    assert signed.ingest([(topic(base), sign_raw(signer, key, json.loads(nul_zone)))]
                         ).rejected == 1
    assert rejections(engine)[-1][0] == "nul"
    engine.dispose()


def test_a_database_error_retries_the_batch_in_parts_down_to_the_offender(
        database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    poison_trigger(engine)
    good = [make_observation(asset=f"plc-{i}") for i in range(4)]
    bad = make_observation(asset="poison")
    batch = [(topic(o), o.to_json()) for o in (good[0], good[1], bad, good[2], good[3])]
    with caplog.at_level(logging.WARNING, logger="otaudit.server.ingest"):
        result = Ingestor(engine).ingest(batch)
    assert (result.stored, result.rejected) == (4, 1)
    assert stored_ids(engine) == {str(o.observation_id) for o in good}
    (code, reason, excerpt), = rejections(engine)
    assert code == "store_failed" and "poisoned row" in reason
    assert str(bad.observation_id) in excerpt
    assert [o.outcome for o in result.outcomes] == ["stored", "stored", "rejected", "stored",
                                                     "stored"]
    assert result.outcomes[2].observation_id == str(bad.observation_id)
    assert "storing it in halves down to single messages" in caplog.text
    assert "rejected message on otaudit/v1/plant-a/c1/obs/poison" in caplog.text
    # again (a redelivery): the good ones are duplicates, the poison rejected again
    again = Ingestor(engine).ingest(batch)
    assert (again.stored, again.duplicates, again.rejected) == (0, 4, 1)
    engine.dispose()


def test_an_unreachable_database_is_waited_for_not_a_crash() -> None:
    engine = make_engine("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    ingestor = Ingestor(engine)
    ingestor.UNAVAILABLE_RETRY = (0.05, 0.1)
    obs = make_observation()
    checked = ingestor.check([(topic(obs), obs.to_json())])
    threading.Timer(0.5, ingestor.close).start()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        ingestor.store(checked)
    assert time.monotonic() - started >= 0.4  # it waited instead of rejecting the batch
    engine.dispose()


def test_rejections_are_counted_and_logged_at_warning_rate_limited(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = RejectionLog(burst=3, window=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="otaudit.server.ingest"):
        for i in range(10):
            log.rejected(f"t/{i}", "bad_signature" if i % 2 else "invalid", f"reason {i}")
        now[0] = 60.0
        log.rejected("t/late", "invalid", "late one")
    lines = [r.getMessage() for r in caplog.records]
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    assert lines[:3] == ["rejected message on t/0: reason 0",
                         "forged or misdirected message on t/1: reason 1",
                         "rejected message on t/2: reason 2"]
    assert lines[3] == "7 more rejected messages were not logged in the last 60 s"
    assert lines[4] == "rejected message on t/late: late one" and len(lines) == 5
    assert log.counts["rejected"] == 11 and log.counts["forged"] == 5
    assert log.counts["rejected.invalid"] == 6 and log.counts["rejected.bad_signature"] == 5


def test_a_failing_evaluation_rejects_no_message(sqlite_url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(sqlite_url)
    init_db(engine)
    ingestor = Ingestor(engine)  # evaluates inline, in the batch's transaction

    def broken(*_: object) -> None:
        raise RuntimeError("a baseline bug")

    monkeypatch.setattr(ingestor, "evaluate", broken)
    observations = [make_observation(asset=f"plc-{i}") for i in range(3)]
    result = ingestor.ingest([(topic(o), o.to_json()) for o in observations])
    assert (result.stored, result.rejected) == (3, 0)
    assert stored_ids(engine) == {str(o.observation_id) for o in observations}
    assert ingestor.pending == 3  # evaluated later (evaluate_pending), not lost
    engine.dispose()


def test_the_receipt_seam_lists_what_was_committed_and_refused(sqlite_url: str) -> None:
    """``IngestResult.committed`` / ``refused`` / ``receipts``: what the listener's receipts
    need (helper 16a's ``ReceiptSender`` reads ``committed`` and ``refused``)."""
    engine = make_engine(sqlite_url)
    init_db(engine)
    first, second = make_observation(asset="plc-1"), make_observation(asset="plc-2")
    Ingestor(engine).ingest([(topic(first), first.to_json())])
    bad = raw(second, probe="p" * 40)
    result = Ingestor(engine).ingest([(topic(first), first.to_json()),     # before: committed
                                      (topic(second), second.to_json()),   # stored now
                                      (topic(second), bad),                # rejected
                                      ("elsewhere/x", b"junk")])           # no collector
    assert result.committed == [(topic(first), str(first.observation_id)),
                                (topic(second), str(second.observation_id))]
    assert result.refused == [(topic(second), bad, result.outcomes[2].reason),
                              ("elsewhere/x", b"junk", result.outcomes[3].reason)]
    assert result.receipts() == {"c1": {
        "committed": [str(first.observation_id), str(second.observation_id)],
        "rejected": [str(second.observation_id)]}}
    engine.dispose()


def test_a_locked_database_is_waited_out_not_taken_for_poison(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SQLite "database is locked" (an OperationalError) is the database's failure, not the
    messages': the batch is tried again until it goes through, nothing is rejected."""
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    init_db(make_engine(url))
    engine = sa.create_engine(url, connect_args={"timeout": 0.05})
    ingestor = Ingestor(engine)
    ingestor.UNAVAILABLE_RETRY = (0.05, 0.2)
    observations = [make_observation(asset=f"plc-{i}") for i in range(3)]
    locker = make_engine(url).raw_connection()
    locker.execute("BEGIN EXCLUSIVE")
    threading.Timer(0.6, locker.commit).start()
    started = time.monotonic()
    result = ingestor.ingest([(topic(o), o.to_json()) for o in observations])
    assert time.monotonic() - started >= 0.5
    assert (result.stored, result.rejected) == (3, 0)
    assert stored_ids(engine) == {str(o.observation_id) for o in observations}
    locker.close()
    engine.dispose()
