"""Simulated Modbus/TCP device on pymodbus' ``ModbusTcpServer``.

Registers are served by pymodbus' ``SimDevice`` datastore. Read Device
Identification is answered from the profile by a per-connection ``trace_pdu`` that
replaces pymodbus' reply: pymodbus keeps one identity per process, this keeps one
per simulated device, so several devices run in one process. Every frame that
arrives is logged (function code, MEI type, unit, connection) before pymodbus
decodes it, so even requests pymodbus does not understand show up in ``self.log``:
kind ``fc03``, ``fc06``, ``fc43/14`` … (decimal function code / MEI type), or
``malformed`` for bytes that are no Modbus/TCP frame.
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.pdu.mei_message import ReadDeviceInformationRequest, ReadDeviceInformationResponse
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from otaudit.errors import InputError, pydantic_problems
from otaudit.simulators import bundled_profile
from otaudit.simulators.base import SimulatedDevice
from otaudit.simulators.modbus.profile import Behaviour, DeviceId, ModbusProfile, Registers

DEFAULT_PROFILE = "schneider-m340"
FC_DEVICE_ID, MEI_DEVICE_ID = 0x2B, 0x0E
ILLEGAL_DATA_ADDRESS, ILLEGAL_DATA_VALUE, GATEWAY_TARGET_FAILED = 0x02, 0x03, 0x0B
CATEGORY_END = {1: 0x02, 2: 0x7F, 3: 0xFF}  # last object id of basic/regular/extended


# `otaudit sim modbus` flags beyond --profile/--host/--port/--log: any profile field.
CLI_OPTIONS = {
    "--behaviour B": "normal, garbage_devid, close_on_devid, silent or slow (overrides the "
                     "profile)",
    "--delay S": "seconds before each answer when --behaviour slow",
}


def from_profile(profile: Path | None, host: str = "127.0.0.1", port: int = 0,
                 **options: Any) -> ModbusSimulator:
    """Build a simulator; ``options`` override profile fields (e.g. ``behaviour="silent"``)."""
    path = Path(profile) if profile else bundled_profile("modbus", DEFAULT_PROFILE)
    try:
        data = ModbusProfile.load(path).model_dump()
        data.update(options)
        return ModbusSimulator(ModbusProfile.model_validate(data), host=host, port=port)
    except ValidationError as exc:
        raise InputError(path, pydantic_problems(exc)) from None
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(path, [str(exc)]) from None


class ModbusSimulator(SimulatedDevice):
    protocol = "modbus"

    def __init__(self, profile: ModbusProfile, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.profile = profile
        self._server: _Server | None = None

    async def start(self) -> None:
        devices = [SimDevice(id=unit, simdata=_datastore(self.profile.registers))
                   for unit in self.profile.units]
        # id 0 catches units that are not configured; their replies become exception 0x0B
        devices.append(SimDevice(id=0, simdata=_datastore(Registers())))
        self._server = _Server(self, devices, address=(self.host, self.port))
        await self._server.serve_forever(background=True)
        self.port = self._server.transport.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    def reply(self, response: ModbusPDU, request: ReadDeviceInformationRequest | None
              ) -> ModbusPDU:
        """The reply this device sends instead of pymodbus' ``response``."""
        unit, function_code = response.dev_id, response.function_code & 0x7F
        if unit in self.profile.unit_exceptions:
            return _exception(response, function_code, self.profile.unit_exceptions[unit])
        if unit not in self.profile.units:
            return _exception(response, function_code, GATEWAY_TARGET_FAILED)
        if request is not None:
            return _device_id_reply(self.profile.device_id, request, response)
        return response


class _Server(ModbusTcpServer):
    def __init__(self, device: ModbusSimulator, context: list[SimDevice],
                 address: tuple[str, int]) -> None:
        super().__init__(context, address=address)
        self.device = device

    def callback_new_connection(self) -> _Connection:
        return _Connection(self, self.device)


class _Connection(ServerRequestHandler):
    """One client connection: logs what arrives, rewrites and misbehaves on the way out."""

    def __init__(self, owner: _Server, device: ModbusSimulator) -> None:
        super().__init__(owner, None, None, None)
        self.device = device
        self.trace_connect = self._on_connect
        self.trace_pdu = self._on_pdu
        self.trace_packet = self._on_packet
        self.connection = 0
        self.peer = ""
        self._frames = b""
        self._device_id_requests: dict[int, ReadDeviceInformationRequest] = {}

    def _on_connect(self, connected: bool) -> None:
        if connected:
            peer = self.transport.get_extra_info("peername") if self.transport else None
            self.peer = f"{peer[0]}:{peer[1]}" if peer else ""
            self.connection = self.device.log.open(self.peer)
        else:
            self.device.log.close(self.connection)

    def data_received(self, data: bytes) -> None:
        self._log_frames(data)
        super().data_received(data)

    def _log_frames(self, data: bytes) -> None:
        """Log every complete MBAP frame in the byte stream (independent of pymodbus)."""
        self._frames += data
        log = self.device.log
        while len(self._frames) >= 8:
            tid, pid, length, unit = struct.unpack(">HHHB", self._frames[:7])
            if pid != 0 or length < 2:
                log.record("malformed", connection=self.connection, peer=self.peer,
                           data=self._frames[:64].hex())
                self._frames = b""
                return
            if len(self._frames) < 6 + length:
                return
            pdu, self._frames = self._frames[7 : 6 + length], self._frames[6 + length :]
            fc = pdu[0]
            detail: dict[str, Any] = {"function_code": fc, "unit": unit, "transaction": tid}
            kind = f"fc{fc:02d}"
            if fc == FC_DEVICE_ID and len(pdu) > 1:
                detail["mei_type"] = pdu[1]
                kind = f"fc{fc:02d}/{pdu[1]}"
                if pdu[1] == MEI_DEVICE_ID and len(pdu) >= 4:
                    detail.update(read_code=pdu[2], object_id=pdu[3])
            log.record(kind, connection=self.connection, peer=self.peer, **detail)

    def _on_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            if isinstance(pdu, ReadDeviceInformationRequest):
                self._device_id_requests[pdu.transaction_id] = pdu
            return pdu
        request = self._device_id_requests.pop(pdu.transaction_id, None)
        return self.device.reply(pdu, request)

    def _on_packet(self, sending: bool, packet: bytes) -> bytes:
        if not sending:
            return packet
        behaviour = self.device.profile.behaviour
        device_id = len(packet) > 7 and packet[7] == FC_DEVICE_ID
        if behaviour is Behaviour.SILENT:
            return b""
        if behaviour is Behaviour.SLOW:
            asyncio.get_running_loop().call_later(self.device.profile.delay, self._late, packet)
            return b""
        if behaviour is Behaviour.GARBAGE_DEVID and device_id:
            return _garbage_device_id(packet)
        if behaviour is Behaviour.CLOSE_ON_DEVID and device_id and self.transport:
            self.transport.abort()
            return b""
        return packet

    def _late(self, packet: bytes) -> None:
        if self.transport and not self.transport.is_closing():
            self.transport.write(packet)


def _datastore(registers: Registers) -> tuple[list[SimData], ...]:
    """pymodbus blocks (coils, discrete inputs, holding, input); an empty table gets one zero."""
    def block(table: dict[int, list[Any]], datatype: DataType, zero: Any) -> list[SimData]:
        blocks = [SimData(address, values=list(values), datatype=datatype)
                  for address, values in sorted(table.items()) if values]
        return blocks or [SimData(0, values=[zero], datatype=datatype)]

    return (block(registers.coils, DataType.BITS, False),
            block(registers.discrete_inputs, DataType.BITS, False),
            block(registers.holding, DataType.REGISTERS, 0),
            block(registers.input, DataType.REGISTERS, 0))


def _exception(response: ModbusPDU, function_code: int, code: int) -> ExceptionResponse:
    return ExceptionResponse(function_code, code, device_id=response.dev_id,
                             transaction=response.transaction_id)


def _device_id_reply(device_id: DeviceId, request: ReadDeviceInformationRequest,
                     response: ModbusPDU) -> ModbusPDU:
    """Answer FC 43/14 from the profile; pymodbus' encoder splits it over several PDUs."""
    if device_id.exception:
        return _exception(response, FC_DEVICE_ID, device_id.exception)
    objects = {oid: text.encode() for oid, text in sorted(device_id.objects.items())}
    code, start = request.read_code, request.object_id
    if code == 4:
        if not device_id.conformity & 0x80 or start not in objects:
            return _exception(response, FC_DEVICE_ID, ILLEGAL_DATA_ADDRESS)
        information = {start: objects[start]}
    elif code in CATEGORY_END and code <= device_id.conformity & 0x7F:
        in_category = {oid: v for oid, v in objects.items() if oid <= CATEGORY_END[code]}
        if start not in in_category:
            start = 0  # spec: an unknown object id restarts at the beginning
        information = {oid: v for oid, v in in_category.items() if oid >= start}
    else:
        return _exception(response, FC_DEVICE_ID, ILLEGAL_DATA_VALUE)
    reply = ReadDeviceInformationResponse(read_code=code, information=information,
                                          dev_id=response.dev_id,
                                          transaction_id=response.transaction_id)
    reply.conformity = device_id.conformity
    return reply


def _garbage_device_id(packet: bytes) -> bytes:
    """Keep the MBAP header valid; the object list announces more bytes than it holds."""
    pdu = bytes([FC_DEVICE_ID, MEI_DEVICE_ID, 0x01, 0x81, 0x00, 0x00, 0x02, 0x00, 0x40])
    pdu += b"Schneider"
    return packet[:4] + struct.pack(">HB", len(pdu) + 1, packet[6]) + pdu
