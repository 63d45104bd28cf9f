"""End-to-end receipts: the server tells a collector which of its messages it has settled.

A collector keeps every observation in its outbox until a receipt says the server settled it;
a broker PUBACK only means "sent, awaiting receipt" (``otaudit.collector.outbox``). After each
committed batch the server publishes, per collector, one receipt on
``<prefix>/<site>/<collector>/receipt`` (QoS 1; only servers may write it, only that collector
may read it: docs/deploy/mosquitto/acl). The payload is one JSON object::

    {"v": 1, "site": "<site>", "collector": "<collector id>", "server": "<server client id>",
     "at": "<ISO 8601 time with offset>",
     "committed": ["<observation id>", ...],
     "rejected": [{"sha256": "<hex>", "id": "<observation id>" | null, "reason": "..."}, ...]}

- ``committed``: the observation is in the database, stored by this batch or before (a
  re-sent duplicate is committed too). The collector drops the entry with that id.
- ``rejected``: the server refused the message for good (invalid, forged, replayed) and
  recorded it in ``rejected_messages``. It is named by the sha256 of the payload bytes, so a
  rejected forgery that reuses a real observation's id cannot make the collector drop the
  real entry: only an entry whose payload has exactly that digest is moved to the
  collector's quarantine.

When the server has a receipt signing key (``OTAUDIT_RECEIPT_SIGNING_KEY_FILE``, an Ed25519
key as ``otaudit keys generate`` writes), the receipt also carries ``key_id`` and ``sig``:
Ed25519 over the canonical bytes of every other field (``otaudit.signing.canonical_bytes``).
A collector given the server's public key (``OTAUDIT_RECEIPT_PUBLIC_KEY_FILE``) accepts only
receipts signed with it; without one it accepts any receipt on its topic (the broker ACL is
then the only protection). A replayed receipt is harmless: ids are never reused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otaudit.canonical import canonical_bytes
from otaudit.observation import utcnow

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from otaudit.settings import Settings

RECEIPT_VERSION = 1
MAX_REASON = 300  # characters of a rejection reason carried back to the collector
MAX_ID_SCAN = 1 << 20  # payloads above this size are not parsed for their observation id
FIELDS = frozenset({"v", "site", "collector", "server", "at", "committed", "rejected"})
SIGNED_FIELDS = FIELDS | {"key_id", "sig"}


class ReceiptRejected(ValueError):
    """A receipt the collector ignores (malformed, unsigned where required, forged)."""


@dataclass(frozen=True)
class Rejection:
    digest: str  # sha256 hex of the payload bytes as published
    observation_id: str | None
    reason: str


@dataclass
class Receipt:
    site: str
    collector: str
    server: str
    committed: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    at: datetime = field(default_factory=utcnow)
    key_id: str | None = None  # of the server key that signed it (None: unsigned)

    def fields(self) -> dict[str, Any]:
        return {"v": RECEIPT_VERSION, "site": self.site, "collector": self.collector,
                "server": self.server, "at": self.at.isoformat(),
                "committed": list(self.committed),
                "rejected": [{"sha256": r.digest, "id": r.observation_id,
                              "reason": r.reason[:MAX_REASON]} for r in self.rejected]}


def payload_digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def observation_id_of(payload: bytes) -> str | None:
    """Best effort: the observation id a plain observation or a signed envelope carries."""
    if len(payload) > MAX_ID_SCAN:
        return None
    try:
        data = json.loads(payload)
        if isinstance(data, dict) and isinstance(data.get("observation"), dict):
            data = data["observation"]
        value = data.get("observation_id") if isinstance(data, dict) else None
        return str(uuid.UUID(value)) if isinstance(value, str) and len(value) <= 36 else None
    except (ValueError, UnicodeDecodeError, RecursionError, TypeError):
        return None


def rejection(payload: bytes, reason: str) -> Rejection:
    """What a receipt says about a refused message."""
    return Rejection(payload_digest(payload), observation_id_of(payload), reason[:MAX_REASON])


class ReceiptSigner:
    """The server's receipt key (never logged)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        from otaudit.signing import key_id  # cryptography: only with a key

        self._key = private_key
        self.key_id = key_id(private_key.public_key())

    def __repr__(self) -> str:
        return f"ReceiptSigner(key_id={self.key_id!r})"

    def sign(self, fields: dict[str, Any]) -> dict[str, Any]:
        signed = {**fields, "key_id": self.key_id}
        sig = self._key.sign(canonical_bytes(signed))
        return {**signed, "sig": base64.b64encode(sig).decode("ascii")}


class ReceiptVerifier:
    """The collector's copy of the server's public receipt key."""

    def __init__(self, public_key: Ed25519PublicKey) -> None:
        from otaudit.signing import key_id  # cryptography: only with a key

        self._key = public_key
        self.key_id = key_id(public_key)

    def __repr__(self) -> str:
        return f"ReceiptVerifier(key_id={self.key_id!r})"

    def verify(self, data: dict[str, Any]) -> None:
        if "sig" not in data:
            raise ReceiptRejected("unsigned receipt, but the server's receipt key is "
                                  "configured (OTAUDIT_RECEIPT_PUBLIC_KEY_FILE)")
        if data.get("key_id") != self.key_id:
            raise ReceiptRejected(f"receipt signed with key {data.get('key_id')!r}, not the "
                                  f"configured server key {self.key_id}")
        from cryptography.exceptions import InvalidSignature

        signed = {k: v for k, v in data.items() if k != "sig"}
        try:
            self._key.verify(base64.b64decode(data["sig"], validate=True),
                             canonical_bytes(signed))
        except (InvalidSignature, binascii.Error, ValueError, TypeError):
            raise ReceiptRejected("receipt signature does not match (forged or altered)"
                                  ) from None


def encode(receipt: Receipt, signer: ReceiptSigner | None = None) -> bytes:
    fields = receipt.fields()
    return canonical_bytes(signer.sign(fields) if signer else fields)


def decode(payload: bytes, *, site: str, collector: str,
           verifier: ReceiptVerifier | None = None) -> Receipt:
    """The receipt for this collector, else ``ReceiptRejected`` saying why."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ReceiptRejected("receipt is not JSON") from None
    if not isinstance(data, dict):
        raise ReceiptRejected("receipt is not a JSON object")
    allowed = SIGNED_FIELDS if "sig" in data else FIELDS | {"key_id"}
    if FIELDS - set(data) or set(data) - allowed:
        raise ReceiptRejected(f"receipt fields {sorted(data)} are not {sorted(FIELDS)}")
    if data["v"] != RECEIPT_VERSION or isinstance(data["v"], bool):
        raise ReceiptRejected(f"unsupported receipt version {data['v']!r}")
    if verifier is not None:
        verifier.verify(data)
    if (data["site"], data["collector"]) != (site, collector):
        raise ReceiptRejected(f"receipt for {data['site']}/{data['collector']}, "
                              f"not {site}/{collector}")
    committed, rejected = data["committed"], data["rejected"]
    if not (isinstance(committed, list) and all(isinstance(i, str) for i in committed)):
        raise ReceiptRejected("committed is not a list of observation ids")
    if not (isinstance(rejected, list) and all(_is_rejection(r) for r in rejected)):
        raise ReceiptRejected("rejected is not a list of {sha256, id, reason}")
    try:
        at = datetime.fromisoformat(data["at"])
    except (TypeError, ValueError):
        raise ReceiptRejected("at is not an ISO 8601 time") from None
    return Receipt(site=site, collector=collector, server=str(data["server"]),
                   committed=committed, at=at, key_id=data.get("key_id"),
                   rejected=[Rejection(r["sha256"], r["id"], r["reason"]) for r in rejected])


def _is_rejection(item: Any) -> bool:
    return (isinstance(item, dict) and set(item) == {"sha256", "id", "reason"}
            and isinstance(item["sha256"], str) and isinstance(item["reason"], str)
            and (item["id"] is None or isinstance(item["id"], str)))


def group(settled: Iterable[tuple[tuple[str, str], str | Rejection]], server: str
          ) -> list[Receipt]:
    """One receipt per (site, collector) from ``((site, collector), id or Rejection)`` pairs."""
    receipts: dict[tuple[str, str], Receipt] = {}
    for (site, collector), item in settled:
        receipt = receipts.get((site, collector))
        if receipt is None:
            receipt = receipts[(site, collector)] = Receipt(site, collector, server)
        if isinstance(item, Rejection):
            receipt.rejected.append(item)
        else:
            receipt.committed.append(item)
    return list(receipts.values())


def signer_from_settings(settings: Settings) -> ReceiptSigner | None:
    from otaudit.signing import load_private_key

    path = getattr(settings, "receipt_signing_key_file", None)
    return ReceiptSigner(load_private_key(Path(path))) if path else None


def verifier_from_settings(settings: Settings) -> ReceiptVerifier | None:
    from otaudit.signing import load_public_key

    path = getattr(settings, "receipt_public_key_file", None)
    return ReceiptVerifier(load_public_key(Path(path))) if path else None
