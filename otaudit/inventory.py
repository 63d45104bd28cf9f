"""The inventory: one site, its zones with a target Security Level, and its assets.

Endpoints carry the host and port every protocol shares; the protocol-specific
options (unit id, rack/slot, SNMP credentials, SSH personality, ...) are extra
fields that the collector validates against each probe's own options model.
Credentials appear only as secret references (``{env: VAR}`` / ``{file: PATH}``).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from otaudit.errors import InputError, pydantic_problems
from otaudit.observation import AssetKind
from otaudit.yamlio import YamlDoc, YamlError, load_yaml

FOUNDATIONAL_REQUIREMENTS = ("IAC", "UC", "SI", "DC", "RDF", "TRE", "RA")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
SecurityLevel = Annotated[int, Field(ge=0, le=4)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SecurityLevelVector(_Strict):
    """Target SL per foundational requirement (IEC 62443-3-3 FR1..FR7)."""

    IAC: SecurityLevel
    UC: SecurityLevel
    SI: SecurityLevel
    DC: SecurityLevel
    RDF: SecurityLevel
    TRE: SecurityLevel
    RA: SecurityLevel

    @classmethod
    def uniform(cls, level: int) -> SecurityLevelVector:
        return cls(**dict.fromkeys(FOUNDATIONAL_REQUIREMENTS, level))

    def as_dict(self) -> dict[str, int]:
        return {fr: getattr(self, fr) for fr in FOUNDATIONAL_REQUIREMENTS}


class Zone(_Strict):
    id: Identifier
    name: str | None = None
    sl_t: SecurityLevelVector

    @field_validator("sl_t", mode="before")
    @classmethod
    def _level_or_vector(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            if not 1 <= value <= 4:
                raise ValueError("a target security level is 1, 2, 3 or 4")
            return SecurityLevelVector.uniform(value)
        return value


class Endpoint(BaseModel):
    """Where a protocol answers. Extra fields are the probe's options."""

    model_config = ConfigDict(extra="allow")

    host: str
    port: Annotated[int, Field(ge=1, le=65535)] | None = None

    @field_validator("host")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
            return value
        except ValueError:
            if HOSTNAME.match(value) and not value.replace(".", "").isdigit():
                return value
        raise ValueError(f"{value!r} is neither an IP address nor a host name")

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Asset(_Strict):
    id: Identifier
    name: str | None = None
    kind: AssetKind
    zone: Identifier
    vendor: str | None = None
    model: str | None = None
    endpoints: dict[str, Endpoint] = Field(min_length=1)
    credential_checks: bool = False
    tags: list[str] = Field(default_factory=list)


class Inventory(_Strict):
    site: Identifier
    collector: Identifier | None = None
    zones: list[Zone] = Field(min_length=1)
    assets: list[Asset] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Inventory:
        zone_ids = [z.id for z in self.zones]
        problems = []
        for dup in sorted({z for z in zone_ids if zone_ids.count(z) > 1}):
            problems.append(f"duplicate zone id {dup!r}")
        seen: set[str] = set()
        for asset in self.assets:
            if asset.id in seen:
                problems.append(f"duplicate asset id {asset.id!r}")
            seen.add(asset.id)
            if asset.zone not in zone_ids:
                problems.append(f"asset {asset.id!r} names unknown zone {asset.zone!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def zone(self, zone_id: str) -> Zone:
        return next(z for z in self.zones if z.id == zone_id)

    def asset(self, asset_id: str) -> Asset:
        return next(a for a in self.assets if a.id == asset_id)


def _locate_problems(exc: ValidationError, doc: YamlDoc) -> list[str]:
    problems = pydantic_problems(exc, doc.locate)
    # Model-level errors (duplicates, references) carry no location: point at the asset.
    return problems


def parse_inventory(doc: YamlDoc) -> Inventory:
    if not isinstance(doc.data, dict):
        raise InputError(doc.source, ["expected a mapping with 'site', 'zones' and 'assets'"])
    try:
        return Inventory.model_validate(doc.data)
    except ValidationError as exc:
        raise InputError(doc.source, _locate_problems(exc, doc)) from None


def load_inventory(path: str | Path) -> tuple[Inventory, YamlDoc]:
    """Load and validate an inventory file; raise ``InputError`` naming file, line, field."""
    try:
        doc = load_yaml(path)
    except (YamlError, OSError) as exc:
        raise InputError(path, [str(exc)]) from None
    return parse_inventory(doc), doc
