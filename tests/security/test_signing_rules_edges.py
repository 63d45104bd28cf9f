"""Signing and verification at their edges (issue 23: survivors of the mutation run of
otaudit/signing.py): key files, sequence numbers, what a rejection says, immutability."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from otaudit.canonical import canonical_bytes
from otaudit.signing import (
    Enrolment,
    SignatureRejected,
    Signer,
    Verifier,
    key_id,
    load_private_key,
)

from support.observations import make_observation

KEY = Ed25519PrivateKey.generate()
VERIFIER = Verifier({"c1": KEY.public_key(), "c2": KEY.public_key()})


def _signed(fields: dict[str, Any], key: Ed25519PrivateKey = KEY) -> bytes:
    """An envelope with a valid signature over whatever ``fields`` hold."""
    sig = base64.b64encode(key.sign(canonical_bytes(fields))).decode()
    return canonical_bytes({**fields, "sig": sig})


def _fields(collector: str, observation: dict[str, Any], seq: int = 1) -> dict[str, Any]:
    return {"v": 1, "alg": "ed25519", "collector": collector, "key_id": key_id(KEY.public_key()),
            "seq": seq, "sent_at": "2026-11-01T08:00:00+00:00", "observation": observation}


def test_key_pairs_of_two_collectors_share_a_folder(tmp_path: Path) -> None:
    from otaudit.signing import write_key_pair

    first = write_key_pair(tmp_path / "keys", "c1")
    second = write_key_pair(tmp_path / "keys", "c2")
    assert first[2] != second[2]
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == [
        "c1.key", "c1.pub", "c2.key", "c2.pub"]


def test_an_existing_key_is_replaced_only_with_force(tmp_path: Path) -> None:
    from otaudit.signing import write_key_pair

    _, _, kid = write_key_pair(tmp_path, "c1")
    with pytest.raises(FileExistsError, match=r"c1\.key"):
        write_key_pair(tmp_path, "c1")
    assert key_id(load_private_key(tmp_path / "c1.key").public_key()) == kid
    _, _, new = write_key_pair(tmp_path, "c1", force=True)
    assert new != kid
    assert key_id(load_private_key(tmp_path / "c1.key").public_key()) == new


def test_the_private_key_is_never_readable_by_others(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """0600 from its creation on, not only after the chmod that follows."""
    from otaudit.signing import write_key_pair

    old = os.umask(0)
    try:
        path, _, _ = write_key_pair(tmp_path / "a", "c1")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        monkeypatch.setattr(os, "chmod", lambda *args, **kwargs: None)
        path, _, _ = write_key_pair(tmp_path / "b", "c1")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)


@pytest.mark.parametrize("seq", [-1, True, False, "1", 1.0])
def test_a_signer_refuses_a_sequence_number_that_is_no_integer_from_zero(seq: object) -> None:
    signer = Signer(KEY, "c1")
    with pytest.raises(ValueError, match="seq must be an integer >= 0"):
        signer.envelope(make_observation(collector="c1"), seq)  # type: ignore[arg-type]


def test_sequence_number_zero_is_signed_and_verified() -> None:
    payload = Signer(KEY, "c1").sign(make_observation(collector="c1"), 0)
    obs, seq = VERIFIER.verify(payload, "c1")
    assert seq == 0 and obs.collector_id == "c1"


@pytest.mark.parametrize(("envelope", "observation"), [("c1", "c2"), ("c2", "c1")])
def test_the_observation_must_be_of_the_envelopes_collector(envelope: str,
                                                            observation: str) -> None:
    obs = json.loads(make_observation(collector=observation).to_json())
    with pytest.raises(SignatureRejected, match="collector_mismatch: observation collector_id"):
        VERIFIER.verify(_signed(_fields(envelope, obs)), envelope)


def test_an_invalid_observation_names_the_fields_at_most_ten() -> None:
    bad = {"observation_id": "not-a-uuid", "facts": 5, "unknown": 5, "evidence": 5}
    with pytest.raises(SignatureRejected) as caught:
        VERIFIER.verify(_signed(_fields("c1", bad)), "c1")
    assert caught.value.code == "invalid_observation"
    problems = caught.value.detail.split("; ")
    assert len(problems) == 10
    assert problems[0].startswith("observation_id: ")
    assert any(p.startswith("collector_id: ") for p in problems)


@pytest.mark.parametrize(("payload", "message"), [
    ({"alg": "ed25519", "collector": "c1"}, "envelope has no 'sig'"),
    ({"observation_id": "x"}, "plain observation without envelope"),
])
def test_an_unsigned_payload_says_what_it_is(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(SignatureRejected, match=f"^unsigned: {message}; signatures are "):
        VERIFIER.verify(json.dumps(payload).encode(), "c1")


def test_a_verifier_requires_signatures_unless_told_otherwise() -> None:
    assert Verifier({"c1": KEY.public_key()}).accepts_unsigned("c9") is False
    assert Verifier({"c1": KEY.public_key()}, required=False).accepts_unsigned("c9") is True
    assert Verifier({"c1": KEY.public_key()}, required=False).accepts_unsigned("c1") is False


def test_enrolments_and_verified_envelopes_cannot_be_changed() -> None:
    enrolment = Enrolment(("plant-a",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        enrolment.sites = ("*",)  # type: ignore[misc]
    checked = VERIFIER.verify_envelope(Signer(KEY, "c1").sign(make_observation(), 3), "c1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        checked.seq = 4  # type: ignore[misc]
