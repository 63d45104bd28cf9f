"""SSH pacing counts from the request messages on the wire (``ctx.sent``), not from
``pace()``: every paced step of a run (banner, auth methods, login, each command) tells the
context when its request left, and only requests do (not channel EOF/close)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ssh_helpers import PASSWORD, PASSWORD_VAR, commands_seen, credentials, simulator

from otaudit.observation import AssetKind, AssetRef
from otaudit.probes.base import ProbeContext, ProbeTarget
from otaudit.probes.ssh.probe import SshOptions, SshProbe


class Timeline(ProbeContext):
    """Records when ``pace()`` let a request go and when ``sent()`` was told of one."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.events: list[tuple[str, float]] = []

    async def pace(self) -> None:
        await super().pace()
        self.events.append(("pace", time.monotonic()))

    def sent(self) -> None:
        super().sent()
        self.events.append(("sent", time.monotonic()))


async def test_each_paced_step_reports_its_request_on_the_wire(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)
    ctx = Timeline(timeout=10.0, min_interval=0.0)
    async with simulator("hmi-weak") as device:
        target = ProbeTarget(asset=AssetRef(id="hmi", kind=AssetKind.HMI, zone="control"),
                             host="127.0.0.1", port=device.port, options=SshOptions(
                                 known_hosts=tmp_path / "known_hosts",
                                 **credentials("hmi-weak")))
        await SshProbe().collect(target, ctx)
        commands = commands_seen(device)
    assert commands and not ctx.recorder.errors
    steps: list[int] = []  # requests reported after each pace(), before the next one
    for kind, _ in ctx.events:
        if kind == "pace":
            steps.append(0)
        elif steps:
            steps[-1] += 1
    assert len(steps) >= len(commands) + 2  # banner, auth methods, login, the commands
    assert all(steps), steps  # every paced step put a request on the wire and said so
    # a command is a channel open and an exec request: two requests, not its EOF/close
    assert steps[-len(commands):] == [2] * len(commands), steps
