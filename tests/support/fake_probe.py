"""A probe with scripted behaviour, for collector and runner tests (no device needed)."""

from __future__ import annotations

import asyncio
from typing import Literal

from otaudit.facts import IDENTITY, FactSpec
from otaudit.probes.base import (
    ParseError,
    Probe,
    ProbeAuthFailed,
    ProbeContext,
    ProbeOptions,
    ProbeRefused,
    ProbeTarget,
)
from otaudit.secrets import SecretRef

Behaviour = Literal["ok", "partial", "crash", "refused", "auth", "parse", "hang", "oserror",
                    "slow", "leaky_crash", "hang_racing"]


class CancelledWithResult(asyncio.CancelledError):
    """What asyncua's wait_for2 raises when a reply arrives as the time runs out."""


class FakeOptions(ProbeOptions):
    behaviour: Behaviour = "ok"
    password: SecretRef | None = None
    firmware: str = "V1.2.3"


class FakeProbe(Probe):
    name = "fake"
    version = "0.1"
    default_port = 9
    Options = FakeOptions
    facts = {
        "identity.vendor": IDENTITY["identity.vendor"],
        "identity.firmware_version": IDENTITY["identity.firmware_version"],
        "fake.login": FactSpec("bool", "logged in with the password"),
    }

    active: dict[str, int] = {}  # host -> probe runs in progress (politeness tests)
    max_active: dict[str, int] = {}

    async def collect(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        host = target.host
        FakeProbe.active[host] = FakeProbe.active.get(host, 0) + 1
        FakeProbe.max_active[host] = max(FakeProbe.max_active.get(host, 0),
                                         FakeProbe.active[host])
        try:
            await self._collect(target, ctx)
        finally:
            FakeProbe.active[host] -= 1

    async def _collect(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        opts: FakeOptions = target.options  # type: ignore[assignment]
        rec = ctx.recorder
        password = ctx.secret(opts.password).get_secret_value() if opts.password else ""
        await ctx.pace()
        eid = rec.evidence_for("fake identify", f"vendor=Acme fw={opts.firmware} pw={password}")
        rec.fact("identity.vendor", "Acme", eid)
        match opts.behaviour:
            case "ok" | "slow":
                if opts.behaviour == "slow":
                    await asyncio.sleep(0.05)
                rec.fact("identity.firmware_version", opts.firmware, eid)
                rec.fact("fake.login", bool(password), eid)
            case "partial":
                rec.unknown_fact("identity.firmware_version", "device hid it")
            case "crash":
                raise KeyError("bug")
            case "leaky_crash":  # a library quoting the value it refused (pyasn1 did)
                try:
                    raise ValueError(f"ValueSizeConstraint failed at: {password.encode()!r}")
                except ValueError as inner:
                    raise RuntimeError(f"WrongValueError({{'msg': {inner!r}}})") from inner
            case "refused":
                raise ProbeRefused(f"device refused login with {password}")
            case "auth":
                raise ProbeAuthFailed("wrong password")
            case "parse":
                raise ParseError("byte 3: expected 0x32")
            case "hang":
                await asyncio.sleep(3600)
            case "hang_racing":  # cancelled, the library answers with a CancelledError subclass
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    raise CancelledWithResult("the reply, as the time ran out") from None
            case "oserror":
                raise ConnectionResetError(104, "Connection reset by peer")
