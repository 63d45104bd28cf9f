"""SZL texts, versions, modes and records at their exact limits (issue 23: mutation survivors)."""

from __future__ import annotations

import dataclasses
import struct

import pytest

from otaudit.probes.base import ParseError
from otaudit.probes.s7.parse import (
    COMPONENT_TEXT,
    ModuleRecord,
    parse_component_identification,
    parse_cpu_mode,
    parse_module_identification,
    parse_protection,
    split_records,
)

TEXT_WIDTHS = {0x0001: 24, 0x0002: 24, 0x0003: 32, 0x0004: 26, 0x0005: 24,
               0x0007: 32, 0x0008: 32, 0x000B: 32}


def component_list(*records: bytes, length: int = 40) -> bytes:
    return struct.pack(">HH", length, len(records)) + b"".join(
        r.ljust(length, b"\0") for r in records)


def test_component_text_table_is_the_documented_one() -> None:
    assert COMPONENT_TEXT == TEXT_WIDTHS


@pytest.mark.parametrize(("index", "width"), sorted(TEXT_WIDTHS.items()))
def test_each_component_text_is_read_to_its_exact_width(index: int, width: int) -> None:
    # text fills its field; the bytes right after it (still in the record) are not text
    record = struct.pack(">H", index) + b"A" * (width - 1) + b"Z" + b"QQ" * 3
    assert parse_component_identification(component_list(record, length=42)) == {
        index: "A" * (width - 1) + "Z"}


@pytest.mark.parametrize("index", [0x0000, 0x0006, 0x0009, 0x000A, 0x000C, 0x0081])
def test_records_without_text_are_skipped(index: int) -> None:
    text = struct.pack(">H", 0x0001) + b"CPU"
    other = struct.pack(">H", index) + b"other"
    assert parse_component_identification(component_list(other, text)) == {0x0001: "CPU"}
    with pytest.raises(ParseError, match="no identification text record"):
        parse_component_identification(component_list(other))


@pytest.mark.parametrize(("char", "accepted"), [
    ("\x1f", False), (" ", True), ("~", True), ("\x7f", False), ("\x80", False),
    ("\x9f", False), ("\xa0", True), ("\xe9", True), ("\x00", True),
])
def test_control_character_limits_in_text(char: str, accepted: bool) -> None:
    # inside the text (the edges are stripped); NUL ends the text, so "a" is kept
    raw = ("a" + char + "b").encode("latin-1")
    record = struct.pack(">H", 0x0002) + raw
    if accepted:
        expected = "a" if char == "\x00" else "a" + char + "b"
        assert parse_component_identification(component_list(record)) == {2: expected}
    else:
        with pytest.raises(ParseError, match=f"text field .*{raw.hex()}.* control characters"):
            parse_component_identification(component_list(record))


@pytest.mark.parametrize(("letter", "version"), [
    (0x41, "A3.2.6"), (0x56, "V3.2.6"), (0x5A, "Z3.2.6"), (0x40, None), (0x5B, None),
    (0x61, None), (0x00, None)])
def test_version_letter_limits(letter: int, version: str | None) -> None:
    record = ModuleRecord(7, "", 0, (letter << 8) | 3, 0x0206)
    assert record.version() == version


def module_list(*records: tuple[int, bytes, int, int]) -> bytes:
    return struct.pack(">HH", 28, len(records)) + b"".join(
        struct.pack(">H20sHHH", index, mlfb, 0xC0, ausbg, ausbe)
        for index, mlfb, ausbg, ausbe in records)


def test_firmware_letter_at_the_limits_of_the_alphabet() -> None:
    module = (1, b"6ES7 315-2EH14-0AB0 ", 4, 1)
    ident = parse_module_identification(module_list(module, (7, b"", 0x5A01, 0x0203)))
    assert ident.firmware_version == "Z1.2.3"
    with pytest.raises(ParseError, match=r"no version letter \(Ausbg 0x5B01\)"):
        parse_module_identification(module_list(module, (7, b"", 0x5B01, 0x0203)))


@pytest.mark.parametrize(("nibble", "mode"), [
    (0x0, "unknown(0x00)"), (0x1, "STOP"), (0x2, "STOP"), (0x3, "STOP"), (0x4, "STOP"),
    (0x5, "STARTUP"), (0x6, "STARTUP"), (0x7, "STARTUP"), (0x8, "RUN"), (0x9, "RUN"),
    (0xA, "HOLD"), (0xB, "unknown(0x0B)"), (0xC, "unknown(0x0C)"), (0xD, "DEFECT"),
    (0xE, "unknown(0x0E)"), (0xF, "unknown(0x0F)")])
def test_every_cpu_mode_nibble(nibble: int, mode: str) -> None:
    record = struct.pack(">HBB", 0x4302, 0xFF, nibble).ljust(20, b"\0")
    result = parse_cpu_mode(struct.pack(">HH", 20, 1) + record)
    assert (result.mode, result.bzu_id) == (mode, nibble)


def test_cpu_mode_is_read_from_the_first_record_only() -> None:
    first = struct.pack(">HBB", 0x4302, 0xFF, 0x08).ljust(20, b"\0")  # RUN
    second = struct.pack(">HBB", 0x4302, 0xFF, 0x04).ljust(20, b"\0")  # STOP
    assert parse_cpu_mode(struct.pack(">HH", 20, 2) + first + second).mode == "RUN"
    assert parse_cpu_mode(struct.pack(">HH", 20, 2) + second + first).mode == "STOP"


def test_parsed_results_are_frozen() -> None:
    record = struct.pack(">6H", 4, 3, 3, 3, 3, 0).ljust(40, b"\0")
    protection = parse_protection(struct.pack(">HH", 40, 1) + record)
    with pytest.raises(dataclasses.FrozenInstanceError):
        protection.effective = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ModuleRecord(7, "", 0, 0, 0).ausbg = 1  # type: ignore[misc]


def test_component_records_are_at_least_34_bytes() -> None:
    record = struct.pack(">H", 0x0001) + b"CPU".ljust(32, b"\0")
    assert parse_component_identification(struct.pack(">HH", 34, 1) + record) == {1: "CPU"}
    with pytest.raises(ParseError, match=r"^SZL 0x001C: record length 33, expected at least 34$"):
        parse_component_identification(struct.pack(">HH", 33, 1) + record[:33])


def test_protection_records_are_at_least_12_bytes() -> None:
    record = struct.pack(">6H", 4, 3, 3, 3, 3, 2)
    assert parse_protection(struct.pack(">HH", 12, 1) + record).startup_switch == 2
    with pytest.raises(ParseError, match=r"^SZL 0x0232: record length 11, expected at least 12$"):
        parse_protection(struct.pack(">HH", 11, 1) + record[:11])


def test_at_most_256_records() -> None:
    assert len(split_records(struct.pack(">HH", 4, 256) + bytes(4 * 256), what="x",
                             min_length=4)) == 256
    with pytest.raises(ParseError, match=r"^x: implausible record count 257$"):
        split_records(struct.pack(">HH", 4, 257) + bytes(4 * 257), what="x", min_length=4)


def test_records_are_cut_exactly() -> None:
    payload = struct.pack(">HH", 5, 3) + b"AAAA1" + b"BBBB2" + b"CCCC3"
    assert split_records(payload, what="x", min_length=4) == [b"AAAA1", b"BBBB2", b"CCCC3"]
    with pytest.raises(ParseError, match=r"^x: oversized reply: 3 records of 5 bytes need 19 "
                                         r"bytes, got 20$"):
        split_records(payload + b"!", what="x", min_length=4)
    with pytest.raises(ParseError, match=r"^x: truncated reply: 3 records of 5 bytes need 19 "
                                         r"bytes, got 18$"):
        split_records(payload[:-1], what="x", min_length=4)


@pytest.mark.parametrize(("indexes", "order_code", "hardware"), [
    ((0x0001, 0x0006), "6ES7 315-2EH14-0AB1", "1"),
    ((0x0006,), "6ES7 315-2EH14-0AB6", "6"),
    ((0x0006, 0x0001), "6ES7 315-2EH14-0AB1", "1"),
    ((0x0002, 0x0006), "6ES7 315-2EH14-0AB6", "6"),
])
def test_module_record_1_then_hardware_record_6(indexes: tuple, order_code: str,
                                                hardware: str) -> None:
    records = [(i, f"6ES7 315-2EH14-0AB{i % 10}".encode(), i, 0) for i in indexes]
    ident = parse_module_identification(module_list(*records))
    assert (ident.order_code, ident.hardware_version, ident.firmware_version) == (
        order_code, hardware, None)


@pytest.mark.parametrize("index", [0x0000, 0x0002, 0x0005, 0x0007, 0x0081])
def test_without_record_1_or_6_there_is_no_module(index: int) -> None:
    with pytest.raises(ParseError, match=r"neither module \(0x0001\) nor hardware \(0x0006\)"):
        parse_module_identification(module_list((index, b"6ES7", 0x5601, 0x0203)))


def test_firmware_only_from_record_7() -> None:
    module = (1, b"6ES7 315-2EH14-0AB0", 4, 1)
    for index in (0x0006, 0x0008, 0x0081):
        other = parse_module_identification(module_list(module, (index, b"", 0x5601, 0x0203)))
        assert other.firmware_version is None, index
    seven = parse_module_identification(module_list(module, (7, b"", 0x5601, 0x0203)))
    assert seven.firmware_version == "V1.2.3"
