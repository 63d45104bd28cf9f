"""The receipt format (otaudit/receipt.py): what the server builds from a committed batch,
and every reason a collector ignores a receipt."""

from __future__ import annotations

import json
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from otaudit.receipt import (
    MAX_REASON,
    Receipt,
    ReceiptRejected,
    ReceiptSigner,
    ReceiptVerifier,
    decode,
    encode,
    observation_id_of,
    payload_digest,
)
from otaudit.server.ingest import IngestResult, MessageOutcome
from otaudit.server.listener import ReceiptSender
from otaudit.signing import Signer

from support.observations import make_observation

PREFIX = "otaudit/v1"


def test_the_server_receipts_per_collector_committed_ids_and_rejected_digests() -> None:
    a, b = (make_observation(site="s1", collector=c) for c in ("c1", "c2"))
    poison = b"\x00not json"
    forged = make_observation(site="s1", collector="c1").to_json()
    result = IngestResult(outcomes=[
        MessageOutcome(f"{PREFIX}/s1/c1/obs/plc-1", "c1", str(a.observation_id), "stored"),
        MessageOutcome(f"{PREFIX}/s1/c2/obs/plc-1", "c2", str(b.observation_id), "duplicate"),
        MessageOutcome("elsewhere/s1/c1/obs/x", None, str(uuid.uuid4()), "stored"),  # not ours
        MessageOutcome(f"{PREFIX}/s1/c1/obs/plc-9", "c1", None, "rejected",
                       reason="invalid observation: " + "y" * 999, payload=poison),
        MessageOutcome(f"{PREFIX}/s1/c1/obs/plc-8", "c1", observation_id_of(forged),
                       "rejected", reason="bad_signature: forged", payload=forged)])
    receipts = dict(ReceiptSender(PREFIX, "srv-1").receipts(result))
    assert set(receipts) == {f"{PREFIX}/s1/c1/receipt", f"{PREFIX}/s1/c2/receipt"}
    mine = decode(receipts[f"{PREFIX}/s1/c1/receipt"], site="s1", collector="c1")
    assert mine.committed == [str(a.observation_id)] and mine.server == "srv-1"
    assert [(r.digest, r.observation_id) for r in mine.rejected] == [
        (payload_digest(poison), None),
        (payload_digest(forged), observation_id_of(forged))]
    assert len(mine.rejected[0].reason) == MAX_REASON
    theirs = decode(receipts[f"{PREFIX}/s1/c2/receipt"], site="s1", collector="c2")
    assert theirs.committed == [str(b.observation_id)] and theirs.rejected == []


def test_observation_ids_are_found_in_plain_and_signed_payloads_only() -> None:
    obs = make_observation(collector="c1")
    key = Ed25519PrivateKey.generate()
    assert observation_id_of(obs.to_json()) == str(obs.observation_id)
    assert observation_id_of(Signer(key, "c1").sign(obs, 7)) == str(obs.observation_id)
    for junk in (b"", b"[]", b"{", b'{"observation_id": "not-a-uuid"}', b"[" * 100_000,
                 b'{"observation_id": 5}', b"\xff\xfe"):
        assert observation_id_of(junk) is None


def test_signed_receipts_verify_and_every_bad_receipt_says_why() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    receipt = Receipt("s1", "c1", "srv", committed=[str(uuid.uuid4())])
    signed = encode(receipt, ReceiptSigner(key))
    verifier = ReceiptVerifier(key.public_key())
    assert decode(signed, site="s1", collector="c1", verifier=verifier).key_id == \
        verifier.key_id
    assert decode(signed, site="s1", collector="c1").committed == receipt.committed

    data = json.loads(signed)
    cases = {
        b"nope": "not JSON",
        b"[1]": "not a JSON object",
        json.dumps({**data, "extra": 1}).encode(): "fields",
        json.dumps({**data, "v": 2}).encode(): "unsupported receipt version",
        encode(receipt): "unsigned receipt",
        encode(receipt, ReceiptSigner(other)): "not the configured server key",
        json.dumps({**data, "committed": [str(uuid.uuid4())]}).encode(): "does not match",
        encode(Receipt("s1", "c2", "srv"), ReceiptSigner(key)): "not s1/c1",
        json.dumps({k: v for k, v in data.items() if k not in ("sig", "key_id")}
                   | {"committed": "x"}).encode(): "committed is not a list",
        json.dumps({k: v for k, v in data.items() if k not in ("sig", "key_id")}
                   | {"rejected": [{"sha256": 1}]}).encode(): "rejected is not a list",
        json.dumps({k: v for k, v in data.items() if k not in ("sig", "key_id")}
                   | {"at": "yesterday"}).encode(): "at is not an ISO 8601 time",
    }
    for payload, why in cases.items():
        needs_key = why in ("unsigned receipt", "not the configured server key",
                            "does not match")
        with pytest.raises(ReceiptRejected, match=why):
            decode(payload, site="s1", collector="c1", verifier=verifier if needs_key else None)
