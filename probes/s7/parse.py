"""Pure parsers for the SZL partial lists the S7 probe reads. They raise only ParseError.

Input is the payload after SZL-ID and index of a Read-SZL reply: LENTHDR (record
length), N_DR (record count), then N_DR records of LENTHDR bytes. Layouts from the
Siemens "System Software for S7-300/400" SZL chapter, checked against real CPU data
(snap7's CPU 315-2 PN/DP data banks, python-snap7's CPU 1214C dump).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from otaudit.probes.base import ParseError

MODULE_RECORD = 28  # SZL 0x0011: index, MLFB[20], BGTyp, Ausbg, Ausbe
COMPONENT_RECORD = 34  # SZL 0x001C: index, 32 bytes
MAX_RECORDS = 256

# SZL 0x0011 record indexes
MODULE, BASIC_HARDWARE, BASIC_FIRMWARE = 0x0001, 0x0006, 0x0007
# SZL 0x001C record indexes holding text, and the width of the text
COMPONENT_TEXT = {0x0001: 24, 0x0002: 24, 0x0003: 32, 0x0004: 26, 0x0005: 24,
                  0x0007: 32, 0x0008: 32, 0x000B: 32}

MODE_SELECTOR = {0: "undefined", 1: "RUN", 2: "RUN-P", 3: "STOP", 4: "MRES"}
PROTECTION_MEANING = {1: "no protection", 2: "write protection", 3: "read/write protection"}
# SZL 0x0424 bzu_id, bits 0-3 (the mode reached): Siemens names, grouped as facts.md says
CPU_MODES = {0x1: "STOP", 0x2: "STOP", 0x3: "STOP", 0x4: "STOP", 0x5: "STARTUP",
             0x6: "STARTUP", 0x7: "STARTUP", 0x8: "RUN", 0x9: "RUN", 0xA: "HOLD",
             0xD: "DEFECT"}
_MLFB = re.compile(r"^(\d[A-Z]{2}\d)\s*(\d{3})\s*-\s*(\w{5})\s*-\s*(\w{4})$")


def split_records(payload: bytes, *, what: str, min_length: int) -> list[bytes]:
    """Check the partial-list header against the bytes and return the records."""
    if len(payload) < 4:
        raise ParseError(f"{what}: {len(payload)} bytes, shorter than the 4-byte list header")
    length, count = struct.unpack(">HH", payload[:4])
    if count == 0:
        raise ParseError(f"{what}: the partial list has no records")
    if count > MAX_RECORDS:
        raise ParseError(f"{what}: implausible record count {count}")
    if length < min_length:
        raise ParseError(f"{what}: record length {length}, expected at least {min_length}")
    expected = 4 + length * count
    if len(payload) != expected:
        kind = "truncated" if len(payload) < expected else "oversized"
        raise ParseError(f"{what}: {kind} reply: {count} records of {length} bytes need "
                         f"{expected} bytes, got {len(payload)}")
    return [payload[4 + i * length: 4 + (i + 1) * length] for i in range(count)]


def _text(raw: bytes) -> str:
    """A fixed-width SZL text: up to the first NUL, blanks stripped."""
    text = raw.split(b"\0", 1)[0].decode("latin-1").strip()
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text):
        raise ParseError(f"text field {raw.hex()} holds control characters")
    return text


def normalise_order_code(text: str) -> str | None:
    """Siemens MLFB in the catalogue spelling ``6ES7 214-1AG40-0XB0``; None when empty."""
    compact = " ".join(text.split())
    if not compact:
        return None
    match = _MLFB.match(compact.upper())
    if match:
        return f"{match.group(1)} {match.group(2)}-{match.group(3)}-{match.group(4)}"
    return compact


@dataclass(frozen=True)
class ModuleRecord:
    index: int
    mlfb: str
    bg_type: int
    ausbg: int
    ausbe: int

    def version(self) -> str | None:
        """Version as the vendor writes it (``V3.2.6``), for version-type records."""
        letter = self.ausbg >> 8
        if not (0x41 <= letter <= 0x5A):
            return None
        return f"{chr(letter)}{self.ausbg & 0xFF}.{self.ausbe >> 8}.{self.ausbe & 0xFF}"


@dataclass(frozen=True)
class ModuleIdentification:
    records: dict[int, ModuleRecord]
    order_code: str | None
    hardware_version: str
    firmware_version: str | None


def parse_module_identification(payload: bytes) -> ModuleIdentification:
    """SZL 0x0011: order number (record 1), hardware (1/6) and firmware (record 7).

    The firmware is the version of record 0x0007 only: the S7-1200 repeats its order
    number there, and records 0x0081 and up are the boot loader and extensions.
    """
    records: dict[int, ModuleRecord] = {}
    for raw in split_records(payload, what="SZL 0x0011", min_length=MODULE_RECORD):
        index, mlfb, bg_type, ausbg, ausbe = struct.unpack(">H20sHHH", raw[:MODULE_RECORD])
        if index in records:
            raise ParseError(f"SZL 0x0011: record 0x{index:04X} appears twice")
        records[index] = ModuleRecord(index, _text(mlfb), bg_type, ausbg, ausbe)
    module = records.get(MODULE) or records.get(BASIC_HARDWARE)
    if module is None:
        raise ParseError("SZL 0x0011: neither module (0x0001) nor hardware (0x0006) record")
    firmware_record = records.get(BASIC_FIRMWARE)
    firmware = firmware_record.version() if firmware_record else None
    if firmware_record and firmware is None:
        raise ParseError(f"SZL 0x0011: firmware record 0x0007 has no version letter "
                         f"(Ausbg 0x{firmware_record.ausbg:04X})")
    return ModuleIdentification(
        records=records,
        order_code=normalise_order_code(module.mlfb),
        hardware_version=str(module.ausbg),
        firmware_version=firmware,
    )


def parse_component_identification(payload: bytes) -> dict[int, str]:
    """SZL 0x001C: record index → text, for the records that hold text."""
    texts: dict[int, str] = {}
    seen: set[int] = set()
    for raw in split_records(payload, what="SZL 0x001C", min_length=COMPONENT_RECORD):
        index = struct.unpack(">H", raw[:2])[0]
        if index in seen:
            raise ParseError(f"SZL 0x001C: record 0x{index:04X} appears twice")
        seen.add(index)
        if index in COMPONENT_TEXT:
            texts[index] = _text(raw[2:2 + COMPONENT_TEXT[index]])
    if not texts:
        raise ParseError("SZL 0x001C: no identification text record")
    return texts


@dataclass(frozen=True)
class Protection:
    key_switch: int  # sch_schal
    parametrised: int  # sch_par
    effective: int  # sch_rel
    mode_selector: int  # bart_sch
    startup_switch: int  # anl_sch
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def mode_selector_name(self) -> str:
        return MODE_SELECTOR[self.mode_selector]

    @property
    def meaning(self) -> str:
        return PROTECTION_MEANING.get(self.effective, f"undefined ({self.effective})")


def parse_protection(payload: bytes) -> Protection:
    """SZL 0x0232 index 4: record [index 4, sch_schal, sch_par, sch_rel, bart_sch, anl_sch]."""
    records = split_records(payload, what="SZL 0x0232", min_length=12)
    for raw in records:
        index, schal, par, rel, bart, anl = struct.unpack(">6H", raw[:12])
        if index != 0x0004:
            continue
        if schal > 3 or par > 3 or rel > 3 or bart not in MODE_SELECTOR or anl > 2:
            raise ParseError(f"SZL 0x0232/4: implausible values sch_schal={schal} "
                             f"sch_par={par} sch_rel={rel} bart_sch={bart} anl_sch={anl}")
        return Protection(schal, par, rel, bart, anl)
    raise ParseError("SZL 0x0232: no record with index 0x0004 (protection level)")


@dataclass(frozen=True)
class CpuMode:
    mode: str
    bzu_id: int


def parse_cpu_mode(payload: bytes) -> CpuMode:
    """SZL 0x0424: byte 3 of the first record (bzu_id), bits 0-3 = mode reached."""
    records = split_records(payload, what="SZL 0x0424", min_length=4)
    bzu_id = records[0][3]
    mode = CPU_MODES.get(bzu_id & 0x0F, f"unknown(0x{bzu_id:02X})")
    return CpuMode(mode, bzu_id)
