"""Read-only S7 client on python-snap7's AsyncClient: connect, read SZL, disconnect.

``ReadOnlyS7Client`` exposes nothing else; underneath, every PDU passes
``guard.check_request`` before it is sent. Errors come out classified, because the
probe's status depends on where the CPU said no:

* ``TcpFailed``: no TCP connection (nothing listens, unreachable);
* ``CotpRefused``: TCP accepted, the CPU answered the COTP connection request (rack/slot
  TSAP) with a disconnect request and its ``reason`` - a wrong slot, congestion, or classic
  S7 access switched off. Nothing else is a refusal: silence is ``S7Timeout``, a closed
  connection or any other reply is ``S7Broken``;
* ``SetupRefused``: COTP confirmed, S7 Setup Communication answered with an error;
* ``SzlRefused``: the CPU answered one SZL read with an error code;
* ``S7Broken``: anything else the library reported (malformed or lost frames).
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

from snap7.async_client import AsyncClient, AsyncISOTCPConnection
from snap7.error import S7ConnectionError, S7Error, S7ProtocolError, S7TimeoutError

from otaudit.probes.s7.guard import check_request
from otaudit.probes.wire import Sent, tap_stream

COTP_DR = 0x80
DR_REASONS = {0x00: "reason not specified", 0x01: "congestion at TSAP",
              0x02: "session entity not attached to TSAP", 0x03: "address unknown",
              0x80: "normal disconnect", 0x81: "remote congestion",
              0x82: "connection negotiation failed", 0x85: "protocol error",
              0x88: "connection request refused"}


class S7ClientError(Exception):
    pass


class TcpFailed(S7ClientError):
    def __init__(self, error: OSError) -> None:
        super().__init__(str(error.strerror or error))
        self.error = error


class CotpRefused(S7ClientError):
    def __init__(self, message: str, reason: int) -> None:
        super().__init__(message)
        self.reason = reason  # the COTP disconnect reason (DR_REASONS)


class SetupRefused(S7ClientError):
    pass


class SzlRefused(S7ClientError):
    pass


class S7Broken(S7ClientError):
    pass


class S7Timeout(S7ClientError):
    pass


@dataclass(frozen=True)
class Session:
    rack: int
    slot: int
    pdu_length: int
    cotp_reply: bytes  # the COTP connection confirm as received (for evidence)


class _Connection(AsyncISOTCPConnection):
    """Splits the library's connect into its TCP and COTP steps and keeps the COTP reply."""

    cotp_reply: bytes = b""
    sent: Sent | None = None  # told of every write (pacing from the wire)

    async def connect(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        try:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise TcpFailed(exc) from None
        tap_stream(self._writer, self.sent)
        try:
            await self._iso_connect()
        except S7TimeoutError:
            await self.disconnect()
            raise
        except (S7Error, ValueError, struct.error) as exc:  # ValueError: a lying TPKT length
            await self.disconnect()
            reply = self.cotp_reply
            if len(reply) >= 7 and reply[1] == COTP_DR:
                raise CotpRefused(self._refusal(exc), reply[6]) from None
            raise S7Broken(self._refusal(exc)) from None
        self.connected = True

    def _parse_cotp_cc(self, data: bytes) -> None:
        self.cotp_reply = bytes(data)
        super()._parse_cotp_cc(data)

    def _refusal(self, exc: S7Error) -> str:
        reply = self.cotp_reply
        if len(reply) >= 7 and reply[1] == COTP_DR:
            reason = reply[6]
            return (f"COTP disconnect request, reason 0x{reason:02X} "
                    f"({DR_REASONS.get(reason, 'unknown')})")
        if not reply:
            return f"no COTP answer to the connection request ({exc})"
        return f"not a COTP connection confirm: {reply[:16].hex()} ({exc})"


class _GuardedAsyncClient(AsyncClient):
    """python-snap7 AsyncClient whose every outgoing PDU passes the read-only guard."""

    io_timeout = 5.0  # the library's own receive timeout: the probe's operation timeout
    sent: Sent | None = None  # told of every write (pacing from the wire)

    async def _send_data(self, conn: AsyncISOTCPConnection, request: bytes) -> None:
        check_request(bytes(request))
        await super()._send_data(conn, request)

    async def connect(self, address: str, rack: int, slot: int,
                      tcp_port: int = 102) -> _GuardedAsyncClient:
        self.host, self.port, self.rack, self.slot = address, tcp_port, rack, slot
        self.remote_tsap = (self.connection_type << 8) | (rack << 5) | slot
        connection = _Connection(host=address, port=tcp_port, local_tsap=self.local_tsap,
                                 remote_tsap=self.remote_tsap)
        connection.sent = self.sent
        self.connection = connection
        try:
            await connection.connect(self.io_timeout)
        except S7ClientError:
            self.connection = None
            raise
        try:
            await self._setup_communication()
        except S7TimeoutError:
            await self.disconnect()
            raise
        except S7ProtocolError as exc:
            await self.disconnect()
            if exc.error_code:  # the CPU answered with an error class/code
                raise SetupRefused(str(exc)) from None
            raise S7Broken(f"setup communication: {exc}") from None
        except S7ConnectionError as exc:  # dropped: no answer says whether it refuses
            await self.disconnect()
            raise S7Broken(f"setup communication: {exc}") from None
        self.connected = True
        return self


class ReadOnlyS7Client:
    """One S7 connection that can only read SZLs. Every call is bounded by ``timeout``.

    ``sent`` is called after each write to the socket (COTP, setup, SZL reads, the
    disconnect request): the probe's pacing counts from there (``ProbeContext.sent``)."""

    def __init__(self, host: str, port: int, timeout: float, sent: Sent | None = None
                 ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._client = _GuardedAsyncClient()
        self._client.io_timeout = timeout
        self._client.sent = sent
        self.session: Session | None = None

    async def connect(self, rack: int, slot: int) -> Session:
        try:
            await self._bounded(self._client.connect(self.host, rack, slot,
                                                     tcp_port=self.port),
                                f"connect to rack {rack} slot {slot}")
        except BaseException:
            self._close_transport()
            raise
        connection = self._client.connection
        reply = connection.cotp_reply if isinstance(connection, _Connection) else b""
        self.session = Session(rack, slot, self._client.pdu_length, reply)
        return self.session

    async def read_szl(self, szl_id: int, index: int) -> bytes:
        """The partial list (LENTHDR, N_DR, records) of one SZL id/index."""
        what = f"read SZL 0x{szl_id:04X}/0x{index:04X}"
        try:
            szl = await self._bounded(self._client.read_szl(szl_id, index), what)
        except RuntimeError as exc:  # the library's "Read SZL failed" (data return code)
            raise SzlRefused(str(exc)) from None
        length = szl.Header.LengthDR
        if length > len(szl.Data):
            raise S7Broken(f"{what}: {length} bytes exceed the client's SZL buffer")
        return bytes(b & 0xFF for b in szl.Data[:length])

    async def disconnect(self) -> None:
        try:
            await asyncio.wait_for(self._client.disconnect(), self.timeout)
        except (TimeoutError, S7Error, OSError):
            self._close_transport()

    def _close_transport(self) -> None:
        """Drop the socket of a half-open connection (timeout or cancellation)."""
        writer = getattr(self._client.connection, "_writer", None)
        if writer is not None:
            writer.close()
        self._client.connection = None
        self._client.connected = False

    async def _bounded(self, call, what: str):  # type: ignore[no-untyped-def]
        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except (TimeoutError, S7TimeoutError):
            raise S7Timeout(f"no answer to {what} within {self.timeout:g} s") from None
        except S7ClientError:
            raise
        except S7ProtocolError as exc:
            if "USERDATA request failed" in str(exc):
                raise SzlRefused(str(exc)) from None
            raise S7Broken(f"{what}: {exc}") from None
        except S7ConnectionError as exc:
            raise S7Broken(f"{what}: {exc}") from None

