"""Seeded, protocol-aware mutations of a device's replies (the fuzz proxy applies them).

A mutation is either **breaking** — it removes or disorders bytes without putting new
content in their place (truncation, early close, slow trickle, a length field that lies,
trailing junk beyond the frame) — or **altering**: it changes content (bit flips, another
PDU type, a byte overwritten). After a breaking mutation no new value can honestly be read
from the reply; after an altering one a well-formed but different answer may result.

Protocol knowledge is framing only (no probe code): Modbus/TCP MBAP, S7 TPKT/COTP/S7 header,
SSH identification line and binary packet header, SNMP BER, EtherNet/IP encapsulation header
and common packet format, OPC UA message header, HTTP/1.1 responses (WinRM).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["breaking", "altering"]
MAX_DATAGRAM = 65_507


@dataclass(frozen=True)
class Mutation:
    """What to send instead of a reply: ``data`` (maybe nothing), then maybe ``close``;
    ``trickle`` seconds between single bytes (a slow device)."""

    name: str
    kind: Kind
    data: bytes
    close: bool = False
    trickle: float = 0.0
    reply: bytes = field(default=b"", compare=False, repr=False)  # the reply it replaced


Mutator = Callable[[bytes, random.Random], Mutation]


# --- generic ------------------------------------------------------------------------------

def bit_flip(data: bytes, rng: random.Random) -> Mutation:
    out = bytearray(data or b"\x00")
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return Mutation("bit_flip", "altering", bytes(out))


def overwrite(data: bytes, rng: random.Random) -> Mutation:
    out = bytearray(data or b"\x00")
    i = rng.randrange(len(out))
    out[i] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
    return Mutation("overwrite_byte", "altering", bytes(out))


def truncate_close(data: bytes, rng: random.Random) -> Mutation:
    return Mutation("truncate_close", "breaking", data[:rng.randrange(max(len(data), 1))],
                    close=True)


def truncate_stall(data: bytes, rng: random.Random) -> Mutation:
    """Part of the reply, then silence with the connection open."""
    return Mutation("truncate_stall", "breaking", data[:rng.randrange(max(len(data), 1))])


def early_close(data: bytes, rng: random.Random) -> Mutation:
    return Mutation("early_close", "breaking", b"", close=True)


def oversize(data: bytes, rng: random.Random) -> Mutation:
    junk = rng.randbytes(rng.choice((1, 64, 4096, 65_536, 1_048_576)))
    return Mutation("oversize", "breaking", data + junk)


def trickle(data: bytes, rng: random.Random) -> Mutation:
    return Mutation("slow_trickle", "breaking", data,
                    trickle=rng.choice((0.001, 0.01, 0.05, 0.3)))


GENERIC: tuple[Mutator, ...] = (bit_flip, overwrite, truncate_close, truncate_stall,
                                early_close, oversize, trickle)


# --- framing-aware --------------------------------------------------------------------------

def _set16(data: bytes, offset: int, value: int) -> bytes:
    if len(data) < offset + 2:
        return data
    return data[:offset] + struct.pack(">H", value & 0xFFFF) + data[offset + 2:]


def _lie(current: int, rng: random.Random, limit: int = 0xFFFF) -> int:
    choices = [0, 1, max(current - 1, 0), current + 1, current * 2, limit,
               rng.randrange(limit + 1)]
    value = rng.choice(choices)
    return value if value != current else (current + 1) & limit


def modbus_length_lie(data: bytes, rng: random.Random) -> Mutation:
    """MBAP length (bytes 4-5) that disagrees with what follows."""
    current = struct.unpack(">H", data[4:6])[0] if len(data) >= 6 else 0
    return Mutation("mbap_length_lie", "breaking", _set16(data, 4, _lie(current, rng)))


def modbus_wrong_type(data: bytes, rng: random.Random) -> Mutation:
    """Another function code (or protocol id / transaction id) in the reply."""
    out = bytearray(data)
    if len(out) < 8:
        return bit_flip(data, rng)
    field = rng.choice(("function", "function", "protocol", "transaction"))
    if field == "function":
        out[7] = rng.choice((0x01, 0x03, 0x2B | 0x80, 0x83, 0x2B, rng.randrange(256)))
        if out[7] == data[7]:
            out[7] ^= 0x80
    elif field == "protocol":
        out[2:4] = struct.pack(">H", rng.randrange(1, 0x10000))
    else:
        out[0:2] = struct.pack(">H", (struct.unpack(">H", data[0:2])[0] + 1) & 0xFFFF)
    return Mutation(f"mbap_wrong_{field}", "altering", bytes(out))


def s7_length_lie(data: bytes, rng: random.Random) -> Mutation:
    """A lying TPKT length, COTP length indicator or S7 parameter/data length."""
    fields = [("tpkt", 2, 16)]
    if len(data) > 4:
        fields.append(("cotp", 4, 8))
    if len(data) >= 17 and data[7] == 0x32:
        fields += [("s7_param", 13, 16), ("s7_data", 15, 16)]
    name, offset, width = rng.choice(fields)
    if width == 8:
        out = bytearray(data)
        out[offset] = _lie(out[offset], rng, 0xFF)
        return Mutation(f"{name}_length_lie", "breaking", bytes(out))
    current = struct.unpack(">H", data[offset:offset + 2])[0] if len(data) >= offset + 2 else 0
    return Mutation(f"{name}_length_lie", "breaking", _set16(data, offset, _lie(current, rng)))


def s7_wrong_type(data: bytes, rng: random.Random) -> Mutation:
    """Another COTP PDU type (CC, DT, DR, ER) or S7 ROSCTR."""
    out = bytearray(data)
    if len(out) > 8 and out[7] == 0x32 and rng.random() < 0.5:
        out[8] = rng.choice((0x01, 0x02, 0x03, 0x07, rng.randrange(256)))
        return Mutation("s7_wrong_rosctr", "altering", bytes(out))
    if len(out) > 5:
        out[5] = rng.choice((0xD0, 0xF0, 0x80, 0x70, 0xE0))
        return Mutation("cotp_wrong_type", "altering", bytes(out))
    return bit_flip(data, rng)


def _ssh_packet_offset(data: bytes) -> int | None:
    """Where the first binary packet starts (after an identification line, if any)."""
    if data.startswith(b"SSH-"):
        end = data.find(b"\n")
        return end + 1 if 0 <= end < len(data) - 5 else None
    return 0 if len(data) >= 6 else None


def ssh_length_lie(data: bytes, rng: random.Random) -> Mutation:
    """A lying packet_length (or padding_length) of the first binary packet, or a broken
    identification line."""
    at = _ssh_packet_offset(data)
    if at is None:
        if data.startswith(b"SSH-"):
            cut = data.find(b"\n")
            line = data[:cut] if cut >= 0 else data
            return Mutation("ssh_banner_unterminated", "breaking", line * rng.randint(1, 300))
        return truncate_stall(data, rng)
    if rng.random() < 0.2:
        out = bytearray(data)
        out[at + 4] = _lie(out[at + 4], rng, 0xFF)
        return Mutation("ssh_padding_length_lie", "breaking", bytes(out))
    current = struct.unpack(">I", data[at:at + 4])[0]
    value = rng.choice((0, 1, 5, current - 1, current + 1, 35_000, 2**31, 2**32 - 1))
    value = value if value != current else current + 7
    out = data[:at] + struct.pack(">I", value & 0xFFFFFFFF) + data[at + 4:]
    return Mutation("ssh_packet_length_lie", "breaking", out)


def ssh_wrong_type(data: bytes, rng: random.Random) -> Mutation:
    """Another message number in the first binary packet (meaningful before encryption)."""
    at = _ssh_packet_offset(data)
    if at is None or len(data) <= at + 5:
        return bit_flip(data, rng)
    out = bytearray(data)
    out[at + 5] = rng.choice((1, 2, 4, 5, 6, 20, 21, 30, 31, 51, 52, 60, 80, 94, 97, 255))
    return Mutation("ssh_wrong_message", "altering", bytes(out))


def _ber_lengths(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of every BER length field of the constructed TLVs, outermost first."""
    found: list[tuple[int, int]] = []

    def walk(start: int, end: int, depth: int) -> None:
        pos = start
        while pos + 2 <= end and depth < 12:
            tag = data[pos]
            first = data[pos + 1]
            size = 1 if first < 0x80 else 1 + (first & 0x7F)
            if pos + 1 + size > end:
                return
            length = first if first < 0x80 else int.from_bytes(data[pos + 2:pos + 1 + size],
                                                                "big")
            body = pos + 1 + size
            found.append((pos + 1, size))
            if tag & 0x20:  # constructed: look inside
                walk(body, min(body + length, end), depth + 1)
            pos = body + length

    walk(0, len(data), 0)
    return found


def ber_length_lie(data: bytes, rng: random.Random) -> Mutation:
    """One BER length field that disagrees with its content (short or long form)."""
    lengths = _ber_lengths(data)
    if not lengths:
        return truncate_stall(data, rng)
    offset, size = rng.choice(lengths)
    if size == 1:
        replacement = bytes([rng.choice((0x00, 0x01, 0x7F, 0x80, 0x81, 0x84, 0xFF,
                                         rng.randrange(0x80)))])
    else:
        replacement = bytes([0x80 | (size - 1)]) + rng.randbytes(size - 1)
        if rng.random() < 0.3:  # a length of lengths beyond what fits
            replacement = bytes([0x84]) + b"\xff\xff\xff\xff"
    out = data[:offset] + replacement + data[offset + size:]
    return Mutation("ber_length_lie", "breaking", out)


def snmp_wrong_type(data: bytes, rng: random.Random) -> Mutation:
    """Another PDU tag (GetRequest, Trap, Report, ...) or SNMP version."""
    lengths = _ber_lengths(data)
    out = bytearray(data)
    if len(lengths) >= 2 and rng.random() < 0.7:
        # the PDU is the third TLV of the message (version, community, PDU) in v1/v2c
        tags = [offset - 1 for offset, _ in lengths]
        pdu = next((t for t in tags if 0xA0 <= out[t] <= 0xA8), None)
        if pdu is not None:
            out[pdu] = rng.choice((0xA0, 0xA1, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8))
            return Mutation("snmp_wrong_pdu_type", "altering", bytes(out))
    version = _find_version(data)
    if version is not None:
        out[version] = rng.choice((0, 1, 3, 7, 255))
        return Mutation("snmp_wrong_version", "altering", bytes(out))
    return bit_flip(data, rng)


def snmp_version(datagram: bytes) -> int | None:
    """The message version of an SNMP datagram: 0 (v1), 1 (v2c), 3 (v3); None if unclear."""
    at = _find_version(datagram)
    return datagram[at] if at is not None else None


def _find_version(data: bytes) -> int | None:
    # 30 LL 02 01 VV: the version value of a v1/v2c message
    if len(data) > 4 and data[0] == 0x30:
        at = 2 if data[1] < 0x80 else 2 + (data[1] & 0x7F)
        if len(data) > at + 2 and data[at] == 0x02 and data[at + 1] == 0x01:
            return at + 2
    return None


# --- EtherNet/IP -----------------------------------------------------------------------------

ENIP_HEADER = 24
ENIP_CPF_AT = {0x63: 0, 0x64: 0, 0x04: 0, 0x6F: 6, 0x70: 6}  # command -> CPF offset in data


def _set16le(data: bytes, offset: int, value: int) -> bytes:
    if len(data) < offset + 2:
        return data
    return data[:offset] + struct.pack("<H", value & 0xFFFF) + data[offset + 2:]


def _enip_items(data: bytes) -> list[int]:
    """Offsets of the common packet format items (type, length) of an encapsulation frame."""
    if len(data) < ENIP_HEADER + 2:
        return []
    at = ENIP_CPF_AT.get(struct.unpack("<H", data[0:2])[0])
    if at is None:
        return []
    pos = ENIP_HEADER + at
    if len(data) < pos + 2:
        return []
    count, pos = struct.unpack("<H", data[pos:pos + 2])[0], pos + 2
    found = []
    for _ in range(min(count, 16)):
        if len(data) < pos + 4:
            break
        found.append(pos)
        pos += 4 + struct.unpack("<H", data[pos + 2:pos + 4])[0]
    return found


def enip_length_lie(data: bytes, rng: random.Random) -> Mutation:
    """A lying encapsulation length (uint16 LE at offset 2) or CPF item length."""
    items = _enip_items(data)
    if items and rng.random() < 0.3:
        at = rng.choice(items) + 2
        current = struct.unpack("<H", data[at:at + 2])[0]
        return Mutation("enip_item_length_lie", "breaking",
                        _set16le(data, at, _lie(current, rng)))
    if len(data) < 4:
        return truncate_stall(data, rng)
    current = struct.unpack("<H", data[2:4])[0]
    return Mutation("enip_length_lie", "breaking", _set16le(data, 2, _lie(current, rng)))


def enip_wrong_type(data: bytes, rng: random.Random) -> Mutation:
    """Another encapsulation command or CPF item type."""
    items = _enip_items(data)
    if items and rng.random() < 0.5:
        at = rng.choice(items)
        current = struct.unpack("<H", data[at:at + 2])[0]
        value = rng.choice((0x0000, 0x000C, 0x00A1, 0x00B1, 0x00B2, 0x0086, 0x8000,
                            rng.randrange(0x10000)))
        value = value if value != current else current ^ 0x0100
        return Mutation("enip_wrong_item_type", "altering", _set16le(data, at, value))
    if len(data) < 2:
        return bit_flip(data, rng)
    current = struct.unpack("<H", data[0:2])[0]
    value = rng.choice((0x0000, 0x0004, 0x0063, 0x0064, 0x0065, 0x0066, 0x006F, 0x0070,
                        rng.randrange(0x10000)))
    value = value if value != current else current ^ 0x0001
    return Mutation("enip_wrong_command", "altering", _set16le(data, 0, value))


# --- OPC UA ----------------------------------------------------------------------------------

OPCUA_TYPES = (b"HEL", b"ACK", b"ERR", b"RHE", b"OPN", b"CLO", b"MSG")


def opcua_length_lie(data: bytes, rng: random.Random) -> Mutation:
    """A lying message size (uint32 LE at offset 4) in the OPC UA message header."""
    if len(data) < 8:
        return truncate_stall(data, rng)
    current = struct.unpack("<I", data[4:8])[0]
    value = rng.choice((0, 1, 7, 8, max(current - 1, 0), current + 1, current * 2, 0xFFFF,
                        2**31, 2**32 - 1, rng.randrange(2**32)))
    value = value if value != current else current + 3
    out = data[:4] + struct.pack("<I", value & 0xFFFFFFFF) + data[8:]
    return Mutation("opcua_size_lie", "breaking", out)


def opcua_wrong_type(data: bytes, rng: random.Random) -> Mutation:
    """Another message type ("MSG", "OPN", "ACK", "ERR", ...) or chunk type."""
    if len(data) < 4:
        return bit_flip(data, rng)
    if rng.random() < 0.3:
        chunk = rng.choice((b"F", b"C", b"A", b"X", bytes([rng.randrange(256)])))
        chunk = chunk if chunk != data[3:4] else b"A" if data[3:4] != b"A" else b"C"
        return Mutation("opcua_wrong_chunk_type", "altering", data[:3] + chunk + data[4:])
    kind = rng.choice((*OPCUA_TYPES, rng.randbytes(3)))
    kind = kind if kind != data[:3] else b"ERR" if data[:3] != b"ERR" else b"MSG"
    return Mutation("opcua_wrong_message_type", "altering", kind + data[3:])


# --- HTTP (WinRM) ----------------------------------------------------------------------------

SOAP_FAULT = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
              b'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing">'
              b"<s:Header><a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
              b"</a:Action></s:Header><s:Body><s:Fault><s:Code><s:Value>s:Receiver"
              b"</s:Value></s:Code><s:Reason><s:Text xml:lang=\"en-US\">The WS-Management "
              b"service cannot process the request.</s:Text></s:Reason></s:Fault></s:Body>"
              b"</s:Envelope>")


def _http_split(data: bytes) -> tuple[bytes, bytes] | None:
    """(head with its blank line, body) of a chunk that starts an HTTP response."""
    if not data.startswith(b"HTTP/"):
        return None
    end = data.find(b"\r\n\r\n")
    return (data[:end + 4], data[end + 4:]) if end >= 0 else None


def _without_length(head: bytes) -> list[bytes]:
    return [line for line in head[:-4].split(b"\r\n")
            if not line.lower().startswith((b"content-length:", b"transfer-encoding:"))]


def http_length_lie(data: bytes, rng: random.Random) -> Mutation:
    """A Content-Length that disagrees with the body."""
    parts = _http_split(data)
    if parts is None:
        return truncate_close(data, rng)
    head, body = parts
    value = rng.choice((0, 1, max(len(body) - 1, 0), len(body) + 1, len(body) * 2 + 10,
                        2**31, -5))
    text = str(value) if rng.random() < 0.9 else rng.choice(("abc", "1e3", "", "0x10"))
    lines = [*_without_length(head), f"Content-Length: {text}".encode()]
    return Mutation("http_length_lie", "breaking", b"\r\n".join(lines) + b"\r\n\r\n" + body,
                    close=rng.random() < 0.5)


def http_broken_chunked(data: bytes, rng: random.Random) -> Mutation:
    """The body in chunked transfer encoding whose framing is broken (a lying or non-hex
    chunk size, no last chunk)."""
    parts = _http_split(data)
    if parts is None:
        return truncate_close(data, rng)
    head, body = parts
    lines = [*_without_length(head), b"Transfer-Encoding: chunked"]
    size = len(body)
    how = rng.choice(("size_lie", "not_hex", "no_last_chunk", "no_crlf"))
    if how == "size_lie":
        lie = rng.choice((size + 1, size * 2 + 16, max(size - 1, 1), 0xFFFFFFFF))
        chunked = f"{lie:x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    elif how == "not_hex":
        chunked = b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    elif how == "no_last_chunk":
        chunked = f"{size:x}\r\n".encode() + body + b"\r\n"
    else:
        chunked = f"{size:x}\r\n".encode() + body + b"0\r\n\r\n"
    return Mutation(f"http_chunked_{how}", "breaking",
                    b"\r\n".join(lines) + b"\r\n\r\n" + chunked, close=rng.random() < 0.5)


def http_wrong_status(data: bytes, rng: random.Random) -> Mutation:
    """Another status line, or a SOAP fault where a response was expected."""
    parts = _http_split(data)
    if parts is None:
        return bit_flip(data, rng)
    head, body = parts
    lines = _without_length(head)
    if rng.random() < 0.4:
        body = SOAP_FAULT
        lines[0] = b"HTTP/1.1 500 Internal Server Error"
        name = "http_soap_fault"
    else:
        lines[0] = rng.choice((b"HTTP/1.1 200 OK", b"HTTP/1.1 500 Internal Server Error",
                               b"HTTP/1.1 401 Unauthorized", b"HTTP/1.1 400 Bad Request",
                               b"HTTP/1.1 302 Found", b"HTTP/1.1 100 Continue",
                               b"HTTP/1.1 204 No Content", b"HTTP/1.0 999 What",
                               b"HTTP/1.1 abc", b"HTTP/9.9 200 OK", b"NOTHTTP 200"))
        name = "http_wrong_status"
    lines.append(f"Content-Length: {len(body)}".encode())
    return Mutation(name, "altering", b"\r\n".join(lines) + b"\r\n\r\n" + body)


def http_body_truncated(data: bytes, rng: random.Random) -> Mutation:
    """The head whole, the body cut short (then closed, or silence)."""
    parts = _http_split(data)
    if parts is None or not parts[1]:
        return truncate_close(data, rng)
    head, body = parts
    return Mutation("http_body_truncated", "breaking", head + body[:rng.randrange(len(body))],
                    close=rng.random() < 0.5)


PROTOCOL: dict[str, tuple[Mutator, ...]] = {
    "modbus": (modbus_length_lie, modbus_wrong_type),
    "s7": (s7_length_lie, s7_wrong_type),
    "ssh": (ssh_length_lie, ssh_wrong_type),
    "snmp": (ber_length_lie, snmp_wrong_type),
    "enip": (enip_length_lie, enip_wrong_type),
    "opcua": (opcua_length_lie, opcua_wrong_type),
    "winrm": (http_length_lie, http_broken_chunked, http_wrong_status, http_body_truncated),
}
DATAGRAM_UNSUITED = frozenset({"truncate_stall"})  # no stream to stall over UDP


def mutators(protocol: str, datagram: bool = False) -> tuple[Mutator, ...]:
    """The generic mutators and ``protocol``'s framing-aware ones (twice as likely)."""
    own = PROTOCOL.get(protocol, ())
    generic = tuple(m for m in GENERIC if not (datagram and m is truncate_stall))
    return generic + own + own


def mutate(protocol: str, data: bytes, rng: random.Random, *,
           datagram: bool = False) -> Mutation:
    """One seeded mutation of ``data``; datagrams never grow beyond ``MAX_DATAGRAM``."""
    mutation = rng.choice(mutators(protocol, datagram))(data, rng)
    if datagram and len(mutation.data) > MAX_DATAGRAM:
        mutation = Mutation(mutation.name, mutation.kind, mutation.data[:MAX_DATAGRAM],
                            mutation.close, mutation.trickle)
    return mutation
