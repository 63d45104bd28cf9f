"""``WinrmProbe``: a Windows host (HMI, SCADA server, engineering station) over WinRM.

WinRM is only a transport here: the commands are the SSH probe's ``windows`` allowlist
(``otaudit.probes.ssh.allowlist.WINDOWS``), their outputs go through the same parsers and
fact groups (``otaudit.probes.ssh.windows_facts.collect_windows``), so a host gives the
same facts whichever way the inventory reaches it. An endpoint chooses WinRM by its
protocol key::

    endpoints:
      winrm: {host: 10.0.3.21, user: "PLANT\\\\auditor", password: {env: WINRM_PW},
              auth: ntlm}                       # port 5986, https (the defaults)
      winrm: {host: 10.0.3.22, port: 5985, scheme: http, auth: kerberos, ...}

- ``scheme``: ``https`` (default, port 5986) or ``http`` only when written (port 5985 must
  be given too). Basic authentication over ``http`` is refused (the password would cross
  the network in clear); NTLM and Kerberos over ``http`` use WinRM message encryption.
- ``auth``: ``ntlm`` (default; local accounts, workgroup hosts), ``basic`` (local accounts
  with Basic enabled on the listener), ``kerberos`` (domain accounts: needs the site's
  realm: a ``krb5.conf`` naming the realm's KDC, the host's DNS name as the SPN
  ``WSMAN/host``, a user written ``user@REALM``, and pyspnego's Kerberos extra (python
  gssapi + the system's Kerberos libraries) installed on the collector).
- TLS: the certificate is checked against the system's trust store, or ``ca_file``; a
  self-signed listener certificate (what ``winrm quickconfig -transport:https`` makes) is
  trusted only when pinned: ``cert_sha256`` (hex, colons allowed).
- The password is a secret reference; it is never logged (the run redacts it).

Order of work, in one worker thread, one connection, every request paced: one
unauthenticated POST /wsman (its 401 lists the offered schemes: ``winrm.auth_offered``; the
TLS handshake gives the certificate facts), then with credentials the WinRS shell, each
allowlisted command (Command, Receive until done, Signal terminate) and the shell's Delete.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, field_validator, model_validator

from otaudit.observation import AssetKind, utcnow
from otaudit.probes.base import Probe, ProbeContext, ProbeError, ProbeOptions, ProbeTarget
from otaudit.probes.certificates import summarise
from otaudit.probes.ssh.allowlist import ALLOWLIST
from otaudit.probes.ssh.outputs import Outputs
from otaudit.probes.ssh.windows_facts import collect_windows
from otaudit.probes.winrm.client import PERSONALITY, Offered, WinrmConfig, WinrmSession
from otaudit.probes.winrm.facts import FACTS, LOGIN_FACTS
from otaudit.secrets import SecretRef


class WinrmOptions(ProbeOptions):
    """Endpoint options of the WinRM probe (credentials only as secret references)."""

    user: str | None = Field(None, description="login user (DOMAIN\\user, user@REALM, user)")
    password: SecretRef | None = Field(
        None, description="password reference; CLI: --password-env VAR | --password-file F")
    scheme: Literal["https", "http"] = Field(
        "https", description="https (default, port 5986) | http (only when written)")
    auth: Literal["basic", "ntlm", "kerberos"] = Field(
        "ntlm", description="ntlm (default) | basic | kerberos (needs the site's realm)")
    ca_file: Path | None = Field(None, description="CA certificate(s) (PEM) to verify with")
    cert_sha256: str | None = Field(
        None, description="pin the listener's certificate by its SHA-256 fingerprint")

    @field_validator("cert_sha256")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        hexed = re.sub(r"[\s:]", "", value).lower()
        if not re.fullmatch(r"[0-9a-f]{64}", hexed):
            raise ValueError("cert_sha256 is the certificate's SHA-256 fingerprint: 64 hex "
                             "digits (colons allowed)")
        return hexed

    @model_validator(mode="after")
    def _consistent(self) -> WinrmOptions:
        if self.password and not self.user:
            raise ValueError("a password needs a user")
        if self.scheme == "http" and self.auth == "basic":
            raise ValueError("basic authentication over http would send the password in "
                             "clear: use scheme https (or auth ntlm/kerberos, encrypted)")
        if self.scheme == "http" and (self.ca_file or self.cert_sha256):
            raise ValueError("ca_file and cert_sha256 apply to scheme https only")
        if self.ca_file and self.cert_sha256:
            raise ValueError("give either ca_file (verify) or cert_sha256 (pin), not both")
        return self

    @property
    def has_credentials(self) -> bool:
        return bool(self.user and self.password)


class WinrmProbe(Probe):
    name = "winrm"
    version = "0.1.0"
    typical_seconds = 3.0  # shell, ~16 commands of 3 WS-Man requests each, paced
    default_port = 5986
    default_kind = AssetKind.HMI
    Options = WinrmOptions
    facts = FACTS

    async def collect(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        opts = target.options
        if not isinstance(opts, WinrmOptions):
            opts = WinrmOptions.model_validate(opts.model_dump())
        rec = ctx.recorder
        url = f"{opts.scheme}://{target.endpoint}/wsman"
        eid = rec.evidence_for("winrm endpoint", f"{url} auth={opts.auth}")
        rec.fact("winrm.scheme", opts.scheme, eid)
        login = opts.has_credentials
        cfg = WinrmConfig(
            host=target.host, port=target.port, scheme=opts.scheme, auth=opts.auth,
            user=opts.user if login else None,
            password=ctx.secret(opts.password).get_secret_value()
            if login and opts.password else None,
            timeout=ctx.timeout, ca_file=str(opts.ca_file) if opts.ca_file else None,
            cert_sha256=opts.cert_sha256)
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()

        def pace() -> None:  # called in the worker thread before each request
            asyncio.run_coroutine_threadsafe(ctx.pace(), loop).result(ctx.timeout + 5)

        session = WinrmSession(cfg, pace, ctx.sent, cancelled)
        try:
            offered, results, lost, failed = await in_own_thread(_work, session, login)
        except BaseException:
            cancelled.set()  # the deadline or an error: the thread sends nothing more
            raise
        self._record_certificate(session, ctx)
        rec.fact("winrm.auth_offered", offered.schemes,
                 rec.evidence_for("winrm unauthenticated POST /wsman", offered.evidence))
        if not login:
            for path in (*LOGIN_FACTS, "winrm.auth"):
                rec.unknown_fact(path, "no credentials configured")
            return
        if failed is not None:  # after the listener was read: its facts above stay
            raise failed
        rec.fact("winrm.auth", opts.auth, eid)
        out = Outputs(rec, results, PERSONALITY, ctx.timeout, via="winrm exec")
        collect_windows(out, utcnow())
        if lost:
            raise ProbeError(lost)

    @staticmethod
    def _record_certificate(session: WinrmSession, ctx: ProbeContext) -> None:
        rec = ctx.recorder
        der = session.peer_certificate
        paths = ("winrm.cert_sha256", "winrm.cert_self_signed", "winrm.cert_days_left")
        if session.cfg.scheme != "https":
            for path in paths:
                rec.unknown_fact(path, "scheme http: no certificate")
            return
        if der is None:
            for path in paths:
                rec.unknown_fact(path, "the certificate could not be read from the connection")
            return
        cert = summarise(der)
        eid = rec.evidence_for("winrm TLS certificate", f"subject={cert.subject} issuer="
                               f"{cert.issuer} not_after={cert.not_after} "
                               f"sha256={cert.fingerprint_sha256}")
        rec.fact("winrm.cert_sha256", cert.fingerprint_sha256, eid)
        rec.fact("winrm.cert_self_signed", cert.self_signed, eid)
        rec.fact("winrm.cert_days_left", cert.days_left, eid)


T = TypeVar("T")


async def in_own_thread(func: Callable[..., T], *args: object) -> T:
    """``func(*args)`` in a daemon thread of its own. Not ``asyncio.to_thread``: the loop's
    default executor has min(32, cores + 4) threads (6 on two cores) and a WinRM run holds
    one for its whole session, so further runs queued there and spent their deadline
    waiting; and its threads are joined at exit, so one stuck in a socket call held up the
    collector's shutdown. The thread ends with ``func`` (the run's cancel flag stops it
    sending at its next request)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            outcome: tuple[T | None, BaseException | None] = (func(*args), None)
        except BaseException as exc:  # handed to the awaiting task, not lost in the thread
            outcome = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(settle, *outcome)

    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(work,), name="otaudit-winrm",
                     daemon=True).start()
    return await future


def _work(session: WinrmSession, login: bool
          ) -> tuple[Offered, dict, str | None, ProbeError | None]:
    """In the worker thread: the offered authentication (no credential), then with a login
    the shell and every allowlisted command, then close. Returns what was read and how the
    run ended: ``lost`` when the session broke after some outputs (their facts count),
    ``failed`` when it broke before any (the listener's facts still count)."""
    results: dict = {}
    commands = ALLOWLIST[PERSONALITY]
    offered: Offered | None = None
    try:
        offered = session.offered()
        if login:
            session.open()
            for command in commands:
                results[command] = session.run(command)
    except ProbeError as exc:
        if offered is None:
            raise
        if not results:
            return offered, results, None, exc
        return offered, results, (f"WinRM session lost after {len(results)} of "
                                  f"{len(commands)} commands: {exc}"), None
    finally:
        session.close()
    return offered, results, None, None
