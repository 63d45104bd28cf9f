"""The baseline file formats (pydantic): checks, controls, catalogue, check fixtures.

A check is data: a gate (``applies_to``), a condition tree over fact paths, what a
failed condition means (``fail`` or ``capability_gap``), references, per-level
parameters and texts. See ``baselines/README.md`` for the authoring guide.

Condition tree (Checkov-style predicates, Wazuh-style ``all``/``any``/``none``)::

    condition:
      all:
        - {fact: s7.protection_level, op: ge, value: $min_protection}
        - any: [{fact: s7.password_set, op: eq, value: true}, ...]
        - none: [...]
        - {fact: services.listening, op: no_item, where: {key: port, op: in, value: [23]}}
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1
LEVELS = (1, 2, 3, 4)
ASSET_KINDS = ("plc", "switch", "hmi", "firewall", "router", "zone")  # zone: declared facts
REF_NAMESPACES = ("iec62443-3-3", "iec62443-4-2", "nis2")
CHECK_ID = r"^OTA-[A-Z0-9]+-[0-9]{3}$"
REQUIREMENT_ID = re.compile(r"^SR \d+\.\d+( RE \d+)?$")

Severity = Literal["info", "low", "medium", "high", "critical"]
OnFail = Literal["fail", "capability_gap"]
Transform = Literal["version", "length", "lower"]
Op = Literal[
    "eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "regex", "not_regex",
    "contains", "not_contains", "intersects", "disjoint", "exists",
    "any_item", "all_items", "no_item",
]
LIST_OPS = frozenset({"in", "not_in", "intersects", "disjoint"})
ORDER_OPS = frozenset({"lt", "le", "gt", "ge"})
ITEM_OPS = frozenset({"any_item", "all_items", "no_item"})
REGEX_OPS = frozenset({"regex", "not_regex"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def is_param(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("$") and len(value) > 1


class Leaf(_Strict):
    """One assertion. ``fact`` names a fact path; inside ``where`` a ``key`` names a field
    of each list item (``key`` omitted: the item itself)."""

    fact: str | None = None
    key: str | None = None
    op: Op
    value: Any = None
    as_: Transform | None = Field(None, alias="as")
    where: Condition | None = None

    @model_validator(mode="after")
    def _shape(self) -> Leaf:
        if self.fact is not None and self.key is not None:
            raise ValueError("a leaf names either `fact` or `key`, not both")
        if self.op == "exists":
            if self.value is not None:
                raise ValueError("`exists` takes no value")
        elif self.op in ITEM_OPS:
            if self.where is None:
                raise ValueError(f"`{self.op}` needs a `where` condition over the list items")
            if self.value is not None:
                raise ValueError(f"`{self.op}` takes `where`, not `value`")
        else:
            if self.where is not None:
                raise ValueError(f"`where` is only for {', '.join(sorted(ITEM_OPS))}")
            if self.op in LIST_OPS and not (isinstance(self.value, list) or is_param(self.value)):
                raise ValueError(f"`{self.op}` needs a list value (or a $parameter)")
            if self.op in REGEX_OPS and not is_param(self.value):
                if not isinstance(self.value, str):
                    raise ValueError(f"`{self.op}` needs a regular expression string")
                try:
                    re.compile(self.value)
                except re.error as exc:
                    raise ValueError(f"invalid regular expression: {exc}") from None
        return self


class AllOf(_Strict):
    all: list[Condition] = Field(min_length=1)


class AnyOf(_Strict):
    any: list[Condition] = Field(min_length=1)


class NoneOf(_Strict):
    none: list[Condition] = Field(min_length=1)


def _node_kind(value: Any) -> str:
    if isinstance(value, dict):
        for kind in ("all", "any", "none"):
            if kind in value:
                return f"<{kind}>"
        return "<leaf>"
    return {AllOf: "<all>", AnyOf: "<any>", NoneOf: "<none>"}.get(type(value), "<leaf>")


Condition = Annotated[
    Annotated[AllOf, Tag("<all>")] | Annotated[AnyOf, Tag("<any>")]
    | Annotated[NoneOf, Tag("<none>")] | Annotated[Leaf, Tag("<leaf>")],
    Discriminator(_node_kind),
]
Leaf.model_rebuild()
AllOf.model_rebuild()
AnyOf.model_rebuild()
NoneOf.model_rebuild()


class AppliesTo(_Strict):
    """Which assets a check is about. Kind, probe or OS family mismatch: the check is
    irrelevant to the asset (no finding). ``os``: the asset's ``os.family`` fact must be one
    of these; an asset without it counts as ``linux`` (every host read before Windows was).
    ``when`` false: ``not_applicable``; ``when`` unknown: ``unknown``."""

    kinds: list[Literal["plc", "switch", "hmi", "firewall", "router", "zone"]] | None = None
    probes: list[str] | None = None
    os: list[Literal["linux", "windows"]] | None = None
    when: Condition | None = None


ParamValue = str | int | float | bool | list[Any] | dict[int, Any]


class Check(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    id: Annotated[str, Field(pattern=CHECK_ID)]
    title: Annotated[str, Field(min_length=3, max_length=120)]
    severity: Severity
    applies_to: AppliesTo = AppliesTo()
    condition: Condition
    on_fail: OnFail = "fail"
    params: dict[str, ParamValue] = Field(default_factory=dict)
    references: dict[Literal["iec62443-3-3", "iec62443-4-2", "nis2"], list[str]]
    rationale: Annotated[str, Field(min_length=10)]
    remediation: Annotated[str, Field(min_length=10)]
    message: Annotated[str, Field(min_length=3)]
    pass_message: str = ""

    @field_validator("params")
    @classmethod
    def _param_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"parameter name {name!r} is not lower snake case")
        return value

    @field_validator("references")
    @classmethod
    def _needs_requirement(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if not value.get("iec62443-3-3"):
            raise ValueError("a check references at least one IEC 62443-3-3 SR/RE")
        return value

    def requirements(self) -> list[str]:
        return list(self.references.get("iec62443-3-3", []))

    def param_at(self, name: str, level: int) -> Any:
        """Value of parameter ``name`` at Security Level ``level``."""
        value = self.params[name]
        if isinstance(value, dict):
            return value[level]
        return value


class Control(_Strict):
    """One SR/RE of the controls file: the checks that decide it, or attestation.

    ``unchecked``: the status when no asset of the zone is in scope of any of the checks
    (default ``unknown``: no evidence, an attestation is needed; ``not_applicable`` only
    for requirements about a feature such assets do not have, e.g. login banners).
    """

    id: str
    checks: list[str] = Field(default_factory=list)
    attestation: bool = False
    unchecked: Literal["unknown", "not_applicable"] = "unknown"
    notes: str = ""


class ControlsFile(_Strict):
    schema_version: Literal[1]
    standard: Literal["iec62443-3-3"]
    title: str = ""
    controls: list[Control]


class CatalogueItem(_Strict):
    id: str
    title: str
    sl: list[int]
    enhancements: list[CatalogueItem] = Field(default_factory=list)
    maps_to_sr: str | None = None
    applies_to: list[str] | None = None
    component_level_requirement: bool = True
    variants: list[Variant] = Field(default_factory=list)


class Variant(_Strict):
    id: str
    applies_to: list[str]
    sl: list[int]
    enhancements: list[CatalogueItem] = Field(default_factory=list)


CatalogueItem.model_rebuild()


class CatalogueFR(_Strict):
    id: str
    abbrev: Literal["IAC", "UC", "SI", "DC", "RDF", "TRE", "RA"]
    title: str = ""
    requirements: list[CatalogueItem]


class CatalogueFile(_Strict):
    schema_version: Literal[1]
    standard: Literal["iec62443-3-3", "iec62443-4-2"]
    edition: str
    foundational_requirements: list[CatalogueFR] = Field(min_length=7, max_length=7)


class Nis2Point(_Strict):
    id: Annotated[str, Field(pattern=r"^21\(2\)\([a-j]\)$")]
    subject: str
    evidenced_by: list[str] = Field(default_factory=list)


class Nis2File(_Strict):
    schema_version: Literal[1]
    points: list[Nis2Point] = Field(min_length=10, max_length=10)


Expectation = Literal[
    "pass", "fail", "unknown", "not_applicable", "capability_gap", "compensated", "attested"
]


class FixtureCase(_Strict):
    """One fact set for one check and the result expected at each level."""

    name: str
    kind: Literal["plc", "switch", "hmi", "firewall", "router", "zone"] | None = None
    probes: dict[str, str] | None = None  # probe -> status; default: the check's probes, ok
    facts: dict[str, Any] = Field(default_factory=dict)
    unknown: dict[str, str] = Field(default_factory=dict)
    level: Literal[1, 2, 3, 4] | None = None  # with a single `expect`; default: every level
    expect: Expectation | dict[Literal[1, 2, 3, 4], Expectation]

    @model_validator(mode="after")
    def _level_with_single(self) -> FixtureCase:
        if self.level is not None and isinstance(self.expect, dict):
            raise ValueError("`level` goes with a single `expect`, not a per-level mapping")
        return self

    def expectations(self) -> dict[int, str]:
        if isinstance(self.expect, dict):
            return dict(self.expect)
        levels = (self.level,) if self.level else LEVELS
        return dict.fromkeys(levels, self.expect)


class FixtureFile(_Strict):
    schema_version: Literal[1]
    check: Annotated[str, Field(pattern=CHECK_ID)]
    cases: list[FixtureCase] = Field(min_length=1)
