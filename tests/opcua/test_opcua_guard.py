"""Only discovery and BuildInfo reads leave the OPC UA probe: objects, bytes, the wire."""

from __future__ import annotations

import pytest
from asyncua import ua
from asyncua.common.connection import SecureConnection, TransportLimits
from asyncua.crypto.security_policies import SecurityPolicyNone
from asyncua.ua.ua_binary import struct_to_binary
from hypothesis import given
from hypothesis import strategies as st
from opcua_helpers import opcua_server, opcua_servers

from otaudit.probes.base import ForbiddenOperation
from otaudit.probes.opcua.client import OpcUaConnection
from otaudit.probes.opcua.guard import check_frame, check_request

FIXTURES = (opcua_server, opcua_servers)  # pytest finds fixtures by name in this module


def read(*nodes: int, attribute: ua.AttributeIds = ua.AttributeIds.Value) -> ua.ReadRequest:
    request = ua.ReadRequest()
    for node in nodes:
        request.Parameters.NodesToRead.append(ua.ReadValueId(NodeId=ua.NodeId(node, 0),
                                                             AttributeId=attribute))
    return request


def activate(token: object) -> ua.ActivateSessionRequest:
    request = ua.ActivateSessionRequest()
    request.Parameters.UserIdentityToken = token
    return request


ALLOWED = {
    "GetEndpoints": ua.GetEndpointsRequest(),
    "OpenSecureChannel": ua.OpenSecureChannelRequest(),
    "CloseSecureChannel": ua.CloseSecureChannelRequest(),
    "CreateSession": ua.CreateSessionRequest(),
    "ActivateSession (anonymous)": activate(ua.AnonymousIdentityToken(PolicyId="anonymous")),
    "Read BuildInfo": read(*range(2260, 2267)),
    "CloseSession": ua.CloseSessionRequest(),
}
FORBIDDEN = {
    "Write": ua.WriteRequest(),
    "Call (a method)": ua.CallRequest(),
    "AddNodes": ua.AddNodesRequest(),
    "DeleteNodes": ua.DeleteNodesRequest(),
    "AddReferences": ua.AddReferencesRequest(),
    "HistoryUpdate": ua.HistoryUpdateRequest(),
    "HistoryRead": ua.HistoryReadRequest(),
    "Browse": ua.BrowseRequest(),
    "CreateSubscription": ua.CreateSubscriptionRequest(),
    "CreateMonitoredItems": ua.CreateMonitoredItemsRequest(),
    "RegisterServer": ua.RegisterServerRequest(),
    "FindServers": ua.FindServersRequest(),
    "ActivateSession with a user name": activate(ua.UserNameIdentityToken(
        PolicyId="username", UserName="admin", Password=b"admin")),
    "ActivateSession with a certificate": activate(ua.X509IdentityToken(PolicyId="cert")),
    "Read of another node": read(2260, ua.ObjectIds.Server_ServerStatus_State),
    "Read of the BuildInfo's browse name": read(2261, attribute=ua.AttributeIds.BrowseName),
    "Read in another namespace": ua.ReadRequest(Parameters=ua.ReadParameters(NodesToRead=[
        ua.ReadValueId(NodeId=ua.NodeId(2261, 2), AttributeId=ua.AttributeIds.Value)])),
}


def frame(request: object, kind: bytes = ua.MessageType.SecureMessage) -> bytes:
    connection = SecureConnection(SecurityPolicyNone(), TransportLimits(65535, 65535, 0, 0))
    return connection.message_to_binary(struct_to_binary(request), message_type=kind,
                                        request_id=1)


@pytest.mark.parametrize("name", ALLOWED)
def test_discovery_and_build_info_pass(name):
    assert check_request(ALLOWED[name]) == name


@pytest.mark.parametrize("name", FORBIDDEN)
def test_everything_else_is_refused(name):
    with pytest.raises(ForbiddenOperation, match="refused"):
        check_request(FORBIDDEN[name])


@pytest.mark.parametrize("name", ["GetEndpoints", "CreateSession",
                                  "ActivateSession (anonymous)", "Read BuildInfo",
                                  "CloseSession"])
def test_allowed_messages_pass_on_the_bytes(name):
    assert check_frame(frame(ALLOWED[name])) == name


def test_channel_messages_pass_on_the_bytes():
    assert check_frame(frame(ua.OpenSecureChannelRequest(), ua.MessageType.SecureOpen)) \
        == "OpenSecureChannel"
    assert check_frame(frame(ua.CloseSecureChannelRequest(), ua.MessageType.SecureClose)) \
        == "CloseSecureChannel"
    hello = ua.ua_binary.uatcp_to_binary(ua.MessageType.Hello, ua.Hello())
    assert check_frame(hello) == "Hello"


@pytest.mark.parametrize("name", FORBIDDEN)
def test_forbidden_messages_are_refused_on_the_bytes(name):
    with pytest.raises(ForbiddenOperation, match="refused"):
        check_frame(frame(FORBIDDEN[name]))


def test_a_secure_channel_with_another_policy_is_refused():
    good = frame(ua.OpenSecureChannelRequest(), ua.MessageType.SecureOpen)
    uri = b"http://opcfoundation.org/UA/SecurityPolicy#None"
    other = b"http://opcfoundation.org/UA/SecurityPolicy#Nonf"
    with pytest.raises(ForbiddenOperation, match="policy"):
        check_frame(good.replace(uri, other))


def test_a_request_smuggled_in_a_channel_message_is_refused():
    with pytest.raises(ForbiddenOperation, match="refused"):
        check_frame(frame(ua.GetEndpointsRequest(), ua.MessageType.SecureOpen))


@pytest.mark.parametrize("data", [b"", b"MSGF", b"MSGF\x10\x00\x00\x00" + bytes(8),
                                  b"ERRF\x08\x00\x00\x00", b"HELC\x08\x00\x00\x00"])
def test_malformed_frames_are_refused(data):
    with pytest.raises(ForbiddenOperation):
        check_frame(data)


@given(st.binary(max_size=120))
def test_any_bytes_pass_only_as_an_allowed_message(data):
    try:
        what = check_frame(data)
    except ForbiddenOperation:
        return
    assert what in ALLOWED or what == "Hello"


@pytest.mark.parametrize("opcua_server", ["opcua-weak"], indirect=True)
async def test_writes_and_calls_are_stopped_before_the_wire(opcua_server):
    """Even asyncua's own write/call under the connection cannot send anything."""
    sent: list[bool] = []
    async with OpcUaConnection(opcua_server.host, opcua_server.port, opcua_server.url,
                               timeout=10, on_sent=lambda: sent.append(True)) as conn:
        await conn.hello()
        await conn.open_channel()
        await conn.get_endpoints()
        inner = conn._client
        attempts = [inner.write(ua.WriteParameters()), inner.call([ua.CallMethodRequest()]),
                    inner.browse(ua.BrowseParameters()),
                    inner.add_nodes([ua.AddNodesItem()])]
        for attempt in attempts:
            with pytest.raises(ForbiddenOperation):
                await attempt
        with pytest.raises(ForbiddenOperation):
            inner.protocol.transport.write(frame(ua.WriteRequest()))
        await conn.close()
    kinds = [r.kind for r in opcua_server.log.records]
    assert kinds[:3] == ["hello", "open_secure_channel", "get_endpoints"]
    assert set(kinds) <= {"hello", "open_secure_channel", "get_endpoints",
                          "close_secure_channel"}
    assert len(sent) == 4  # HEL, OPN, GetEndpoints, CLO
