"""Signing rules at their edges (issue 23: slice survivors): a key signs only its own
collector's observations, whatever the ids' order; what looks like an envelope."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from otaudit.signing import Signer, looks_signed

from support.observations import make_observation


@pytest.mark.parametrize(("key_of", "observation_of"), [("c2", "c1"), ("c1", "c2"),
                                                        ("c1", "c10")])
def test_a_key_signs_only_its_own_collector(key_of: str, observation_of: str) -> None:
    signer = Signer(Ed25519PrivateKey.generate(), key_of)
    with pytest.raises(ValueError, match=f"^observation of collector '{observation_of}' cannot "
                                         f"be signed with the key of '{key_of}'$"):
        signer.envelope(make_observation(collector=observation_of), 1)
    assert signer.envelope(make_observation(collector=key_of), 1)["collector"] == key_of


@pytest.mark.parametrize(("payload", "signed"), [
    ({"sig": "x"}, True), ({"alg": "ed25519"}, True), ({"sig": "x", "alg": "y"}, True),
    ({"observation_id": "x"}, False), ([{"sig": "x"}], False), ("sig", False),
])
def test_looks_signed(payload: object, signed: bool) -> None:
    assert looks_signed(json.dumps(payload).encode()) is signed


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b'{"sig": NaN}', b"[" * 100000])
def test_garbage_does_not_look_signed(raw: bytes) -> None:
    assert looks_signed(raw) is False
