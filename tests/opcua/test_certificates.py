"""The certificate summary both probes use, on certificates made by others too."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from otaudit.probes.base import ParseError
from otaudit.probes.certificates import summarise
from otaudit.simulators.certs import CertSpec, make_certificate

from tests_helpers import require_tool


def test_simulator_certificate():
    issued = make_certificate(CertSpec(application_uri="urn:x", valid_from_days=-10,
                                       valid_days=100))
    s = summarise(issued.cert_der)
    assert (s.key_type, s.key_bits, s.signature_hash) == ("RSA", 2048, "sha256")
    assert s.signature_algorithm == "sha256WithRSAEncryption"
    assert s.self_signed and not s.expired and not s.not_yet_valid
    assert s.application_uri == "urn:x" and 88 <= s.days_left <= 90
    assert len(s.fingerprint_sha256) == 64


def test_simulator_ca_issued_certificate():
    s = summarise(make_certificate(CertSpec(ca_issued=True)).cert_der)
    assert not s.self_signed and s.issuer == "CN=otaudit simulated plant CA"


def test_openssl_sha1_self_signed_certificate(tmp_path: Path):
    """A certificate made by OpenSSL (not by us), with a SHA-1 signature."""
    openssl = require_tool("openssl")
    key, cert = tmp_path / "k.pem", tmp_path / "c.der"
    done = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-sha1", "-nodes",
                           "-keyout", str(key), "-outform", "DER", "-out", str(cert),
                           "-days", "30", "-subj", "/CN=legacy-hmi"],
                          capture_output=True, text=True, timeout=60)
    if done.returncode:
        pytest.skip(f"this OpenSSL does not sign with SHA-1: {done.stderr.strip()[:200]}")
    s = summarise(cert.read_bytes())
    assert s.signature_hash == "sha1" and s.signature_algorithm == "sha1WithRSAEncryption"
    assert s.self_signed and s.subject == "CN=legacy-hmi" and s.application_uri is None


def ca_issued(now: datetime) -> tuple[bytes, datetime]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plc")])
    ca = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plant CA")])
    end = now + timedelta(days=1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca)
            .public_key(leaf_key.public_key()).serial_number(7)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(end)
            .sign(ca_key, hashes.SHA384()))
    return cert.public_bytes(serialization.Encoding.DER), end


def test_ca_issued_certificate_is_not_self_signed():
    now = datetime.now(UTC).replace(microsecond=0)
    der, end = ca_issued(now)
    s = summarise(der, now)
    assert not s.self_signed and s.key_bits == 3072 and s.signature_hash == "sha384"
    assert s.signature_algorithm == "ecdsa-with-SHA384" and s.issuer == "CN=plant CA"
    assert summarise(der, end).expired is False  # equality: still valid at not_after
    assert summarise(der, end + timedelta(seconds=1)).expired is True
    assert summarise(der, now - timedelta(days=2)).not_yet_valid is True


def test_self_signed_ec_certificate():
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + timedelta(days=5)).sign(key, hashes.SHA256()))
    s = summarise(cert.public_bytes(serialization.Encoding.DER))
    assert (s.key_type, s.key_bits, s.self_signed) == ("EC", 384, True)


@pytest.mark.parametrize("data", [b"", b"\x30\x03abc", b"not a certificate"])
def test_garbage_is_a_parse_error(data):
    with pytest.raises(ParseError):
        summarise(data)
