"""Pure decoding of Read Device Identification (FC 43 / MEI 14) replies.

Every function here takes bytes (or a mapping of object id to bytes) and returns
plain values or raises ``ParseError``; nothing else, whatever the device sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from otaudit.probes.base import ParseError

FC_DEVICE_ID = 0x2B
MEI_DEVICE_ID = 0x0E
MORE_FOLLOWS = 0xFF

READ_CODE_NAMES = {1: "basic", 2: "regular", 3: "extended", 4: "specific"}
EXCEPTION_NAMES = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}

# object id → identity fact (Modbus Application Protocol v1.1b3, table of basic/regular objects)
IDENTITY_OBJECTS = {
    0x00: "identity.vendor",            # VendorName
    0x01: "identity.order_code",        # ProductCode
    0x02: "identity.firmware_version",  # MajorMinorRevision
    0x04: "identity.product",           # ProductName
    0x05: "identity.model",             # ModelName
}

# lower-case vendor spelling (legal suffixes removed) → normalised name (docs/facts.md)
VENDORS = {
    "schneider electric": "Schneider Electric",
    "schneider electric sa": "Schneider Electric",
    "schneider automation": "Schneider Electric",
    "schneider": "Schneider Electric",
    "siemens": "Siemens",
    "moxa": "Moxa",
    "phoenix contact": "Phoenix Contact",
    "hirschmann": "Hirschmann",
    "cisco": "Cisco",
    "cisco systems": "Cisco",
}
_LEGAL_SUFFIX = re.compile(r"[\s,]+(inc|ag|gmbh|gmbh & co\.? kg|co\.? kg|se|sas|ltd|llc|corp)\.?$")


@dataclass(frozen=True)
class ExceptionReply:
    """A Modbus exception answer (function code with the high bit set)."""

    function_code: int
    code: int

    def describe(self) -> str:
        return f"exception {self.code:02X} ({EXCEPTION_NAMES.get(self.code, 'unknown code')})"


@dataclass(frozen=True)
class DeviceIdReply:
    """One Read Device Identification answer."""

    read_code: int
    conformity: int
    more_follows: bool
    next_object_id: int
    objects: dict[int, bytes] = field(default_factory=dict)


def parse_device_id_reply(pdu: bytes) -> DeviceIdReply | ExceptionReply:
    """Decode the reply PDU (function code first, no MBAP header) to FC 43 / MEI 14."""
    if not pdu:
        raise ParseError("empty reply")
    function_code = pdu[0]
    if function_code == FC_DEVICE_ID | 0x80:
        if len(pdu) != 2:
            raise ParseError(f"exception reply of {len(pdu)} bytes, expected 2")
        return ExceptionReply(function_code, pdu[1])
    if function_code != FC_DEVICE_ID:
        raise ParseError(f"reply has function code 0x{function_code:02X}, expected 0x2B")
    if len(pdu) < 7:
        raise ParseError(f"device identification reply of {len(pdu)} bytes is too short")
    mei, read_code, conformity, more, next_id, count = pdu[1:7]
    if mei != MEI_DEVICE_ID:
        raise ParseError(f"MEI type 0x{mei:02X}, expected 0x0E")
    if read_code not in READ_CODE_NAMES:
        raise ParseError(f"read device id code {read_code} is not 1-4")
    if more not in (0x00, MORE_FOLLOWS):
        raise ParseError(f"more-follows byte 0x{more:02X} is neither 0x00 nor 0xFF")
    objects: dict[int, bytes] = {}
    pos = 7
    for n in range(count):
        if pos + 2 > len(pdu):
            raise ParseError(f"object {n + 1} of {count} is missing")
        object_id, length = pdu[pos], pdu[pos + 1]
        if pos + 2 + length > len(pdu):
            raise ParseError(f"object 0x{object_id:02X} is truncated ({length} bytes announced)")
        if object_id in objects:
            raise ParseError(f"object 0x{object_id:02X} appears twice")
        objects[object_id] = pdu[pos + 2 : pos + 2 + length]
        pos += 2 + length
    if pos != len(pdu):
        raise ParseError(f"{len(pdu) - pos} unexpected bytes after {count} objects")
    return DeviceIdReply(read_code, conformity, more == MORE_FOLLOWS, next_id, objects)


def decode_object(value: bytes) -> str:
    """An object value as text; non-text values as ``hex:…`` (never guessed)."""
    trimmed = value.rstrip(b"\x00")
    try:
        text = trimmed.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + value.hex()
    return text if text.isprintable() else "hex:" + value.hex()


def object_table(objects: Mapping[int, bytes]) -> dict[str, str]:
    """``modbus.device_id_objects``: ``{"0x00": "Schneider Electric", …}`` in id order."""
    for object_id in objects:
        if not isinstance(object_id, int) or not 0 <= object_id <= 0xFF:
            raise ParseError(f"object id {object_id!r} is not a byte")
    return {f"0x{oid:02x}": decode_object(bytes(objects[oid])) for oid in sorted(objects)}


def normalise_vendor(name: str) -> str:
    """Light normalisation of well-known vendor spellings; others only trimmed."""
    clean = " ".join(name.split())
    key = _LEGAL_SUFFIX.sub("", clean.lower().replace("-", " ")).strip()
    return VENDORS.get(key, clean)


def identity_facts(objects: Mapping[int, bytes]) -> dict[str, str]:
    """Identity facts from the basic/regular objects that hold non-empty text."""
    facts: dict[str, str] = {}
    table = object_table(objects)
    for object_id, path in IDENTITY_OBJECTS.items():
        text = table.get(f"0x{object_id:02x}", "")
        if text.startswith("hex:"):
            continue
        text = " ".join(text.split())
        if text:
            facts[path] = normalise_vendor(text) if path == "identity.vendor" else text
    return facts
