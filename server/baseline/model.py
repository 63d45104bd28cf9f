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
