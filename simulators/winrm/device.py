"""Simulated WinRM listener (WS-Management over HTTPS/HTTP) of a Windows host.

It answers from the SSH simulator's Windows profile data (``simulators/ssh/profiles/
windows-*``): the same outputs, stderr and exit codes per exact PowerShell command, so a
station reads the same whichever way it is reached. A WinRM profile (``profiles/*.yaml``)
names that SSH profile and says how the listener looks: scheme, offered authentication
(``basic``, ``ntlm``) and its certificate (self-signed, generated at start).

Only a WinRS ``cmd`` shell is served: Create, Command, Receive, Signal, Delete. A command
is answered only when it is ``powershell.exe ... -EncodedCommand <base64>`` of a command
the profile knows; anything else gets PowerShell's (or cmd's) "not recognized" error and
is logged as unknown. No command is ever executed. Every connection, authentication
attempt (user and method, never the secret) and WS-Man request is recorded in
``self.log`` (kinds ``auth``, ``create``, ``command`` with the command text, ``receive``,
``signal``, ``delete``, ``bad_request``).

Test options: ``break_reply`` (``create``/``command``/``receive``/``signal``): that reply
is sent as broken XML.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

import yaml

from otaudit.errors import InputError
from otaudit.simulators import bundled_profile
from otaudit.simulators.base import SimulatedDevice
from otaudit.simulators.certs import CertSpec, make_certificate
from otaudit.simulators.ssh.profile import CommandReply, Profile, ProfileError, load_profile
from otaudit.simulators.ssh.shell import answer
from otaudit.simulators.winrm import soap

PROFILES = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "windows-weak"
MAX_HEAD = 16 * 1024
MAX_BODY = 512 * 1024
POWERSHELL = ("powershell", "powershell.exe")
AUTH_METHODS = ("basic", "ntlm")
CLI_OPTIONS = {
    "--break-reply ACTION": "send the reply to create|command|receive|signal as broken XML",
}
_NTLM_LOCK = threading.Lock()  # pyspnego's NTLM acceptor reads NTLM_USER_FILE from os.environ


@dataclass
class WinrmProfile:
    name: str
    description: str
    host: Profile  # the SSH simulator's Windows profile: users, commands
    scheme: str = "https"
    auth: list[str] = field(default_factory=lambda: ["basic", "ntlm"])
    certificate: CertSpec = field(default_factory=CertSpec)


def load_winrm_profile(path: Path) -> WinrmProfile:
    """Read a WinRM profile; ``ProfileError`` names what is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a mapping")
    unknown = set(data) - {"name", "description", "host_profile", "scheme", "auth",
                           "certificate"}
    if unknown:
        raise ProfileError(f"{path}: unknown keys {sorted(unknown)}")
    source = str(data.get("host_profile") or "")
    folder = (path.parent / source) if "/" in source else bundled_profile("ssh", source)
    host = load_profile(folder)
    if host.personality != "windows":
        raise ProfileError(f"{path}: host_profile {source!r} is not a Windows profile")
    scheme = str(data.get("scheme", "https"))
    auth = list(data.get("auth", ["basic", "ntlm"]))
    if scheme not in ("https", "http") or not auth or not set(auth) <= set(AUTH_METHODS):
        raise ProfileError(f"{path}: scheme is https|http, auth a list among {AUTH_METHODS}")
    try:
        cert = CertSpec(**(data.get("certificate") or {"common_name": host.hostname}))
    except ValueError as exc:
        raise ProfileError(f"{path}: certificate: {exc}") from None
    return WinrmProfile(name=str(data.get("name", path.stem)),
                        description=str(data.get("description", "")), host=host,
                        scheme=scheme, auth=auth, certificate=cert)


@dataclass
class _Command:
    text: str
    reply: CommandReply
    stdout: bytes
    stderr: bytes
    sent_out: int = 0
    sent_err: int = 0


@dataclass
class _Shell:
    owner: str
    commands: dict[str, _Command] = field(default_factory=dict)


def clixml(text: bytes) -> bytes:
    """stderr as PowerShell writes it when started with ``-EncodedCommand`` (CLIXML)."""
    if not text:
        return b""
    escaped = (text.decode("utf-8", "replace").replace("_x", "_x005F_x")
               .replace("&", "&amp;").replace("<", "&lt;")
               .replace(">", "&gt;").replace("\r", "_x000D_").replace("\n", "_x000A_"))
    return ('#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/'
            f'powershell/2004/04"><S S="Error">{escaped}</S></Objs>').encode()


def decode_powershell(executable: str, args: list[str]) -> str | None:
    """The script of ``powershell.exe [flags] -EncodedCommand B64`` (None: not that form)."""
    if executable.lower().rsplit("\\", 1)[-1] not in POWERSHELL or len(args) < 2:
        return None
    flag = args[-2].lower()
    if flag not in ("-encodedcommand", "-enc", "-e", "-ec"):
        return None
    if any(not a.startswith("-") for a in args[:-2]):
        return None
    try:
        return base64.b64decode(args[-1], validate=True).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError):
        return None


SPNEGO_ENCRYPTED = "application/HTTP-SPNEGO-session-encrypted"
BOUNDARY = b"--Encrypted Boundary"


def unwrap(context: Any, body: bytes) -> bytes:
    """The SOAP message of a ``multipart/encrypted`` body (MS-WSMV 2.2.9.1, one part)."""
    parts = [p for p in body.split(BOUNDARY + b"\r\n") if p]
    head, payload = parts[0], parts[1]
    length = int(head.split(b"Length=")[1].split(b"\r\n")[0])
    payload = payload.removesuffix(BOUNDARY + b"--\r\n")
    payload = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"", 1)
    size = int.from_bytes(payload[:4], "little")
    message = context.unwrap_winrm(payload[4:4 + size], payload[4 + size:])
    if len(message) != length:
        raise ValueError("unwrapped length differs from OriginalContent Length")
    return message


def wrap(context: Any, message: bytes) -> bytes:
    """``message`` sealed with the connection's NTLM context as a multipart body."""
    result = context.wrap_winrm(message)
    return (BOUNDARY + b"\r\n\tContent-Type: " + SPNEGO_ENCRYPTED.encode()
            + b"\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
            + str(len(message) + result.padding_length).encode() + b"\r\n" + BOUNDARY
            + b"\r\n\tContent-Type: application/octet-stream\r\n"
            + len(result.header).to_bytes(4, "little") + result.header + result.data
            + BOUNDARY + b"--\r\n")


def _cmd_unknown(line: str) -> CommandReply:
    word = (line.split() or [""])[0][:80]
    return CommandReply(stderr=f"'{word}' is not recognized as an internal or external "
                        "command,\r\noperable program or batch file.\r\n".encode(),
                        exit_status=1)


class WinrmDevice(SimulatedDevice):
    """One simulated WinRM listener answering from a Windows profile."""

    protocol = "winrm"

    def __init__(self, profile: WinrmProfile, host: str = "127.0.0.1", port: int = 0,
                 break_reply: str | None = None) -> None:
        super().__init__(host, port)
        self.profile = profile
        self.break_reply = break_reply
        self.shells: dict[str, _Shell] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        spec = profile.certificate
        names = tuple(dict.fromkeys((*spec.hostnames, self.host)))
        issued = make_certificate(spec.model_copy(update={"hostnames": names}))
        self.cert_pem, self._key_pem = issued.cert_pem, issued.key_pem
        self.cert_sha256 = sha256(issued.cert_der).hexdigest()

    @property
    def endpoint_options(self) -> dict[str, Any]:
        """What an inventory needs to reach this listener (the pin of its certificate)."""
        if self.profile.scheme == "https":
            return {"scheme": "https", "cert_sha256": self.cert_sha256}
        return {"scheme": "http"}

    async def start(self) -> None:
        context = None
        if self.profile.scheme == "https":
            self._tmp = tempfile.TemporaryDirectory(prefix="otaudit-winrm-sim-")
            context = self.server_tls_context()
            self._write_ntlm_users()
        elif "ntlm" in self.profile.auth:
            self._tmp = tempfile.TemporaryDirectory(prefix="otaudit-winrm-sim-")
            self._write_ntlm_users()
        self._server = await asyncio.start_server(self._accept, self.host, self.port,
                                                  ssl=context, limit=MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]

    def server_tls_context(self) -> ssl.SSLContext:
        """The listener's TLS server context (its certificate and key); a fuzz proxy that
        terminates TLS presents the same certificate with it."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        with tempfile.TemporaryDirectory(prefix="otaudit-winrm-tls-") as tmp:
            cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert.write_bytes(self.cert_pem)
            key.touch(mode=0o600)
            key.write_bytes(self._key_pem)
            context.load_cert_chain(cert, key)
        return context

    def client_tls_context(self) -> ssl.SSLContext:
        """A client context that trusts exactly this listener's certificate."""
        context = ssl.create_default_context(cadata=self.cert_pem.decode("ascii"))
        context.check_hostname = False
        return context

    def _write_ntlm_users(self) -> None:
        assert self._tmp is not None
        path = Path(self._tmp.name) / "ntlm-users"
        path.touch(mode=0o600)
        path.write_text("".join(f":{u.name}:{u.password}\n" for u in
                                self.profile.host.users.values() if u.password))
        self._ntlm_users = str(path)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)
        self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._connection(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- HTTP ----------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        peer_text = f"{peer[0]}:{peer[1]}"
        conn = self.log.open(peer_text)
        self._writers.add(writer)
        state: dict[str, Any] = {"user": None, "ntlm": None}
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                method, path, headers, body, at = request
                keep = await self._handle(method, path, headers, body, at, writer, state,
                                          conn, peer_text)
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, ValueError,
                asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            self.log.close(conn)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)

    async def _read_request(self, reader: asyncio.StreamReader
                            ) -> tuple[str, str, dict[str, str], bytes, float] | None:
        first = await reader.read(1)
        if not first:
            return None
        if not first.isalpha():  # not HTTP (a TLS ClientHello on the http listener)
            raise ValueError("not an HTTP request")
        try:
            head = first + await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        at = time.time()
        lines = head.decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        path = rest.rpartition(" ")[0]
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_BODY or length < 0:
            raise ValueError("request body too large")
        body = await reader.readexactly(length) if length else b""
        return method, path, headers, body, at

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, status: str, body: bytes = b"",
                    headers: list[tuple[str, str]] | None = None,
                    content_type: str = "application/soap+xml;charset=UTF-8") -> None:
        lines = [f"HTTP/1.1 {status}", "Server: Microsoft-HTTPAPI/2.0",
                 f"Content-Length: {len(body)}"]
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines += [f"{k}: {v}" for k, v in headers or []]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()

    async def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes,
                      at: float, writer: asyncio.StreamWriter, state: dict[str, Any],
                      conn: int, peer: str) -> bool:
        if path.split("?")[0].lower() != "/wsman":
            await self._send(writer, "404 Not Found")
            return True
        if method != "POST":
            await self._send(writer, "405 Method Not Allowed")
            return True
        user = await self._authenticate(headers, writer, state, conn, peer)
        if user is None:
            return True
        if not body:  # an authentication round without a message
            await self._send(writer, "200 OK")
            return True
        encrypted = headers.get("content-type", "").lower().startswith("multipart/encrypted")
        if encrypted:
            try:
                body = unwrap(state["ntlm"], body)
            except Exception:  # no NTLM context on this connection, or a bad seal
                self.log.record("bad_request", connection=conn, peer=peer, at=at,
                                error="message encryption: cannot unwrap")
                await self._send(writer, "400 Bad Request")
                return True
        elif self.profile.scheme == "http":  # AllowUnencrypted=false, the service default
            self.log.record("bad_request", connection=conn, peer=peer, at=at,
                            error="unencrypted message over http")
            await self._send(writer, "400 Bad Request", soap.fault(
                "", soap.BAD_REQUEST, "w:AccessDenied", "Unencrypted traffic is disabled.",
                self.profile.host.hostname))
            return True
        status, reply, delay = self._soap(body, user, conn, peer, at, encrypted)
        if delay:
            await asyncio.sleep(delay)
        if reply is None:  # the "disconnect" reply of a profile command
            writer.transport.abort()
            return False
        if encrypted:
            await self._send(writer, status, wrap(state["ntlm"], reply), content_type=(
                f'multipart/encrypted;protocol="{SPNEGO_ENCRYPTED}";'
                'boundary="Encrypted Boundary"'))
        else:
            await self._send(writer, status, reply)
        return True

    # -- authentication ----------------------------------------------------------------
    def _challenge(self) -> list[tuple[str, str]]:
        offered = []
        if "ntlm" in self.profile.auth:
            offered.append(("WWW-Authenticate", "Negotiate"))
        if "basic" in self.profile.auth:
            offered.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
        return offered

    async def _authenticate(self, headers: dict[str, str], writer: asyncio.StreamWriter,
                            state: dict[str, Any], conn: int, peer: str) -> str | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        scheme = scheme.lower()
        if scheme == "basic" and "basic" in self.profile.auth:
            try:
                name, _, password = base64.b64decode(token, validate=True).decode(
                    "utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                name, password = "", None
            account = self.profile.host.users.get(name)
            ok = bool(account and account.password is not None
                      and password == account.password)
            if not ok or state.get("basic") != name:  # a login, not every request's header
                self.log.record("auth", connection=conn, peer=peer, username=name,
                                method="basic", ok=ok)
            if ok:
                state["basic"] = name
                return name
            await self._send(writer, "401 Unauthorized", headers=self._challenge())
            return None
        if scheme in ("negotiate", "ntlm") and "ntlm" in self.profile.auth and token:
            return await self._ntlm_step(scheme, token, writer, state, conn, peer)
        if state["user"] is not None:  # an NTLM-authenticated connection
            return state["user"]
        await self._send(writer, "401 Unauthorized", headers=self._challenge())
        return None

    async def _ntlm_step(self, scheme: str, token: str, writer: asyncio.StreamWriter,
                         state: dict[str, Any], conn: int, peer: str) -> str | None:
        import spnego

        try:
            data = base64.b64decode(token, validate=True)
            with _NTLM_LOCK:
                previous = os.environ.get("NTLM_USER_FILE")
                os.environ["NTLM_USER_FILE"] = self._ntlm_users
                try:
                    if state["ntlm"] is None or data.startswith(b"NTLMSSP\x00\x01"):
                        state["ntlm"] = spnego.server(protocol="ntlm")
                    out = state["ntlm"].step(data)
                finally:
                    if previous is None:
                        os.environ.pop("NTLM_USER_FILE", None)
                    else:
                        os.environ["NTLM_USER_FILE"] = previous
        except Exception:  # bad token or credentials: pyspnego raises its own errors
            user = None
            self.log.record("auth", connection=conn, peer=peer, username=None,
                            method="ntlm", ok=False)
            state["ntlm"] = None
            await self._send(writer, "401 Unauthorized", headers=self._challenge())
            return user
        if not state["ntlm"].complete:
            await self._send(writer, "401 Unauthorized", headers=[(
                "WWW-Authenticate", f"{scheme.capitalize()} {base64.b64encode(out).decode()}")])
            return None
        principal = str(state["ntlm"].client_principal or "")
        name = principal.rpartition("\\")[2]
        self.log.record("auth", connection=conn, peer=peer, username=name, method="ntlm",
                        ok=True)
        state["user"] = name
        return name

    # -- WS-Man --------------------------------------------------------------------------
    def _soap(self, body: bytes, user: str, conn: int, peer: str, at: float,
              encrypted: bool = False) -> tuple[str, bytes | None, float]:
        """(HTTP status, reply, seconds to hold it) of one SOAP request."""
        machine = self.profile.host.hostname
        try:
            req = soap.parse_request(body)
        except soap.SoapError as exc:
            self.log.record("bad_request", connection=conn, peer=peer, at=at, error=str(exc))
            return "400 Bad Request", soap.fault("", soap.BAD_REQUEST, "w:SchemaValidationError",
                                                 f"The request is not valid: {exc}",
                                                 machine), 0.0
        kind = soap.ACTIONS.get(req.action)
        if kind is None or req.resource_uri != soap.CMD_SHELL:
            self.log.record("bad_request", connection=conn, peer=peer, at=at,
                            action=req.action, resource_uri=req.resource_uri)
            return "500 Internal Server Error", soap.fault(
                req.message_id, soap.ACTION_NOT_SUPPORTED, "a:ActionNotSupported",
                "The action is not supported by the service.", machine), 0.0
        try:
            status, reply, detail = getattr(self, f"_{kind}")(req, user, peer)
        except soap.SoapError as exc:
            self.log.record(kind, connection=conn, peer=peer, at=at, error=str(exc))
            return "500 Internal Server Error", soap.fault(
                req.message_id, soap.BAD_REQUEST, "w:SchemaValidationError", str(exc),
                machine), 0.0
        delay = detail.pop("_delay", 0.0)
        self.log.record(kind, connection=conn, peer=peer, at=at, username=user,
                        encrypted=encrypted, **detail)
        if reply is not None and self.break_reply == kind:
            reply = reply[: len(reply) // 2] + b"<<broken"
        return status, reply, delay

    def _shell(self, req: soap.Request) -> tuple[str, _Shell]:
        shell_id = req.selectors.get("ShellId", "")
        shell = self.shells.get(shell_id)
        if shell is None:
            raise soap.SoapError(f"the shell {shell_id!r} was not found on the server")
        return shell_id, shell

    def _create(self, req: soap.Request, user: str, peer: str
                ) -> tuple[str, bytes, dict[str, Any]]:
        shell_id = str(uuid.uuid4()).upper()
        self.shells[shell_id] = _Shell(owner=user)
        address = f"{self.profile.scheme}://{self.host}:{self.port}/wsman"
        return "200 OK", soap.created(req, shell_id, address, user,
                                      peer.rpartition(":")[0]), {"shell": shell_id}

    def _command(self, req: soap.Request, user: str, peer: str
                 ) -> tuple[str, bytes, dict[str, Any]]:
        shell_id, shell = self._shell(req)
        executable, args = soap.command_line(req)
        script = decode_powershell(executable, args)
        if script is not None:
            reply, known = answer(self.profile.host, script)
            text, stderr = script, clixml(reply.stderr)
        else:
            text = " ".join([executable, *args])
            reply, known = _cmd_unknown(text), False
            stderr = reply.stderr
        command_id = str(uuid.uuid4()).upper()
        shell.commands[command_id] = _Command(text, reply, reply.stdout, stderr)
        return "200 OK", soap.command_started(req, command_id), {
            "shell": shell_id, "command": text, "known": known}

    def _receive(self, req: soap.Request, user: str, peer: str
                 ) -> tuple[str, bytes | None, dict[str, Any]]:
        _, shell = self._shell(req)
        command_id = soap.receive_target(req)
        command = shell.commands.get(command_id)
        if command is None:
            raise soap.SoapError(f"the command {command_id!r} was not found")
        detail = {"command": command.text}
        if command.reply.disconnect:
            return "", None, detail
        if command.reply.hang:  # held for the OperationTimeout, then the timeout fault
            detail["_delay"] = min(req.operation_timeout, 120.0)
            return "500 Internal Server Error", soap.fault(
                req.message_id, soap.TIMED_OUT, "w:TimedOut", "The WS-Management service "
                "cannot complete the operation within the time specified in "
                "OperationTimeout.", self.profile.host.hostname), detail
        # a reply fits MaxEnvelopeSize: base64 grows 4/3, the envelope takes ~2 KiB
        budget = max(1024, (req.max_envelope_size - 4096) * 3 // 4)
        chunks: list[tuple[str, str, bool]] = []
        for name, data, sent_attr in (("stdout", command.stdout, "sent_out"),
                                      ("stderr", command.stderr, "sent_err")):
            start = getattr(command, sent_attr)
            piece = data[start:start + budget]
            budget -= len(piece)
            setattr(command, sent_attr, start + len(piece))
            end = getattr(command, sent_attr) >= len(data)
            if piece or end:
                chunks.append((name, base64.b64encode(piece).decode(), end))
        done = command.sent_out >= len(command.stdout) and command.sent_err >= len(
            command.stderr)
        return "200 OK", soap.received(req, command_id, chunks,
                                       command.reply.exit_status if done else None), detail

    def _signal(self, req: soap.Request, user: str, peer: str
                ) -> tuple[str, bytes, dict[str, Any]]:
        _, shell = self._shell(req)
        command_id, code = soap.signal_target(req)
        command = shell.commands.pop(command_id, None)
        return "200 OK", soap.signalled(req), {
            "code": code.rpartition("/")[2], "command": command.text if command else None}

    def _delete(self, req: soap.Request, user: str, peer: str
                ) -> tuple[str, bytes, dict[str, Any]]:
        shell_id, _ = self._shell(req)
        del self.shells[shell_id]
        return "200 OK", soap.deleted(req), {"shell": shell_id}


def from_profile(profile: Path | None, host: str = "127.0.0.1", port: int = 0,
                 **options: Any) -> WinrmDevice:
    """Build a listener from a WinRM profile (``None``: the bundled ``windows-weak``)."""
    unknown = sorted(set(options) - {"break_reply"})
    if unknown:
        raise InputError("winrm simulator options", [f"{n}: unknown field" for n in unknown])
    path = Path(profile) if profile is not None else PROFILES / f"{DEFAULT_PROFILE}.yaml"
    try:
        loaded = load_winrm_profile(path)
    except ProfileError as exc:
        raise InputError(path, [str(exc)]) from None
    broken = options.get("break_reply")
    if broken is not None and broken not in soap.ACTIONS.values():
        raise InputError("--break-reply", [f"{broken!r}: one of {sorted(soap.ACTIONS.values())}"])
    return WinrmDevice(loaded, host=host, port=int(port), break_reply=broken)
