"""Read-only guard: the Modbus client can only send read function codes.

Two checks, both before anything reaches the socket: the request PDU object
(``execute`` and pymodbus' ``trace_pdu`` hook) and the encoded frame itself
(``trace_packet`` hook, i.e. the exact bytes about to be written).
"""

from __future__ import annotations

from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ModbusPDU

from otaudit.probes.base import ForbiddenOperation

# function code → allowed sub-function (MEI type), None = no sub-function
READ_ONLY: dict[int, int | None] = {
    0x01: None,  # read coils
    0x02: None,  # read discrete inputs
    0x03: None,  # read holding registers
    0x04: None,  # read input registers
    0x2B: 0x0E,  # encapsulated interface transport / read device identification
}


def check_function(function_code: int, sub_function: int | None) -> None:
    """Raise ForbiddenOperation unless this is one of the read requests."""
    if function_code not in READ_ONLY:
        raise ForbiddenOperation(
            f"Modbus function code {function_code} is not a read request; refused"
        )
    allowed = READ_ONLY[function_code]
    if allowed is not None and sub_function != allowed:
        raise ForbiddenOperation(
            f"Modbus function code {function_code} with MEI type {sub_function} refused "
            f"(only {allowed} = read device identification)"
        )


def check_request(pdu: ModbusPDU) -> None:
    sub = pdu.sub_function_code if pdu.sub_function_code >= 0 else None
    check_function(pdu.function_code, sub)


def check_frame(frame: bytes) -> None:
    """Check one encoded Modbus/TCP frame (MBAP header + PDU) before it is sent."""
    if len(frame) < 8 or int.from_bytes(frame[4:6], "big") != len(frame) - 6:
        raise ForbiddenOperation(f"malformed outgoing frame {frame.hex()}; refused")
    check_function(frame[7], frame[8] if READ_ONLY.get(frame[7]) is not None else None)


class GuardedModbusClient(AsyncModbusTcpClient):
    """``AsyncModbusTcpClient`` that refuses every request but the reads above."""

    def __init__(self, host: str, **kwargs: Any) -> None:
        trace_pdu = kwargs.pop("trace_pdu", None)
        trace_packet = kwargs.pop("trace_packet", None)

        def guard_pdu(sending: bool, pdu: ModbusPDU) -> ModbusPDU:
            if sending:
                check_request(pdu)
            return trace_pdu(sending, pdu) if trace_pdu else pdu

        def guard_packet(sending: bool, data: bytes) -> bytes:
            if sending:
                check_frame(data)  # first: a refused frame never counts as sent
                data = trace_packet(sending, data) if trace_packet else data
                check_frame(data)  # and whatever a trace hook made of it
                return data
            return trace_packet(sending, data) if trace_packet else data

        super().__init__(host, trace_pdu=guard_pdu, trace_packet=guard_packet, **kwargs)

    def execute(self, no_response_expected: bool, request: ModbusPDU):
        check_request(request)
        return super().execute(no_response_expected, request)
