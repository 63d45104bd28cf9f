"""Exceptions (compensating controls, accepted risks) and attestations, as data.

Exceptions (``load_exceptions``) apply to check findings in a scope (zone, assets,
checks, requirements). A ``compensating_control`` turns a ``fail``/``capability_gap`` into
``compensated`` (the original status stays on the finding, and the requirement counts as
met); an ``accepted_risk`` only annotates the finding (the requirement stays unmet).
After ``expires`` an exception stops counting and the finding says so.

Attestations (``load_attestations``; close to iec62443-checkable.md §3) record manual
evidence for one requirement in a zone: ``met`` / ``partially_met`` / ``not_met`` /
``not_applicable`` / ``compensated``, optionally up to ``sl_claimed``. An automatic
``fail`` is never turned into a pass by an attestation; a ``compensated`` attestation may
compensate findings of the requirements it lists under ``compensates``. After
``valid_until`` an attestation no longer counts (the requirement falls back to unknown).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from otaudit.errors import InputError
from otaudit.server.baseline.format import CHECK_ID, REQUIREMENT_ID
from otaudit.yamlio import YamlError, load_yaml

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvidenceRef(_Strict):
    type: Literal["test_report", "policy", "procedure", "config_export", "certificate",
                  "screenshot", "log_extract", "diagram", "other"]
    uri: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    date: dt.date | None = None


class Person(_Strict):
    name: str
    role: str | None = None


class Scope(_Strict):
    """Where a record applies. ``zone`` omitted: every zone. Lists omitted: all of them."""

    zone: Identifier | None = None
    assets: list[Identifier] | None = None
    checks: list[Annotated[str, Field(pattern=CHECK_ID)]] | None = None
    requirements: list[str] | None = None

    @model_validator(mode="after")
    def _ids(self) -> Scope:
        for rid in self.requirements or []:
            if not REQUIREMENT_ID.match(rid):
                raise ValueError(f"{rid!r} is not an IEC 62443-3-3 id like 'SR 1.1' or "
                                 "'SR 1.1 RE 1'")
        return self

    def covers_asset(self, asset_id: str, zone: str) -> bool:
        if self.zone is not None and self.zone != zone:
            return False
        return self.assets is None or asset_id in self.assets


class ExceptionRecord(_Strict):
    id: Identifier
    type: Literal["compensating_control", "accepted_risk"] = "compensating_control"
    scope: Scope
    control: str | None = None  # the compensating countermeasure
    justification: Annotated[str, Field(min_length=3)]
    owner: Annotated[str, Field(min_length=2)]
    approved_by: str | None = None
    expires: dt.date
    evidence: list[EvidenceRef] = Field(default_factory=list)

    @model_validator(mode="after")
    def _shape(self) -> ExceptionRecord:
        if not self.scope.checks and not self.scope.requirements:
            raise ValueError("scope must name `checks` or `requirements` (an exception never "
                             "covers everything)")
        if self.type == "compensating_control" and not self.control:
            raise ValueError("a compensating_control describes the `control`")
        return self

    def expired(self, now: dt.datetime) -> bool:
        return now.date() > self.expires

    def summary(self, now: dt.datetime) -> dict[str, Any]:
        return {"id": self.id, "source": "exception", "type": self.type,
                "control": self.control, "justification": self.justification,
                "owner": self.owner, "expires": self.expires.isoformat(),
                "expired": self.expired(now)}


class Attestation(_Strict):
    id: Identifier | None = None
    requirement: str
    scope: Scope = Scope()
    status: Literal["met", "partially_met", "not_met", "not_applicable", "compensated"]
    compensating_control: str | None = None
    compensates: list[str] = Field(default_factory=list)
    sl_claimed: Annotated[int, Field(ge=1, le=4)] | None = None
    evidence: list[EvidenceRef] = Field(default_factory=list)
    attested_by: Person
    approved_by: Person | None = None
    valid_until: dt.date
    notes: str = ""

    @model_validator(mode="after")
    def _shape(self) -> Attestation:
        for rid in [self.requirement, *self.compensates]:
            if not REQUIREMENT_ID.match(rid):
                raise ValueError(f"{rid!r} is not an IEC 62443-3-3 id like 'SR 1.1'")
        if self.status in ("met", "compensated", "partially_met") and not self.evidence:
            raise ValueError(f"status {self.status!r} needs at least one `evidence` reference")
        if self.compensates and self.status != "compensated":
            raise ValueError("`compensates` goes with status `compensated`")
        if self.status == "compensated" and not self.compensating_control:
            raise ValueError("status `compensated` describes the `compensating_control`")
        return self

    @property
    def key(self) -> str:
        return self.id or f"{self.requirement}@{self.scope.zone or '*'}"

    def expired(self, now: dt.datetime) -> bool:
        return now.date() > self.valid_until

    def covers_level(self, level: int) -> bool:
        return self.sl_claimed is None or level <= self.sl_claimed

    def summary(self, now: dt.datetime) -> dict[str, Any]:
        return {"id": self.key, "source": "attestation", "type": "compensating_control",
                "control": self.compensating_control, "justification": self.notes,
                "owner": self.attested_by.name, "expires": self.valid_until.isoformat(),
                "expired": self.expired(now)}


class _ExceptionsFile(_Strict):
    schema_version: Literal[1]
    exceptions: list[ExceptionRecord] = Field(default_factory=list)


class _AttestationsFile(_Strict):
    schema_version: Literal[1]
    attestations: list[Attestation] = Field(default_factory=list)


def _load(path: Path | str, model: type[BaseModel], key: str) -> list[Any]:
    try:
        doc = load_yaml(path)
    except (YamlError, OSError) as exc:
        raise InputError(path, [str(exc)]) from None
    if not isinstance(doc.data, dict):
        raise InputError(path, [f"expected a mapping with 'schema_version' and '{key}'"])
    try:
        parsed = model.model_validate(doc.data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err.get("loc", ()))
            line = doc.line_of(loc)
            dotted = ".".join(str(p) for p in loc) or "(top level)"
            msg = "unknown field" if err.get("type") == "extra_forbidden" else err.get("msg")
            problems.append(f"{'line ' + str(line) + ': ' if line else ''}{dotted}: {msg}")
        raise InputError(path, problems) from None
    records = getattr(parsed, key)
    ids = [r.id for r in records if getattr(r, "id", None)]
    dups = sorted({i for i in ids if ids.count(i) > 1})
    if dups:
        raise InputError(path, [f"duplicate id {d!r}" for d in dups])
    return records


def load_exceptions(path: Path | str, baseline: Any = None) -> list[ExceptionRecord]:
    """Load an exceptions file; with ``baseline``, also reject unknown check/SR ids."""
    records: list[ExceptionRecord] = _load(path, _ExceptionsFile, "exceptions")
    if baseline is not None:
        _known(path, baseline, [(r.id, r.scope.checks or [], r.scope.requirements or [])
                                for r in records])
    return records


def load_attestations(path: Path | str, baseline: Any = None) -> list[Attestation]:
    """Load an attestations file; with ``baseline``, also reject unknown SR ids."""
    records: list[Attestation] = _load(path, _AttestationsFile, "attestations")
    if baseline is not None:
        _known(path, baseline, [(r.key, r.scope.checks or [],
                                 [r.requirement, *r.compensates, *(r.scope.requirements or [])])
                                for r in records])
    return records


def _known(path: Path | str, baseline: Any,
           items: list[tuple[str, list[str], list[str]]]) -> None:
    problems = []
    for rid, checks, reqs in items:
        problems += [f"{rid}: unknown check {c!r}" for c in checks if c not in baseline.checks]
        problems += [f"{rid}: unknown requirement {r!r}" for r in reqs
                     if r not in baseline.requirements]
    if problems:
        raise InputError(path, problems)
