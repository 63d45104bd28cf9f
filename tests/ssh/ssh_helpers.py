"""Helpers for the SSH tests: simulators in-process, probe runs, raw TCP servers."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml

from otaudit.observation import AssetKind, AssetRef, Observation
from otaudit.probes.base import ProbeTarget
from otaudit.probes.runner import run_probe
from otaudit.probes.ssh.allowlist import ALLOWLIST
from otaudit.probes.ssh.probe import SshOptions, SshProbe
from otaudit.simulators import bundled_profile
from otaudit.simulators.ssh.device import KEY_DIR_ENV, SshDevice, from_profile

if KEY_DIR_ENV not in os.environ:  # simulated host keys persist here, never in $HOME
    os.environ[KEY_DIR_ENV] = tempfile.mkdtemp(prefix="otaudit-ssh-sim-keys-")
    atexit.register(shutil.rmtree, os.environ[KEY_DIR_ENV], True)

PASSWORD_VAR = "OTAUDIT_TEST_SSH_PASSWORD"
PASSWORD = "otaudit-demo"  # the bundled profiles' auditor password (device side)
PERSONALITY = {"hmi-weak": "linux", "hmi-hardened": "linux", "switch-ios": "cisco_ios",
               "switch-hios": "hirschmann_hios", "legacy-ie3000": "cisco_ios",
               "hmi-yocto": "linux", "windows-weak": "windows",
               "windows-hardened": "windows"}


@asynccontextmanager
async def simulator(profile: str | Path = "hmi-weak", **options: Any
                    ) -> AsyncIterator[SshDevice]:
    folder = profile if isinstance(profile, Path) else bundled_profile("ssh", profile)
    device = from_profile(folder, **options)
    async with device:
        yield device


def credentials(profile: str, **extra: Any) -> dict[str, Any]:
    return {"user": "auditor", "password": {"env": PASSWORD_VAR},
            "personality": PERSONALITY[profile], **extra}


async def probe(port: int, known_hosts: Path, *, deadline: float = 10.0,
                op_timeout: float | None = None, **options: Any) -> Observation:
    target = ProbeTarget(asset=AssetRef(id="hmi", kind=AssetKind.HMI, zone="control"),
                         host="127.0.0.1", port=port,
                         options=SshOptions(known_hosts=known_hosts, **options))
    return await run_probe(SshProbe(), target, collector_id="test", site="test",
                           deadline=deadline, op_timeout=op_timeout)


def commands_seen(device: SshDevice) -> list[str]:
    return [r.detail["command"] for r in device.log.records if r.kind in ("exec", "shell")]


def only_allowlisted(device: SshDevice, personality: str) -> bool:
    return set(commands_seen(device)) <= set(ALLOWLIST[personality])


def copy_profile(name: str, dest: Path, edit: Callable[[dict], None]) -> Path:
    """A copy of a bundled profile folder with ``edit`` applied to its profile.yaml."""
    folder = dest / name
    shutil.copytree(bundled_profile("ssh", name), folder)
    spec = yaml.safe_load((folder / "profile.yaml").read_text())
    edit(spec)
    (folder / "profile.yaml").write_text(yaml.safe_dump(spec))
    return folder


@asynccontextmanager
async def raw_server(handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                      Awaitable[None]]) -> AsyncIterator[int]:
    """A hand-written TCP server on loopback; yields its port."""
    tasks: set[asyncio.Task[None]] = set()

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.ensure_future(handle(reader, writer)))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
