"""Signed observation envelopes: Ed25519, one key per collector, public keys enrolled on the server.

Wire format (version 1) when signing is on, the MQTT payload is one JSON object::

    {"v": 1, "alg": "ed25519", "collector": "<collector id>",
     "key_id": "<first 16 hex digits of sha256(raw 32-byte public key)>",
     "seq": <int >= 0, monotonic per collector>, "sent_at": "<ISO 8601 time with offset>",
     "observation": {<the Observation as a JSON object>}, "sig": "<base64 of 64 bytes>"}

The signature covers the *canonical serialisation* of every field except ``sig``:
``json.dumps(envelope_without_sig, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
allow_nan=False)`` encoded as UTF-8 (pure ASCII), i.e. keys sorted at every depth, no
whitespace, non-ASCII characters as ``\\uXXXX`` escapes. The verifier re-serialises the *parsed*
payload this way, so what it verifies is exactly what it stores; the payload's own formatting
does not matter. ``sha256`` of those canonical bytes is the envelope's digest (used by the
server's replay rule, ``otaudit.server.signing_state``).

Key files: the private key is PKCS#8 PEM (``otaudit keys generate``), an OpenSSH private key
or the raw 32-byte seed, and must not be readable by other users. Public keys are
``<collector>.pub`` files in the server's trusted keys folder: PEM (SubjectPublicKeyInfo), an
OpenSSH ``ssh-ed25519`` line or the raw 32 bytes. Errors name files, never key material.

Enrolment binds each key to what its collector may report on: ``<collector>.scope`` beside
the ``.pub`` file (YAML)::

    sites: [plant-a]            # the sites (ids or fnmatch patterns) it audits
    assets: ["plc-*", sw-3]     # optional: the assets within them (default: all)

An envelope about another site or asset is rejected (``not_enrolled``); a key without a
scope file is bound to nothing, so every envelope it signs is rejected until it is enrolled.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from otaudit.canonical import canonical_bytes
from otaudit.observation import Observation, utcnow

if TYPE_CHECKING:
    from otaudit.settings import Settings

ENVELOPE_VERSION = 1
ALGORITHM = "ed25519"
ENVELOPE_FIELDS = frozenset({"v", "alg", "collector", "key_id", "seq", "sent_at", "observation",
                             "sig"})
COLLECTOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
KEY_ID_HEX = 16


class SigningKeyError(Exception):
    """A key file is missing, unreadable, too open or not an Ed25519 key (names the file only)."""


class SignatureRejected(ValueError):
    """An envelope the server refuses; ``code`` is a short machine-readable reason."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


# --- canonical form and key ids ---------------------------------------------------------------

def raw_public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """First 16 hex digits of sha256 over the raw 32-byte public key."""
    return hashlib.sha256(raw_public_bytes(key)).hexdigest()[:KEY_ID_HEX]


def check_collector_id(collector: str) -> str:
    """A collector id is one MQTT topic segment and a safe file name."""
    if not COLLECTOR_ID.match(collector):
        raise ValueError(f"collector id {collector!r} must match {COLLECTOR_ID.pattern}")
    return collector


# --- key files --------------------------------------------------------------------------------

def _read_key_file(path: Path, private: bool) -> bytes:
    try:
        info = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"key file {path}: {exc.strerror}") from None
    if private and info.st_mode & (stat.S_IRWXO | stat.S_IWGRP):
        raise SigningKeyError(
            f"private key file {path} is accessible by other users "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}")
    return data


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """PKCS#8 PEM, OpenSSH private key or raw 32-byte seed; refused when others can read it."""
    path = Path(path)
    data = _read_key_file(path, private=True)
    key: Any = None
    try:
        if data.lstrip().startswith(b"-----BEGIN OPENSSH PRIVATE KEY"):
            key = serialization.load_ssh_private_key(data, password=None)
        elif data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password=None)
        elif len(data) == 32:
            key = Ed25519PrivateKey.from_private_bytes(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"private key file {path}: not an unencrypted Ed25519 private key "
                              "(PKCS#8 PEM, OpenSSH or raw 32 bytes)")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """PEM (SubjectPublicKeyInfo), OpenSSH ``ssh-ed25519`` line or raw 32 bytes."""
    path = Path(path)
    data = _read_key_file(path, private=False)
    key: Any = None
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
        elif data.lstrip().startswith(b"ssh-ed25519 "):
            key = serialization.load_ssh_public_key(data.strip())
        elif len(data) == 32:
            key = Ed25519PublicKey.from_public_bytes(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"public key file {path}: not an Ed25519 public key "
                              "(PEM, OpenSSH or raw 32 bytes)")
    return key


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


# --- collector side ---------------------------------------------------------------------------

def write_key_pair(folder: Path, collector: str, *, force: bool = False,
                   sites: Iterable[str] | None = None, assets: Iterable[str] = ("*",)
                   ) -> tuple[Path, Path, str]:
    """Create ``COLLECTOR.key`` (mode 0600) and ``COLLECTOR.pub`` in ``folder``, and with
    ``sites`` the enrolment ``COLLECTOR.scope`` (see the module docstring)."""
    import os

    check_collector_id(collector)
    folder.mkdir(parents=True, exist_ok=True)
    private_path, public_path = folder / f"{collector}.key", folder / f"{collector}.pub"
    existing = [p for p in (private_path, public_path) if p.exists()]
    if existing and not force:
        raise FileExistsError(", ".join(map(str, existing)))
    key = Ed25519PrivateKey.generate()
    private_path.unlink(missing_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem(key))
    os.chmod(private_path, 0o600)  # whatever the umask
    public_path.write_bytes(public_pem(key.public_key()))
    if sites is not None:
        write_enrolment(folder / f"{collector}.scope", sites, assets)
    return private_path, public_path, key_id(key.public_key())


class Signer:
    """Signs a collector's observations with its private key (collector side)."""

    def __init__(self, private_key: Ed25519PrivateKey, collector_id: str) -> None:
        self._key = private_key
        self.collector_id = check_collector_id(collector_id)
        self.key_id = key_id(private_key.public_key())

    def __repr__(self) -> str:  # never the key
        return f"Signer(collector={self.collector_id!r}, key_id={self.key_id!r})"

    @classmethod
    def from_key_file(cls, path: Path, collector_id: str) -> Signer:
        return cls(load_private_key(path), collector_id)

    def envelope(self, obs: Observation, seq: int, sent_at: datetime | None = None
                 ) -> dict[str, Any]:
        """The signed envelope as a dict (``sig`` included)."""
        if obs.collector_id != self.collector_id:
            raise ValueError(f"observation of collector {obs.collector_id!r} cannot be signed "
                             f"with the key of {self.collector_id!r}")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise ValueError(f"seq must be an integer >= 0, not {seq!r}")
        fields: dict[str, Any] = {
            "v": ENVELOPE_VERSION, "alg": ALGORITHM, "collector": self.collector_id,
            "key_id": self.key_id, "seq": seq, "sent_at": (sent_at or utcnow()).isoformat(),
            # the JSON object exactly as the plain wire format would carry it (NaN → null)
            "observation": json.loads(obs.to_json()),
        }
        signature = self._key.sign(canonical_bytes(fields))
        return {**fields, "sig": base64.b64encode(signature).decode("ascii")}

    def sign(self, obs: Observation, seq: int) -> bytes:
        """The MQTT payload for ``obs`` as envelope number ``seq`` of this collector."""
        return canonical_bytes(self.envelope(obs, seq))


# --- server side ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Enrolment:
    """The sites and assets a collector's key may report on (fnmatch patterns, case-sensitive).

    ``sites`` empty: bound to nothing (a key whose scope file is missing)."""

    sites: tuple[str, ...]
    assets: tuple[str, ...] = ("*",)
    source: str = ""  # the scope file, for messages

    @classmethod
    def anything(cls) -> Enrolment:
        return cls(("*",), ("*",), "unrestricted")

    def refusal(self, site: str, asset: str) -> str | None:
        """Why an observation of ``asset`` in ``site`` is outside the enrolment, else None."""
        if not self.sites:
            return f"the key has no enrolment scope ({self.source or 'none'})"
        if not any(fnmatchcase(site, pattern) for pattern in self.sites):
            return f"site {site!r} is not among its enrolled sites {list(self.sites)}"
        if not any(fnmatchcase(asset, pattern) for pattern in self.assets):
            return f"asset {asset!r} is not among its enrolled assets {list(self.assets)}"
        return None


def load_enrolment(path: Path) -> Enrolment:
    """Read a ``<collector>.scope`` file; ``SigningKeyError`` naming the file and line."""
    from otaudit.yamlio import YamlError, load_yaml

    if not path.is_file():
        return Enrolment((), (), f"{path} missing")
    try:
        doc = load_yaml(path)
    except (YamlError, OSError) as exc:
        raise SigningKeyError(f"enrolment file {path}: {exc}") from None
    data = doc.data
    if not isinstance(data, dict) or set(data) - {"sites", "assets"} or "sites" not in data:
        raise SigningKeyError(f"enrolment file {path}: expected a mapping with 'sites' "
                              "(a list) and optionally 'assets' (a list)")
    parts: dict[str, tuple[str, ...]] = {}
    for name in ("sites", "assets"):
        value = data.get(name, ["*"])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(
                isinstance(v, str) and v.strip() for v in value):
            where = doc.locate((name,)) or "?"
            raise SigningKeyError(f"enrolment file {path}, {where}: {name!r} must be a "
                                  "non-empty list of ids or patterns")
        parts[name] = tuple(v.strip() for v in value)
    return Enrolment(parts["sites"], parts["assets"], str(path))


def write_enrolment(path: Path, sites: Iterable[str], assets: Iterable[str] = ("*",)) -> None:
    """Write a ``<collector>.scope`` file."""
    import yaml

    path.write_text(yaml.safe_dump({"sites": list(sites), "assets": list(assets)},
                                   sort_keys=False))


@dataclass(frozen=True)
class VerifiedEnvelope:
    """An envelope whose signature checked out, with what the replay rule needs."""

    obs: Observation
    collector: str
    key_id: str
    seq: int
    sent_at: datetime
    digest: str  # sha256 hex of the canonical signed bytes


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def looks_signed(payload: bytes) -> bool:
    """Cheap test: is this meant as an envelope (has ``sig`` or ``alg`` at the top)?"""
    try:
        data = json.loads(payload, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(data, dict) and ("sig" in data or "alg" in data)


class Verifier:
    """Checks envelopes against the enrolled public keys (server side).

    ``required``: unsigned payloads are rejected. When False (migration), an unsigned plain
    Observation is still accepted from a collector that has *no* enrolled key; see
    ``accepts_unsigned``.
    """

    def __init__(self, keys: Mapping[str, Ed25519PublicKey], *, required: bool = True,
                 enrolments: Mapping[str, Enrolment] | None = None) -> None:
        """``enrolments``: per collector what its key may report on (``from_dir`` reads the
        scope files); None leaves every key unrestricted (for tests and tools)."""
        self.keys = {check_collector_id(c): k for c, k in keys.items()}
        self.key_ids = {c: key_id(k) for c, k in self.keys.items()}
        self.required = required
        self.enrolments = {c: (enrolments.get(c, Enrolment((), (), "none"))
                               if enrolments is not None else Enrolment.anything())
                           for c in self.keys}

    def __repr__(self) -> str:
        return f"Verifier(collectors={sorted(self.keys)}, required={self.required})"

    @classmethod
    def from_dir(cls, trusted_keys_dir: Path, *, required: bool = True) -> Verifier:
        """Enrol every ``<collector>.pub`` file of the folder, bound to the sites and assets
        of its ``<collector>.scope`` file (a key without one is bound to nothing)."""
        folder = Path(trusted_keys_dir)
        if not folder.is_dir():
            raise SigningKeyError(f"trusted keys folder {folder} does not exist")
        keys: dict[str, Ed25519PublicKey] = {}
        enrolments: dict[str, Enrolment] = {}
        for path in sorted(folder.glob("*.pub")):
            try:
                collector = check_collector_id(path.stem)
            except ValueError as exc:
                raise SigningKeyError(f"{path}: file name is not <collector>.pub ({exc})") from None
            keys[collector] = load_public_key(path)
            enrolments[collector] = load_enrolment(path.with_suffix(".scope"))
        if not keys:
            raise SigningKeyError(f"trusted keys folder {folder} has no <collector>.pub file")
        return cls(keys, required=required, enrolments=enrolments)

    def unbound(self) -> list[str]:
        """The collectors whose key is bound to no site (no scope file)."""
        return sorted(c for c, e in self.enrolments.items() if not e.sites)

    def check_scope(self, collector: str, site: str, asset: str) -> None:
        """``SignatureRejected('not_enrolled')`` unless the collector's enrolment covers
        ``asset`` in ``site``."""
        enrolment = self.enrolments.get(collector)
        why = enrolment.refusal(site, asset) if enrolment else "no key enrolled"
        if why:
            raise SignatureRejected("not_enrolled", f"collector {collector!r}: {why}")

    def accepts_unsigned(self, collector: str) -> bool:
        return not self.required and collector not in self.keys

    def verify(self, payload: bytes, topic_collector: str) -> tuple[Observation, int]:
        """``(observation, seq)`` of a valid envelope, else ``SignatureRejected(reason)``."""
        checked = self.verify_envelope(payload, topic_collector)
        return checked.obs, checked.seq

    def verify_envelope(self, payload: bytes, topic_collector: str) -> VerifiedEnvelope:
        env, sent_at = _parse_envelope(payload)
        collector = env["collector"]
        if collector != topic_collector:
            raise SignatureRejected("collector_mismatch", f"envelope collector {collector!r} "
                                    f"but topic collector {topic_collector!r}")
        key = self.keys.get(collector)
        if key is None:
            raise SignatureRejected("unknown_collector",
                                    f"no public key enrolled for collector {collector!r}")
        if env["key_id"] != self.key_ids[collector]:
            raise SignatureRejected("unknown_key", f"key id {env['key_id']!r} is not the key "
                                    f"enrolled for {collector!r} ({self.key_ids[collector]})")
        fields = {k: v for k, v in env.items() if k != "sig"}
        try:
            signed = canonical_bytes(fields)
        except (ValueError, RecursionError):
            raise SignatureRejected("malformed_envelope", "content cannot be canonicalised"
                                    ) from None
        try:
            key.verify(base64.b64decode(env["sig"], validate=True), signed)
        except (InvalidSignature, binascii.Error, ValueError):
            raise SignatureRejected("bad_signature", "signature does not match the envelope "
                                    "(forged, or changed after signing)") from None
        try:
            obs = Observation.model_validate(env["observation"])
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'observation'}: {e['msg']}"
                for e in exc.errors()[:10])
            raise SignatureRejected("invalid_observation", problems) from None
        if obs.collector_id != collector:
            raise SignatureRejected("collector_mismatch", f"observation collector_id "
                                    f"{obs.collector_id!r} but envelope collector {collector!r}")
        return VerifiedEnvelope(obs=obs, collector=collector, key_id=env["key_id"],
                                seq=env["seq"], sent_at=sent_at,
                                digest=hashlib.sha256(signed).hexdigest())


def _parse_envelope(payload: bytes) -> tuple[dict[str, Any], datetime]:
    """Structure checks of a v1 envelope; SignatureRejected('unsigned'|'malformed_envelope')."""
    try:
        data = json.loads(payload, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise SignatureRejected("malformed_envelope", "payload is not JSON (or nested too deeply)"
                                ) from None
    if not isinstance(data, dict):
        raise SignatureRejected("malformed_envelope", "payload is not a JSON object")
    if "sig" not in data:
        what = "envelope has no 'sig'" if "alg" in data else "plain observation without envelope"
        raise SignatureRejected("unsigned", f"{what}; signatures are required from this collector")
    problems = []
    sent_at: datetime | None = None
    extra = sorted(set(data) - ENVELOPE_FIELDS)
    missing = sorted(ENVELOPE_FIELDS - set(data))
    if extra:
        problems.append(f"unexpected fields {extra}")
    if missing:
        problems.append(f"missing fields {missing}")
    if not problems:
        if data["v"] != ENVELOPE_VERSION or isinstance(data["v"], bool):
            problems.append(f"unsupported envelope version {data['v']!r}")
        if data["alg"] != ALGORITHM:
            problems.append(f"unsupported algorithm {data['alg']!r}")
        for name in ("collector", "key_id", "sent_at", "sig"):
            if not isinstance(data[name], str):
                problems.append(f"{name} is not a string")
        seq = data["seq"]
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            problems.append("seq is not an integer >= 0")
        if not isinstance(data["observation"], dict):
            problems.append("observation is not a JSON object")
    if not problems:
        try:
            sent_at = datetime.fromisoformat(data["sent_at"])
        except ValueError:
            sent_at = None
        if sent_at is None or sent_at.tzinfo is None:
            problems.append("sent_at is not an ISO 8601 time with offset")
    if problems or sent_at is None:
        raise SignatureRejected("malformed_envelope", "; ".join(problems))
    return data, sent_at


# --- settings ---------------------------------------------------------------------------------

def signer_from_settings(settings: Settings, collector_id: str | None = None) -> Signer | None:
    """The collector's Signer when ``OTAUDIT_SIGNING_KEY_FILE`` is set, else None."""
    path = getattr(settings, "signing_key_file", None)
    if not path:
        return None
    return Signer.from_key_file(Path(path), collector_id or settings.collector_id)


def verifier_from_settings(settings: Settings) -> Verifier | None:
    """The server's Verifier when ``OTAUDIT_TRUSTED_KEYS_DIR`` is set, else None.

    ``OTAUDIT_REQUIRE_SIGNATURES`` defaults to true once a keys folder is set; setting it true
    without a folder is a configuration error (it would silently accept unsigned data).
    """
    folder = getattr(settings, "trusted_keys_dir", None)
    required = getattr(settings, "require_signatures", None)
    if not folder:
        if required:
            raise SigningKeyError("OTAUDIT_REQUIRE_SIGNATURES is set but "
                                  "OTAUDIT_TRUSTED_KEYS_DIR (the enrolled public keys) is not")
        return None
    return Verifier.from_dir(Path(folder), required=True if required is None else required)
