"""asyncssh client side: auth-method listing, host key check, and a bounded command session.

``SshSession.run`` is the only way the probe executes anything on a device: it refuses
commands outside the personality's allowlist, bounds output size and time, and never
opens a shell, port forward or file transfer.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from otaudit.probes.base import ProbeAuthFailed, ProbeError, ProbeTimeout
from otaudit.probes.ssh import allowlist
from otaudit.probes.ssh.algorithms import AlgorithmSet
from otaudit.probes.ssh.known_hosts import KnownHosts, Verdict
from otaudit.probes.wire import Sent
from otaudit.thirdparty import asyncssh

MAX_OUTPUT = 1024 * 1024   # bytes of stdout kept per command
MAX_STDERR = 64 * 1024


class HostKeyChanged(ProbeError):
    """The endpoint presented a key that differs from the pinned one; no login attempted."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(f"host key changed: presented {verdict.presented}, pinned "
                         f"{', '.join(verdict.pinned)}; not logging in")
        self.verdict = verdict


class LoginRefused(ProbeAuthFailed):
    """Credentials rejected after the host key was checked (the key is known)."""

    def __init__(self, message: str, key: asyncssh.SSHKey, verdict: Verdict) -> None:
        super().__init__(message)
        self.key, self.verdict = key, verdict


class NoCommonAlgorithms(ProbeError):
    """Key exchange failed with the algorithm set in use."""


@dataclass(frozen=True)
class CommandResult:
    command: str
    stdout: bytes
    stderr: bytes
    exit_status: int | None
    truncated: bool = False
    timed_out: bool = False


def _base_options(algs: AlgorithmSet, timeout: float, preferred_host_key: list[str] | None = None
                  ) -> dict:
    return {**algs.connect_options(preferred_host_key), "connect_timeout": timeout,
            "config": None}


def _map_error(exc: Exception, what: str) -> ProbeError:
    if isinstance(exc, asyncssh.KeyExchangeFailed):
        return NoCommonAlgorithms(f"{what}: key exchange failed ({exc.reason})")
    if isinstance(exc, asyncssh.PermissionDenied):
        return ProbeAuthFailed(f"{what}: authentication failed")
    if isinstance(exc, asyncssh.DisconnectError):
        return ProbeError(f"{what}: server disconnected ({exc.reason})")
    if isinstance(exc, ValueError):  # PacketDecodeError, UnicodeDecodeError of a bad banner
        return ProbeError(f"{what}: malformed SSH data from the server "
                          f"({type(exc).__name__}: {exc})")
    return ProbeError(f"{what}: {type(exc).__name__}: {exc}")


# SSH messages that ask the server for work; the pacing interval counts from the last one
# sent: key exchange (KEXINIT, the DH/ECDH init), service and user authentication requests,
# global requests, channel opens and channel requests (exec). Not from channel EOF/close,
# window adjustments or ignore packets, which only end or pad what was asked.
REQUEST_MESSAGES = frozenset({20, 30, 5, 50, 80, 90, 98})


class _WireClient(asyncssh.SSHClient):
    """Tells ``sent`` each time a request message (``REQUEST_MESSAGES``) is handed to the
    connection's transport, so that the probe's pacing counts from when the request left
    (``otaudit.probes.wire``), not from when ``pace()`` allowed it."""

    sent: Sent | None = None

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        sent = self.sent
        send = getattr(conn, "send_packet", None)
        if sent is not None and send is not None:
            def send_packet(pkttype: int, *args: bytes, **kwargs: object) -> None:
                send(pkttype, *args, **kwargs)  # deferred during key exchange: sent again
                if pkttype in REQUEST_MESSAGES:
                    sent()

            conn.send_packet = send_packet  # type: ignore[method-assign]
        super().connection_made(conn)


def _wire_client(sent: Sent | None) -> _WireClient:
    client = _WireClient()
    client.sent = sent
    return client


async def server_auth_methods(host: str, port: int, username: str, algs: AlgorithmSet,
                              timeout: float, sent: Sent | None = None) -> list[str]:
    """Methods the server offers ``username`` after a ``none`` request (no secret sent)."""
    base = _base_options(algs, timeout)
    options = asyncssh.SSHClientConnectionOptions(
        **base, client_factory=lambda: _wire_client(sent))
    try:  # kex/host key lists must be passed directly: the function's defaults override options
        return list(await asyncssh.get_server_auth_methods(
            host, port, username, kex_algs=base["kex_algs"],
            server_host_key_algs=base["server_host_key_algs"], options=options))
    except TimeoutError:
        raise ProbeTimeout(f"no auth method list within {timeout:g} s") from None
    except (asyncssh.Error, ValueError) as exc:  # ValueError: asyncssh's malformed-data errors
        raise _map_error(exc, "listing auth methods") from None


async def server_host_key(host: str, port: int, algs: AlgorithmSet, timeout: float,
                          preferred: list[str], sent: Sent | None = None) -> asyncssh.SSHKey:
    base = _base_options(algs, timeout, preferred)
    options = asyncssh.SSHClientConnectionOptions(
        **base, client_factory=lambda: _wire_client(sent))
    try:
        key = await asyncssh.get_server_host_key(
            host, port, kex_algs=base["kex_algs"],
            server_host_key_algs=base["server_host_key_algs"], options=options)
    except TimeoutError:
        raise ProbeTimeout(f"no host key within {timeout:g} s") from None
    except (asyncssh.Error, ValueError) as exc:  # ValueError: asyncssh's malformed-data errors
        raise _map_error(exc, "reading the host key") from None
    if key is None:
        raise ProbeError("the server presented no host key")
    return key


class _PinningClient(_WireClient):
    """Checks the presented host key against the store before any credential is sent."""

    def __init__(self, store: KnownHosts, host: str, port: int, sent: Sent | None = None
                 ) -> None:
        self.store, self.host, self.port, self.sent = store, host, port, sent
        self.key: asyncssh.SSHKey | None = None
        self.verdict: Verdict | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        self.key = key
        self.verdict = self.store.check(self.host, self.port, key)
        return self.verdict.state != "changed"


class _BoundedSession(asyncssh.SSHClientSession):
    """Collects stdout/stderr up to their limits; closes the channel when one overflows."""

    def __init__(self) -> None:
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.truncated = False
        self.exit_status: int | None = None
        self.done = asyncio.Event()
        self.channel: asyncssh.SSHClientChannel | None = None
        self.error: Exception | None = None

    def connection_made(self, chan: asyncssh.SSHClientChannel) -> None:
        self.channel = chan

    def data_received(self, data: bytes, datatype: int | None) -> None:
        buffer, limit = ((self.stderr, MAX_STDERR) if datatype == asyncssh.EXTENDED_DATA_STDERR
                         else (self.stdout, MAX_OUTPUT))
        room = limit - len(buffer)
        if len(data) > room:
            buffer += data[:max(room, 0)]
            if not self.truncated and self.channel is not None:
                self.channel.close()
            self.truncated = True
        else:
            buffer += data

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def connection_lost(self, exc: Exception | None) -> None:
        self.error = exc
        self.done.set()


class SshSession:
    """One logged-in SSH connection on which allowlisted commands run one after another."""

    def __init__(self, conn: asyncssh.SSHClientConnection, personality: str,
                 timeout: float) -> None:
        self.conn = conn
        self.personality = personality
        self.timeout = timeout
        self.algorithms = {name: conn.get_extra_info(name) for name in
                           ("send_cipher", "send_mac", "server_version")}

    async def run(self, command: str) -> CommandResult:
        """Run one allowlisted command with bounded output and time."""
        allowlist.check(self.personality, command)
        chan, session = await self.conn.create_session(_BoundedSession, command, encoding=None)
        try:
            await asyncio.wait_for(session.done.wait(), self.timeout)
        except TimeoutError:
            chan.abort()
            return CommandResult(command, bytes(session.stdout), bytes(session.stderr),
                                 None, session.truncated, timed_out=True)
        if session.error is not None and not session.truncated:
            raise session.error  # the connection broke while the command ran
        return CommandResult(command, bytes(session.stdout), bytes(session.stderr),
                             session.exit_status, session.truncated)

    async def close(self) -> None:
        self.conn.close()
        with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
            await asyncio.wait_for(self.conn.wait_closed(), 5)


async def open_session(host: str, port: int, *, username: str, password: str | None,
                       client_key: asyncssh.SSHKey | None, personality: str,
                       algs: AlgorithmSet, store: KnownHosts, timeout: float,
                       sent: Sent | None = None
                       ) -> tuple[SshSession, asyncssh.SSHKey, Verdict]:
    """Log in (host key checked first); returns the session, the key and the pin verdict.
    ``sent`` is told of every packet written on the connection (pacing from the wire)."""
    client = _PinningClient(store, host, port, sent)
    methods = (["publickey"] if client_key else []) + (
        ["keyboard-interactive", "password"] if password is not None else [])
    try:
        conn = await asyncssh.connect(
            host, port, username=username, password=password,
            client_keys=[client_key] if client_key else None, agent_path=None,
            known_hosts=lambda h, a, p: ([], [], []), client_factory=lambda: client,
            preferred_auth=methods, x509_trusted_certs=None,
            **_base_options(algs, timeout, store.pinned_algorithms(host, port)))
    except TimeoutError:
        raise ProbeTimeout(f"no SSH login within {timeout:g} s") from None
    except asyncssh.HostKeyNotVerifiable:
        if client.verdict is not None and client.verdict.state == "changed":
            raise HostKeyChanged(client.verdict) from None
        raise ProbeError("host key not verifiable") from None
    except asyncssh.PermissionDenied:
        if client.key is not None and client.verdict is not None:
            if client.verdict.state == "pinned":  # the key exchange completed: the key is real
                store.pin(host, port, client.key)
            raise LoginRefused(f"login as {username!r}: authentication failed", client.key,
                               client.verdict) from None
        raise ProbeAuthFailed(f"login as {username!r}: authentication failed") from None
    except (asyncssh.Error, ValueError) as exc:  # ValueError: asyncssh's malformed-data errors
        raise _map_error(exc, f"login as {username!r}") from None
    assert client.key is not None and client.verdict is not None
    if client.verdict.state == "pinned":
        store.pin(host, port, client.key)
    return SshSession(conn, personality, timeout), client.key, client.verdict
