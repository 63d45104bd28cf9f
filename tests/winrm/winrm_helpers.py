"""Helpers for the WinRM tests: listeners in-process, probe runs, profile copies."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml

from otaudit.observation import AssetKind, AssetRef, Observation
from otaudit.probes.base import ProbeTarget
from otaudit.probes.runner import run_probe
from otaudit.probes.winrm.probe import WinrmOptions, WinrmProbe
from otaudit.simulators import bundled_profile
from otaudit.simulators.winrm.device import WinrmDevice, from_profile

PASSWORD_VAR = "OTAUDIT_TEST_WINRM_PASSWORD"
PASSWORD = "otaudit-demo"  # the bundled Windows profiles' auditor password (device side)
SOAP_KINDS = ("create", "command", "receive", "signal", "delete")


@asynccontextmanager
async def listener(profile: str | Path = "windows-weak", **options: Any
                   ) -> AsyncIterator[WinrmDevice]:
    path = profile if isinstance(profile, Path) else bundled_profile("winrm", profile)
    device = from_profile(path, **options)
    async with device:
        yield device


def target(device: WinrmDevice, **options: Any) -> ProbeTarget:
    values: dict[str, Any] = {"user": "auditor", "password": {"env": PASSWORD_VAR},
                              "auth": "basic", "cert_sha256": device.cert_sha256}
    values.update(options)
    values = {k: v for k, v in values.items() if v is not None}
    return ProbeTarget(asset=AssetRef(id="hmi", kind=AssetKind.HMI, zone="control"),
                       host=device.host, port=device.port,
                       options=WinrmOptions.model_validate(values))


async def probe(device: WinrmDevice, *, deadline: float = 30.0, op_timeout: float | None = None,
                min_interval: float = 0.0, **options: Any) -> Observation:
    return await run_probe(WinrmProbe(), target(device, **options), collector_id="test",
                           site="test", deadline=deadline, op_timeout=op_timeout,
                           min_interval=min_interval)


def commands_seen(device: WinrmDevice) -> list[str]:
    return [r.detail["command"] for r in device.log.records if r.kind == "command"]


def soap_records(device: WinrmDevice) -> list[Any]:
    return [r for r in device.log.records if r.kind in SOAP_KINDS]


def host_profile_copy(name: str, dest: Path, edit: Any) -> Path:
    """A WinRM profile over a copy of the SSH Windows profile ``name`` with ``edit``
    applied to its profile.yaml; returns the WinRM profile file."""
    folder = dest / f"{name}-host"
    shutil.copytree(bundled_profile("ssh", name), folder)
    spec = yaml.safe_load((folder / "profile.yaml").read_text())
    edit(spec, folder)
    (folder / "profile.yaml").write_text(yaml.safe_dump(spec))
    winrm = yaml.safe_load(bundled_profile("winrm", name).read_text())
    winrm["host_profile"] = str(folder)
    path = dest / f"{name}.yaml"
    path.write_text(yaml.safe_dump(winrm))
    return path
