"""The observation envelope: what a probe saw on one device, with its evidence.

This is the wire contract between collectors and the server (JSON over MQTT).
Every fact names the evidence it was read from; a fact that could not be
collected is listed under ``unknown`` with the reason, never guessed.

The schema is also the server's door: identifiers (site, collector, asset, zone, probe) match
``IDENTIFIER`` / ``PROBE_NAME`` and fit the database columns, free text is bounded, and
``find_nul`` finds a NUL character anywhere (PostgreSQL stores none), so that no message that
passed validation can fail in the database. ``MAX_MESSAGE_BYTES`` bounds a whole message.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from otaudit.text import storable_text

SCHEMA_VERSION: Literal[1] = 1
EXCERPT_LIMIT = 2048
MAX_MESSAGE_BYTES = 1024 * 1024  # one MQTT observation message, envelope included
FACT_PATH = re.compile(r"^(?=.{1,128}$)[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # site, collector, asset, zone ids
PROBE_NAME = r"^[a-z][a-z0-9_]{0,31}$"
TEXT_LIMIT = 4000  # a reason, an error, an unknown fact's reason
_GOOD_PATHS: set[str] = set()  # fact paths FACT_PATH matched: the same few hundred recur
_GOOD_PATHS_MAX = 10_000

FactValue = str | int | float | bool | None | list[Any] | dict[str, Any]
Identifier = Annotated[str, Field(pattern=IDENTIFIER)]
Text = Annotated[str, Field(max_length=TEXT_LIMIT)]


class ProbeStatus(StrEnum):
    """How a probe run ended."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    AUTH_FAILED = "auth_failed"


class AssetKind(StrEnum):
    PLC = "plc"
    SWITCH = "switch"
    HMI = "hmi"
    # kinds met in real control networks (the SNMP vendor table names them: snmp.device_kind)
    ROUTER = "router"  # industrial/cellular routers
    FIREWALL = "firewall"
    GATEWAY = "gateway"  # serial/console servers, protocol and I/O gateways
    UPS = "ups"
    PDU = "pdu"
    POWER = "power"  # DC plants, transfer switches, gensets, solar controllers
    METER = "meter"
    TIME_SERVER = "time_server"
    ENVIRONMENT = "environment"  # cooling, cabinet monitoring
    HOST = "host"  # servers and workstations other than HMIs


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Evidence(_Strict):
    """One request sent to the device and an excerpt of what came back."""

    id: Annotated[str, Field(pattern=r"^e[0-9]{1,6}$")]
    request: Text
    excerpt: Annotated[str, Field(max_length=4 * EXCERPT_LIMIT)] = ""
    encoding: Literal["text", "hex"] = "text"
    truncated: bool = False
    at: AwareDatetime


class Fact(_Strict):
    """A typed value read from the device; ``evidence`` lists Evidence ids."""

    value: FactValue
    evidence: list[Annotated[str, Field(max_length=8)]] = Field(default_factory=list)


class AssetRef(_Strict):
    """Who the observation is about, as the inventory describes it."""

    id: Identifier
    kind: AssetKind
    zone: Identifier
    name: Annotated[str, Field(max_length=200)] | None = None


class Observation(_Strict):
    """One probe run against one asset endpoint."""

    schema_version: Literal[1] = SCHEMA_VERSION
    observation_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    collector_id: Identifier
    site: Identifier
    asset: AssetRef
    probe: Annotated[str, Field(pattern=PROBE_NAME)]
    probe_version: Annotated[str, Field(max_length=32)]
    endpoint: Annotated[str, Field(max_length=300)]
    started_at: AwareDatetime
    finished_at: AwareDatetime
    status: ProbeStatus
    reason: Text | None = None
    facts: dict[str, Fact] = Field(default_factory=dict)
    unknown: dict[str, Text] = Field(default_factory=dict)
    evidence: list[Evidence] = Field(default_factory=list)
    errors: list[Text] = Field(default_factory=list, max_length=100)

    @field_validator("facts", "unknown")
    @classmethod
    def _fact_paths(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _GOOD_PATHS.issuperset(value):  # one set operation for the usual message
            return value
        for path in value:
            if not FACT_PATH.match(path):
                raise ValueError(f"fact path {path!r} is not 'family.name' in lower snake case")
        if len(_GOOD_PATHS) < _GOOD_PATHS_MAX:
            _GOOD_PATHS.update(value)
        return value

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, payload: bytes | str) -> Observation:
        return cls.model_validate_json(payload)

    def fact(self, path: str, default: Any = None) -> Any:
        found = self.facts.get(path)
        return default if found is None else found.value


def find_nul(value: Any, path: str = "") -> str | None:
    """The path of the first string (value or key) that contains a NUL character, else None.

    JSON may carry one as ``\\u0000``; PostgreSQL refuses it in text and JSON values, so the
    server rejects such a message at the door (``contains_nul_escape`` is the cheap test).
    """
    if isinstance(value, str):
        return (path or "payload") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return where
            if (found := find_nul(item, where)) is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if (found := find_nul(item, f"{path}[{index}]")) is not None:
                return found
    return None


def contains_nul_escape(payload: bytes) -> bool:
    """Whether a JSON payload may hold a NUL character (its only JSON spelling)."""
    return b"\\u0000" in payload


def utcnow() -> datetime:
    return datetime.now(UTC)


def excerpt(
    raw: bytes | str, limit: int = EXCERPT_LIMIT
) -> tuple[str, Literal["text", "hex"], bool]:
    """Bounded, printable excerpt of a raw reply: text when it is clean UTF-8, else hex."""
    if isinstance(raw, str):
        return storable_text(raw[:limit]), "text", len(raw) > limit
    try:
        text = raw.decode("utf-8")
        if text.isprintable() or all(c.isprintable() or c in "\r\n\t" for c in text):
            return text[:limit], "text", len(text) > limit
    except UnicodeDecodeError:
        pass
    cut = raw[: limit // 2]
    return cut.hex(), "hex", len(raw) > len(cut)
