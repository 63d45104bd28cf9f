"""WinRM client side: one WinRS shell on one HTTP(S) connection, allowlisted PowerShell only.

pypsrp's ``WSMan``/``WinRS`` (requests, synchronous) does the WS-Management SOAP: Create
(the shell), Command, Receive, Signal, Delete. ``WinrmSession`` runs in a worker thread
and is the only way the probe executes anything over WinRM:

- ``run`` refuses a command outside the ``windows`` allowlist before anything is sent
  (the SSH Windows personality's list: ``otaudit.probes.ssh.allowlist``), and sends the
  exact text as ``powershell.exe -EncodedCommand`` (UTF-16LE, base64): nothing is quoted
  or interpolated into a command line;
- every WS-Man request waits for ``pace()`` (the probe context's pacing, called from this
  thread) and every HTTP write tells ``sent()`` (pacing from the wire, ``probes/wire.py``);
- time is bounded per request (connect/read timeouts, WS-Man OperationTimeout) and per
  command (``timeout``; then the command is signalled to terminate); output is bounded
  (``MAX_OUTPUT``/``MAX_STDERR`` per command, ``MAX_REPLY`` bytes per HTTP reply);
- one requests session with one pooled connection: one connection per device.

TLS: ``https`` verifies the server certificate against the system store or ``ca_file``;
``cert_sha256`` instead pins the exact certificate (a self-signed WinRM listener).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import http.client
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from html import unescape
from typing import Any, Literal

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from otaudit.probes.base import ProbeAuthFailed, ProbeError, ProbeRefused, ProbeTimeout
from otaudit.probes.ssh import allowlist
from otaudit.probes.ssh.client import MAX_OUTPUT, MAX_STDERR, CommandResult
from otaudit.probes.wire import Sent

PERSONALITY = "windows"
POWERSHELL = "powershell.exe"
POWERSHELL_ARGS = ("-NoLogo", "-NoProfile", "-NonInteractive", "-EncodedCommand")
MAX_REPLY = 4 * 1024 * 1024  # bytes of one HTTP reply body
OPERATION_TIMEOUT = 20  # WS-Man OperationTimeout of one Receive (s), at most
RECEIVE_TIMED_OUT = 2150858793  # WS-Man fault: no output within the OperationTimeout
Scheme = Literal["https", "http"]
Auth = Literal["basic", "ntlm", "kerberos"]


class WinrmCancelled(ProbeError):
    """The probe run ended (deadline) while this thread still worked."""


def encode_command(command: str) -> str:
    """``-EncodedCommand`` argument: the command's UTF-16LE bytes in base64."""
    return base64.b64encode(command.encode("utf-16-le")).decode("ascii")


_CLIXML_STRING = re.compile(r'<S S="(?:Error|Warning)">(.*?)</S>', re.DOTALL)
_CLIXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def clixml_text(stderr: bytes) -> bytes:
    """PowerShell started with ``-EncodedCommand`` writes its error stream as CLIXML
    (``#< CLIXML`` then ``<Objs>``); the error and warning strings as plain text."""
    text = stderr.decode("utf-8", "replace")
    if not text.lstrip().startswith("#< CLIXML"):
        return stderr
    parts = [_CLIXML_ESCAPE.sub(lambda m: chr(int(m[1], 16)), unescape(s))
             for s in _CLIXML_STRING.findall(text)]
    return "".join(parts).encode("utf-8")


@dataclass(frozen=True)
class WinrmConfig:
    host: str
    port: int
    scheme: Scheme
    auth: Auth
    user: str | None
    password: str | None
    timeout: float
    ca_file: str | None = None
    cert_sha256: str | None = None


@dataclass(frozen=True)
class Offered:
    """The authentication schemes a listener offers (lower case) and the reply's headers."""

    schemes: list[str]
    evidence: str


class _LastLine:
    """A response's file object that remembers the last line read."""

    def __init__(self, fp: Any) -> None:
        self._fp, self.last = fp, b"\r\n"

    def readline(self, *args: Any) -> bytes:
        self.last = self._fp.readline(*args)
        return self.last

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)


class WholeHeadResponse(http.client.HTTPResponse):
    """An HTTP response whose head must end with its blank line. http.client takes the end
    of the connection for the end of the headers: a head cut short would pass for a whole
    reply with fewer headers (a 401 without its WWW-Authenticate: no scheme offered)."""

    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = _LastLine(self.fp)  # type: ignore[assignment]

    def begin(self) -> None:
        super().begin()
        fp = self.fp
        if isinstance(fp, _LastLine):
            if fp.last == b"":
                raise http.client.IncompleteRead(b"")
            self.fp = fp._fp  # the head is whole: the body is read as usual


def _tapped_pools(sent: Sent | None, opened: list[HTTPConnection]) -> dict[str, type]:
    """urllib3 pool classes whose connections call ``sent()`` after each write, read only
    whole reply heads (``WholeHeadResponse``) and are listed in ``opened`` as they are made
    (``WinrmSession.close`` closes each: a connection still checked out by a broken reply
    is not in the pool that ``Session.close`` empties, and stayed open until the garbage
    collector found it — the host saw an idle connection outlive the run)."""

    class TappedHTTPConnection(HTTPConnection):
        response_class = WholeHeadResponse

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            opened.append(self)

        def send(self, data: Any) -> None:
            super().send(data)
            if sent is not None:
                sent()

    class TappedHTTPSConnection(HTTPSConnection):
        response_class = WholeHeadResponse

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            opened.append(self)

        def send(self, data: Any) -> None:
            super().send(data)
            if sent is not None:
                sent()

    return {"http": type("TappedPool", (HTTPConnectionPool,),
                         {"ConnectionCls": TappedHTTPConnection}),
            "https": type("TappedPool", (HTTPSConnectionPool,),
                          {"ConnectionCls": TappedHTTPSConnection})}


def _bounded_body(response: requests.Response, **_: Any) -> requests.Response:
    """Read the reply body up to ``MAX_REPLY`` bytes (requests would read it all)."""
    data = response.raw.read(MAX_REPLY + 1, decode_content=False)
    if len(data) > MAX_REPLY:
        response.close()
        raise ProbeError(f"a WinRM reply exceeded {MAX_REPLY} bytes")
    response._content = data  # the body, read once and bounded
    response._content_consumed = True
    return response


def _map_error(exc: BaseException, what: str, cfg: WinrmConfig) -> ProbeError:
    """A library or network failure as the probe error that names it (never a secret)."""
    from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError

    if isinstance(exc, ProbeError):
        return exc
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(exc)
        if "ingerprint" in text:
            return ProbeError(f"{what}: TLS certificate of {cfg.host}:{cfg.port} does not match "
                              "the pinned cert_sha256")
        if "certificate verify failed" in text.lower():
            return ProbeError(f"{what}: TLS certificate of {cfg.host}:{cfg.port} not trusted "
                              f"({_short(text)}); give the endpoint's CA as ca_file or pin "
                              "the certificate with cert_sha256")
        return ProbeError(f"{what}: TLS handshake with {cfg.host}:{cfg.port} failed "
                          f"({_short(text)}): is it an https listener?")
    if isinstance(exc, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError):
        return ProbeTimeout(f"{what}: no answer within {cfg.timeout:g} s")
    if isinstance(exc, urllib3.exceptions.HTTPError | http.client.HTTPException):
        # the body is read by ``_bounded_body`` from urllib3 directly, so urllib3's own
        # errors arrive unwrapped: a body cut short, a broken chunked encoding, ...
        return ProbeError(f"{what}: malformed or incomplete HTTP reply "
                          f"({type(exc).__name__})")
    if isinstance(exc, requests.exceptions.ConnectionError):
        if "refused" in str(exc).lower():
            return ProbeRefused(f"{what}: connection refused by {cfg.host}:{cfg.port}")
        return ProbeError(f"{what}: connection failed ({_short(str(exc))})")
    if isinstance(exc, AuthenticationError):
        return ProbeAuthFailed(f"{what}: {cfg.auth} authentication as {cfg.user!r} failed")
    if isinstance(exc, WinRMTransportError):
        return ProbeError(f"{what}: HTTP {exc.code} from the WinRM service")
    if type(exc).__name__ == "WSManFaultError":
        code, reason = getattr(exc, "code", None), getattr(exc, "reason", None)
        return ProbeError(f"{what}: WS-Man fault {code}: {_short(str(reason or ''))}")
    if isinstance(exc, WinRMError):
        return ProbeError(f"{what}: malformed WS-Man reply ({_short(str(exc))})")
    if isinstance(exc, ET.ParseError | KeyError | ValueError | AttributeError | TypeError
                  | IndexError | binascii.Error | UnicodeError):
        return ProbeError(f"{what}: malformed WS-Man reply ({type(exc).__name__})")
    if isinstance(exc, requests.exceptions.RequestException):
        return ProbeError(f"{what}: {type(exc).__name__}")
    if cfg.auth == "kerberos" and isinstance(exc, ImportError):
        return ProbeError(f"{what}: Kerberos is not available on this collector: install "
                          "pyspnego's Kerberos extra (python-gssapi and the system's Kerberos "
                          "libraries) and configure the site's realm (krb5.conf)")
    if type(exc).__module__.startswith("spnego"):  # SpnegoError: no KDC, bad token, ...
        return ProbeAuthFailed(f"{what}: {cfg.auth} authentication as {cfg.user!r} failed "
                               f"({type(exc).__name__})")
    raise exc


def _short(text: str) -> str:
    return " ".join(text.split())[:200]


class WinrmSession:
    """One WinRS shell on one connection; used from a single worker thread."""

    def __init__(self, cfg: WinrmConfig, pace: Callable[[], None], sent: Sent | None,
                 cancelled: threading.Event) -> None:
        self.cfg = cfg
        self._pace = pace
        self._sent = sent
        self._cancelled = cancelled
        self._wsman: Any = None
        self._shell: Any = None
        self.peer_certificate: bytes | None = None  # DER, from the first HTTPS reply
        self._opened: list[HTTPConnection] = []  # every connection made (closed by close)

    # -- setup ---------------------------------------------------------------------------
    def connect(self) -> None:
        """Set up the client (no network traffic): TLS trust or pin, bounds, pacing taps."""
        from pypsrp.wsman import WSMan

        if self._wsman is not None:
            return
        cfg = self.cfg
        seconds = max(1, int(cfg.timeout + 0.999))
        verify: bool | str = cfg.ca_file or True
        if cfg.cert_sha256:
            verify = False  # the pin replaces chain and name checks
        self._wsman = WSMan(
            cfg.host, port=cfg.port, username=cfg.user, password=cfg.password,
            ssl=cfg.scheme == "https",
            # without a password only ``offered`` runs, which sends no credential at all
            auth=cfg.auth if cfg.password is not None else "negotiate",
            cert_validation=verify,
            connection_timeout=seconds, read_timeout=seconds,
            operation_timeout=min(OPERATION_TIMEOUT, seconds), encryption="auto",
            no_proxy=True, reconnection_retries=0, reconnection_backoff=0.0)
        transport = self._wsman.transport
        session = transport._build_session()  # built now to bound and tap it
        session.trust_env = False
        session.hooks["response"].insert(0, self._on_reply)
        for adapter in session.adapters.values():
            if not isinstance(adapter, HTTPAdapter):
                continue
            adapter.poolmanager.connection_pool_kw["maxsize"] = 1
            if cfg.cert_sha256:
                adapter.poolmanager.connection_pool_kw["assert_fingerprint"] = cfg.cert_sha256
            adapter.poolmanager.pool_classes_by_scheme = _tapped_pools(self._sent,
                                                                       self._opened)
        transport.session = session
        send = transport.send

        def paced_send(message: bytes, *, retries_on_read_timeout: int = 0,
                       timeout: Any = None) -> bytes:
            if self._cancelled.is_set():
                raise WinrmCancelled("the probe run ended")
            self._pace()
            return send(message, retries_on_read_timeout=0, timeout=timeout)  # no retry

        transport.send = paced_send

    def offered(self) -> Offered:
        """One unauthenticated POST to /wsman: the listener's 401 names the authentication
        schemes it offers (and the TLS handshake shows its certificate). No credential."""
        self.connect()
        if self._cancelled.is_set():
            raise WinrmCancelled("the probe run ended")
        transport = self._wsman.transport
        request = requests.Request("POST", transport.endpoint, data=b"", headers={
            "Content-Type": "application/soap+xml;charset=UTF-8",
            "User-Agent": "Python PSRP Client"}).prepare()
        self._pace()
        seconds = max(1, int(self.cfg.timeout + 0.999))
        what = "reading the offered authentication"
        try:
            response = self._on_reply(transport.session.send(request, stream=True,
                                                             timeout=(seconds, seconds)))
        except Exception as exc:
            raise _map_error(exc, what, self.cfg) from None
        header = response.headers.get("WWW-Authenticate", "")
        server = response.headers.get("Server", "")
        if response.status_code != 401:
            raise ProbeError(f"{what}: HTTP {response.status_code} to an unauthenticated "
                             f"request (Server {server[:60]!r}): not a WinRM listener?")
        schemes = [m.lower() for m in re.findall(r"(?:^|,)\s*([A-Za-z][\w-]*)(?=\s|,|$)",
                                                  header)]
        return Offered(list(dict.fromkeys(schemes)),
                       f"HTTP {response.status_code}; Server: {server}; "
                       f"WWW-Authenticate: {header}")

    def open(self) -> None:
        """Create the WinRS shell (the first request authenticates)."""
        from pypsrp.shell import WinRS

        self.connect()
        self._shell = WinRS(self._wsman, codepage=65001, no_profile=True)
        self._call("creating the WinRS shell", self._shell.open)

    def _on_reply(self, response: requests.Response, **_: Any) -> requests.Response:
        if self.peer_certificate is None and self.cfg.scheme == "https":
            sock = getattr(getattr(response.raw, "connection", None), "sock", None)
            getpeercert = getattr(sock, "getpeercert", None)
            if getpeercert is not None:
                self.peer_certificate = getpeercert(binary_form=True)
        return _bounded_body(response)

    def _call(self, what: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            raise _map_error(exc, what, self.cfg) from None

    # -- commands ------------------------------------------------------------------------
    def run(self, command: str) -> CommandResult:
        """Run one allowlisted command; output and time bounded, then terminated."""
        allowlist.check(PERSONALITY, command)
        from pypsrp.shell import CommandState, SignalCode

        shell = self._shell
        what = f"running {command[:40]!r}"
        response = self._call(what, shell.command, POWERSHELL,
                              [*POWERSHELL_ARGS, encode_command(command)])
        command_id = self._call(what, lambda: response.find(
            "rsp:CommandResponse/rsp:CommandId", _ns()).text)
        if not command_id:
            raise ProbeError(f"{what}: malformed WS-Man reply (no CommandId)")
        stdout, stderr = bytearray(), bytearray()
        truncated = timed_out = False
        exit_status: int | None = None
        deadline = time.monotonic() + self.cfg.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            state, rc, buffers = self._receive(what, command_id,
                                               max(1, min(int(remaining), OPERATION_TIMEOUT)))
            truncated = _append(stdout, buffers.get("stdout", b""), MAX_OUTPUT) or truncated
            truncated = _append(stderr, buffers.get("stderr", b""), MAX_STDERR) or truncated
            if truncated:
                break
            if state == CommandState.DONE:
                exit_status = rc
                break
        self._call(f"ending {command[:40]!r}", shell.signal, SignalCode.TERMINATE, command_id)
        return CommandResult(command, bytes(stdout), clixml_text(bytes(stderr)),
                             exit_status, truncated, timed_out)

    def _receive(self, what: str, command_id: str, seconds: int
                 ) -> tuple[str, int | None, dict[str, bytes]]:
        from pypsrp.exceptions import WSManFaultError
        from pypsrp.shell import CommandState

        try:
            return self._shell.receive("stdout stderr", command_id, timeout=seconds)
        except WSManFaultError as exc:
            if exc.code == RECEIVE_TIMED_OUT:  # no output yet: ask again
                return CommandState.RUNNING, None, {}
            raise _map_error(exc, what, self.cfg) from None
        except Exception as exc:
            raise _map_error(exc, what, self.cfg) from None

    def close(self) -> None:
        """Delete the shell (best effort) and close the connection."""
        try:
            if self._shell is not None and self._shell.opened and not self._cancelled.is_set():
                self._shell.close()
        except Exception:  # best effort: the host ends an idle shell itself
            pass
        finally:
            if self._wsman is not None:
                self._wsman.close()
            for connection in self._opened:  # and those a broken reply kept checked out
                with contextlib.suppress(Exception):
                    connection.close()
            self._opened.clear()


def _append(buffer: bytearray, data: bytes, limit: int) -> bool:
    """Append ``data`` up to ``limit`` bytes; True when some had to be dropped."""
    room = limit - len(buffer)
    buffer += data[:max(room, 0)]
    return len(data) > room


def _ns() -> dict[str, str]:
    from pypsrp.wsman import NAMESPACES

    return NAMESPACES
