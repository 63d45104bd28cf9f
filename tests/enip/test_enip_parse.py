"""EtherNet/IP decoding: a real controller's reply, every edge of the framing, fuzz."""

from __future__ import annotations

import contextlib
import struct

import pytest
from enip_helpers import recording
from hypothesis import given
from hypothesis import strategies as st

from otaudit.probes.base import ParseError
from otaudit.probes.enip import identity as id_rules
from otaudit.probes.enip.parse import (
    EXTENDED_STATUS,
    HEADER,
    LIST_IDENTITY,
    SEND_RR_DATA,
    Identity,
    decode_status,
    parse_frame,
    parse_identity_all,
    parse_items,
    parse_list_identity,
    parse_register_session,
    parse_send_rr_data,
    state_name,
)


def real_1769() -> bytes:
    return recording("1769-L23E_get_attributes_all.hex")


def test_real_compactlogix_get_attributes_all_reply():
    """pycomm3 recorded this reply of a 1769-L23E-QBFC1; it decoded it to the same values."""
    reply = parse_send_rr_data(real_1769())
    assert reply.service == 0x01 and reply.status == 0 and reply.extended_status == ()
    ident = parse_identity_all(reply.data)
    assert (ident.vendor_id, ident.device_type, ident.product_code) == (1, 14, 89)
    assert (ident.major, ident.minor, ident.revision) == (20, 19, "20.19")
    assert ident.status == 0x3060 and ident.serial == 0xC00FA09B
    assert ident.product_name == "1769-L23E-QBFC1 LOGIX5323E-QBFC1"
    assert ident.state is None  # this controller sends attributes 1-7 only
    facts, unknown = id_rules.identity_facts(ident)
    assert facts == {
        "identity.vendor": "Rockwell Automation", "identity.model": ident.product_name,
        "identity.order_code": "1769-L23E-QBFC1", "identity.product": "CompactLogix",
        "identity.firmware_version": "20.019", "identity.serial": "0xc00fa09b"}
    assert set(unknown) == {"identity.hardware_version"}
    status = decode_status(ident.status)
    assert status.extended == "at least one I/O connection in run mode"
    assert not status.owned and not status.configured and status.faults == ()


def test_every_truncation_of_the_real_reply_is_a_parse_error():
    raw = real_1769()
    for cut in range(len(raw)):
        with pytest.raises(ParseError):
            reply = parse_send_rr_data(raw[:cut])
            parse_identity_all(reply.data)


def list_identity_reply(item: bytes, *, status: int = 0, command: int = LIST_IDENTITY,
                        items: int = 1) -> bytes:
    cpf = struct.pack("<HHH", items, 0x0C, len(item)) + item
    return HEADER.pack(command, len(cpf), 0, status, b"ctx00000", 0) + cpf


def identity_item(name: bytes = b"1756-L61/B LOGIX5561", family: bytes = b"\x00\x02",
                  state: bytes = b"\x03") -> bytes:
    body = struct.pack("<HHHBBHI", 1, 14, 54, 20, 11, 0x3160, 0x006C061A)
    return (struct.pack("<H", 1) + family + struct.pack(">H", 44818) + bytes([192, 168, 1, 5])
            + bytes(8) + body + bytes([len(name)]) + name + state)


def test_list_identity_item_as_nmap_saw_conpot():
    """The identity nmap's enip-info printed for conpot (../shared observed notes)."""
    [item] = parse_list_identity(list_identity_reply(identity_item()))
    ident = item.identity
    assert item.socket_address == "192.168.1.5:44818" and item.encapsulation_version == 1
    assert ident.product_name == "1756-L61/B LOGIX5561" and ident.revision == "20.11"
    assert ident.serial == 0x006C061A and ident.state == 3 and ident.product_code == 54
    facts, _ = id_rules.identity_facts(ident)
    assert facts["identity.product"] == "ControlLogix 5560"
    assert facts["identity.order_code"] == "1756-L61"
    assert facts["identity.hardware_version"] == "Series B"


def test_socket_family_sent_little_endian_is_accepted():
    """A FANUC R-30iB+ sends sin_family 0x0200 (the bytes of AF_INET little-endian)."""
    [item] = parse_list_identity(list_identity_reply(identity_item(family=b"\x02\x00")))
    assert item.socket_address == "192.168.1.5:44818"


@pytest.mark.parametrize(("reply", "message"), [
    (list_identity_reply(identity_item(), status=1), "encapsulation status"),
    (list_identity_reply(identity_item(), command=0x65), "command 0x0065"),
    (list_identity_reply(identity_item(state=b"")), "state byte"),
    (list_identity_reply(identity_item(state=b"\x03\x00")), "unexpected bytes"),
    (list_identity_reply(identity_item(name=b"", state=b"")[:-1] + b"\x20abc"), "announced"),
    (list_identity_reply(b"\x01\x00"), "too short"),
    (list_identity_reply(identity_item(), items=2), "item 2 of 2 is missing"),
    (HEADER.pack(LIST_IDENTITY, 2, 0, 0, b"ctx00000", 0) + b"\x00\x00", "no identity item"),
])
def test_malformed_list_identity(reply, message):
    with pytest.raises(ParseError, match=message):
        parse_list_identity(reply)


def test_frame_length_must_match():
    frame = HEADER.pack(LIST_IDENTITY, 5, 0, 0, b"ctx00000", 0) + b"1234"
    with pytest.raises(ParseError, match="does not match"):
        parse_frame(frame)
    with pytest.raises(ParseError, match="expected 24"):
        parse_frame(frame[:23])


def test_items_with_trailing_bytes_are_rejected():
    with pytest.raises(ParseError, match="unexpected bytes"):
        parse_items(struct.pack("<HHH", 1, 0, 0) + b"x")
    assert parse_items(struct.pack("<H", 0)) == []


def test_register_session_reply():
    ok = HEADER.pack(0x65, 4, 0x1234, 0, b"ctx00000", 0) + b"\x01\x00\x00\x00"
    assert parse_register_session(ok) == (0x1234, 0)
    refused = HEADER.pack(0x65, 4, 0, 1, b"ctx00000", 0) + b"\x01\x00\x00\x00"
    assert parse_register_session(refused) == (0, 1)
    with pytest.raises(ParseError, match="without a session handle"):
        parse_register_session(HEADER.pack(0x65, 4, 0, 0, b"ctx00000", 0) + bytes(4))


def rr_reply(cip: bytes, *, extra_item: bool = False, status: int = 0) -> bytes:
    cpf = struct.pack("<IHH", 0, 0, 3 if extra_item else 2) + struct.pack("<HH", 0, 0)
    cpf += struct.pack("<HH", 0xB2, len(cip)) + cip
    if extra_item:
        cpf += struct.pack("<HH", 0xB2, len(cip)) + cip
    return HEADER.pack(SEND_RR_DATA, len(cpf), 7, status, b"ctx00000", 0) + cpf


def test_cip_error_reply_with_extended_status():
    reply = parse_send_rr_data(rr_reply(bytes([0x81, 0, 0x08, 1, 0x34, 0x12])))
    assert reply.status == 0x08 and reply.extended_status == (0x1234,)
    assert "service not supported" in reply.describe() and "0x1234" in reply.describe()


@pytest.mark.parametrize(("reply", "message"), [
    (rr_reply(bytes([0x01, 0, 0, 0])), "not a reply"),
    (rr_reply(bytes([0x81, 0, 0, 2, 0])), "extended status words"),
    (rr_reply(bytes([0x81, 0])), "too short"),
    (rr_reply(bytes([0x81, 0, 0, 0]), extra_item=True), "2 unconnected data items"),
    (rr_reply(bytes([0x81, 0, 0, 0]), status=0x64), "invalid session handle"),
])
def test_malformed_send_rr_data(reply, message):
    with pytest.raises(ParseError, match=message):
        parse_send_rr_data(reply)


def test_optional_attributes_after_the_name_keep_the_state():
    data = struct.pack("<HHHBBHI", 1, 14, 1, 1, 2, 0, 5) + b"\x01A" + b"\x03\x12\x34\x00"
    ident = parse_identity_all(data)
    assert ident.state == 3 and ident.extra == b"\x03\x12\x34\x00"


@pytest.mark.parametrize("bits", range(16))
def test_extended_status_values(bits):
    status = decode_status(bits << 4)
    assert status.extended == EXTENDED_STATUS.get(bits, f"vendor specific ({bits})")


@pytest.mark.parametrize(("word", "faults"), [
    (0x0100, ("minor recoverable fault",)), (0x0200, ("minor unrecoverable fault",)),
    (0x0400, ("major recoverable fault",)), (0x0800, ("major unrecoverable fault",)),
    (0x0F00, ("minor recoverable fault", "minor unrecoverable fault",
              "major recoverable fault", "major unrecoverable fault")),
    (0x0000, ()),
])
def test_fault_bits(word, faults):
    assert decode_status(word).faults == faults


def test_owned_and_configured_bits():
    assert decode_status(0x0001).owned and not decode_status(0x0001).configured
    assert decode_status(0x0004).configured and not decode_status(0x0004).owned


@pytest.mark.parametrize(("state", "name"), [
    (0, "nonexistent"), (3, "operational"), (5, "major unrecoverable fault"),
    (6, "reserved (6)"), (255, "default for Get_Attributes_All"), (None, None)])
def test_state_names(state, name):
    assert state_name(state) == name


def make(vendor: int, name: str, major: int = 33, minor: int = 11) -> Identity:
    return Identity(vendor, 14, 1, major, minor, 0, 1, name)


@pytest.mark.parametrize(("name", "order", "series", "product"), [
    ("1756-L83E/B", "1756-L83E", "B", "ControlLogix 5580"),
    ("1756-L85E/B", "1756-L85E", "B", "ControlLogix 5580"),
    ("1756-L83ES/B", "1756-L83ES", "B", "GuardLogix 5580"),
    ("1756-L71/B LOGIX5571", "1756-L71", "B", "ControlLogix 5570"),
    ("1756-L73S/B LOGIX5573S", "1756-L73S", "B", "GuardLogix 5570"),
    ("1756-L61/B LOGIX5561", "1756-L61", "B", "ControlLogix 5560"),
    ("5069-L320ER/A", "5069-L320ER", "A", "CompactLogix 5380"),
    ("5069-L330ERS2/A", "5069-L330ERS2", "A", "Compact GuardLogix 5380"),
    ("5069-L4200ERM/A", "5069-L4200ERM", "A", "CompactLogix 5480"),
    ("1769-L33ER/A LOGIX5333ER", "1769-L33ER", "A", "CompactLogix 5370"),
    ("1769-L30ERMS/A", "1769-L30ERMS", "A", "Compact GuardLogix 5370"),
    ("1769-L32E Ethernet Port", "1769-L32E", None, "CompactLogix"),
    ("2080-LC50-24QWB", "2080-LC50-24QWB", None, "Micro850"),
    ("2080-L50E-24QBB", "2080-L50E-24QBB", None, "Micro850"),
    ("2080-LC70-24QBB", "2080-LC70-24QBB", None, "Micro870"),
    ("1766-L32BWA B/15.00", "1766-L32BWA", None, "MicroLogix 1400"),
    ("1756-EN2T/D", "1756-EN2T", "D", "ControlLogix EtherNet/IP communication module"),
    ("1734-AENTR/C", "1734-AENTR", "C", None),
])
def test_rockwell_catalog_rules(name, order, series, product):
    info = id_rules.product_info(make(1, name))
    assert (info.order_code, info.series, info.product) == (order, series, product)


def test_unknown_vendor_and_name_stay_unknown_with_reasons():
    facts, unknown = id_rules.identity_facts(make(4242, "Widget 3000", 3, 7))
    assert facts == {"identity.model": "Widget 3000", "identity.firmware_version": "3.7",
                     "identity.serial": "0x00000001"}
    assert "4242" in unknown["identity.vendor"]
    assert set(unknown) == {"identity.vendor", "identity.order_code", "identity.product",
                            "identity.hardware_version"}
    _, unknown = id_rules.identity_facts(make(1, ""))
    assert "empty product name" in unknown["identity.model"]


@pytest.mark.parametrize(("vendor", "expected"), [(1, "33.011"), (1251, "33.11"),
                                                  (4242, "33.11")])
def test_revision_format_follows_the_vendor(vendor, expected):
    assert id_rules.firmware_version(make(vendor, "x")) == expected


def test_vendor_table_entries_cite_a_source():
    import yaml

    data = yaml.safe_load((id_rules.HERE / "vendors.yaml").read_text())["vendors"]
    assert data and all(entry.get("source") and entry.get("name") for entry in data.values())
    assert id_rules.vendors()[1].name == "Rockwell Automation"


@pytest.mark.parametrize(("device_type", "name"), [
    (14, "Programmable Logic Controller"), (12, "Communications Adapter"),
    (0x2B, "Generic Device (keyable)"), (0x7F, "vendor specific or unlisted (127)")])
def test_device_type_names(device_type, name):
    assert id_rules.device_type_name(device_type) == name


@given(st.binary(max_size=200))
def test_decoders_raise_only_parse_errors(data):
    for decoder in (parse_list_identity, parse_send_rr_data, parse_register_session,
                    parse_identity_all):
        with contextlib.suppress(ParseError):
            decoder(data)
