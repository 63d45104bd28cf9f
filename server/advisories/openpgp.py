"""OpenPGP signatures (``.asc``) of CSAF documents, verified against the providers' keys.

CSAF 2.0 providers sign every document with a detached, ASCII-armored signature next to it
(``<doc>.json.asc``). ``Keyring.load`` reads the public keys the operator trusts (a file, or a
folder of ``.asc`` / ``.gpg`` / ``.pgp`` / ``.key`` files); ``check`` gives per document one of

- ``valid``: a signature by one of those keys over exactly these bytes (the signer is named);
- ``invalid``: a signature that does not verify (tampered document, or a foreign key's);
- ``no_key``: a signature, but no trusted key to check it with;
- ``missing``: no signature was offered;
- ``not_checked``: the policy is ``off``.

The policy decides what that means for the import: ``require`` imports only ``valid``
documents, ``warn`` imports every document and stores the result with it (the import report
counts them), ``off`` does not look. Verification uses Sequoia-PGP (``pysequoia``).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pysequoia

Result = Literal["valid", "invalid", "no_key", "missing", "not_checked"]
POLICIES = ("require", "warn", "off")
KEY_SUFFIXES = (".asc", ".gpg", ".pgp", ".key")
ENV_KEYS = "OTAUDIT_ADVISORY_KEYS"
ENV_POLICY = "OTAUDIT_ADVISORY_SIGNATURES"
MAX_SIGNATURE_BYTES = 64 * 1024


class KeyringError(ValueError):
    """A key file cannot be read."""


@dataclass
class Keyring:
    """The provider keys the operator trusts."""

    certs: list[Any] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path | None) -> Keyring:
        if not path:
            return cls()
        path = Path(path)
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in KEY_SUFFIXES) \
            if path.is_dir() else [path]
        if not path.exists():
            raise KeyringError(f"{path}: no such key file or folder")
        certs = []
        for file in files:
            try:
                certs += pysequoia.Cert.split_bytes(file.read_bytes())
            except Exception as exc:
                raise KeyringError(f"{file}: not an OpenPGP public key ({_first_line(exc)})") \
                    from None
        return cls(certs)

    def __bool__(self) -> bool:
        return bool(self.certs)

    def fingerprints(self) -> list[str]:
        return [c.fingerprint for c in self.certs]


@dataclass(frozen=True)
class SignatureCheck:
    policy: str = "warn"
    keyring: Keyring = field(default_factory=Keyring)

    @classmethod
    def from_environment(cls) -> SignatureCheck:
        """``OTAUDIT_ADVISORY_SIGNATURES`` (require / warn / off, default warn) and the keys in
        ``OTAUDIT_ADVISORY_KEYS`` (a key file or a folder of them)."""
        policy = os.environ.get(ENV_POLICY, "warn").strip().lower() or "warn"
        if policy not in POLICIES:
            raise KeyringError(f"{ENV_POLICY}={policy!r}: expected one of {', '.join(POLICIES)}")
        return cls(policy, Keyring.load(os.environ.get(ENV_KEYS)))

    @property
    def wants_signatures(self) -> bool:
        """Whether reading a provider's ``.asc`` files can change a result."""
        return self.policy != "off" and bool(self.keyring)

    def check(self, data: bytes, signature: bytes | None, offered: bool = False
              ) -> tuple[Result, str]:
        """(result, detail) for a document and its detached signature (``offered``: the
        provider links one that was not read)."""
        if self.policy == "off":
            return "not_checked", "signature checks are off"
        if signature is None and not offered:
            return "missing", "no .asc signature was offered"
        if not self.keyring:
            return "no_key", "no provider key is configured to check the .asc signature"
        if signature is None:
            return "missing", "the offered .asc signature could not be read"
        return verify(data, signature, self.keyring)

    def refusal(self, result: Result, detail: str) -> str | None:
        """Why the policy refuses a document with this result (None: it is imported)."""
        if self.policy == "require" and result != "valid":
            return f"OpenPGP signature {result.replace('_', ' ')}: {detail}"
        return None


def verify(data: bytes, signature: bytes, keyring: Keyring) -> tuple[Result, str]:
    """Verify a detached signature over ``data`` with the keyring's keys."""
    if len(signature) > MAX_SIGNATURE_BYTES:
        return "invalid", f"the signature file is larger than {MAX_SIGNATURE_BYTES} bytes"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            sig = pysequoia.Sig.from_bytes(signature)
            issuer = sig.issuer_fingerprint or sig.issuer_key_id
    except Exception as exc:
        return "invalid", f"not an OpenPGP signature ({_first_line(exc)})"
    known = [c for c in keyring.certs if _issued_by(c, issuer)]
    if not known:
        return "no_key", f"signed by {issuer}, which is not among the configured provider keys"
    try:
        result = pysequoia.verify(bytes=data, store=lambda _ids: known, signature=sig)
    except Exception as exc:
        return "invalid", f"does not verify with {known[0].fingerprint} ({_first_line(exc)})"
    signers = ", ".join(str(s.certificate) for s in result.valid_sigs)
    return "valid", f"signed by {signers}"


def _issued_by(cert: Any, issuer: str | None) -> bool:
    """Whether the signature's issuer (a fingerprint or key id) is this cert or a subkey."""
    if not issuer:
        return True
    issuer = issuer.lower()
    return any(k == issuer or k.endswith(issuer) for k in _key_fingerprints(cert))


def _key_fingerprints(cert: Any) -> set[str]:
    keys = {cert.fingerprint.lower()}
    for packet in pysequoia.packet.PacketPile.from_bytes(bytes(cert)):
        fingerprint = getattr(packet, "fingerprint", None)
        if fingerprint:
            keys.add(str(fingerprint).lower())
    return keys


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
