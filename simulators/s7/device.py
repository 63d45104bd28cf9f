"""Simulated Siemens S7 CPU (S7comm over ISO-on-TCP) for tests and the demo plant.

``otaudit sim s7 --profile s7-1200-weak --port 10102`` runs one; several can run in one
process on different ports. Extra CLI flags override top-level profile keys, e.g.
``--cpu-mode STOP`` or ``--refuse cotp``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from otaudit.errors import InputError
from otaudit.simulators import bundled_profile
from otaudit.simulators.base import SimulatedDevice
from otaudit.simulators.s7.profile import S7Profile, load_profile
from otaudit.simulators.s7.server import ProfileServer

DEFAULT_PROFILE = "s7-1200-weak"
OVERRIDABLE = {"cpu_mode", "refuse", "rack", "slot", "name"}
# `otaudit sim s7` flags beyond --profile/--host/--port/--log (override the profile).
CLI_OPTIONS = {
    "--cpu-mode M": "operating state the CPU reports: RUN, STOP, STARTUP, HOLD or DEFECT",
    "--refuse R": "refuse classic S7 access at this stage: cotp, close, setup or none",
    "--rack N": "rack the CPU answers on",
    "--slot N": "slot the CPU answers on",
    "--name NAME": "module name the CPU reports",
}


class S7Device(SimulatedDevice):
    protocol = "s7"

    def __init__(self, profile: S7Profile, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.profile = profile
        self._server: ProfileServer | None = None

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("simulator already running")
        server = ProfileServer(self.profile, self.log)
        self.port = await asyncio.to_thread(server.start_on, self.host, self.port)
        self._server = server

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.stop)

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.running


def from_profile(profile: Path | str | None, host: str = "127.0.0.1", port: int = 0,
                 **options: Any) -> S7Device:
    """Build a simulated CPU from a profile file (None → the bundled S7-1200 profile)."""
    unknown = set(options) - OVERRIDABLE
    if unknown:
        raise InputError("s7 simulator options", [
            f"unknown option(s) {', '.join('--' + u.replace('_', '-') for u in sorted(unknown))}"
            f"; known: {', '.join(CLI_OPTIONS)}"])
    path = Path(profile) if profile is not None else bundled_profile("s7", DEFAULT_PROFILE)
    if not path.exists() and "/" not in str(profile):
        path = bundled_profile("s7", str(profile))
    overrides = {k: (None if v in ("none", "") else v) if k == "refuse" else v
                 for k, v in options.items()}
    return S7Device(load_profile(path, **overrides), host=host, port=int(port))
