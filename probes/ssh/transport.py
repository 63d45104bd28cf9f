"""Transport audit without logging in: a stdlib reader of the banner and the KEXINIT.

It sends a client identification, reads the server's identification line and its
first (unencrypted) binary packet, and never sends a KEXINIT of its own, so it works
even when no client library could negotiate with the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from otaudit.probes.base import ParseError, ProbeError, ProbeTimeout
from otaudit.probes.ssh.parse.transport import (
    Identification,
    KexInit,
    parse_identification,
    parse_kexinit,
    parse_packet_header,
)
from otaudit.probes.wire import Sent, tap_stream

CLIENT_ID = b"SSH-2.0-otaudit_transport_audit\r\n"
MAX_PRE_BANNER_LINES = 20
MAX_LINE = 255
OTHER_PROTOCOLS = (b"HTTP/", b"<", b"220", b"+OK", b"* OK", b"RFB ", b"\x16\x03")


class NotSsh(ProbeError):
    """The port answered, but not as an SSH server."""


@dataclass(frozen=True)
class TransportInfo:
    identification: Identification
    kexinit: KexInit
    raw_identification: bytes


def _shown(data: bytes) -> str:
    return repr(data[:60].decode("ascii", "replace"))


async def read_kexinit(host: str, port: int, timeout: float, sent: Sent | None = None
                       ) -> TransportInfo:
    """Identification and KEXINIT of the server at ``host:port`` (``sent``: after each
    write, for pacing from the wire)."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=4096)
    except TimeoutError:
        raise ProbeTimeout(f"no TCP connection to {host}:{port} within {timeout:g} s") from None
    tap_stream(writer, sent)
    try:
        async with asyncio.timeout(timeout):
            writer.write(CLIENT_ID)
            await writer.drain()
            line, first = b"", b""
            for _ in range(MAX_PRE_BANNER_LINES):
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError as exc:
                    raise NotSsh("not an SSH server: connection closed without an "
                                 f"identification string; it sent {_shown(first or exc.partial)}"
                                 ) from None
                except asyncio.LimitOverrunError:
                    raise NotSsh("not an SSH server: a line longer than 4 KiB") from None
                if line.startswith(b"SSH-"):
                    break
                first = first or line
                if (line.startswith(OTHER_PROTOCOLS) or len(line) > MAX_LINE
                        or not line.isascii() or b"\x00" in line):
                    raise NotSsh(f"not an SSH server: it sent {_shown(first)}")
            else:
                raise NotSsh(f"not an SSH server: {MAX_PRE_BANNER_LINES} lines without an "
                             f"identification string, first {_shown(first)}")
            try:
                identification = parse_identification(line)
            except ParseError as exc:
                raise NotSsh(str(exc)) from None
            if identification.proto_version not in ("2.0", "1.99"):
                raise NotSsh(f"SSH protocol {identification.proto_version} only (no SSH-2)")
            try:
                length, padding = parse_packet_header(await reader.readexactly(5))
                body = await reader.readexactly(length - 1)
            except asyncio.IncompleteReadError:
                raise ProbeError("connection closed before the server's KEXINIT") from None
            kexinit = parse_kexinit(body[: length - 1 - padding])
    except TimeoutError:
        raise ProbeTimeout(f"no SSH banner and KEXINIT from {host}:{port} within "
                           f"{timeout:g} s") from None
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1)
    return TransportInfo(identification, kexinit, line)
