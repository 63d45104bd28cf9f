"""SZL partial lists built from a profile, in the record layouts real CPUs send.

Every function returns the payload that follows SZL-ID and index in a Read-SZL
reply: LENTHDR (record length), N_DR (record count), then the records.
"""

from __future__ import annotations

import struct

from otaudit.simulators.s7.profile import (
    CPU_MODES,
    MODE_SELECTOR,
    S7Profile,
    parse_version,
)

# SZL ids served from the profile (xy11 / xy1C: x=0 all records, 1 one record, F header only)
MODULE_IDS = {0x0011, 0x0111, 0x0F11}
COMPONENT_IDS = {0x001C, 0x011C, 0x0F1C}
MODULE_RECORD, COMPONENT_RECORD = 28, 34
# Mode-transition event ids (ereig) of SZL 0x0424, per reached mode (values as seen on CPUs).
MODE_EVENTS = {"RUN": 0x4302, "STOP": 0x4304, "STARTUP": 0x4301, "HOLD": 0x4307, "DEFECT": 0x4309}


def partial_list(record_length: int, records: list[bytes]) -> bytes:
    return struct.pack(">HH", record_length, len(records)) + b"".join(records)


def _module_record(index: int, mlfb: str, bg_type: int, ausbg: int, ausbe: int) -> bytes:
    text = mlfb.encode("ascii").ljust(20, b" ")[:20]
    return struct.pack(">H", index) + text + struct.pack(">HHH", bg_type, ausbg, ausbe)


def _version_words(version: str) -> tuple[int, int]:
    letter, major, minor, patch = parse_version(version)
    return (ord(letter) << 8) | major, (minor << 8) | patch


def module_records(profile: S7Profile) -> list[bytes]:
    """Records 0x0001 (module), 0x0006 (basic hardware), 0x0007 (basic firmware), ...

    S7-1200 style (python-snap7's dump of a CPU 1214C): BGTyp 0, Ausbe two blanks and the
    order number repeated in the firmware record. S7-300/400/1500 style (snap7's CPU 315-2
    PN/DP data banks): BGTyp 0x00C0, Ausbe 1, blank order number in the firmware record and
    a boot-loader record 0x0081 when the profile names one.
    """
    module = profile.module
    assert module is not None
    fw_hi, fw_lo = _version_words(module.firmware)
    if profile.family == "s7-1200":
        records = [
            _module_record(0x0001, module.order_code, 0, module.hardware_version, 0x2020),
            _module_record(0x0006, module.order_code, 0, module.hardware_version, 0x2020),
            _module_record(0x0007, module.order_code, 0, fw_hi, fw_lo),
        ]
    else:
        records = [
            _module_record(0x0001, module.order_code, 0x00C0, module.hardware_version, 1),
            _module_record(0x0006, module.order_code, 0x00C0, module.hardware_version, 1),
            _module_record(0x0007, "", 0x00C0, fw_hi, fw_lo),
        ]
    if module.boot_loader:
        bl_hi, bl_lo = _version_words(module.boot_loader)
        records.append(_module_record(0x0081, "Boot Loader", 0, bl_hi, bl_lo))
    return records


def _text_record(index: int, text: str, width: int = 32) -> bytes:
    return struct.pack(">H", index) + text.encode("latin-1")[:width].ljust(32, b"\0")


def component_records(profile: S7Profile) -> list[bytes]:
    """Records 1-5, 7-9, 0x0A, 0x0B of SZL 0x001C (34 bytes: index + 32 bytes)."""
    c = profile.components
    assert c is not None
    return [
        _text_record(0x0001, c.plc_name, 24),
        _text_record(0x0002, c.module_name, 24),
        _text_record(0x0003, c.plant_id),
        _text_record(0x0004, c.copyright, 26),
        _text_record(0x0005, c.serial, 24),
        _text_record(0x0007, c.module_type),
        _text_record(0x0008, c.memory_card_serial),
        # manufacturer id 0x002A (Siemens), profile id 0xF600, profile specific type 0x0001
        struct.pack(">HHHH", 0x0009, 0x002A, 0xF600, 0x0001).ljust(COMPONENT_RECORD, b"\0"),
        _text_record(0x000A, ""),
        _text_record(0x000B, c.location),
    ]


def _select(records: list[bytes], szl_id: int, index: int, length: int) -> bytes:
    if szl_id >> 8 == 0x01:
        records = [r for r in records if struct.unpack(">H", r[:2])[0] == index]
        if not records:
            raise KeyError(index)
    return partial_list(length, records)


def szl_payload(profile: S7Profile, szl_id: int, index: int) -> bytes | None:
    """The partial list a CPU with this profile returns, or None (not available).

    Only what the profile states is served: a missing section means the SZL is not
    available, as on a CPU that lacks it (the server then answers 0xD402).
    """
    raw = profile.raw_payload(szl_id, index)
    if raw is not None:
        return raw
    try:
        if szl_id in MODULE_IDS and profile.module is not None:
            records = module_records(profile)
            if szl_id == 0x0F11:
                return struct.pack(">HH", MODULE_RECORD, len(records))
            return _select(records, szl_id, index, MODULE_RECORD)
        if szl_id in COMPONENT_IDS and profile.components is not None:
            records = component_records(profile)
            if szl_id == 0x0F1C:
                return struct.pack(">HH", COMPONENT_RECORD, len(records))
            return _select(records, szl_id, index, COMPONENT_RECORD)
    except KeyError:
        return None
    if szl_id == 0x0232 and index == 0x0004 and profile.protection is not None:
        p = profile.protection
        record = struct.pack(">6H", 0x0004, p.key_switch, p.parametrised, p.effective,
                             MODE_SELECTOR[p.mode_selector], p.startup_switch)
        return partial_list(40, [record.ljust(40, b"\0")])
    if szl_id == 0x0424 and index == 0x0000 and profile.cpu_mode is not None:
        mode = CPU_MODES[profile.cpu_mode]
        record = struct.pack(">HBB", MODE_EVENTS[profile.cpu_mode], 0xFF, mode)
        return partial_list(20, [record.ljust(20, b"\0")])
    return None
