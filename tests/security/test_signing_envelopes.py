"""Signer and Verifier on their own: wire format, every rejection reason, key files."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from otaudit.settings import Settings
from otaudit.signing import (
    SignatureRejected,
    Signer,
    SigningKeyError,
    Verifier,
    canonical_bytes,
    key_id,
    load_private_key,
    load_public_key,
    private_pem,
    public_pem,
    signer_from_settings,
    verifier_from_settings,
)

from support.observations import make_observation


def write_key_pair(folder: Path, collector: str) -> tuple[Path, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    private = folder / f"{collector}.key"
    private.write_bytes(private_pem(key))
    private.chmod(0o600)
    (folder / f"{collector}.pub").write_bytes(public_pem(key.public_key()))
    return private, key


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """Private keys of c1 and c2 in tmp/keys; their public keys enrolled in tmp/trusted."""
    private, trusted = tmp_path / "keys", tmp_path / "trusted"
    private.mkdir()
    trusted.mkdir()
    out = {}
    for collector in ("c1", "c2"):
        out[collector], _ = write_key_pair(private, collector)
        (private / f"{collector}.pub").rename(trusted / f"{collector}.pub")
    out["trusted"] = trusted
    return out


def resign(envelope: dict, key: Ed25519PrivateKey) -> bytes:
    """Re-sign a modified envelope with ``key`` (a valid signature by that key)."""
    fields = {k: v for k, v in envelope.items() if k != "sig"}
    sig = base64.b64encode(key.sign(canonical_bytes(fields))).decode()
    return json.dumps({**fields, "sig": sig}).encode()


def reason_of(verifier: Verifier, payload: bytes, topic_collector: str = "c1") -> str:
    with pytest.raises(SignatureRejected) as caught:
        verifier.verify(payload, topic_collector)
    return str(caught.value)


def test_envelope_round_trip_and_documented_wire_format(keys: dict[str, Path]) -> None:
    signer = Signer.from_key_file(keys["c1"], "c1")
    obs = make_observation(collector="c1", facts={"identity.vendor": "Ünïcode AG"})
    payload = signer.sign(obs, seq=7)
    envelope = json.loads(payload)
    assert set(envelope) == {"v", "alg", "collector", "key_id", "seq", "sent_at",
                             "observation", "sig"}
    assert (envelope["v"], envelope["alg"], envelope["collector"], envelope["seq"]) == (
        1, "ed25519", "c1", 7)
    public = load_public_key(keys["trusted"] / "c1.pub")
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert envelope["key_id"] == hashlib.sha256(raw).hexdigest()[:16] == signer.key_id
    # The documented canonical form, computed independently of otaudit.signing:
    unsigned = {k: v for k, v in envelope.items() if k != "sig"}
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()
    public.verify(base64.b64decode(envelope["sig"]), canonical)  # raises if not

    verifier = Verifier.from_dir(keys["trusted"])
    got, seq = verifier.verify(payload, "c1")
    assert (got, seq) == (obs, 7)
    # The payload's own formatting does not matter: the parsed content is what is verified.
    assert verifier.verify(json.dumps(envelope, indent=2).encode(), "c1") == (obs, 7)


def test_every_rejection_names_its_reason(keys: dict[str, Path]) -> None:
    verifier = Verifier.from_dir(keys["trusted"])
    c1_key = load_private_key(keys["c1"])
    signer = Signer(c1_key, "c1")
    obs = make_observation(collector="c1", facts={"identity.firmware": "4.2.1"})
    good = signer.envelope(obs, seq=1)

    tampered = json.loads(json.dumps(good))
    tampered["observation"]["facts"]["identity.firmware"]["value"] = "9.9.9"
    assert reason_of(verifier, json.dumps(tampered).encode()).startswith("bad_signature:")

    forged = {**good, "sig": base64.b64encode(Ed25519PrivateKey.generate().sign(b"x")).decode()}
    assert reason_of(verifier, json.dumps(forged).encode()).startswith("bad_signature:")

    other_key = Ed25519PrivateKey.generate()
    assert reason_of(verifier, Signer(other_key, "c1").sign(obs, 1)).startswith("unknown_key:")

    c9 = Signer(other_key, "c9").sign(make_observation(collector="c9"), 1)
    assert reason_of(verifier, c9, "c9").startswith("unknown_collector:")

    assert reason_of(verifier, signer.sign(obs, 1), "c2").startswith("collector_mismatch:")
    # an observation of c2 inside c1's (validly signed) envelope
    smuggled = {**good, "observation": json.loads(make_observation(collector="c2").to_json())}
    reason = reason_of(verifier, resign(smuggled, c1_key))
    assert reason.startswith("collector_mismatch:") and "'c2'" in reason

    assert reason_of(verifier, obs.to_json()).startswith("unsigned:")
    no_sig = {k: v for k, v in good.items() if k != "sig"}
    assert reason_of(verifier, json.dumps(no_sig).encode()).startswith("unsigned:")

    assert "not JSON" in reason_of(verifier, b"{broken")
    deep = b'{"sig": "x", "observation": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert reason_of(verifier, deep).startswith("malformed_envelope:")
    for change in ({"v": 2}, {"alg": "rsa"}, {"seq": -1}, {"seq": True}, {"seq": "1"},
                   {"sent_at": "yesterday"}, {"sent_at": "2026-11-01T08:00:00"},
                   {"observation": [1]}, {"extra": 1}):
        reason = reason_of(verifier, resign({**good, **change}, c1_key))
        assert reason.startswith("malformed_envelope:"), (change, reason)

    invalid = {**good, "observation": {**good["observation"], "status": "exploded"}}
    assert reason_of(verifier, resign(invalid, c1_key)).startswith("invalid_observation:")


def test_signer_refuses_what_the_server_would_reject(keys: dict[str, Path]) -> None:
    signer = Signer.from_key_file(keys["c1"], "c1")
    with pytest.raises(ValueError, match="collector 'c2'"):
        signer.sign(make_observation(collector="c2"), 1)
    with pytest.raises(ValueError, match="seq"):
        signer.sign(make_observation(collector="c1"), -1)
    with pytest.raises(ValueError, match="collector id"):
        Signer.from_key_file(keys["c1"], "site/c1")


def test_key_files_formats_permissions_and_errors(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    expected = key_id(key.public_key())
    raw_private = tmp_path / "raw.key"
    raw_private.write_bytes(key.private_bytes(serialization.Encoding.Raw,
                                              serialization.PrivateFormat.Raw,
                                              serialization.NoEncryption()))
    raw_private.chmod(0o600)
    ssh_private = tmp_path / "ssh.key"
    ssh_private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.OpenSSH,
                                              serialization.NoEncryption()))
    ssh_private.chmod(0o600)
    for path in (raw_private, ssh_private):
        assert key_id(load_private_key(path).public_key()) == expected

    pem_text = private_pem(key)
    loose = tmp_path / "loose.key"
    loose.write_bytes(pem_text)
    loose.chmod(0o644)
    with pytest.raises(SigningKeyError, match="chmod 600") as caught:
        load_private_key(loose)
    assert pem_text.decode() not in str(caught.value)

    public = key.public_key()
    for name, data in (("raw.pub", public.public_bytes(serialization.Encoding.Raw,
                                                       serialization.PublicFormat.Raw)),
                       ("ssh.pub", public.public_bytes(serialization.Encoding.OpenSSH,
                                                       serialization.PublicFormat.OpenSSH)),
                       ("pem.pub", public_pem(public))):
        (tmp_path / name).write_bytes(data)
        assert key_id(load_public_key(tmp_path / name)) == expected

    garbage = tmp_path / "garbage.key"
    garbage.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    garbage.chmod(0o600)
    with pytest.raises(SigningKeyError, match="not an unencrypted Ed25519 private key"):
        load_private_key(garbage)
    with pytest.raises(SigningKeyError, match="No such file"):
        load_private_key(tmp_path / "missing.key")
    signer = Signer(key, "c1")
    assert pem_text.decode() not in repr(signer) and expected in repr(signer)


def test_openssh_generated_key_is_accepted(tmp_path: Path) -> None:
    ssh_keygen = pytest.importorskip("shutil").which("ssh-keygen")
    if ssh_keygen is None:
        pytest.skip("ssh-keygen is not installed")
    subprocess.run([ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "c1")],
                   check=True, timeout=10)
    (tmp_path / "c1").rename(tmp_path / "c1.key")
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (tmp_path / "c1.pub").rename(trusted / "c1.pub")
    payload = Signer.from_key_file(tmp_path / "c1.key", "c1").sign(make_observation(), 3)
    assert Verifier.from_dir(trusted).verify(payload, "c1")[1] == 3


def test_settings_select_signer_and_verifier(keys: dict[str, Path], tmp_path: Path) -> None:
    assert signer_from_settings(Settings()) is None
    assert verifier_from_settings(Settings()) is None
    signer = signer_from_settings(Settings(signing_key_file=str(keys["c1"]), collector_id="c1"))
    assert signer is not None and signer.collector_id == "c1"
    verifier = verifier_from_settings(Settings(trusted_keys_dir=str(keys["trusted"])))
    assert verifier is not None and verifier.required and sorted(verifier.keys) == ["c1", "c2"]
    optional = verifier_from_settings(Settings(trusted_keys_dir=str(keys["trusted"]),
                                               require_signatures=False))
    assert optional is not None and optional.accepts_unsigned("c7")
    assert not optional.accepts_unsigned("c1")  # enrolled collectors must always sign
    with pytest.raises(SigningKeyError, match="OTAUDIT_TRUSTED_KEYS_DIR"):
        verifier_from_settings(Settings(require_signatures=True))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SigningKeyError, match=r"no <collector>\.pub"):
        Verifier.from_dir(empty)
    (empty / "bad name!.pub").write_bytes(b"x")
    with pytest.raises(SigningKeyError, match="file name"):
        Verifier.from_dir(empty)


def test_settings_read_signing_paths_from_environment(monkeypatch: pytest.MonkeyPatch,
                                                      keys: dict[str, Path]) -> None:
    monkeypatch.setenv("OTAUDIT_SIGNING_KEY_FILE", str(keys["c1"]))
    monkeypatch.setenv("OTAUDIT_TRUSTED_KEYS_DIR", str(keys["trusted"]))
    monkeypatch.setenv("OTAUDIT_REQUIRE_SIGNATURES", "false")
    settings = Settings(_env_file=None)
    assert settings.signing_key_file == str(keys["c1"])
    assert settings.trusted_keys_dir == str(keys["trusted"])
    assert settings.require_signatures is False
    assert os.environ["OTAUDIT_SIGNING_KEY_FILE"] not in repr(signer_from_settings(settings))


_VERIFIER = Verifier({"c1": Ed25519PrivateKey.generate().public_key()})


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                 st.dictionaries(st.sampled_from(["v", "alg", "collector", "key_id", "seq",
                                                  "sent_at", "observation", "sig", "x"]),
                                 st.one_of(st.none(), st.integers(), st.text(max_size=20),
                                           st.booleans(), st.lists(st.integers(), max_size=2),
                                           st.dictionaries(st.text(max_size=5),
                                                           st.integers(), max_size=2)))
                 .map(lambda d: json.dumps(d).encode())))
def test_any_payload_is_verified_or_rejected_never_crashes(payload: bytes) -> None:
    try:
        _VERIFIER.verify(payload, "c1")
    except SignatureRejected as exc:
        assert exc.code in {"unsigned", "malformed_envelope", "collector_mismatch",
                            "unknown_collector", "unknown_key", "bad_signature",
                            "invalid_observation"}
    else:  # pragma: no cover - would need a forged Ed25519 signature
        pytest.fail("a random payload was accepted")
