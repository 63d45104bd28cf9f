"""Device-identification replies at their exact limits (issue 23: boundaries first)."""

from __future__ import annotations

import dataclasses

import pytest

from otaudit.probes.base import ParseError
from otaudit.probes.modbus.parse import (
    IDENTITY_OBJECTS,
    ExceptionReply,
    identity_facts,
    object_table,
    parse_device_id_reply,
)

HEADER = bytes([0x2B, 0x0E, 1, 0x81, 0, 0])


def test_vendor_spelling_is_normalised_only_in_the_vendor() -> None:
    # the same text in every identity object: only identity.vendor is normalised
    facts = identity_facts({oid: b"Siemens AG" for oid in IDENTITY_OBJECTS})
    assert facts == {path: ("Siemens" if path == "identity.vendor" else "Siemens AG")
                     for path in IDENTITY_OBJECTS.values()}


def test_every_identity_object_maps_to_its_fact() -> None:
    objects = {oid: f"v{oid}".encode() for oid in (*IDENTITY_OBJECTS, 0x03, 0x06, 0x80)}
    assert identity_facts(objects) == {path: f"v{oid}" for oid, path in IDENTITY_OBJECTS.items()}


@pytest.mark.parametrize("read_code", [1, 2, 3, 4])
def test_every_read_code_is_accepted(read_code: int) -> None:
    pdu = bytes([0x2B, 0x0E, read_code, 0x81, 0, 0, 0])
    assert parse_device_id_reply(pdu).read_code == read_code


@pytest.mark.parametrize("read_code", [0, 5])
def test_read_codes_one_past_the_range_are_refused(read_code: int) -> None:
    with pytest.raises(ParseError, match=f"code {read_code} is not 1-4"):
        parse_device_id_reply(bytes([0x2B, 0x0E, read_code, 0x81, 0, 0, 0]))


def test_shortest_reply_is_exactly_seven_bytes() -> None:
    assert parse_device_id_reply(HEADER + bytes([0])).objects == {}
    with pytest.raises(ParseError, match="6 bytes is too short"):
        parse_device_id_reply(HEADER)


def test_an_object_header_one_byte_short_is_a_parse_error() -> None:
    # count 1, then only the object id: the length byte is missing
    with pytest.raises(ParseError, match="object 1 of 1 is missing"):
        parse_device_id_reply(HEADER + bytes([1, 0x00]))


def test_an_object_exactly_filling_the_reply_is_read() -> None:
    reply = parse_device_id_reply(HEADER + bytes([1, 0x00, 3]) + b"abc")
    assert reply.objects == {0: b"abc"}
    with pytest.raises(ParseError, match="truncated"):
        parse_device_id_reply(HEADER + bytes([1, 0x00, 4]) + b"abc")


@pytest.mark.parametrize("more", [0x00, 0xFF])
def test_both_more_follows_values(more: int) -> None:
    reply = parse_device_id_reply(bytes([0x2B, 0x0E, 1, 0x81, more, 0, 0]))
    assert reply.more_follows is (more == 0xFF)


def test_exception_reply_is_exactly_two_bytes() -> None:
    assert parse_device_id_reply(bytes([0xAB, 0x01])) == ExceptionReply(0xAB, 0x01)
    with pytest.raises(ParseError, match="exception reply of 3 bytes"):
        parse_device_id_reply(bytes([0xAB, 0x01, 0x00]))


@pytest.mark.parametrize(("code", "name"), [
    (0x01, "illegal function"), (0x02, "illegal data address"), (0x03, "illegal data value"),
    (0x04, "server device failure"), (0x05, "acknowledge"), (0x06, "server device busy"),
    (0x08, "memory parity error"), (0x0A, "gateway path unavailable"),
    (0x0B, "gateway target device failed to respond"), (0x07, "unknown code"),
    (0x09, "unknown code"), (0x00, "unknown code"), (0x0C, "unknown code"),
])
def test_every_exception_code_is_described_by_its_name(code: int, name: str) -> None:
    assert ExceptionReply(0xAB, code).describe() == f"exception {code:02X} ({name})"


def test_replies_are_frozen() -> None:
    reply = parse_device_id_reply(HEADER + bytes([0]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        reply.read_code = 2  # type: ignore[misc]
    exception = parse_device_id_reply(bytes([0xAB, 0x04]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        exception.code = 1  # type: ignore[misc]


@pytest.mark.parametrize("function_code", [0xAA, 0xAC, 0xFF, 0x2A, 0x2C])
def test_only_0x2b_and_its_exception_code_are_read(function_code: int) -> None:
    # 0xAB (0x2B | 0x80) is the exception; the codes next to it are just wrong replies
    with pytest.raises(ParseError, match=f"function code 0x{function_code:02X}, expected 0x2B"):
        parse_device_id_reply(bytes([function_code, 0x01]))


@pytest.mark.parametrize(("extra", "count"), [(1, 1), (2, 1), (5, 1)])
def test_trailing_bytes_are_counted_exactly(extra: int, count: int) -> None:
    pdu = HEADER + bytes([count, 0x00, 1]) + b"a" + bytes(extra)
    with pytest.raises(ParseError, match=f"^{extra} unexpected bytes after {count} objects$"):
        parse_device_id_reply(pdu)


def test_trailing_bytes_after_no_objects() -> None:
    with pytest.raises(ParseError, match=r"^3 unexpected bytes after 0 objects$"):
        parse_device_id_reply(HEADER + bytes([0, 9, 9, 9]))


def test_object_ids_at_the_byte_limits() -> None:
    assert object_table({0x00: b"a", 0xFF: b"b"}) == {"0x00": "a", "0xff": "b"}
    assert identity_facts({0xFF: b"x", 0x00: b"Moxa"}) == {"identity.vendor": "Moxa"}
    for bad in (0x100, -1):
        with pytest.raises(ParseError, match=f"^object id {bad} is not a byte$"):
            object_table({bad: b"a"})
    with pytest.raises(ParseError, match="object id '1' is not a byte"):
        object_table({"1": b"a"})  # type: ignore[dict-item]


@pytest.mark.parametrize("mei", [0x0D, 0x0F, 0x00, 0xFF])
def test_only_mei_type_0x0e_is_read(mei: int) -> None:
    with pytest.raises(ParseError, match=f"^MEI type 0x{mei:02X}, expected 0x0E$"):
        parse_device_id_reply(bytes([0x2B, mei, 1, 0x81, 0, 0, 0]))
