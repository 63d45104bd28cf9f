"""Device profile of a simulated Modbus/TCP device (YAML, see ``profiles/``)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

Byte = Annotated[int, Field(ge=0, le=255)]
Unit = Annotated[int, Field(ge=1, le=255)]
Word = Annotated[int, Field(ge=0, le=0xFFFF)]
Address = Annotated[int, Field(ge=0, le=0xFFFE)]


class Behaviour(StrEnum):
    """How the device misbehaves, for robustness tests."""

    NORMAL = "normal"
    GARBAGE_DEVID = "garbage_devid"    # FC 43 reply with a truncated object (valid MBAP)
    CLOSE_ON_DEVID = "close_on_devid"  # drops the connection instead of answering FC 43
    SILENT = "silent"                  # accepts connections, never answers
    SLOW = "slow"                      # answers every request after ``delay`` seconds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceId(_Strict):
    """Read Device Identification (FC 43 / MEI 14) as the device answers it."""

    exception: Byte | None = None  # answer every FC 43/14 with this exception code instead
    conformity: Byte = 0x83        # 0x01 basic, 0x02 regular, 0x03 extended; +0x80 individual
    objects: dict[Byte, str] = Field(default_factory=dict)


class Registers(_Strict):
    """Start address → consecutive values, per table."""

    coils: dict[Address, list[bool]] = Field(default_factory=dict)
    discrete_inputs: dict[Address, list[bool]] = Field(default_factory=dict)
    holding: dict[Address, list[Word]] = Field(default_factory=dict)
    input: dict[Address, list[Word]] = Field(default_factory=dict)


class ModbusProfile(_Strict):
    name: str
    description: str = ""
    units: list[Unit] = Field(default_factory=lambda: [1], min_length=1)
    unit_exceptions: dict[Byte, Byte] = Field(default_factory=dict)  # unit → exception code
    device_id: DeviceId = Field(default_factory=DeviceId)
    registers: Registers = Field(default_factory=Registers)
    behaviour: Behaviour = Behaviour.NORMAL
    delay: float = Field(0.5, ge=0, le=60)  # seconds, for behaviour ``slow``

    @field_validator("unit_exceptions")
    @classmethod
    def _codes(cls, value: dict[int, int]) -> dict[int, int]:
        if any(code == 0 for code in value.values()):
            raise ValueError("exception code 0 does not exist")
        return value

    @classmethod
    def load(cls, path: Path) -> ModbusProfile:
        return cls.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
