"""An S7 device profile: every value the CPU's SZL records carry, plus raw overrides.

A profile is YAML (see ``profiles/``). ``raw_szl`` maps ``"0xIIII"`` (any index) or
``"0xIIII/0xXXXX"`` (one index) to the hex of a partial list as a CPU sends it
(LENTHDR, N_DR, records), so a recording of a real CPU is served byte for byte.

Nothing is invented: ``module``, ``components``, ``protection`` and ``cpu_mode`` are each
optional, and an SZL that neither they nor ``raw_szl`` provide is answered with the error
a real CPU sends for an unavailable SZL (0xD402). A profile made only of a recording
(``raw_szl`` plus rack/slot) therefore replays exactly what was recorded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from otaudit.errors import InputError, pydantic_problems
from otaudit.yamlio import load_yaml

Family = Literal["s7-300", "s7-400", "s7-1200", "s7-1500"]
Refusal = Literal["cotp", "close", "setup"]

MODE_SELECTOR = {"undefined": 0, "RUN": 1, "RUN-P": 2, "STOP": 3, "MRES": 4}
CPU_MODES = {"STOP": 0x04, "STARTUP": 0x05, "RUN": 0x08, "HOLD": 0x0A, "DEFECT": 0x0D}
_VERSION = re.compile(r"^([A-Z])\s?(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")
_RAW_KEY = re.compile(r"^0x([0-9a-fA-F]{1,4})(?:/0x([0-9a-fA-F]{1,4}))?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def parse_version(text: str) -> tuple[str, int, int, int]:
    """``"V4.5.2"`` → ``("V", 4, 5, 2)``; each number must fit a byte."""
    match = _VERSION.match(text.strip())
    if not match or any(int(n) > 255 for n in match.groups()[1:]):
        raise ValueError(f"version {text!r} is not like V4.5.2 (letter, three numbers 0-255)")
    letter, *numbers = match.groups()
    return letter, int(numbers[0]), int(numbers[1]), int(numbers[2])


class ModuleIdentification(_Strict):
    """SZL 0x0011: module, basic hardware, basic firmware (and boot loader) records."""

    order_code: str = Field(max_length=20)
    hardware_version: int = Field(ge=0, le=0xFFFF)
    firmware: str
    boot_loader: str | None = None  # e.g. "A32.9.9": record 0x0081 (S7-300/400)

    @field_validator("firmware", "boot_loader")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None:
            parse_version(value)
        return value


class ComponentIdentification(_Strict):
    """SZL 0x001C: one text per record index."""

    plc_name: str = Field("", max_length=24)  # 1: name of the automation system
    module_name: str = Field("", max_length=24)  # 2
    plant_id: str = Field("", max_length=32)  # 3: plant designation
    copyright: str = Field("Original Siemens Equipment", max_length=26)  # 4
    serial: str = Field("", max_length=24)  # 5: serial number of the module
    module_type: str = Field("", max_length=32)  # 7: module type name
    memory_card_serial: str = Field("", max_length=32)  # 8
    location: str = Field("", max_length=32)  # 0x0B: location designation


class Protection(_Strict):
    """SZL 0x0232 index 4."""

    key_switch: int = Field(1, ge=0, le=3)  # sch_schal
    parametrised: int = Field(0, ge=0, le=3)  # sch_par (0: no password)
    effective: int = Field(1, ge=0, le=3)  # sch_rel
    mode_selector: Literal["undefined", "RUN", "RUN-P", "STOP", "MRES"] = "RUN-P"  # bart_sch
    startup_switch: int = Field(0, ge=0, le=2)  # anl_sch (1 CRST, 2 WRST)


class S7Profile(_Strict):
    name: str
    description: str = ""
    family: Family | None = None  # record layouts and default slots; None: from raw_szl only
    rack: int = Field(0, ge=0, le=7)
    slot: int = Field(ge=0, le=31)
    accept_slots: list[int] | None = None  # COTP called-TSAP slots answered (default: family)
    module: ModuleIdentification | None = None  # SZL 0x0011 (None: not served)
    components: ComponentIdentification | None = None  # SZL 0x001C
    protection: Protection | None = None  # SZL 0x0232 index 4
    cpu_mode: Literal["RUN", "STOP", "STARTUP", "HOLD", "DEFECT"] | None = None  # SZL 0x0424
    refuse: Refusal | None = None  # refuse classic S7 access at this stage
    raw_szl: dict[str, str] = Field(default_factory=dict)

    @field_validator("raw_szl")
    @classmethod
    def _raw(cls, raw: dict[str, str]) -> dict[str, str]:
        for key, text in raw.items():
            if not _RAW_KEY.match(key):
                raise ValueError(f"raw_szl key {key!r} is not like 0x0011 or 0x0232/0x0004")
            try:
                bytes.fromhex("".join(text.split()))
            except ValueError:
                raise ValueError(f"raw_szl {key}: not hex") from None
        return raw

    @model_validator(mode="after")
    def _slots(self) -> S7Profile:
        if self.module is not None and self.family is None:
            raise ValueError("'module' needs 'family' (the record layout depends on it)")
        if self.accept_slots is None:
            self.accept_slots = [0, 1] if self.family in ("s7-1200", "s7-1500") else [self.slot]
        if self.slot not in self.accept_slots:
            raise ValueError(f"slot {self.slot} is not in accept_slots {self.accept_slots}")
        return self

    def raw_payload(self, szl_id: int, index: int) -> bytes | None:
        """The raw partial list for this SZL id/index, if the profile gives one."""
        exact = any_index = None
        for key, text in self.raw_szl.items():
            match = _RAW_KEY.match(key)
            assert match
            if int(match.group(1), 16) != szl_id:
                continue
            data = bytes.fromhex("".join(text.split()))
            if match.group(2) is None:
                any_index = data
            elif int(match.group(2), 16) == index:
                exact = data
        return exact if exact is not None else any_index


def load_profile(path: str | Path, **overrides: Any) -> S7Profile:
    """Read a profile file; ``overrides`` replace top-level keys (CLI flags)."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise InputError(path, ["an S7 profile is a mapping"])
    try:
        return S7Profile.model_validate({**doc.data, **overrides})
    except ValidationError as exc:
        raise InputError(path, pydantic_problems(exc, doc.locate)) from None
