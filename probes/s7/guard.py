"""Read-only guard: the only S7 PDUs the probe may send.

Allowed: Setup Communication (JOB, function 0xF0) and Read SZL (USERDATA request,
function group 4 "CPU functions", subfunction 1), including its continuation request.
Everything else - write var, read var, PLC start/stop, block upload/download, clock,
password/security, force - raises ``ForbiddenOperation`` before a byte is sent.
"""

from __future__ import annotations

import struct

from otaudit.probes.base import ForbiddenOperation

JOB, USERDATA = 0x01, 0x07
SETUP_COMMUNICATION = 0xF0
SZL_GROUP, READ_SZL = 0x4, 0x01
REQUEST_TYPES = {0x4}  # USERDATA type nibble of a request (0x8 is a response)
JOB_NAMES = {
    0x04: "read var", 0x05: "write var", 0x1A: "request download", 0x1B: "download block",
    0x1C: "download ended", 0x1D: "start upload", 0x1E: "upload", 0x1F: "end upload",
    0x28: "PLC control (start, copy RAM to ROM, compress)", 0x29: "PLC stop",
}
GROUP_NAMES = {0x1: "programmer commands", 0x2: "cyclic data", 0x3: "block functions",
               0x5: "security (password)", 0x7: "time (clock)"}


def check_request(pdu: bytes) -> str:
    """Return what ``pdu`` is if the probe may send it; raise ForbiddenOperation otherwise."""
    if len(pdu) < 10 or pdu[0] != 0x32:
        raise ForbiddenOperation("not an S7 request PDU")
    rosctr = pdu[1]
    param_len = struct.unpack(">H", pdu[6:8])[0]
    params = pdu[10:10 + param_len]
    if rosctr == JOB and params:
        if params[0] == SETUP_COMMUNICATION:
            return "setup communication"
        name = JOB_NAMES.get(params[0], f"job function 0x{params[0]:02X}")
        raise ForbiddenOperation(f"S7 {name} refused: the probe only reads")
    if rosctr == USERDATA and len(params) >= 8:
        kind, group, subfunction = params[5] >> 4, params[5] & 0x0F, params[6]
        if kind in REQUEST_TYPES and group == SZL_GROUP and subfunction == READ_SZL:
            return "read SZL"
        name = GROUP_NAMES.get(group, f"group {group} subfunction {subfunction}")
        raise ForbiddenOperation(f"S7 userdata {name} refused: the probe only reads SZL")
    raise ForbiddenOperation(f"S7 PDU type 0x{rosctr:02X} refused: the probe only reads")
