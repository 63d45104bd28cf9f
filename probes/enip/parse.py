"""Pure encoding and decoding of the EtherNet/IP frames the probe uses.

Only what identification needs: the 24-byte encapsulation header, ListIdentity,
RegisterSession and SendRRData carrying one unconnected CIP request to the Identity
object (Get_Attributes_All, Get_Attribute_Single). Decoders take bytes and return plain
values or raise ``ParseError``; nothing else, whatever the device sent. Field layouts:
ODVA "The CIP Networks Library" vol. 2 (encapsulation, common packet format) and vol. 1
(Identity object, class 0x01), as also documented in vendors' manuals.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from otaudit.probes.base import ParseError

HEADER = struct.Struct("<HHII8sI")  # command, length, session, status, context, options
HEADER_SIZE = HEADER.size  # 24
LIST_IDENTITY, REGISTER_SESSION, UNREGISTER_SESSION, SEND_RR_DATA = 0x63, 0x65, 0x66, 0x6F
COMMAND_NAMES = {
    0x00: "NOP", 0x04: "ListServices", 0x63: "ListIdentity", 0x64: "ListInterfaces",
    0x65: "RegisterSession", 0x66: "UnRegisterSession", 0x6F: "SendRRData",
    0x70: "SendUnitData", 0x72: "IndicateStatus", 0x73: "Cancel",
}
ITEM_NULL, ITEM_IDENTITY, ITEM_UNCONNECTED = 0x0000, 0x000C, 0x00B2
GET_ATTRIBUTES_ALL, GET_ATTRIBUTE_SINGLE = 0x01, 0x0E
IDENTITY_CLASS, IDENTITY_INSTANCE = 0x01, 0x01
ENCAPSULATION_STATUS = {
    0x0001: "invalid or unsupported command", 0x0002: "insufficient memory",
    0x0003: "incorrect data", 0x0064: "invalid session handle", 0x0065: "invalid length",
    0x0069: "unsupported protocol revision",
}
CIP_STATUS = {
    0x00: "success", 0x01: "connection failure", 0x02: "resource unavailable",
    0x04: "path segment error", 0x05: "path destination unknown", 0x08: "service not supported",
    0x09: "invalid attribute value", 0x0C: "object state conflict",
    0x0F: "privilege violation", 0x10: "device state conflict", 0x11: "reply data too large",
    0x13: "not enough data", 0x14: "attribute not supported", 0x15: "too much data",
    0x16: "object does not exist", 0x1F: "vendor specific error", 0x20: "invalid parameter",
}


@dataclass(frozen=True)
class Header:
    command: int
    length: int
    session: int
    status: int
    context: bytes
    options: int


@dataclass(frozen=True)
class Identity:
    """The Identity object attributes 1-7 (and 8, state, where the reply carries it)."""

    vendor_id: int
    device_type: int
    product_code: int
    major: int
    minor: int
    status: int
    serial: int
    product_name: str
    state: int | None = None
    extra: bytes = b""  # attributes after those above (Get_Attributes_All), undecoded

    @property
    def revision(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class ListIdentityItem:
    encapsulation_version: int
    socket_address: str  # the address the device reports for itself ("a.b.c.d:port")
    identity: Identity


@dataclass(frozen=True)
class CipReply:
    service: int  # the request's service code (without the 0x80 reply bit)
    status: int
    extended_status: tuple[int, ...] = ()
    data: bytes = b""

    def describe(self) -> str:
        text = CIP_STATUS.get(self.status, "unknown status")
        ext = f", extended {', '.join(f'0x{s:04X}' for s in self.extended_status)}" \
            if self.extended_status else ""
        return f"CIP general status 0x{self.status:02X} ({text}{ext})"


@dataclass(frozen=True)
class Frame:
    header: Header
    data: bytes = field(default=b"")


# ---- encoding (requests) ------------------------------------------------------------------

def encode_header(command: int, data: bytes = b"", *, session: int = 0,
                  context: bytes = b"otaudit\x00") -> bytes:
    if len(context) != 8:
        raise ValueError("sender context is 8 bytes")
    return HEADER.pack(command, len(data), session, 0, context, 0) + data


def list_identity_request(context: bytes = b"otaudit\x00") -> bytes:
    return encode_header(LIST_IDENTITY, context=context)


def register_session_request() -> bytes:
    return encode_header(REGISTER_SESSION, struct.pack("<HH", 1, 0))


def unregister_session_request(session: int) -> bytes:
    return encode_header(UNREGISTER_SESSION, session=session)


def identity_path(attribute: int | None = None) -> bytes:
    """Logical EPATH class 1 / instance 1 (/ attribute), 8-bit segments."""
    path = bytes([0x20, IDENTITY_CLASS, 0x24, IDENTITY_INSTANCE])
    return path + (bytes([0x30, attribute]) if attribute is not None else b"")


def cip_request(service: int, path: bytes, data: bytes = b"") -> bytes:
    if len(path) % 2:
        raise ValueError("an EPATH is a whole number of 16-bit words")
    return bytes([service, len(path) // 2]) + path + data


def send_rr_data_request(session: int, cip: bytes, timeout: int = 10) -> bytes:
    """SendRRData with a null address item and one unconnected data item."""
    cpf = struct.pack("<IHH", 0, timeout, 2) + struct.pack("<HH", ITEM_NULL, 0)
    cpf += struct.pack("<HH", ITEM_UNCONNECTED, len(cip)) + cip
    return encode_header(SEND_RR_DATA, cpf, session=session)


# ---- decoding -----------------------------------------------------------------------------

def parse_header(raw: bytes) -> Header:
    if len(raw) < HEADER_SIZE:
        raise ParseError(f"encapsulation header of {len(raw)} bytes, expected 24")
    return Header(*HEADER.unpack_from(raw))


def parse_frame(raw: bytes) -> Frame:
    """One whole encapsulation message (header and exactly ``length`` data bytes)."""
    header = parse_header(raw)
    if len(raw) != HEADER_SIZE + header.length:
        raise ParseError(f"encapsulation length {header.length} does not match the "
                         f"{len(raw) - HEADER_SIZE} data bytes received")
    return Frame(header, raw[HEADER_SIZE:])


def parse_items(data: bytes) -> list[tuple[int, bytes]]:
    """The common packet format: item count, then (type, length, data) items."""
    if len(data) < 2:
        raise ParseError("common packet format without an item count")
    (count,) = struct.unpack_from("<H", data)
    pos, items = 2, []
    for n in range(count):
        if pos + 4 > len(data):
            raise ParseError(f"item {n + 1} of {count} is missing")
        kind, length = struct.unpack_from("<HH", data, pos)
        if pos + 4 + length > len(data):
            raise ParseError(f"item 0x{kind:04X} announces {length} bytes, "
                             f"{len(data) - pos - 4} follow")
        items.append((kind, data[pos + 4:pos + 4 + length]))
        pos += 4 + length
    if pos != len(data):
        raise ParseError(f"{len(data) - pos} unexpected bytes after {count} items")
    return items


def _short_string(data: bytes, pos: int, what: str) -> tuple[str, int]:
    if pos >= len(data):
        raise ParseError(f"{what}: the length byte is missing")
    length = data[pos]
    end = pos + 1 + length
    if end > len(data):
        raise ParseError(f"{what}: {length} bytes announced, {len(data) - pos - 1} follow")
    return data[pos + 1:end].decode("latin-1"), end


def parse_identity(data: bytes, *, with_state: bool) -> tuple[Identity, int]:
    """Attributes 1-7 (and the state byte when ``with_state``); returns the end offset."""
    if len(data) < 15:
        raise ParseError(f"identity of {len(data)} bytes is too short (at least 15)")
    vendor, device_type, product, major, minor, status, serial = struct.unpack_from(
        "<HHHBBHI", data)
    name, pos = _short_string(data, 14, "product name")
    state = None
    if with_state:
        if pos >= len(data):
            raise ParseError("identity item ends before the state byte")
        state, pos = data[pos], pos + 1
    return Identity(vendor, device_type, product, major, minor, status, serial,
                    name, state), pos


def parse_list_identity(raw: bytes) -> list[ListIdentityItem]:
    """A ListIdentity reply (whole encapsulation message) → its identity items."""
    frame = parse_frame(raw)
    if frame.header.command != LIST_IDENTITY:
        raise ParseError(f"reply to ListIdentity has command 0x{frame.header.command:04X}")
    if frame.header.status:
        raise ParseError(f"ListIdentity answered with encapsulation status "
                         f"0x{frame.header.status:08X}")
    found = []
    for kind, item in parse_items(frame.data):
        if kind != ITEM_IDENTITY:
            continue
        if len(item) < 18:
            raise ParseError(f"identity item of {len(item)} bytes is too short")
        (version,) = struct.unpack_from("<H", item)
        # sockaddr_in is big-endian by the specification; some devices send the family
        # little-endian, which does not matter here: only port and address are shown.
        port, address = struct.unpack_from(">HI", item, 4)
        ident, end = parse_identity(item[18:], with_state=True)
        if end != len(item) - 18:
            raise ParseError(f"{len(item) - 18 - end} unexpected bytes after the state byte")
        dotted = ".".join(str(b) for b in address.to_bytes(4, "big"))
        found.append(ListIdentityItem(version, f"{dotted}:{port}", ident))
    if not found:
        raise ParseError("ListIdentity reply holds no identity item")
    return found


def parse_register_session(raw: bytes) -> tuple[int, int]:
    """(session handle, encapsulation status) of a RegisterSession reply."""
    frame = parse_frame(raw)
    if frame.header.command != REGISTER_SESSION:
        raise ParseError(f"reply to RegisterSession has command 0x{frame.header.command:04X}")
    if frame.header.status == 0 and frame.header.session == 0:
        raise ParseError("RegisterSession accepted without a session handle")
    return frame.header.session, frame.header.status


def parse_send_rr_data(raw: bytes) -> CipReply:
    """The CIP reply inside a SendRRData reply's unconnected data item."""
    frame = parse_frame(raw)
    if frame.header.command != SEND_RR_DATA:
        raise ParseError(f"reply to SendRRData has command 0x{frame.header.command:04X}")
    if frame.header.status:
        status = frame.header.status
        raise ParseError(f"SendRRData answered with encapsulation status 0x{status:08X} "
                         f"({ENCAPSULATION_STATUS.get(status, 'unknown')})")
    if len(frame.data) < 6:
        raise ParseError("SendRRData reply without interface handle and timeout")
    items = parse_items(frame.data[6:])
    data = [item for kind, item in items if kind == ITEM_UNCONNECTED]
    if len(data) != 1:
        raise ParseError(f"SendRRData reply holds {len(data)} unconnected data items, not 1")
    return parse_cip_reply(data[0])


def parse_cip_reply(data: bytes) -> CipReply:
    if len(data) < 4:
        raise ParseError(f"CIP reply of {len(data)} bytes is too short")
    service, _, status, ext_words = data[:4]
    if not service & 0x80:
        raise ParseError(f"CIP message 0x{service:02X} is not a reply")
    end = 4 + 2 * ext_words
    if end > len(data):
        raise ParseError(f"{ext_words} extended status words announced, not present")
    ext = struct.unpack_from(f"<{ext_words}H", data, 4) if ext_words else ()
    return CipReply(service & 0x7F, status, tuple(ext), data[end:])


def parse_identity_all(data: bytes) -> Identity:
    """Get_Attributes_All of Identity instance 1: attributes 1-7, then optional ones
    (state, configuration consistency value, heartbeat, ...) kept undecoded but the state."""
    ident, end = parse_identity(data, with_state=False)
    rest = data[end:]
    if rest:
        return Identity(ident.vendor_id, ident.device_type, ident.product_code, ident.major,
                        ident.minor, ident.status, ident.serial, ident.product_name,
                        rest[0], rest)
    return ident


# ---- meaning of the values ----------------------------------------------------------------

DEVICE_STATES = {
    0: "nonexistent", 1: "device self testing", 2: "standby", 3: "operational",
    4: "major recoverable fault", 5: "major unrecoverable fault",
    255: "default for Get_Attributes_All",
}
# status bits 4-7 (CIP vol. 1, as listed e.g. in the SINAMICS EtherNet/IP manual)
EXTENDED_STATUS = {
    0: "self-testing or unknown", 1: "firmware update in progress",
    2: "at least one faulted I/O connection", 3: "no I/O connections established",
    4: "non-volatile configuration bad", 5: "major fault",
    6: "at least one I/O connection in run mode",
    7: "at least one I/O connection established, all in idle mode",
}
FAULT_BITS = {8: "minor recoverable fault", 9: "minor unrecoverable fault",
              10: "major recoverable fault", 11: "major unrecoverable fault"}


@dataclass(frozen=True)
class StatusWord:
    owned: bool
    configured: bool
    extended: str
    faults: tuple[str, ...]


def decode_status(status: int) -> StatusWord:
    ext = (status >> 4) & 0x0F
    return StatusWord(
        owned=bool(status & 0x0001), configured=bool(status & 0x0004),
        extended=EXTENDED_STATUS.get(ext, f"vendor specific ({ext})"),
        faults=tuple(name for bit, name in FAULT_BITS.items() if status & (1 << bit)))


def state_name(state: int | None) -> str | None:
    if state is None:
        return None
    return DEVICE_STATES.get(state, f"reserved ({state})")
