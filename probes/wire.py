"""Pacing from the wire: tell the probe's context when bytes were handed to the socket.

``ProbeContext.pace()`` lets a request go; on a busy event loop the bytes of that request
may leave tens of milliseconds later (a connect, a key exchange or another task in
between). The next ``pace()`` must count from when they left, not from when they were
allowed, or two requests reach the device closer than the minimum interval. A probe whose
library writes to an asyncio transport taps that transport: every ``write`` is followed by
``sent()`` (``ProbeContext.sent``), so the interval counts from the last packet on the
wire, whatever kind of packet it was (key exchange, channel close, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Sent = Callable[[], None]


def tap_writes(transport: Any, sent: Sent | None) -> None:
    """Call ``sent()`` after each ``write``/``writelines`` on ``transport`` (an asyncio
    transport, or anything with those methods); ``sent`` None leaves it as it is."""
    if sent is None or transport is None or getattr(transport, "_otaudit_tapped", False):
        return
    write, writelines = transport.write, transport.writelines

    def tapped_write(data: bytes | bytearray | memoryview) -> None:
        write(data)
        sent()

    def tapped_writelines(lines: Iterable[bytes | bytearray | memoryview]) -> None:
        writelines(lines)
        sent()

    transport.write, transport.writelines = tapped_write, tapped_writelines
    transport._otaudit_tapped = True


def tap_stream(writer: Any, sent: Sent | None) -> None:
    """``tap_writes`` on the transport under an ``asyncio.StreamWriter``."""
    if writer is not None:
        tap_writes(writer.transport, sent)
