"""Certificates for simulated devices, generated at run time (nothing is checked in).

``make_certificate`` returns a self-signed certificate and its private key as PEM and DER,
with the properties a profile asks for: key size, signature hash, validity window
(relative to now, so a profile can be expired or not yet valid), subject CN, an
application URI in subjectAltName (OPC UA needs it), self-signed or issued by a CA that
exists only in the simulator's process.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import BaseModel, ConfigDict, Field

# SHA-1 is not offered: cryptography no longer signs with it
HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384,
          "sha512": hashes.SHA512}


class CertSpec(BaseModel):
    """What a simulated device's certificate looks like (a profile section)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    common_name: str = "otaudit simulated device"
    organisation: str = "otaudit simulator"
    key_bits: int = Field(2048, ge=1024, le=4096)
    hash: str = Field("sha256", pattern="^(sha256|sha384|sha512)$")
    valid_from_days: int = -1  # days relative to now (negative: in the past)
    valid_days: int = Field(3650, ge=1)  # length of the validity window
    application_uri: str | None = None
    hostnames: tuple[str, ...] = ("localhost",)
    ca_issued: bool = False  # signed by the simulators' own CA instead of by itself


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes
    cert_der: bytes


CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "otaudit simulated plant CA")])


@cache
def _ca_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def _key(bits: int) -> rsa.RSAPrivateKey:
    """One key per size and process: RSA generation is the slow part on a small machine."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _alt_name(host: str) -> x509.GeneralName:
    """An IP address as an iPAddress entry (TLS clients match an IP only there), else a
    DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_certificate(spec: CertSpec) -> Issued:
    key = _key(spec.key_bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, spec.organisation)])
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=spec.valid_from_days)
    alt: list[x509.GeneralName] = [_alt_name(h) for h in spec.hostnames]
    if spec.application_uri:
        alt.insert(0, x509.UniformResourceIdentifier(spec.application_uri))
    builder = (
        x509.CertificateBuilder().subject_name(name)
        .issuer_name(CA_NAME if spec.ca_issued else name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + timedelta(days=spec.valid_days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=True,
            data_encipherment=True, key_agreement=False, key_cert_sign=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
    )
    cert = builder.sign(_ca_key() if spec.ca_issued else key, HASHES[spec.hash]())
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return Issued(cert.public_bytes(serialization.Encoding.PEM), key_pem,
                  cert.public_bytes(serialization.Encoding.DER))
