"""A do-nothing simulated device for the fake probe (tests/support/fake_probe.py), so that a
plant file can carry an asset whose endpoint has a credential ``{env: VAR}``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from otaudit.simulators.base import SimulatedDevice


class SilentDevice(SimulatedDevice):
    """Accepts TCP connections on loopback, records them and closes them."""

    protocol = "fake"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = self.log.open(str(writer.get_extra_info("peername")))
        writer.close()
        self.log.close(connection)

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()


def from_profile(profile: Path | None, host: str = "127.0.0.1", port: int = 0,
                 **_options: Any) -> SilentDevice:
    return SilentDevice(host, port)
