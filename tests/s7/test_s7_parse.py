"""SZL parsers against real CPU data and hostile bytes."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from s7_testkit import databank, s7_1200_dump

from otaudit.probes.base import ParseError
from otaudit.probes.s7.parse import (
    normalise_order_code,
    parse_component_identification,
    parse_cpu_mode,
    parse_module_identification,
    parse_protection,
)
from otaudit.probes.s7.products import product_of, vendor_of

PARSERS = [parse_module_identification, parse_component_identification, parse_protection,
           parse_cpu_mode]


def test_real_cpu_315_module_identification(shared_dir):
    ident = parse_module_identification(databank(shared_dir)[(0x0011, None)])
    assert ident.order_code == "6ES7 315-2EH14-0AB0"
    assert ident.firmware_version == "V3.2.6"  # record 0x0007, not the boot loader
    assert ident.records[0x0081].version() == "A32.9.9"  # the boot loader libsnap7 reports
    assert ident.hardware_version == "4"


def test_real_cpu_315_components_protection_mode(shared_dir):
    banks = databank(shared_dir)
    texts = parse_component_identification(banks[(0x001C, None)])
    assert texts[0x0001] == "SNAP7-SERVER"
    assert texts[0x0002] == texts[0x0007] == "CPU 315-2 PN/DP"
    assert texts[0x0003] == ""
    assert texts[0x0004] == "Original Siemens Equipment"
    assert texts[0x0005] == "S C-C2UR28922012"
    assert texts[0x0008] == "MMC 267FF11F"
    protection = parse_protection(banks[(0x0232, 0x0004)])
    assert (protection.key_switch, protection.parametrised, protection.effective,
            protection.mode_selector_name, protection.startup_switch) == (1, 0, 1, "RUN-P", 0)
    assert protection.meaning == "no protection"
    assert parse_cpu_mode(banks[(0x0424, None)]).mode == "RUN"


def test_real_s7_1200_dump():
    ident = parse_module_identification(s7_1200_dump())
    assert ident.order_code == "6ES7 214-1AG40-0XB0"
    assert ident.firmware_version == "V4.6.0"  # record 7 repeats the MLFB on an S7-1200
    assert ident.records[0x0007].mlfb == "6ES7 214-1AG40-0XB0"
    assert ident.hardware_version == "16"


def test_protection_record_index_1_is_not_protection(shared_dir):
    with pytest.raises(ParseError, match="index 0x0004"):
        parse_protection(databank(shared_dir)[(0x0232, 0x0001)])


@pytest.mark.parametrize(("bzu_id", "mode"), [
    (0x08, "RUN"), (0x04, "STOP"), (0x03, "STOP"), (0x05, "STARTUP"), (0x0A, "HOLD"),
    (0x0D, "DEFECT"), (0x48, "RUN"), (0x0E, "unknown(0x0E)"), (0x00, "unknown(0x00)")])
def test_cpu_mode_byte(bzu_id, mode):
    record = struct.pack(">HBB", 0x4302, 0xFF, bzu_id).ljust(20, b"\0")
    assert parse_cpu_mode(struct.pack(">HH", 20, 1) + record).mode == mode


def test_python_snap7_emulator_shapes_are_rejected():
    # python-snap7 3.3's own server: 0x0232 without list header, 0x0011 one 26-byte record
    with pytest.raises(ParseError):
        parse_protection(struct.pack(">HHHHH", 1, 0, 0, 0, 0))
    with pytest.raises(ParseError, match="record length 26"):
        parse_module_identification(struct.pack(">HH", 26, 1) + bytes(26))


@pytest.mark.parametrize(("payload", "message"), [
    (b"", "shorter than the 4-byte list header"),
    (struct.pack(">HH", 28, 0), "no records"),
    (struct.pack(">HH", 28, 2) + bytes(28), "truncated"),
    (struct.pack(">HH", 28, 1) + bytes(30), "oversized"),
    (struct.pack(">HH", 10, 1) + bytes(10), "record length 10"),
    (struct.pack(">HH", 28, 9999) + bytes(28), "implausible record count"),
])
def test_bad_partial_lists(payload, message):
    with pytest.raises(ParseError, match=message):
        parse_module_identification(payload)


def test_firmware_record_without_version_letter():
    record = struct.pack(">H20sHHH", 7, b" " * 20, 0xC0, 0x2020, 0x2020)
    module = struct.pack(">H20sHHH", 1, b"6ES7 315-2EH14-0AB0 ", 0xC0, 4, 1)
    with pytest.raises(ParseError, match="no version letter"):
        parse_module_identification(struct.pack(">HH", 28, 2) + module + record)


def test_implausible_protection_values():
    record = struct.pack(">6H", 4, 40, 1, 4, 3, 3).ljust(40, b"\0")
    with pytest.raises(ParseError, match="implausible"):
        parse_protection(struct.pack(">HH", 40, 1) + record)


@pytest.mark.parametrize(("text", "normalised"), [
    ("6ES7 214-1AG40-0XB0 ", "6ES7 214-1AG40-0XB0"),
    ("6ES7214-1AG40-0XB0", "6ES7 214-1AG40-0XB0"),
    ("6es7 516-3an02-0ab0", "6ES7 516-3AN02-0AB0"),
    ("  ", None),
    ("IM151-8 PN/DP CPU", "IM151-8 PN/DP CPU"),
])
def test_normalise_order_code(text, normalised):
    assert normalise_order_code(text) == normalised


@pytest.mark.parametrize(("order_code", "product"), [
    ("6ES7 214-1AG40-0XB0", "SIMATIC S7-1200"),
    ("6AG1 214-1AG40-2XB0", "SIMATIC S7-1200"),
    ("6ES7 214-1AD23-0XB0", "SIMATIC S7-200"),
    ("6ES7 516-3AN02-0AB0", "SIMATIC S7-1500"),
    ("6ES7 315-2EH14-0AB0", "SIMATIC S7-300"),
    ("6ES7 417-4XT05-0AB0", "SIMATIC S7-400"),
    ("6ES7 151-8AB01-0AB0", "SIMATIC ET 200S CPU"),
    ("1756-L61/B", None),
])
def test_product_family_from_order_code(order_code, product):
    assert product_of(order_code) == product
    assert vendor_of(order_code) == ("Siemens" if product else None)


@pytest.mark.parametrize("parser", PARSERS)
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400))
def test_any_bytes_parse_or_parse_error(parser, data):
    with contextlib.suppress(ParseError):
        parser(data)


@pytest.mark.parametrize("parser", PARSERS)
@settings(max_examples=300, deadline=None)
@given(length=st.integers(0, 60), count=st.integers(0, 6), body=st.binary(max_size=300))
def test_well_framed_garbage_parses_or_parse_error(parser, length, count, body):
    """Headers that fit the bytes reach the record decoding; still only ParseError."""
    payload = struct.pack(">HH", length, count) + body[:length * count].ljust(length * count,
                                                                             b"\xff")
    with contextlib.suppress(ParseError):
        parser(payload)
