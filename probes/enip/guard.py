"""Read-only guard: the only EtherNet/IP messages the probe may send.

Allowed, checked on the exact bytes about to be written:

* ListIdentity (0x63) without data;
* RegisterSession (0x65, protocol version 1) and UnRegisterSession (0x66) - the session
  an explicit request needs;
* SendRRData (0x6F) carrying exactly one unconnected request (a null address item and
  one unconnected data item) whose CIP service is Get_Attributes_All (0x01) or
  Get_Attribute_Single (0x0E) on the Identity object, class 1 instance 1.

Everything else - SendUnitData, ListServices, Forward_Open, Unconnected_Send routing,
Set_Attribute, Reset (which would restart the device), any other class - raises
``ForbiddenOperation`` before a byte is sent. The CIP Security check on port 2221 is a
TLS handshake only and sends no CIP at all (``client.tls_posture``).
"""

from __future__ import annotations

import struct

from otaudit.probes.base import ForbiddenOperation, ParseError
from otaudit.probes.enip.parse import (
    COMMAND_NAMES,
    GET_ATTRIBUTE_SINGLE,
    GET_ATTRIBUTES_ALL,
    HEADER_SIZE,
    ITEM_NULL,
    ITEM_UNCONNECTED,
    LIST_IDENTITY,
    REGISTER_SESSION,
    SEND_RR_DATA,
    UNREGISTER_SESSION,
    identity_path,
    parse_frame,
    parse_items,
)

SERVICE_NAMES = {0x01: "Get_Attributes_All", 0x02: "Set_Attributes_All", 0x05: "Reset",
                 0x0E: "Get_Attribute_Single", 0x10: "Set_Attribute_Single",
                 0x4C: "Read Tag", 0x4D: "Write Tag", 0x52: "Unconnected_Send",
                 0x54: "Forward_Open", 0x4E: "Forward_Close", 0x5B: "Large_Forward_Open"}


def check_request(frame: bytes) -> str:
    """What ``frame`` is, if the probe may send it; ForbiddenOperation otherwise."""
    try:
        parsed = parse_frame(frame)
    except ParseError as exc:
        raise ForbiddenOperation(f"malformed outgoing EtherNet/IP frame refused: {exc}") \
            from None
    command, data = parsed.header.command, parsed.data
    name = COMMAND_NAMES.get(command, f"command 0x{command:04X}")
    if command == LIST_IDENTITY and not data:
        return "ListIdentity"
    if command == REGISTER_SESSION and data == struct.pack("<HH", 1, 0):
        return "RegisterSession"
    if command == UNREGISTER_SESSION and not data:
        return "UnRegisterSession"
    if command == SEND_RR_DATA:
        return _check_unconnected(data)
    raise ForbiddenOperation(f"EtherNet/IP {name} refused: the probe only reads the identity")


def _check_unconnected(data: bytes) -> str:
    try:
        items = parse_items(data[6:]) if len(data) >= 8 else None
    except ParseError:
        items = None
    if not items or len(items) != 2 or items[0] != (ITEM_NULL, b"") \
            or items[1][0] != ITEM_UNCONNECTED:
        raise ForbiddenOperation("SendRRData refused: only one unconnected request to the "
                                 "Identity object may be sent")
    cip = items[1][1]
    if len(cip) < 2:
        raise ForbiddenOperation("SendRRData refused: empty CIP request")
    service, words = cip[0], cip[1]
    path, rest = cip[2:2 + 2 * words], cip[2 + 2 * words:]
    service_name = SERVICE_NAMES.get(service, f"service 0x{service:02X}")
    if service == GET_ATTRIBUTES_ALL and path == identity_path() and not rest:
        return "Get_Attributes_All Identity/1"
    if (service == GET_ATTRIBUTE_SINGLE and len(path) == 6 and path[:4] == identity_path()
            and path[4] == 0x30 and not rest):
        return f"Get_Attribute_Single Identity/1/{path[5]}"
    if service in (GET_ATTRIBUTES_ALL, GET_ATTRIBUTE_SINGLE):
        raise ForbiddenOperation(f"CIP {service_name} refused outside the Identity object "
                                 f"(path {path.hex()})")
    raise ForbiddenOperation(f"CIP {service_name} refused: the probe only reads the identity")


__all__ = ["HEADER_SIZE", "check_request"]
