"""Test PKI and broker configuration helpers for the security tests (not fixtures: importable).

Certificates are made with ``cryptography`` in the test: a CA, a server certificate for
127.0.0.1 (IP SAN) and client certificates whose CN is the MQTT identity.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from otaudit.mqtt import client_kwargs
from otaudit.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "docs" / "deploy"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "otaudit tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return path


@dataclass
class CertificateAuthority:
    name: str
    folder: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, folder: Path, name: str) -> CertificateAuthority:
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(_name(name)).issuer_name(_name(name))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                             crl_sign=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        ca = cls(name, folder, key, cert)
        ca.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return ca

    @property
    def cert_file(self) -> Path:
        return self.folder / f"{self.name}-ca.pem"

    def issue(self, cn: str, *, server_ip: str | None = None) -> tuple[Path, Path]:
        """(certificate file, key file) for a server (IP SAN) or a client (CN = identity)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server_ip else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(cn)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5))
                   .not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       self.key.public_key()), critical=False))
        if server_ip:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(server_ip))]),
                critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_file = self.folder / f"{self.name}-{cn}.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert_file, _write_key(key, self.folder / f"{self.name}-{cn}.key")


def keep_user() -> str:
    """Mosquitto started as root drops to user ``mosquitto`` before it reads certificates,
    password and ACL files, which then cannot open pytest's private (0700) temp folders."""
    return "user root\n" if os.geteuid() == 0 else ""


def tls_listener_config(ca: CertificateAuthority, *, require_certificate: bool = True) -> str:
    """Mosquitto lines for the fixture's listener (they apply to the listener above them)."""
    server_cert, server_key = ca.issue("broker", server_ip="127.0.0.1")
    lines = [f"cafile {ca.cert_file}", f"certfile {server_cert}", f"keyfile {server_key}",
             "tls_version tlsv1.2"]
    if require_certificate:
        lines += ["require_certificate true", "use_identity_as_username true"]
    return "\n".join(lines) + "\n"


def password_file(folder: Path, users: dict[str, str]) -> Path:
    """A Mosquitto password file made with ``mosquitto_passwd -b`` (hashed, never clear text)."""
    tool = shutil.which("mosquitto_passwd")
    if tool is None:  # pragma: no cover - part of the mosquitto package
        raise RuntimeError("mosquitto_passwd is not installed (apt-get install mosquitto)")
    path = folder / "passwd"
    path.unlink(missing_ok=True)
    for user, password in users.items():
        flags = ["-b"] if path.exists() else ["-c", "-b"]
        subprocess.run([tool, *flags, str(path), user, password], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
    return path


def acl_example(prefix: str = "otaudit/v1") -> str:
    """The shipped ACL example with its topic prefix replaced (tests use private prefixes)."""
    return (DEPLOY / "mosquitto" / "acl").read_text().replace("otaudit/v1/", f"{prefix}/")


async def publish(settings: Settings, topic: str, *payloads: bytes) -> None:
    """Connect exactly as collector and server do (``client_kwargs``), publish with QoS 1."""
    async with aiomqtt.Client(**client_kwargs(settings)) as client:
        for payload in payloads:
            await client.publish(topic, payload, qos=1)
