"""Simulator registry: one line per protocol; imported only when used.

Each entry names a factory ``(profile: Path | None, host, port, **options) -> SimulatedDevice``
in a module that also declares ``CLI_OPTIONS`` (its flags for ``otaudit sim``, with help).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from otaudit.errors import UnknownName
from otaudit.simulators.base import SimulatedDevice

REGISTRY: dict[str, str] = {
    "modbus": "otaudit.simulators.modbus.device:from_profile",
    "s7": "otaudit.simulators.s7.device:from_profile",
    "snmp": "otaudit.simulators.snmp.device:from_profile",
    "ssh": "otaudit.simulators.ssh.device:from_profile",
    "winrm": "otaudit.simulators.winrm.device:from_profile",
    "enip": "otaudit.simulators.enip.device:from_profile",
    "opcua": "otaudit.simulators.opcua.device:from_profile",
}

PROFILES_ROOT = Path(__file__).parent


def _module(protocol: str) -> tuple[ModuleType, str]:
    try:
        module, _, attr = REGISTRY[protocol].partition(":")
    except KeyError:
        raise UnknownName("simulator", protocol, tuple(REGISTRY)) from None
    return importlib.import_module(module), attr


def create_simulator(protocol: str, profile: Path | str | None, host: str = "127.0.0.1",
                     port: int = 0, **options: Any) -> SimulatedDevice:
    module, attr = _module(protocol)
    if profile is not None and not Path(profile).exists() and "/" not in str(profile):
        profile = bundled_profile(protocol, str(profile))
    return getattr(module, attr)(profile, host=host, port=port, **options)


def simulator_options(protocol: str) -> dict[str, str]:
    """The simulator's own flags for ``otaudit sim PROTOCOL`` (flag -> help)."""
    module, _ = _module(protocol)
    return dict(getattr(module, "CLI_OPTIONS", {}))


def bundled_profiles(protocol: str) -> list[str]:
    """Names of the profiles shipped in ``simulators/<protocol>/profiles/``."""
    folder = PROFILES_ROOT / protocol / "profiles"
    if not folder.is_dir():
        return []
    return sorted(p.stem if p.suffix in (".yaml", ".yml") else p.name
                  for p in folder.iterdir()
                  if not p.name.startswith((".", "_")) and (p.is_dir() or p.suffix in (
                      ".yaml", ".yml")))


def bundled_profile(protocol: str, name: str) -> Path:
    """Path of a profile shipped in ``simulators/<protocol>/profiles/``."""
    folder = PROFILES_ROOT / protocol / "profiles"
    for candidate in (folder / name, folder / f"{name}.yaml"):
        if candidate.exists():
            return candidate
    raise UnknownName(f"{protocol} profile", name, bundled_profiles(protocol),
                      source="--profile")
