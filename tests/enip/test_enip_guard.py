"""Only identity requests leave the EtherNet/IP probe: the guard, its client, the wire."""

from __future__ import annotations

import struct

import pytest
from enip_helpers import simulator
from hypothesis import given
from hypothesis import strategies as st

from otaudit.probes.base import ForbiddenOperation
from otaudit.probes.enip.client import EnipConnection
from otaudit.probes.enip.guard import check_request
from otaudit.probes.enip.parse import (
    cip_request,
    encode_header,
    identity_path,
    list_identity_request,
    register_session_request,
    send_rr_data_request,
    unregister_session_request,
)

SESSION = 0x1234
ALLOWED = {
    "ListIdentity": list_identity_request(),
    "RegisterSession": register_session_request(),
    "UnRegisterSession": unregister_session_request(SESSION),
    "Get_Attributes_All Identity/1": send_rr_data_request(
        SESSION, cip_request(0x01, identity_path())),
    "Get_Attribute_Single Identity/1/7": send_rr_data_request(
        SESSION, cip_request(0x0E, identity_path(7))),
}
CONNECTION_MANAGER = bytes([0x20, 0x06, 0x24, 0x01])
FORBIDDEN = {
    "Set_Attribute_Single identity": send_rr_data_request(
        SESSION, cip_request(0x10, identity_path(7), b"\x04evil")),
    "Reset identity (restarts the device)": send_rr_data_request(
        SESSION, cip_request(0x05, identity_path(), b"\x00")),
    "Set_Attributes_All identity": send_rr_data_request(
        SESSION, cip_request(0x02, identity_path(), b"\x00")),
    "Forward_Open": send_rr_data_request(SESSION, cip_request(0x54, CONNECTION_MANAGER,
                                                              bytes(36))),
    "Unconnected_Send routing": send_rr_data_request(SESSION, cip_request(
        0x52, CONNECTION_MANAGER, b"\x0a\x0e\x06\x00" + cip_request(0x01, identity_path()))),
    "Write Tag": send_rr_data_request(SESSION, cip_request(
        0x4D, bytes([0x91, 4]) + b"Tag1", b"\xc4\x00\x01\x00\x01\x00\x00\x00")),
    "Read Tag": send_rr_data_request(SESSION, cip_request(0x4C, bytes([0x91, 4]) + b"Tag1",
                                                          b"\x01\x00")),
    "Get_Attributes_All of the TCP/IP object": send_rr_data_request(
        SESSION, cip_request(0x01, bytes([0x20, 0xF5, 0x24, 0x01]))),
    "Get_Attribute_Single of the CIP Security object": send_rr_data_request(
        SESSION, cip_request(0x0E, bytes([0x20, 0x5D, 0x24, 0x01, 0x30, 0x01]))),
    "identity read with trailing data": send_rr_data_request(
        SESSION, cip_request(0x01, identity_path(), b"\x00\x00")),
    "identity class instance 2": send_rr_data_request(
        SESSION, cip_request(0x01, bytes([0x20, 0x01, 0x24, 0x02]))),
    "SendUnitData": encode_header(0x70, bytes(16), session=SESSION),
    "ListServices": encode_header(0x04),
    "ListInterfaces": encode_header(0x64),
    "NOP": encode_header(0x00, b"x"),
    "RegisterSession protocol 2": encode_header(0x65, struct.pack("<HH", 2, 0)),
    "ListIdentity with data": encode_header(0x63, b"\x00"),
    "two unconnected items": encode_header(0x6F, struct.pack("<IHH", 0, 10, 3)
                                           + struct.pack("<HH", 0, 0)
                                           + struct.pack("<HH", 0xB2, 6)
                                           + cip_request(0x01, identity_path())
                                           + struct.pack("<HH", 0xB2, 6)
                                           + cip_request(0x10, identity_path()),
                                           session=SESSION),
    "truncated frame": list_identity_request()[:20],
}


@pytest.mark.parametrize("name", ALLOWED)
def test_identity_requests_pass(name):
    assert check_request(ALLOWED[name]) == name


@pytest.mark.parametrize("name", FORBIDDEN)
def test_everything_else_is_refused(name):
    with pytest.raises(ForbiddenOperation, match="refused"):
        check_request(FORBIDDEN[name])


@given(st.binary(max_size=80))
def test_any_bytes_pass_only_as_an_identity_request(data):
    try:
        what = check_request(data)
    except ForbiddenOperation:
        return
    assert what in ALLOWED or what.startswith("Get_Attribute_Single Identity/1/")


def test_the_connection_exposes_only_identity_requests():
    public = {n for n in dir(EnipConnection) if not n.startswith("_")}
    assert public == {"list_identity", "register_session", "identity_attributes",
                      "unregister_session"}


@pytest.mark.parametrize("name", ["Set_Attribute_Single identity", "Reset identity "
                                  "(restarts the device)", "Forward_Open", "Write Tag"])
async def test_forbidden_requests_are_stopped_before_the_wire(name):
    """Even through the connection's own send path, nothing forbidden reaches the device."""
    sent: list[bool] = []
    async with simulator("controllogix-5580") as device, EnipConnection(
            device.host, device.port, timeout=3, on_sent=lambda: sent.append(True)) as conn:
        await conn.list_identity()
        with pytest.raises(ForbiddenOperation):
            await conn._exchange(FORBIDDEN[name])
        await conn.list_identity()  # the connection is still usable
    assert [r.kind for r in device.log.records] == ["list_identity", "list_identity"]
    assert len(sent) == 2
