"""Pure parsers: real wire bytes, examples, and property tests (bytes → result or ParseError)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otaudit.probes.base import ParseError
from otaudit.probes.modbus.parse import (
    DeviceIdReply,
    ExceptionReply,
    decode_object,
    identity_facts,
    normalise_vendor,
    object_table,
    parse_device_id_reply,
)

objects_strategy = st.dictionaries(st.integers(0, 255), st.binary(max_size=40), max_size=12)


def encode_reply(objects: dict[int, bytes], read_code: int = 1, conformity: int = 0x81,
                 more: bool = False, next_id: int = 0) -> bytes:
    body = b"".join(bytes([oid, len(v)]) + v for oid, v in objects.items())
    return bytes([0x2B, 0x0E, read_code, conformity, 0xFF if more else 0, next_id,
                  len(objects)]) + body


def conpot_replies(shared_dir: Path) -> dict[str, bytes]:
    """``uid N FC43/14 code C`` → reply PDU (MBAP header removed) from the real capture."""
    replies = {}
    for line in (shared_dir / "fixtures/real/modbus/conpot_fc17_fc43_wire.txt").read_text(
            ).splitlines():
        words = line.split()
        if len(words) == 6 and words[2] == "FC43/14":
            replies[f"uid {words[1]} code {words[4]}"] = bytes.fromhex(words[5])[7:]
    return replies


def test_real_conpot_replies(shared_dir: Path) -> None:
    replies = conpot_replies(shared_dir)
    reply = parse_device_id_reply(replies["uid 1 code 2"])
    assert isinstance(reply, DeviceIdReply)
    assert reply.objects == {0: b"Siemens", 1: b"SIMATIC", 2: b"S7-200"}
    assert reply.conformity == 0x01 and not reply.more_follows
    assert identity_facts(reply.objects) == {
        "identity.vendor": "Siemens", "identity.order_code": "SIMATIC",
        "identity.firmware_version": "S7-200"}
    assert parse_device_id_reply(replies["uid 255 code 1"]) == ExceptionReply(0xAB, 0x04)


def test_example_reply_with_more_follows() -> None:
    pdu = encode_reply({0x80: b"abc", 0x81: b""}, read_code=3, conformity=0x83,
                       more=True, next_id=0x82)
    assert parse_device_id_reply(pdu) == DeviceIdReply(3, 0x83, True, 0x82,
                                                       {0x80: b"abc", 0x81: b""})


@pytest.mark.parametrize(("pdu", "message"), [
    (b"", "empty"),
    (bytes([0x83, 0x02]), "function code 0x83"),
    (bytes([0xAB]), "exception reply of 1 bytes"),
    (bytes([0x2B, 0x0E, 1, 0x81, 0, 0]), "too short"),
    (bytes([0x2B, 0x0D, 1, 0x81, 0, 0, 0]), "MEI type 0x0D"),
    (bytes([0x2B, 0x0E, 9, 0x81, 0, 0, 0]), "code 9"),
    (bytes([0x2B, 0x0E, 1, 0x81, 0x01, 0, 0]), "more-follows byte 0x01"),
    (bytes([0x2B, 0x0E, 1, 0x81, 0, 0, 2, 0, 1, 65]), "object 2 of 2 is missing"),
    (bytes([0x2B, 0x0E, 1, 0x81, 0, 0, 1, 0, 5, 65]), "truncated"),
    (bytes([0x2B, 0x0E, 1, 0x81, 0, 0, 2, 0, 1, 65, 0, 1, 66]), "appears twice"),
    (bytes([0x2B, 0x0E, 1, 0x81, 0, 0, 1, 0, 1, 65, 0]), "unexpected bytes"),
])
def test_malformed_replies_raise_parse_error(pdu: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_device_id_reply(pdu)


def test_object_decoding_and_vendor_spelling() -> None:
    assert decode_object(b"v3.20\x00\x00") == "v3.20"
    assert decode_object(b"\xff\x01") == "hex:ff01"
    assert decode_object(b"a\nb") == "hex:610a62"
    assert normalise_vendor("  SCHNEIDER   ELECTRIC ") == "Schneider Electric"
    assert normalise_vendor("Schneider-Electric") == "Schneider Electric"
    assert normalise_vendor("Siemens AG") == "Siemens"
    assert normalise_vendor("Phoenix Contact GmbH & Co. KG") == "Phoenix Contact"
    assert normalise_vendor("Acme  Automation") == "Acme Automation"
    assert identity_facts({0: b"", 1: b"\xfe\xff", 2: b" 1.0 ", 5: b"M  221"}) == {
        "identity.firmware_version": "1.0", "identity.model": "M 221"}
    assert object_table({0x80: b"x", 0: b"y"}) == {"0x00": "y", "0x80": "x"}


@given(st.binary(max_size=300))
def test_any_bytes_give_a_reply_or_parse_error(data: bytes) -> None:
    try:
        reply = parse_device_id_reply(data)
    except ParseError:
        return
    # what was accepted is exactly what the reply said: re-encoding gives the same bytes
    if isinstance(reply, ExceptionReply):
        assert data == bytes([0xAB, reply.code])
    else:
        assert encode_reply(reply.objects, reply.read_code, reply.conformity,
                            reply.more_follows, reply.next_object_id) == data


@given(objects_strategy, st.integers(1, 4), st.integers(0, 255), st.booleans(),
       st.integers(0, 255))
def test_encoded_replies_round_trip_and_every_truncation_is_refused(
        objects: dict[int, bytes], code: int, conformity: int, more: bool, next_id: int) -> None:
    pdu = encode_reply(objects, code, conformity, more, next_id)
    assert parse_device_id_reply(pdu) == DeviceIdReply(code, conformity, more, next_id, objects)
    for cut in range(len(pdu)):
        with pytest.raises(ParseError):
            parse_device_id_reply(pdu[:cut])


@given(st.dictionaries(st.integers(-5, 300) | st.text(max_size=3), st.binary(max_size=40),
                       max_size=12))
def test_any_objects_give_facts_or_parse_error(objects: dict) -> None:
    try:
        facts = identity_facts(objects)
        table = object_table(objects)
    except ParseError:
        assert any(not isinstance(k, int) or not 0 <= k <= 255 for k in objects)
        return
    assert set(table) == {f"0x{k:02x}" for k in objects}
    assert all(isinstance(v, str) and v and v == v.strip() for v in facts.values())


@given(objects_strategy)
def test_valid_objects_always_give_facts(objects: dict[int, bytes]) -> None:
    facts = identity_facts(objects)
    assert set(facts) <= {"identity.vendor", "identity.order_code",
                          "identity.firmware_version", "identity.product", "identity.model"}
