"""EtherNet/IP decoding at its edges: framing boundaries, the exact error texts, the code
tables by the ODVA specification and immutable records (issue 23: parse.py survivors)."""

from __future__ import annotations

import dataclasses
import struct

import pytest

from otaudit.probes.base import ParseError
from otaudit.probes.enip import parse as p

CTX = b"ctx00000"

# CIP Vol. 1 Appendix B, general status codes (the ones the table names)
CIP_GENERAL_STATUS = {
    0x00: "success", 0x01: "connection failure", 0x02: "resource unavailable",
    0x04: "path segment error", 0x05: "path destination unknown",
    0x08: "service not supported", 0x09: "invalid attribute value",
    0x0C: "object state conflict", 0x0F: "privilege violation", 0x10: "device state conflict",
    0x11: "reply data too large", 0x13: "not enough data", 0x14: "attribute not supported",
    0x15: "too much data", 0x16: "object does not exist", 0x1F: "vendor specific error",
    0x20: "invalid parameter",
}
# CIP Vol. 2, encapsulation commands
COMMANDS = {
    0x00: "NOP", 0x04: "ListServices", 0x63: "ListIdentity", 0x64: "ListInterfaces",
    0x65: "RegisterSession", 0x66: "UnRegisterSession", 0x6F: "SendRRData",
    0x70: "SendUnitData", 0x72: "IndicateStatus", 0x73: "Cancel",
}
# CIP Vol. 1, Identity status bits 4-7
EXTENDED = {
    0: "self-testing or unknown", 1: "firmware update in progress",
    2: "at least one faulted I/O connection", 3: "no I/O connections established",
    4: "non-volatile configuration bad", 5: "major fault",
    6: "at least one I/O connection in run mode",
    7: "at least one I/O connection established, all in idle mode",
}


def frame(command: int, data: bytes, *, length: int | None = None, status: int = 0) -> bytes:
    size = len(data) if length is None else length
    return p.HEADER.pack(command, size, 0, status, CTX, 0) + data


@pytest.mark.parametrize(("code", "text"), sorted(CIP_GENERAL_STATUS.items()))
def test_cip_general_status_texts(code: int, text: str) -> None:
    assert p.CipReply(0x01, code).describe() == f"CIP general status 0x{code:02X} ({text})"


@pytest.mark.parametrize("code", [0x03, 0x06, 0x21, 0xFF])
def test_unlisted_cip_status(code: int) -> None:
    assert p.CipReply(0x01, code, (0x0102,)).describe() == (
        f"CIP general status 0x{code:02X} (unknown status, extended 0x0102)")


def test_encapsulation_command_names() -> None:
    assert p.COMMAND_NAMES == COMMANDS
    assert (p.LIST_IDENTITY, p.REGISTER_SESSION, p.UNREGISTER_SESSION, p.SEND_RR_DATA) == (
        0x63, 0x65, 0x66, 0x6F)


@pytest.mark.parametrize(("bits", "text"), sorted(EXTENDED.items()))
def test_extended_status_texts_by_the_specification(bits: int, text: str) -> None:
    assert p.decode_status(bits << 4).extended == text


def test_frame_longer_than_announced_is_rejected() -> None:
    with pytest.raises(ParseError, match=r"encapsulation length 2 does not match the 3 data"):
        p.parse_frame(frame(p.LIST_IDENTITY, b"abc", length=2))
    assert p.parse_frame(frame(p.LIST_IDENTITY, b"abc")).data == b"abc"


def test_a_zero_length_item_may_end_the_packet() -> None:
    assert p.parse_items(struct.pack("<HHH", 1, p.ITEM_NULL, 0)) == [(p.ITEM_NULL, b"")]
    two = struct.pack("<HHHHH", 2, p.ITEM_UNCONNECTED, 1, 0, 0)
    with pytest.raises(ParseError, match="item 2 of 2 is missing"):
        p.parse_items(two[:-1])


def test_item_longer_than_the_packet_says_how_many_bytes_follow() -> None:
    data = struct.pack("<HHH", 1, p.ITEM_UNCONNECTED, 10) + b"abc"
    with pytest.raises(ParseError, match=r"^item 0x00B2 announces 10 bytes, 3 follow$"):
        p.parse_items(data)
    exact = struct.pack("<HHH", 1, p.ITEM_UNCONNECTED, 3) + b"abc"
    assert p.parse_items(exact) == [(p.ITEM_UNCONNECTED, b"abc")]


def test_trailing_bytes_are_counted() -> None:
    data = struct.pack("<HHH", 1, p.ITEM_NULL, 0) + b"xyz"
    with pytest.raises(ParseError, match=r"^3 unexpected bytes after 1 items$"):
        p.parse_items(data)


def test_send_rr_data_needs_handle_and_timeout() -> None:
    with pytest.raises(ParseError, match="without interface handle and timeout"):
        p.parse_send_rr_data(frame(p.SEND_RR_DATA, bytes(5)))
    with pytest.raises(ParseError, match="without an item count"):
        p.parse_send_rr_data(frame(p.SEND_RR_DATA, bytes(6)))


def test_list_identity_skips_items_of_other_kinds() -> None:
    from test_enip_parse import identity_item  # the conpot-like identity item

    item = identity_item()
    cpf = (struct.pack("<H", 3) + struct.pack("<HH", 0x0086, 2) + b"\x01\x00"
           + struct.pack("<HH", p.ITEM_IDENTITY, len(item)) + item
           + struct.pack("<HH", 0x0001, 1) + b"\x00")
    [found] = p.parse_list_identity(frame(p.LIST_IDENTITY, cpf))
    assert found.identity.product_name == "1756-L61/B LOGIX5561"


def test_header_and_status_word_cannot_be_changed() -> None:
    header = p.parse_header(frame(p.LIST_IDENTITY, b""))
    with pytest.raises(dataclasses.FrozenInstanceError):
        header.status = 1  # type: ignore[misc]
    word = p.decode_status(0x0005)
    with pytest.raises(dataclasses.FrozenInstanceError):
        word.owned = False  # type: ignore[misc]


# CIP Vol. 2, encapsulation status codes
ENCAP_STATUS = {
    0x0001: "invalid or unsupported command", 0x0002: "insufficient memory",
    0x0003: "incorrect data", 0x0064: "invalid session handle", 0x0065: "invalid length",
    0x0069: "unsupported protocol revision",
}


@pytest.mark.parametrize(("code", "text"), [*sorted(ENCAP_STATUS.items()), (0x0004, "unknown")])
def test_send_rr_data_names_the_encapsulation_status(code: int, text: str) -> None:
    with pytest.raises(ParseError, match=rf"^SendRRData answered with encapsulation status "
                                         rf"0x{code:08X} \({text}\)$"):
        p.parse_send_rr_data(frame(p.SEND_RR_DATA, bytes(6), status=code))


@pytest.mark.parametrize(("state", "name"), [
    (0, "nonexistent"), (1, "device self testing"), (2, "standby"), (3, "operational"),
    (4, "major recoverable fault"), (5, "major unrecoverable fault"),
    (255, "default for Get_Attributes_All"), (254, "reserved (254)")])
def test_every_device_state_name(state: int, name: str) -> None:
    assert p.state_name(state) == name


def test_requests_byte_for_byte() -> None:
    cip = p.cip_request(p.GET_ATTRIBUTES_ALL, p.identity_path())
    assert cip == bytes([0x01, 2, 0x20, 0x01, 0x24, 0x01])
    assert p.identity_path(7) == bytes([0x20, 0x01, 0x24, 0x01, 0x30, 0x07])
    request = p.send_rr_data_request(0x11223344, cip)
    assert request[:4] == bytes([0x6F, 0x00, 22, 0x00])
    assert request[4:8] == bytes([0x44, 0x33, 0x22, 0x11])
    assert request[24:] == (bytes(4) + bytes([10, 0]) + bytes([2, 0]) + bytes(4)
                            + bytes([0xB2, 0x00, 6, 0x00]) + cip)
    assert p.register_session_request()[24:] == bytes([1, 0, 0, 0])
    assert p.unregister_session_request(5)[:8] == bytes([0x66, 0, 0, 0, 5, 0, 0, 0])
    assert p.list_identity_request() == bytes([0x63, 0]) + bytes(10) + b"otaudit\x00" + bytes(4)
    with pytest.raises(ValueError, match="8 bytes"):
        p.encode_header(p.LIST_IDENTITY, context=b"short")
    with pytest.raises(ValueError, match="16-bit words"):
        p.cip_request(0x0E, b"\x20\x01\x24")


def test_an_identity_cannot_be_changed() -> None:
    ident = p.Identity(1, 14, 89, 20, 19, 0x3060, 1, "1769-L23E-QBFC1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ident.serial = 2  # type: ignore[misc]
    reply = p.CipReply(0x01, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        reply.status = 1  # type: ignore[misc]
