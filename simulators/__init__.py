"""Simulator registry: one line per protocol; imported only when used.

Each entry names a factory ``(profile: Path | None, host, port, **options) -> SimulatedDevice``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from otaudit.simulators.base import SimulatedDevice

REGISTRY: dict[str, str] = {
    "modbus": "otaudit.simulators.modbus.device:from_profile",
    "s7": "otaudit.simulators.s7.device:from_profile",
    "snmp": "otaudit.simulators.snmp.device:from_profile",
    "ssh": "otaudit.simulators.ssh.device:from_profile",
}

PROFILES_ROOT = Path(__file__).parent


def create_simulator(protocol: str, profile: Path | None, host: str = "127.0.0.1",
                     port: int = 0, **options: Any) -> SimulatedDevice:
    try:
        module, _, attr = REGISTRY[protocol].partition(":")
    except KeyError:
        raise KeyError(f"no simulator for {protocol!r}; known: {', '.join(REGISTRY)}") from None
    factory = getattr(importlib.import_module(module), attr)
    if profile is not None and not Path(profile).exists() and "/" not in str(profile):
        profile = bundled_profile(protocol, str(profile))
    return factory(profile, host=host, port=port, **options)


def bundled_profile(protocol: str, name: str) -> Path:
    """Path of a profile shipped in ``simulators/<protocol>/profiles/``."""
    folder = PROFILES_ROOT / protocol / "profiles"
    for candidate in (folder / name, folder / f"{name}.yaml"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no bundled {protocol} profile {name!r} in {folder}")
