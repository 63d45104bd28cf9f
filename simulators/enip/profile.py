"""Device profile of a simulated EtherNet/IP device (YAML, see ``profiles/``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field

from otaudit.simulators.certs import CertSpec

Word = Annotated[int, Field(ge=0, le=0xFFFF)]
Byte = Annotated[int, Field(ge=0, le=0xFF)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IdentitySpec(_Strict):
    """Identity object, class 1 instance 1 (attributes 1-8)."""

    vendor_id: Word
    device_type: Word
    product_code: Word
    major: Byte
    minor: Byte
    status: Word = 0x0030
    serial: int = Field(ge=0, le=0xFFFFFFFF)
    product_name: str = Field(max_length=32)
    state: Byte = 3


class CipSecurity(_Strict):
    """EtherNet/IP over TLS on a second port (CIP Security)."""

    port: int = Field(2221, ge=0, le=65535)  # 0: any free port (tests, the demo)
    tls_min: str = Field("TLSv1_2", pattern="^TLSv1(_[123])?$")
    certificate: CertSpec = Field(default_factory=CertSpec)


class EnipProfile(_Strict):
    name: str
    description: str = ""
    identity: IdentitySpec
    # unsecured sessions on the plain port: accept (most devices), or refuse
    # (CIP Security configured to reject unsecured explicit messaging)
    sessions: str = Field("accept", pattern="^(accept|refuse)$")
    cip_security: CipSecurity | None = None

    @classmethod
    def load(cls, path: Path) -> EnipProfile:
        return cls.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
