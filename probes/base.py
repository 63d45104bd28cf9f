"""What every probe is: a read-only reader of one protocol on one endpoint.

A probe's ``collect`` records facts and evidence through ``ProbeContext.recorder``
and raises a ``ProbeError`` subclass to end the run with a status. It takes no
overall timeout: ``run_probe`` wraps it in the deadline and turns every exception
into an observation status, so a misbehaving device fails its run, never the
collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, SecretStr

from otaudit.facts import FactSpec
from otaudit.observation import (
    AssetKind,
    AssetRef,
    Evidence,
    Fact,
    FactValue,
    ProbeStatus,
    excerpt,
    utcnow,
)
from otaudit.secrets import SecretRef, SecretUnavailable
from otaudit.text import device_text, device_value


class ProbeError(Exception):
    """Ends a probe run with ``status`` and this message as the reason."""

    status: ClassVar[ProbeStatus] = ProbeStatus.ERROR


class ProbeRefused(ProbeError):
    status = ProbeStatus.REFUSED


class ProbeAuthFailed(ProbeError):
    status = ProbeStatus.AUTH_FAILED


class ProbeTimeout(ProbeError):
    status = ProbeStatus.TIMEOUT


class ParseError(ValueError):
    """A pure parser met bytes it cannot interpret. Parsers raise nothing else."""


class ForbiddenOperation(Exception):
    """A read-only guard refused a request that could change the device."""


class ProbeOptions(BaseModel):
    """Protocol-specific endpoint options (inventory extra fields / CLI flags)."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def from_cli(cls, flags: Mapping[str, Any]) -> Self:
        """Build options from ``--kebab-case value`` CLI flags; ``--password-env VAR`` and
        ``--password-file F`` become the ``password`` secret reference (override for other
        aliases)."""
        values: dict[str, Any] = {}
        for name, value in flags.items():
            if name in SECRET_FLAGS:
                values["password"] = {SECRET_FLAGS[name]: value}
            else:
                values[name.replace("-", "_")] = value
        return cls.model_validate(values)


SECRET_FLAGS = {"password-env": "env", "password-file": "file"}  # CLI flag -> reference kind


@dataclass(frozen=True)
class ProbeTarget:
    asset: AssetRef
    host: str
    port: int
    options: ProbeOptions
    credential_checks: bool = False

    @property
    def endpoint(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass
class Recorder:
    """Collects facts, unknowns and evidence during one probe run.

    Device text is made harmless on the way in (``otaudit.text.device_value``): control
    characters and bidi overrides in fact values, reasons and errors become visible escapes.
    """

    facts: dict[str, Fact] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def evidence_for(self, request: str, raw: bytes | str) -> str:
        """Record one request and a bounded excerpt of its raw reply; return its id."""
        text, encoding, truncated = excerpt(raw)
        eid = f"e{len(self.evidence) + 1}"
        self.evidence.append(
            Evidence(id=eid, request=request, excerpt=text, encoding=encoding,
                     truncated=truncated, at=utcnow())
        )
        return eid

    def fact(self, path: str, value: FactValue, *evidence: str) -> None:
        self.facts[path] = Fact(value=device_value(value), evidence=list(evidence))
        self.unknown.pop(path, None)

    def unknown_fact(self, path: str, reason: str) -> None:
        if path not in self.facts:
            self.unknown[path] = device_text(reason)

    def error(self, message: str) -> None:
        self.errors.append(device_text(message))


class ProbeContext:
    """Per-run services: pacing between requests, secrets, the recorder."""

    def __init__(self, *, timeout: float, min_interval: float = 0.0,
                 recorder: Recorder | None = None):
        self.timeout = timeout
        self.min_interval = min_interval
        self.recorder = recorder or Recorder()
        self._last_request = 0.0
        self._secrets: list[str] = []

    async def pace(self) -> None:
        """Wait so that requests to the device are at least ``min_interval`` apart."""
        wait = self._last_request + self.min_interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_request = time.monotonic()

    def sent(self) -> None:
        """A datagram of the current request left now (a library may send several for one
        paced request: SNMPv3 discovery, retransmissions); the next one waits from here."""
        self._last_request = max(self._last_request, time.monotonic())

    def secret(self, ref: SecretRef) -> SecretStr:
        """Resolve a secret reference and remember its value for redaction."""
        try:
            value = ref.resolve()
        except SecretUnavailable as exc:
            raise ProbeError(f"credential {ref.describe()} unavailable: {exc}") from None
        if value.get_secret_value():
            self._secrets.append(value.get_secret_value())
        return value

    @property
    def holds_secrets(self) -> bool:
        """A credential was resolved in this run: exception texts may carry it (a library
        quoting the value it refused), so they are not logged (``describe_failure``)."""
        return bool(self._secrets)

    def redact(self, text: str) -> str:
        """``text`` with each resolved secret replaced, as text and as the escaped, hex and
        repr spellings libraries use when they quote a value (``b'\\xc3\\xa4…'``)."""
        for secret in self._secrets:
            raw = secret.encode()
            for form in {secret, repr(raw)[2:-1], raw.hex(), secret.encode(
                    "unicode_escape").decode("ascii")}:
                if form:
                    text = text.replace(form, "[REDACTED]")
        return text

    def describe_failure(self, exc: BaseException) -> str:
        """An unexpected exception for a log line or a reason: its type, and its text only
        when no secret was resolved in this run (then redacted and made harmless)."""
        name = type(exc).__name__
        if self.holds_secrets:
            return f"{name} (its text is withheld: this run held credentials)"
        text = device_text(self.redact(str(exc)), single_line=True)[:500]
        return f"{name}: {text}" if text else name


class Probe(ABC):
    """A read-only reader of one protocol. Subclasses set the class variables."""

    name: ClassVar[str]
    version: ClassVar[str]
    default_port: ClassVar[int]
    default_kind: ClassVar[AssetKind] = AssetKind.PLC
    Options: ClassVar[type[ProbeOptions]] = ProbeOptions
    facts: ClassVar[Mapping[str, FactSpec]]
    # Rough seconds a run takes on a healthy device at the default pacing; the collector
    # starts the longest runs first, so that they do not all end up at the end of a pass.
    typical_seconds: ClassVar[float] = 1.0

    @abstractmethod
    async def collect(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        """Read the device, record facts via ``ctx.recorder``; raise ProbeError to fail."""

    async def identify(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        """The least read that says what the device is, for ``otaudit discover`` (default:
        the whole read-only ``collect``). Same client, guard and pacing as ``collect``."""
        await self.collect(target, ctx)


class IdentifyOnly(Probe):
    """``probe`` whose run is its ``identify`` (so ``run_probe`` maps its failures)."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.name, self.version = probe.name, probe.version
        self.default_port, self.default_kind = probe.default_port, probe.default_kind
        self.Options, self.facts = probe.Options, {}

    async def collect(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        await self.probe.identify(target, ctx)

def failure_location(exc: BaseException) -> str:
    """`` at FILE:LINE in FUNCTION`` of the innermost frame of ``exc`` (no values), or ""."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    if not frames:
        return ""
    last = frames[-1]
    return f" at {last.filename}:{last.lineno} in {last.name}"



@contextlib.asynccontextmanager
async def time_limit(seconds: float) -> AsyncIterator[None]:
    """``asyncio.timeout(seconds)`` that also raises ``TimeoutError`` when a
    ``CancelledError`` *subclass* ends the block as the time runs out. ``asyncio.timeout``
    converts only the exact class (Python 3.11); asyncua's ``wait_for2`` raises
    ``CancelledWithResultError`` when the reply arrives just then, which passed through as
    a cancellation: the run ended without a status (fuzz campaign, under load). A
    cancellation from outside the block stays one."""
    window = asyncio.timeout(seconds)
    try:
        async with window:
            yield
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not window.expired() or (task is not None and task.cancelling()):
            raise
        raise TimeoutError from None
