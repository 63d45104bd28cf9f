"""Read-only guard: the only OPC UA messages the probe may send.

Allowed: Hello; OpenSecureChannel and CloseSecureChannel with security policy None;
GetEndpoints; and, for BuildInfo, CreateSession, ActivateSession with an *anonymous*
identity token, Read of the Value of the BuildInfo variables (Server_ServerStatus_BuildInfo
and its six children) and CloseSession. Everything else - Write, Call (methods),
AddNodes/DeleteNodes, HistoryUpdate, subscriptions, Browse, credentials of any kind -
raises ``ForbiddenOperation`` before it is sent.

Two checks: ``check_request`` on the request object (in asyncua's send path) and
``check_frame`` on the exact bytes written to the socket (both unencrypted: the probe
only ever opens a channel with policy None).
"""

from __future__ import annotations

import struct
from typing import Any

from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import nodeid_from_binary, struct_from_binary

from otaudit.probes.base import ForbiddenOperation
from otaudit.probes.opcua.parse import BUILD_INFO

NONE_POLICY = "http://opcfoundation.org/UA/SecurityPolicy#None"
READABLE = frozenset({ua.ObjectIds.Server_ServerStatus_BuildInfo, *BUILD_INFO})
SESSIONLESS = {
    ua.GetEndpointsRequest: "GetEndpoints",
    ua.OpenSecureChannelRequest: "OpenSecureChannel",
    ua.CloseSecureChannelRequest: "CloseSecureChannel",
    ua.CreateSessionRequest: "CreateSession",
    ua.CloseSessionRequest: "CloseSession",
}
ENCODINGS = {
    ua.ObjectIds.GetEndpointsRequest_Encoding_DefaultBinary: ua.GetEndpointsRequest,
    ua.ObjectIds.OpenSecureChannelRequest_Encoding_DefaultBinary: ua.OpenSecureChannelRequest,
    ua.ObjectIds.CloseSecureChannelRequest_Encoding_DefaultBinary:
        ua.CloseSecureChannelRequest,
    ua.ObjectIds.CreateSessionRequest_Encoding_DefaultBinary: ua.CreateSessionRequest,
    ua.ObjectIds.ActivateSessionRequest_Encoding_DefaultBinary: ua.ActivateSessionRequest,
    ua.ObjectIds.ReadRequest_Encoding_DefaultBinary: ua.ReadRequest,
    ua.ObjectIds.CloseSessionRequest_Encoding_DefaultBinary: ua.CloseSessionRequest,
}


def check_request(request: Any) -> str:
    """What ``request`` is if the probe may send it; ForbiddenOperation otherwise."""
    kind = type(request)
    if kind in SESSIONLESS:
        return SESSIONLESS[kind]
    if isinstance(request, ua.ActivateSessionRequest):
        token = request.Parameters.UserIdentityToken
        if isinstance(token, ua.AnonymousIdentityToken):
            return "ActivateSession (anonymous)"
        raise ForbiddenOperation(f"ActivateSession with a {type(token).__name__} refused: "
                                 "the probe only opens anonymous sessions")
    if isinstance(request, ua.ReadRequest):
        for item in request.Parameters.NodesToRead or []:
            node = item.NodeId
            if (node.NamespaceIndex != 0 or node.Identifier not in READABLE
                    or item.AttributeId != ua.AttributeIds.Value):
                raise ForbiddenOperation(f"Read of {node.to_string()} attribute "
                                         f"{int(item.AttributeId)} refused: the probe only "
                                         "reads the BuildInfo values")
        return "Read BuildInfo"
    name = kind.__name__.removesuffix("Request")
    raise ForbiddenOperation(f"OPC UA {name} refused: the probe only reads endpoints and "
                             "BuildInfo")


def _string(data: bytes, pos: int) -> tuple[bytes | None, int]:
    (length,) = struct.unpack_from("<i", data, pos)
    if length < 0:
        return None, pos + 4
    return data[pos + 4:pos + 4 + length], pos + 4 + length


def check_frame(frame: bytes) -> str:
    """Check one OPC UA TCP message (header included) before it is written."""
    if len(frame) < 8:
        raise ForbiddenOperation("malformed outgoing OPC UA message refused")
    kind, chunk = frame[:3], frame[3:4]
    (size,) = struct.unpack_from("<I", frame, 4)
    if size != len(frame) or chunk != b"F":
        raise ForbiddenOperation("outgoing OPC UA message is not one final chunk; refused")
    if kind == b"HEL":
        return "Hello"
    try:
        if kind == b"OPN":
            policy, pos = _string(frame, 12)
            if policy != NONE_POLICY.encode():
                raise ForbiddenOperation(f"OpenSecureChannel with policy {policy!r} refused")
            _, pos = _string(frame, pos)  # sender certificate
            _, pos = _string(frame, pos)  # receiver thumbprint
            body = frame[pos + 8:]
        elif kind in (b"MSG", b"CLO"):
            body = frame[24:]  # channel id, token id, sequence number, request id
        else:
            raise ForbiddenOperation(f"OPC UA message type {kind!r} refused")
        buf = Buffer(body)
        typeid = nodeid_from_binary(buf.copy())  # the request's TypeId field, peeked
        request_type = ENCODINGS.get(typeid.Identifier) if typeid.NamespaceIndex == 0 \
            else None
        if request_type is None:
            raise ForbiddenOperation(f"OPC UA request {typeid.to_string()} refused")
        request = struct_from_binary(request_type, buf)
    except ForbiddenOperation:
        raise
    except Exception as exc:  # a frame asyncua cannot decode is not sent either
        raise ForbiddenOperation(f"undecodable outgoing OPC UA message refused ({exc})") \
            from None
    expected = {b"OPN": ua.OpenSecureChannelRequest, b"CLO": ua.CloseSecureChannelRequest}
    if kind in expected and not isinstance(request, expected[kind]):
        raise ForbiddenOperation(f"{kind.decode()} message carrying "
                                 f"{type(request).__name__} refused")
    return check_request(request)
