"""Only reads leave the S7 probe: the guard, the guarded client, and the simulator's log."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from snap7.datatypes import S7Area, S7WordLen
from snap7.s7protocol import S7Protocol

from otaudit.probes.base import ForbiddenOperation
from otaudit.probes.s7.client import ReadOnlyS7Client
from otaudit.probes.s7.guard import check_request
from otaudit.simulators.s7.device import from_profile

proto = S7Protocol()
ALLOWED = {
    "setup": proto.build_setup_communication_request(1, 1, 480),
    "read szl": proto.build_read_szl_request(0x0011, 0),
    "read szl continuation": proto.build_userdata_followup_request(4, 1, 3),
}
FORBIDDEN = {
    "write var": proto.build_write_request(S7Area.DB, 1, 0, S7WordLen.BYTE, b"\x01"),
    "read var": proto.build_read_request(S7Area.DB, 1, 0, S7WordLen.BYTE, 1),
    "plc stop": proto.build_plc_control_request("stop"),
    "plc hot start": proto.build_plc_control_request("hot_start"),
    "copy ram to rom": proto.build_copy_ram_to_rom_request(),
    "start upload": proto.build_start_upload_request(0x38, 1),
    "download": proto.build_download_request(0x38, 1, b"\0" * 64),
    "delete block": proto.build_delete_block_request(0x38, 1),
    "set clock": proto.build_set_clock_request(datetime(2026, 1, 1)),
    "set password": proto.build_set_session_password_request(b"\0" * 8),
    "list blocks": proto.build_list_blocks_request(),
}


@pytest.mark.parametrize("name", ALLOWED)
def test_reads_pass(name):
    check_request(ALLOWED[name])


@pytest.mark.parametrize("name", FORBIDDEN)
def test_everything_else_is_refused(name):
    with pytest.raises(ForbiddenOperation, match="refused"):
        check_request(FORBIDDEN[name])


@given(st.binary(max_size=64))
def test_any_bytes_are_allowed_only_as_setup_or_szl_read(data):
    try:
        what = check_request(data)
    except ForbiddenOperation:
        return
    assert what in ("setup communication", "read SZL")


def test_guarded_client_exposes_only_reads():
    public = {n for n in dir(ReadOnlyS7Client) if not n.startswith("_")}
    assert public == {"connect", "read_szl", "disconnect"}


async def test_writes_are_stopped_before_the_wire():
    """Even the library methods under the wrapper cannot send a write, stop or download."""
    async with from_profile(None) as device:
        client = ReadOnlyS7Client(device.host, device.port, timeout=3)
        await client.connect(0, 1)
        await client.read_szl(0x0424, 0)
        inner = client._client
        attempts = [inner.db_write(1, 0, bytearray(b"\x01")), inner.plc_stop(),
                    inner.plc_hot_start(), inner.set_plc_datetime(datetime(2026, 1, 1)),
                    inner.download(bytearray(64), 1), inner.db_read(1, 0, 1),
                    inner.set_session_password("secret")]
        for attempt in attempts:
            with pytest.raises(ForbiddenOperation):
                await attempt
        await client.disconnect()
    kinds = [r.kind for r in device.log.records]
    assert kinds == ["cotp_connect", "setup_communication", "read_szl"]
