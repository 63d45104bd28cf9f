"""One guarded EtherNet/IP connection (TCP 44818) and the TLS look at the CIP Security port.

``EnipConnection`` exposes only the identity requests; every frame passes
``guard.check_request`` before it reaches the socket, and ``on_sent`` is called when it
has been written (the probe's pacing clock). Replies are read whole (header, then the
announced length) within the timeout; a device that closes the connection or sends a
frame that cannot be framed raises ``EnipClosed``.

``tls_posture`` only completes a TLS handshake with the port (no CIP is sent over it),
keeps what the server offered - protocol version, cipher, certificate - and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from otaudit.probes.base import ProbeError, ProbeTimeout
from otaudit.probes.enip.guard import check_request
from otaudit.probes.enip.parse import (
    GET_ATTRIBUTES_ALL,
    HEADER_SIZE,
    cip_request,
    identity_path,
    list_identity_request,
    parse_header,
    register_session_request,
    send_rr_data_request,
    unregister_session_request,
)

MAX_REPLY = HEADER_SIZE + 0xFFFF


class EnipClosed(ProbeError):
    """The device closed the connection (or framed its reply so that it cannot be read)."""


class EnipConnection:
    """``async with EnipConnection(host, port, timeout=..) as c: raw = await c.list_identity()``"""

    def __init__(self, host: str, port: int, *, timeout: float,
                 on_sent: Callable[[], None] | None = None) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.endpoint = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._on_sent = on_sent or (lambda: None)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> EnipConnection:
        try:
            async with asyncio.timeout(self.timeout):
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        except TimeoutError:
            raise ProbeTimeout(f"no TCP connection to {self.endpoint} within "
                               f"{self.timeout:g} s") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 1.0)
            self._writer = None

    async def list_identity(self) -> bytes:
        return await self._exchange(list_identity_request())

    async def register_session(self) -> bytes:
        return await self._exchange(register_session_request())

    async def identity_attributes(self, session: int) -> bytes:
        """SendRRData: Get_Attributes_All of Identity instance 1, unconnected."""
        cip = cip_request(GET_ATTRIBUTES_ALL, identity_path())
        return await self._exchange(send_rr_data_request(session, cip))

    async def unregister_session(self, session: int) -> None:
        """UnRegisterSession has no reply; the device closes the connection."""
        self._send(unregister_session_request(session))
        assert self._writer is not None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.drain(), self.timeout)

    def _send(self, frame: bytes) -> None:
        check_request(frame)
        if self._writer is None:
            raise EnipClosed(f"no connection to {self.endpoint}")
        self._writer.write(frame)
        self._on_sent()

    async def _exchange(self, frame: bytes) -> bytes:
        self._send(frame)
        assert self._reader is not None
        try:
            async with asyncio.timeout(self.timeout):
                head = await self._reader.readexactly(HEADER_SIZE)
                body = await self._reader.readexactly(parse_header(head).length)
        except TimeoutError:
            raise ProbeTimeout(f"no complete reply from {self.endpoint} within "
                               f"{self.timeout:g} s") from None
        except asyncio.IncompleteReadError as exc:
            raise EnipClosed(f"{self.endpoint} closed the connection after "
                             f"{len(exc.partial)} bytes of a reply") from None
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise EnipClosed(f"{self.endpoint} reset the connection ({exc})") from None
        return head + body


@dataclass(frozen=True)
class TlsPosture:
    open: bool  # the TCP port accepted a connection
    handshake: bool  # a TLS handshake completed
    version: str | None = None
    cipher: str | None = None
    certificate: bytes | None = None  # DER of the server certificate
    reason: str = ""  # why not, when not open or no handshake
    timed_out: bool = False  # no answer in time: neither open/closed nor TLS/not is known


@cache
def _audit_context() -> ssl.SSLContext:
    """One client context per process for every handshake: no CA store (nothing is verified:
    the certificate is what we audit), so not ``create_default_context``, which parses the
    system's CA certificates each time (about 1 MiB and milliseconds of CPU per probe run)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # see what a weak device offers (1024-bit keys, old versions) instead of failing
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


async def tls_posture(host: str, port: int, *, timeout: float,
                      on_sent: Callable[[], None] | None = None) -> TlsPosture:
    """TCP connect and a TLS handshake (certificate not verified: it is what we audit)."""
    context = _audit_context()
    endpoint = f"{host}:{port}"
    try:
        async with asyncio.timeout(timeout):
            _reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return TlsPosture(False, False, reason=f"no TCP connection to {endpoint} within "
                                               f"{timeout:g} s", timed_out=True)
    except OSError as exc:
        return TlsPosture(False, False, reason=f"{endpoint}: {exc.strerror or exc}")
    try:
        if on_sent:
            on_sent()
        async with asyncio.timeout(timeout):
            await writer.start_tls(context, server_hostname=None)
        tls = writer.get_extra_info("ssl_object")
        cipher = tls.cipher()
        return TlsPosture(True, True, tls.version(), cipher[0] if cipher else None,
                          tls.getpeercert(binary_form=True))
    except TimeoutError:
        return TlsPosture(True, False, reason=f"no TLS handshake with {endpoint} within "
                                              f"{timeout:g} s", timed_out=True)
    except (ssl.SSLError, OSError, EOFError) as exc:
        return TlsPosture(True, False, reason=f"TLS handshake with {endpoint} failed: "
                                              f"{getattr(exc, 'reason', None) or exc}")
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
