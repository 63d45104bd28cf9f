"""Pure summary of an X.509 certificate a device presented (OPC UA, CIP Security TLS).

``summarise(der, now)`` decodes DER with ``cryptography`` and returns plain values:
key type and size, signature algorithm, validity, self-signed, subject, the URI of the
subjectAltName (OPC UA's application URI) and the SHA-256 fingerprint. A certificate that
cannot be decoded raises ``ParseError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa

from otaudit.probes.base import ParseError


@dataclass(frozen=True)
class CertSummary:
    subject: str
    issuer: str
    key_type: str  # RSA, EC, Ed25519, Ed448, DSA
    key_bits: int
    signature_algorithm: str  # sha256WithRSAEncryption, ecdsa-with-SHA256, ...
    signature_hash: str | None  # sha1, sha256, ... (None for Ed25519/Ed448)
    not_before: str  # ISO 8601, UTC
    not_after: str
    days_left: int  # whole days from ``now`` to not_after (negative: expired)
    expired: bool
    not_yet_valid: bool
    self_signed: bool
    application_uri: str | None
    fingerprint_sha256: str


def _key(cert: x509.Certificate) -> tuple[str, int]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__, 0


def _signed_by_own_key(cert: x509.Certificate) -> bool:
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                       cert.signature_hash_algorithm)  # type: ignore[arg-type]
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes,
                       ec.ECDSA(cert.signature_hash_algorithm))  # type: ignore[arg-type]
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError):
        return False
    return True


def _application_uri(cert: x509.Certificate) -> str | None:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def summarise(der: bytes, now: datetime | None = None) -> CertSummary:
    """Decode one DER certificate; ``now`` (UTC) dates the validity judgement."""
    now = now or datetime.now(UTC)
    try:
        cert = x509.load_der_x509_certificate(der)
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
        key_type, key_bits = _key(cert)
        algorithm = cert.signature_algorithm_oid._name  # e.g. sha256WithRSAEncryption
        sig_hash = cert.signature_hash_algorithm
        subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
        uri = _application_uri(cert)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ParseError(f"certificate cannot be decoded: {exc}") from None
    self_signed = cert.issuer == cert.subject and _signed_by_own_key(cert)
    return CertSummary(
        subject=subject, issuer=issuer, key_type=key_type, key_bits=key_bits,
        signature_algorithm=algorithm, signature_hash=sig_hash.name if sig_hash else None,
        not_before=not_before.isoformat(), not_after=not_after.isoformat(),
        days_left=(not_after - now).days, expired=now > not_after,
        not_yet_valid=now < not_before, self_signed=self_signed, application_uri=uri,
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex())
