"""Endpoint options of the SNMP probe (inventory fields / CLI flags)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from otaudit.probes.base import ProbeOptions
from otaudit.secrets import SecretMinLength, SecretRef

AuthProtocol = Literal["MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"]
PrivProtocol = Literal["DES", "3DES", "AES-128", "AES-192", "AES-256"]
PROTOCOL_ALIASES = {"AES": "AES-128", "AES128": "AES-128", "AES192": "AES-192",
                    "AES256": "AES-256", "SHA1": "SHA", "SHA-1": "SHA", "SHA224": "SHA-224",
                    "SHA256": "SHA-256", "SHA384": "SHA-384", "SHA512": "SHA-512"}
SECRET_FLAGS = ("community", "v3-auth-key", "v3-priv-key")
LITERAL_ENV_PREFIX = "_OTAUDIT_SNMP_CLI_"
# RFC 3414 11.2: a USM passphrase has at least 8 octets (pysnmp refuses shorter ones, quoting
# the value in its exception); checked at inventory load and when resolved
V3Key = Annotated[SecretRef, SecretMinLength(8, "an SNMPv3 passphrase")]


class SnmpOptions(ProbeOptions):
    version: Literal["v1", "v2c", "v3"] = Field(
        "v2c", description="SNMP version of the configured credential (v3 when v3_user is set)")
    community: SecretRef | None = Field(
        None, description="{env: VAR}/{file: F}; CLI: --community C | --community-env VAR | "
                          "--community-file F")
    v3_user: str | None = Field(None, max_length=32, description="SNMPv3 USM user name")
    v3_auth_key: V3Key | None = Field(
        None, description="auth passphrase; CLI: --v3-auth-key-env VAR | --v3-auth-key-file F")
    v3_priv_key: V3Key | None = Field(
        None, description="priv passphrase; CLI: --v3-priv-key-env VAR | --v3-priv-key-file F")
    v3_auth_protocol: AuthProtocol = Field("SHA", description="MD5, SHA, SHA-224 ... SHA-512")
    v3_priv_protocol: PrivProtocol = Field("AES-128", description="DES, 3DES, AES-128/192/256")
    request_timeout: float = Field(2.0, gt=0, le=30, description="seconds per try")
    retries: int = Field(1, ge=0, le=5, description="retransmissions of the first requests")
    max_oids: int = Field(5000, ge=10, le=200_000, description="bound per table walk")
    max_repetitions: int = Field(25, ge=1, le=100, description="GETBULK max-repetitions")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if data.get("v3_user") and "version" not in data:
                data["version"] = "v3"
            for key in ("v3_auth_protocol", "v3_priv_protocol"):
                if isinstance(data.get(key), str):
                    value = data[key].upper()
                    data[key] = PROTOCOL_ALIASES.get(value, value)
        return data

    @model_validator(mode="after")
    def _credential(self) -> SnmpOptions:
        if self.version == "v3" and not self.v3_user:
            raise ValueError("version v3 needs v3_user")
        if self.version != "v3" and self.community is None:
            raise ValueError(f"version {self.version} needs a community "
                             "(community: {env: VAR} or {file: PATH})")
        if self.v3_priv_key is not None and self.v3_auth_key is None:
            raise ValueError("v3_priv_key needs v3_auth_key (USM has no noAuthPriv)")
        return self

    @classmethod
    def from_cli(cls, flags: Mapping[str, Any]) -> Self:
        """``--community C`` (literal, kept out of the observation), ``--community-env VAR``,
        ``--community-file F``, ``--v3-user U``, ``--v3-auth-key-env VAR`` /
        ``--v3-auth-key-file F``, same for ``--v3-priv-key``, ``--v3-auth-protocol``, ...
        """
        data: dict[str, Any] = {}
        for flag, value in flags.items():
            base, _, source = flag.rpartition("-")
            if base in SECRET_FLAGS and source in ("env", "file"):
                data[base.replace("-", "_")] = {source: value}
            elif flag == "community":
                data["community"] = {"env": _literal_secret(str(value))}
            elif flag in ("v3-auth-key", "v3-priv-key"):
                raise ValidationError.from_exception_data(cls.__name__, [InitErrorDetails(
                    type=PydanticCustomError(
                        "literal_key", "takes no literal key on the command line: use "
                        "--{flag}-env VAR or --{flag}-file PATH", {"flag": flag}),
                    loc=(flag,), input="[REDACTED]")])
            else:
                data[flag.replace("-", "_")] = value
        return cls.model_validate(data)


def _literal_secret(value: str) -> str:
    """Park a command-line secret in a private environment variable; return its name.

    The probe then resolves it like any ``{env: VAR}`` reference through
    ``ctx.secret``, which registers the value for redaction.
    """
    name = f"{LITERAL_ENV_PREFIX}{secrets.token_hex(6).upper()}"
    os.environ[name] = value
    return name
