"""Record a live SSH device as a simulator profile folder (``otaudit sim ssh --record HOST``).

The folder (``profile.yaml`` + ``outputs/``) is the contract with ``simulators/ssh``. The
recorder reads the device exactly as the probe does: the transport (identification,
KEXINIT, offered auth methods) without login, then one login and the personality's
allowlisted commands only (``allowlist.py``, enforced by the session), paced. Every
command's stdout, stderr and exit status is kept, so a missing file or a failing command
replays the same. What a recording cannot carry: the device's private host key (the
replay has its own, so ``ssh.host_key_fingerprint`` differs) and the login secret: the
replay accepts the recorded user with the password ``REPLAY_PASSWORD``. Switch
configurations are written with their secrets replaced by ``<removed>`` (as in evidence);
well-known default communities (public, private, ...) are no secret and stay, so the
replay's ``snmp.communities`` differ only in the name hash of the site's own communities.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from otaudit.probes.base import ProbeContext, ProbeError, ProbeTarget
from otaudit.probes.ssh import allowlist
from otaudit.probes.ssh.algorithms import LEGACY, MODERN
from otaudit.probes.ssh.client import server_auth_methods
from otaudit.probes.ssh.known_hosts import KnownHosts
from otaudit.probes.ssh.parse.common import DEFAULT_COMMUNITIES, redact_secrets
from otaudit.probes.ssh.probe import SshOptions, SshProbe
from otaudit.probes.ssh.transport import read_kexinit
from otaudit.thirdparty import asyncssh

REPLAY_PASSWORD = "otaudit-replay"
# markers in the KEXINIT kex list that the replay's SSH library adds itself
PSEUDO_KEX = ("ext-info-s", "ext-info-c", "kex-strict-s-v00@openssh.com",
              "kex-strict-c-v00@openssh.com")
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
             "ssh-rsa")


async def record(target: ProbeTarget, ctx: ProbeContext, out: Path) -> list[Path]:
    """Read the device like the probe and write the profile folder ``out``."""
    opts = target.options
    if not isinstance(opts, SshOptions):
        raise ProbeError(f"ssh recorder got {type(opts).__name__} options")
    if not opts.has_credentials or not opts.personality:
        raise ProbeError("recording needs --user, a password or key and --personality")
    await ctx.pace()
    info = await read_kexinit(target.host, target.port, ctx.timeout, ctx.sent)
    kex = info.kexinit
    probe = SshProbe()
    offered = (kex.kex, kex.host_key, kex.ciphers_s2c, kex.macs_s2c)
    usable = [s for s in (MODERN, LEGACY) if (s is MODERN or opts.allow_legacy)
              and s.negotiable(*offered)]
    if not usable:
        raise ProbeError("no algorithm in common with the device (try --allow-legacy true)")
    await ctx.pace()
    methods = await server_auth_methods(target.host, target.port, opts.user or "", usable[0],
                                        ctx.timeout, ctx.sent)
    session, _ = await probe._login(target, opts, ctx, KnownHosts(opts.known_hosts), usable)
    results = {}
    try:
        for command in allowlist.ALLOWLIST[opts.personality]:
            await ctx.pace()
            results[command] = await session.run(command)
    except (asyncssh.Error, OSError) as exc:
        raise ProbeError(f"connection lost after {len(results)} commands: {exc}") from None
    finally:
        await session.close()
    redact = opts.personality not in ("linux", "windows")  # host outputs carry no secrets
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "outputs").mkdir(parents=True)
    commands: dict[str, Any] = {}
    for command, result in results.items():
        name = _slug(command)
        while (tmp / "outputs" / name).exists():  # two long commands with one prefix
            name += "-"
        stdout = result.stdout
        if redact and stdout:
            stdout = redact_secrets(stdout.decode("utf-8", "replace"),
                                    keep=DEFAULT_COMMUNITIES).encode()
        (tmp / "outputs" / name).write_bytes(stdout)
        spec: dict[str, Any] = {"file": f"outputs/{name}"}
        if result.stderr:
            spec["stderr"] = result.stderr.decode("utf-8", "replace")
        if result.exit_status not in (0, None):
            spec["exit"] = result.exit_status
        if result.timed_out:
            spec["hang"] = True
        commands[command] = spec
    identification = info.identification.line
    profile = {
        "name": f"recording-{target.host}",
        "description": f"recording of the SSH device at {target.endpoint}",
        "personality": opts.personality,
        "hostname": target.host,
        "server_version": re.sub(r"^SSH-[\d.]+-", "", identification),
        "host_keys": [k for k in KEY_TYPES if k in kex.host_key
                      or (k == "ssh-rsa" and {"rsa-sha2-256", "rsa-sha2-512"} & set(kex.host_key))]
        or ["ssh-ed25519"],
        "algorithms": {"kex": [k for k in kex.kex if k not in PSEUDO_KEX],
                       "host_key": kex.host_key, "ciphers": kex.ciphers_s2c,
                       "macs": kex.macs_s2c, "compression": kex.compression_s2c},
        "auth_methods": [m for m in methods if m in ("publickey", "password",
                                                     "keyboard-interactive")],
        "users": [{"name": opts.user, "password": REPLAY_PASSWORD}],
        "commands": commands,
    }
    (tmp / "profile.yaml").write_text(
        f"# otaudit SSH recording: replay with `otaudit sim ssh --profile {out}` and log in\n"
        f"# as {opts.user} with password {REPLAY_PASSWORD}\n"
        + yaml.safe_dump(profile, sort_keys=False, width=100), encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    return [out]


def _slug(command: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", command).strip("-")[:80] or "output"
