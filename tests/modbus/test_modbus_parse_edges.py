"""Device-identification replies at their exact limits (issue 23: boundaries first)."""

from __future__ import annotations

import pytest

from otaudit.probes.base import ParseError
from otaudit.probes.modbus.parse import (
    IDENTITY_OBJECTS,
    ExceptionReply,
    identity_facts,
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
