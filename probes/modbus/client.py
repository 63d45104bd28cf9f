"""One guarded Modbus/TCP connection: connect, read device identification, close.

pymodbus frames requests and replies; the reply PDU to FC 43 is handed back as raw
bytes (``parse.py`` decodes it), so a malformed answer becomes a ``ParseError``
instead of a dropped connection. Connection failures become ``ProbeError``s.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from typing import Any

from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.pdu.mei_message import ReadDeviceInformationRequest

from otaudit.probes.base import ProbeError, ProbeRefused, ProbeTimeout
from otaudit.probes.modbus.guard import GuardedModbusClient


class RawDeviceIdReply(ModbusPDU):
    """Client-side decoder for FC 43 replies that keeps the PDU bytes undecoded."""

    function_code = 0x2B
    raw: bytes = b""

    def decode(self, data: bytes) -> None:
        self.raw = bytes([self.function_code]) + data


class ModbusSession:
    """``async with ModbusSession(host, port, unit, timeout) as s: await s.read_device_id(...)``"""

    def __init__(self, host: str, port: int, *, unit: int, timeout: float,
                 sent: Callable[[], None] | None = None) -> None:
        """``sent`` is called when a request frame is handed to the socket (pacing counts
        from there: ``ProbeContext.sent``)."""
        self.endpoint = f"{host}:{port}"
        self.unit = unit
        self.timeout = timeout
        self._closed = asyncio.Event()
        self._connect_error: OSError | None = None
        self._client = GuardedModbusClient(
            host, port=port, timeout=timeout + 1.0,  # pymodbus' own timer is only a backstop
            retries=0, reconnect_delay=0,            # never resend, never reconnect behind us
            trace_connect=self._on_connect,
            trace_packet=self._on_packet(sent),
        )
        self._client.register(RawDeviceIdReply)
        create = self._client.ctx.call_create

        async def create_connection() -> Any:  # keeps the reason pymodbus would only log
            try:
                return await create()
            except OSError as exc:
                self._connect_error = exc
                raise

        self._client.ctx.call_create = create_connection

    @staticmethod
    def _on_packet(sent: Callable[[], None] | None) -> Callable[[bool, bytes], bytes]:
        def trace(sending: bool, data: bytes) -> bytes:
            if sending and sent is not None:
                sent()
            return data
        return trace

    def _on_connect(self, connected: bool) -> None:
        if not connected:
            self._closed.set()

    async def __aenter__(self) -> ModbusSession:
        try:
            async with asyncio.timeout(self.timeout):
                connected = await self._client.connect()
        except TimeoutError:
            raise ProbeTimeout(f"no TCP connection to {self.endpoint} within "
                               f"{self.timeout:g} s") from None
        if not connected:
            error = self._connect_error
            if isinstance(error, ConnectionRefusedError):
                raise ProbeRefused(f"connection refused by {self.endpoint}")
            if error is not None:
                raise ProbeError(f"cannot connect to {self.endpoint}: {error.strerror or error}")
            raise ProbeTimeout(f"no TCP connection to {self.endpoint} within {self.timeout:g} s")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._client.close()

    async def read_device_id(self, read_code: int, object_id: int) -> bytes:
        """Send FC 43/14 and return the reply PDU (function code first) as bytes."""
        request = ReadDeviceInformationRequest(read_code, object_id, dev_id=self.unit)
        reply = await self._execute(request)
        if isinstance(reply, RawDeviceIdReply):
            return reply.raw
        if isinstance(reply, ExceptionResponse):
            return struct.pack(">BB", reply.function_code, reply.exception_code)
        return bytes([reply.function_code]) + reply.encode()

    async def _execute(self, request: ModbusPDU) -> ModbusPDU:
        if self._closed.is_set():
            raise ProbeError(f"{self.endpoint} closed the connection")
        call = asyncio.ensure_future(self._client.execute(False, request))
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            async with asyncio.timeout(self.timeout):
                await asyncio.wait({call, closed}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            raise ProbeTimeout(f"no reply from {self.endpoint} within {self.timeout:g} s") from None
        finally:
            for task in (call, closed):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if not call.done() or call.cancelled():
            raise ProbeError(f"{self.endpoint} closed the connection without a complete reply")
        try:
            return call.result()
        except ModbusException as exc:
            raise ProbeError(f"invalid reply from {self.endpoint}: {exc}") from None
