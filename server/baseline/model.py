"""Inputs and outputs of the baseline evaluator (the contract the server relies on)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FindingStatus = Literal[
    "pass", "fail", "unknown", "not_applicable", "capability_gap", "compensated", "attested"
]


class FactRecord(BaseModel):
    """One fact as stored: its value and where it came from."""

    model_config = ConfigDict(frozen=True)

    value: Any
    observation_id: str
    probe: str
    collected_at: datetime
    evidence: list[str] = Field(default_factory=list)


class AssetFacts(BaseModel):
    """The latest facts of one asset, merged over its probes' latest observations."""

    asset_id: str
    kind: str
    zone: str
    facts: dict[str, FactRecord] = Field(default_factory=dict)
    unknown: dict[str, str] = Field(default_factory=dict)
    probe_status: dict[str, str] = Field(default_factory=dict)  # probe -> status of latest run


class EvidenceItem(BaseModel):
    fact: str
    value: Any = None
    observation_id: str | None = None
    probe: str | None = None
    # What the check asserted on this fact and how that came out (added for the evaluator).
    op: str | None = None
    expected: Any = None
    result: Literal["true", "false", "unknown"] | None = None
    present: bool = True
    note: str = ""  # why a fact is missing / could not be compared
    collected_at: datetime | None = None
    evidence_ids: list[str] = Field(default_factory=list)


class Finding(BaseModel):
    asset_id: str
    zone: str
    check_id: str
    title: str
    status: FindingStatus
    severity: str = "medium"
    requirements: list[str] = Field(default_factory=list)  # "SR 1.1", "SR 1.1 RE 1"
    references: dict[str, list[str]] = Field(default_factory=dict)  # nis2, iec62443-4-2 ...
    message: str = ""
    expected: Any = None
    actual: Any = None
    evidence: list[EvidenceItem] = Field(default_factory=list)
    rationale: str = ""
    remediation: str = ""
    exception: dict[str, Any] | None = None
    # Added for the evaluator:
    level: int = 1  # the Security Level whose thresholds were applied
    required: bool = True  # one of `requirements` is selected at the zone's SL-T
    original_status: FindingStatus | None = None  # before an exception/compensation
    reason: str = ""  # why unknown / not_applicable
    on_fail: Literal["fail", "capability_gap"] = "fail"


Status = FindingStatus | Literal["not_evaluated"]
FR_ORDER = ("IAC", "UC", "SI", "DC", "RDF", "TRE", "RA")


class Coverage(BaseModel):
    """How the requirements selected at one SL were decided in one zone."""

    total: int = 0
    satisfied: int = 0
    automatic: int = 0  # decided by checks: pass, fail or capability_gap
    compensated: int = 0
    attested: int = 0
    not_applicable: int = 0
    unknown: int = 0


class Reason(BaseModel):
    """One piece of what decided a requirement: a check's result on the zone's assets
    (with the facts it judged, each evidence item once), an attestation, an exception, the
    control's own rule, or nothing at all."""

    source: Literal["check", "attestation", "exception", "control", "none"]
    id: str = ""  # check id, attestation or exception id
    status: str = ""  # the check's result, the attestation's status, the exception type
    text: str = ""
    assets: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)  # "asset: fact op expected -> value"
    expires: str | None = None  # ISO date of an attestation / exception
    owner: str | None = None


class TargetCoverage(BaseModel):
    """Of the requirements selected at the zone's SL-T: how many were actually assessed
    (decided by a check, an attestation, a compensation or as not applicable)."""

    total: int = 0
    assessed: int = 0
    share: float = 1.0  # assessed / total (1.0 when nothing is required)


class RequirementResult(BaseModel):
    """One SR/RE in one zone: its status at each level where it is selected."""

    id: str
    title: str
    fr: str
    sl: list[int]
    parent: str | None = None
    target: int = 0  # the zone's SL-T for this FR
    in_target: bool = False  # selected at the zone's SL-T
    status: Status = "not_evaluated"  # at the target level (or its lowest level if not in target)
    satisfied: bool = False  # status counts as met and (for an RE) its SR is met
    levels: dict[int, Status] = Field(default_factory=dict)
    decided_by: str = ""  # checks, attestation, compensation, none
    checks: list[str] = Field(default_factory=list)
    attestations: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    why: list[Reason] = Field(default_factory=list)  # at the target level (in_target rows)


class RequirementGap(BaseModel):
    """A requirement selected at the zone's SL-T that is not met, with what shows it."""

    id: str
    title: str
    fr: str
    level: int
    status: Status
    parent_unmet: bool = False
    notes: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    why: list[Reason] = Field(default_factory=list)


class Nis2View(BaseModel):
    point: str
    subject: str
    requirements_in_target: int = 0
    requirements_met: int = 0
    requirements_unknown: int = 0
    requirements_unmet: list[str] = Field(default_factory=list)
    findings: dict[str, int] = Field(default_factory=dict)  # status -> count
    failing_checks: list[str] = Field(default_factory=list)


class ZoneResult(BaseModel):
    zone: str
    sl_t: dict[str, int]
    sl_a: dict[str, int]  # proven: an unknown requirement counts as not met
    sl_reachable: dict[str, int] = Field(default_factory=dict)  # if every unknown were met
    assessed: dict[str, TargetCoverage] = Field(default_factory=dict)  # per FR at SL-T
    assessed_total: TargetCoverage = Field(default_factory=TargetCoverage)
    gap: dict[str, int] = Field(default_factory=dict)  # max(0, SL-T - SL-A) per FR
    assets: int = 0
    findings: dict[str, int] = Field(default_factory=dict)  # status -> count
    coverage: dict[int, Coverage] = Field(default_factory=dict)
    coverage_by_fr: dict[str, dict[int, Coverage]] = Field(default_factory=dict)
    requirements: list[RequirementResult] = Field(default_factory=list)
    failing: list[RequirementGap] = Field(default_factory=list)
    nis2: list[Nis2View] = Field(default_factory=list)


class Evaluation(BaseModel):
    baseline_digest: str
    evaluated_at: datetime
    findings: list[Finding] = Field(default_factory=list)
    zones: list[ZoneResult] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (datetimes as ISO strings)."""
        return self.model_dump(mode="json")

    def zone(self, zone_id: str) -> ZoneResult:
        return next(z for z in self.zones if z.zone == zone_id)
