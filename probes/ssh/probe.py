"""``SshProbe``: transport audit (no login needed), then allowlisted commands per personality.

Order of work, one connection at a time and paced:
1. stdlib read of the identification string and KEXINIT (works with any server);
2. ``none`` auth request to list the offered methods (no secret sent);
3. the host key, checked against the known-hosts store (first use pins it; a changed key
   stops the run before any credential is sent);
4. with credentials: one login (modern algorithms, legacy only when allowed) and the
   personality's allowlisted commands on that one connection; pure parsers make facts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from otaudit.observation import AssetKind, utcnow
from otaudit.probes.base import Probe, ProbeContext, ProbeError, ProbeOptions, ProbeTarget
from otaudit.probes.ssh import allowlist
from otaudit.probes.ssh.algorithms import LEGACY, MODERN, AlgorithmSet, weak
from otaudit.probes.ssh.client import (
    HostKeyChanged,
    LoginRefused,
    NoCommonAlgorithms,
    SshSession,
    open_session,
    server_auth_methods,
    server_host_key,
)
from otaudit.probes.ssh.facts import FACTS, HOST, LOGIN_FACTS, SWITCH, WINDOWS_ONLY
from otaudit.probes.ssh.host_facts import collect_linux
from otaudit.probes.ssh.known_hosts import KnownHosts, fingerprint
from otaudit.probes.ssh.outputs import Outputs
from otaudit.probes.ssh.switch_facts import collect_hios, collect_ios
from otaudit.probes.ssh.transport import TransportInfo, read_kexinit
from otaudit.probes.ssh.windows_facts import collect_windows
from otaudit.secrets import SecretRef
from otaudit.thirdparty import asyncssh

Personality = Literal["linux", "cisco_ios", "hirschmann_hios", "windows"]
WINDOWS_BANNER = "OpenSSH_for_Windows"
ANONYMOUS_USER = "otaudit"
HOST_NOT_READ = ("identity.model", "identity.serial", "identity.firmware_version",
                 "identity.hardware_version", "identity.product")


def effective_personality(configured: str | None, banner: str | None) -> str:
    """The allowlist to use: a ``linux`` (or unset) endpoint whose identification string
    says OpenSSH for Windows is a Windows host (its shell would not know ``cat``)."""
    if configured in (None, "linux") and banner and WINDOWS_BANNER in banner:
        return "windows"
    return configured or ""


class SshOptions(ProbeOptions):
    """Endpoint options of the SSH probe (credentials only as secret references)."""

    user: str | None = Field(None, description="login user")
    password: SecretRef | None = Field(
        None, description="password reference; CLI: --password-env VAR | --password-file F")
    key: SecretRef | Path | None = Field(None, description="private key file or reference")
    personality: Personality | None = Field(
        None, description="linux | windows | cisco_ios | hirschmann_hios (selects the allowlist; "
                    "a linux endpoint whose banner says OpenSSH_for_Windows is read as windows)")
    allow_legacy: bool = Field(False, description="allow SHA-1/CBC algorithms for login")
    known_hosts: Path | None = Field(None, description="known-hosts store (TOFU pins)")

    @model_validator(mode="after")
    def _consistent(self) -> SshOptions:
        if (self.password or self.key) and not self.user:
            raise ValueError("a password or key needs a user")
        if (self.password or self.key) and not self.personality:
            raise ValueError("credentials need a personality (linux, windows, "
                             "cisco_ios, hirschmann_hios) to choose the command allowlist")
        return self

    @property
    def has_credentials(self) -> bool:
        return bool(self.user and (self.password or self.key))


class SshProbe(Probe):
    name = "ssh"
    version = "0.1.0"
    typical_seconds = 2.0  # key exchange and ~20 paced commands (bench/RESULTS.md medians)
    default_port = 22
    default_kind = AssetKind.HMI
    Options = SshOptions
    facts = FACTS

    async def collect(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        opts = target.options
        if not isinstance(opts, SshOptions):
            opts = SshOptions.model_validate(opts.model_dump())
        rec = ctx.recorder
        store = KnownHosts(opts.known_hosts)
        host, port = target.host, target.port

        await ctx.pace()
        info = await read_kexinit(host, port, ctx.timeout, ctx.sent)
        self._record_transport(info, ctx)
        offered = (info.kexinit.kex, info.kexinit.host_key, info.kexinit.ciphers_s2c,
                   info.kexinit.macs_s2c)
        candidates = [s for s in (MODERN, LEGACY) if s is MODERN or opts.allow_legacy]
        usable = [s for s in candidates if s.negotiable(*offered)]
        if not usable:
            why = ("the server offers only legacy algorithms and allow_legacy is off"
                   if not opts.allow_legacy and LEGACY.negotiable(*offered)
                   else "no algorithm in common with the client")
            for path in ("ssh.auth_methods", "ssh.password_auth_offered",
                         "ssh.host_key_fingerprint", "ssh.host_key_changed",
                         "ssh.legacy_algorithms_used"):
                rec.unknown_fact(path, why)
            for path in LOGIN_FACTS:
                rec.unknown_fact(path, why if opts.has_credentials
                                 else "no credentials configured")
            if opts.has_credentials:
                raise ProbeError(f"cannot log in: {why}")
            return
        algs = usable[0]

        await ctx.pace()
        user = opts.user or ANONYMOUS_USER
        methods = await server_auth_methods(host, port, user, algs, ctx.timeout, ctx.sent)
        eid = rec.evidence_for(f"ssh userauth none for {user!r}", ",".join(methods))
        rec.fact("ssh.auth_methods", methods, eid)
        rec.fact("ssh.password_auth_offered",
                 bool({"password", "keyboard-interactive"} & set(methods)), eid)

        if not opts.has_credentials:
            await ctx.pace()
            key = await server_host_key(host, port, algs, ctx.timeout,
                                        store.pinned_algorithms(host, port), ctx.sent)
            verdict = store.check(host, port, key)
            if verdict.state == "pinned":
                store.pin(host, port, key)
            self._record_host_key(key, verdict.state == "changed", ctx)
            reason = "no credentials configured"
            if verdict.state == "changed":
                reason = "host key changed"
            for path in LOGIN_FACTS:
                rec.unknown_fact(path, reason)
            rec.unknown_fact("ssh.legacy_algorithms_used", reason)
            if verdict.state == "changed":
                raise HostKeyChanged(verdict)
            return

        personality = effective_personality(opts.personality, info.identification.line)
        if personality != opts.personality:
            opts = opts.model_copy(update={"personality": personality})
        session, algs = await self._login(target, opts, ctx, store, usable)
        commands = allowlist.ALLOWLIST[personality]
        results, lost = {}, None
        try:
            for command in commands:
                await ctx.pace()
                results[command] = await session.run(command)
        except (asyncssh.Error, OSError, ValueError) as exc:  # ValueError: malformed packets
            lost = f"connection lost after {len(results)} of {len(commands)} commands: {exc}"
        finally:
            await session.close()
        key_evidence = rec.facts["ssh.host_key_fingerprint"].evidence
        rec.fact("ssh.legacy_algorithms_used", algs is LEGACY, *key_evidence)
        self._facts_from_outputs(results, opts, info, ctx)
        if lost:
            raise ProbeError(lost)

    async def identify(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        """Banner and KEXINIT only: one connection, no authentication request, nothing
        pinned in the known-hosts store."""
        await ctx.pace()
        self._record_transport(await read_kexinit(target.host, target.port, ctx.timeout,
                                                 ctx.sent), ctx)

    async def _login(self, target: ProbeTarget, opts: SshOptions, ctx: ProbeContext,
                     store: KnownHosts, usable: list[AlgorithmSet]
                     ) -> tuple[SshSession, AlgorithmSet]:
        rec = ctx.recorder
        password = ctx.secret(opts.password).get_secret_value() if opts.password else None
        client_key = self._client_key(opts, ctx)
        last: Exception | None = None
        for algs in usable:
            await ctx.pace()
            try:
                session, key, _ = await open_session(
                    target.host, target.port, username=opts.user or "", password=password,
                    client_key=client_key, personality=opts.personality or "", algs=algs,
                    store=store, timeout=ctx.timeout, sent=ctx.sent)
            except HostKeyChanged as exc:
                eid = rec.evidence_for("ssh host key", exc.verdict.presented)
                rec.fact("ssh.host_key_fingerprint", exc.verdict.presented, eid)
                rec.fact("ssh.host_key_changed", True, eid)
                for path in (*LOGIN_FACTS, "ssh.legacy_algorithms_used"):
                    rec.unknown_fact(path, "host key changed; not logged in")
                raise
            except LoginRefused as exc:
                self._record_host_key(exc.key, False, ctx)
                raise
            except NoCommonAlgorithms as exc:
                last = exc
                continue
            self._record_host_key(key, False, ctx)
            return session, algs
        assert last is not None
        raise last

    @staticmethod
    def _client_key(opts: SshOptions, ctx: ProbeContext) -> asyncssh.SSHKey | None:
        if opts.key is None:
            return None
        try:
            if isinstance(opts.key, SecretRef):
                return asyncssh.import_private_key(ctx.secret(opts.key).get_secret_value())
            return asyncssh.read_private_key(opts.key)
        except (OSError, asyncssh.KeyImportError) as exc:
            where = opts.key.describe() if isinstance(opts.key, SecretRef) else str(opts.key)
            raise ProbeError(f"cannot load the private key {where}: "
                             f"{type(exc).__name__}") from None

    @staticmethod
    def _record_transport(info: TransportInfo, ctx: ProbeContext) -> None:
        rec = ctx.recorder
        banner = rec.evidence_for("ssh identification exchange", info.raw_identification)
        rec.fact("ssh.banner", info.identification.line, banner)
        rec.fact("ssh.protocol_version", info.identification.proto_version, banner)
        kex = info.kexinit
        eid = rec.evidence_for("ssh server KEXINIT", kex.render())
        both = [(kex.ciphers_s2c, kex.ciphers_c2s), (kex.macs_s2c, kex.macs_c2s)]
        ciphers, macs = (s2c + [n for n in c2s if n not in s2c] for s2c, c2s in both)
        for path, weak_path, category, names, checked in (
                ("ssh.kex_algorithms", "ssh.weak_kex", "kex", kex.kex, kex.kex),
                ("ssh.host_key_algorithms", "ssh.weak_host_key_algorithms", "host_key",
                 kex.host_key, kex.host_key),
                ("ssh.ciphers", "ssh.weak_ciphers", "ciphers", kex.ciphers_s2c, ciphers),
                ("ssh.macs", "ssh.weak_macs", "macs", kex.macs_s2c, macs)):
            rec.fact(path, names, eid)
            rec.fact(weak_path, weak(category, checked), eid)

    @staticmethod
    def _record_host_key(key: asyncssh.SSHKey, changed: bool, ctx: ProbeContext) -> None:
        rec = ctx.recorder
        eid = rec.evidence_for("ssh host key", f"{key.get_algorithm()} {fingerprint(key)}")
        rec.fact("ssh.host_key_fingerprint", fingerprint(key), eid)
        rec.fact("ssh.host_key_changed", changed, eid)

    @staticmethod
    def _facts_from_outputs(results: dict, opts: SshOptions, info: TransportInfo,
                            ctx: ProbeContext) -> None:
        personality = opts.personality or ""
        rec = ctx.recorder
        out = Outputs(rec, results, personality, ctx.timeout,
                      redact=personality not in ("linux", "windows"))
        not_here = f"not applicable to personality {personality}"
        if personality == "linux":
            collect_linux(out, info.identification.line)
            for path in (*SWITCH, *HOST_NOT_READ, *WINDOWS_ONLY):
                rec.unknown_fact(path, not_here)
            if "os.name" in rec.facts:
                rec.fact("os.family", "linux", *rec.facts["os.name"].evidence)
        elif personality == "windows":
            collect_windows(out, utcnow())
            for path in (*SWITCH, *HOST_NOT_READ, *(p for p in HOST if p not in rec.facts
                                                    and p not in rec.unknown)):
                rec.unknown_fact(path, not_here)
        elif personality == "cisco_ios":
            collect_ios(out)
        else:
            collect_hios(out, info.identification.proto_version)
        if personality not in ("linux", "windows"):
            for path in (*HOST, *WINDOWS_ONLY):
                rec.unknown_fact(path, not_here)
            rec.unknown_fact("identity.os", not_here)
