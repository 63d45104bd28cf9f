"""Profile of a simulated OPC UA server (YAML, see ``profiles/``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from otaudit.simulators.certs import CertSpec

# endpoint names → asyncua SecurityPolicyType member names
POLICIES = {
    "None": "NoSecurity",
    "Basic128Rsa15/Sign": "Basic128Rsa15_Sign",
    "Basic128Rsa15/SignAndEncrypt": "Basic128Rsa15_SignAndEncrypt",
    "Basic256/Sign": "Basic256_Sign",
    "Basic256/SignAndEncrypt": "Basic256_SignAndEncrypt",
    "Basic256Sha256/Sign": "Basic256Sha256_Sign",
    "Basic256Sha256/SignAndEncrypt": "Basic256Sha256_SignAndEncrypt",
    "Aes128_Sha256_RsaOaep/Sign": "Aes128Sha256RsaOaep_Sign",
    "Aes128_Sha256_RsaOaep/SignAndEncrypt": "Aes128Sha256RsaOaep_SignAndEncrypt",
    "Aes256_Sha256_RsaPss/Sign": "Aes256Sha256RsaPss_Sign",
    "Aes256_Sha256_RsaPss/SignAndEncrypt": "Aes256Sha256RsaPss_SignAndEncrypt",
}
TOKENS = ("anonymous", "username", "certificate")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BuildInfoSpec(_Strict):
    manufacturer: str
    product_name: str
    software_version: str
    build_number: str = "0"
    build_date: datetime = datetime(2024, 1, 1)
    product_uri: str | None = None  # default: the profile's product_uri


class OpcUaProfile(_Strict):
    name: str
    description: str = ""
    application_name: str
    application_uri: str
    product_uri: str
    path: str = Field("/", pattern="^/")
    endpoints: list[str] = Field(min_length=1)  # keys of POLICIES
    tokens: list[str] = Field(min_length=1)  # of TOKENS
    # demo-only credentials of the user-name token (never in an inventory: {env: VAR})
    users: dict[str, str] = Field(default_factory=dict)
    build_info: BuildInfoSpec
    certificate: CertSpec = Field(default_factory=CertSpec)
    cert_application_uri: str | None = None  # default: application_uri (a mismatch: set it)

    def model_post_init(self, _context: object) -> None:
        unknown = [e for e in self.endpoints if e not in POLICIES]
        if unknown:
            raise ValueError(f"unknown endpoints {unknown}; known: {', '.join(POLICIES)}")
        bad = [t for t in self.tokens if t not in TOKENS]
        if bad:
            raise ValueError(f"unknown tokens {bad}; known: {', '.join(TOKENS)}")

    @classmethod
    def load(cls, path: Path) -> OpcUaProfile:
        return cls.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
