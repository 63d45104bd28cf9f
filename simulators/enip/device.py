"""Simulated EtherNet/IP device: ListIdentity and the Identity object over TCP 44818,
optionally EtherNet/IP over TLS on a second port (CIP Security).

The encapsulation is framed here from the specification (the simulator never imports
probe code). Every message is logged before it is answered - kind ``list_identity``,
``register_session``, ``unregister_session``, ``get_attributes_all``,
``get_attribute_single``, ``cip_request`` (any other CIP service, with ``service`` and
``path``), ``unsupported`` (any other encapsulation command) or ``malformed`` - and a TLS
connection as ``tls_handshake`` once the handshake completed. Only the identity is
served: every other CIP service is answered "service not supported" (0x08), so a test
can see a forbidden request in the log and the device unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import ssl
import struct
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from otaudit.errors import InputError, pydantic_problems
from otaudit.simulators import bundled_profile
from otaudit.simulators.base import SimulatedDevice
from otaudit.simulators.certs import make_certificate
from otaudit.simulators.enip.profile import EnipProfile, IdentitySpec

DEFAULT_PROFILE = "controllogix-5580"
HEADER = struct.Struct("<HHII8sI")
LIST_IDENTITY, REGISTER, UNREGISTER, SEND_RR_DATA = 0x63, 0x65, 0x66, 0x6F
ITEM_NULL, ITEM_IDENTITY, ITEM_UNCONNECTED = 0x0000, 0x000C, 0x00B2
UNSUPPORTED_COMMAND, INVALID_SESSION, INCORRECT_DATA = 0x0001, 0x0064, 0x0003
PATH_DESTINATION_UNKNOWN, SERVICE_NOT_SUPPORTED, ATTRIBUTE_NOT_SUPPORTED = 0x05, 0x08, 0x14
MAX_MESSAGE = 0xFFFF

CLI_OPTIONS = {
    "--sessions accept|refuse": "answer RegisterSession on the plain port (overrides the "
                                "profile)",
    "--tls-port N": "port of the CIP Security listener when the profile has one (0: any "
                    "free port)",
}


def from_profile(profile: Path | None, host: str = "127.0.0.1", port: int = 0,
                 **options: Any) -> EnipSimulator:
    """Build a simulator; ``sessions`` overrides the profile, ``tls_port`` the TLS port (the
    profile's, 2221, when the simulator has a port of its own; any free one with ``port=0``)."""
    path = Path(profile) if profile else bundled_profile("enip", DEFAULT_PROFILE)
    unknown = sorted(set(options) - set(EnipProfile.model_fields) - {"tls_port"})
    if unknown:
        raise InputError("command line", [
            f"unknown option(s) {', '.join('--' + u.replace('_', '-') for u in unknown)}; "
            f"known: {', '.join(CLI_OPTIONS)}"])
    try:
        data = EnipProfile.load(path).model_dump()
        tls_port = options.pop("tls_port", None)
        data.update(options)
        if tls_port is None and port == 0:
            tls_port = 0  # on any free port, the TLS port too: two plants never fight over 2221
        if tls_port is not None and data.get("cip_security"):
            data["cip_security"]["port"] = int(tls_port)
        return EnipSimulator(EnipProfile.model_validate(data), host=host, port=port)
    except ValidationError as exc:
        raise InputError(path, pydantic_problems(exc)) from None
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(path, [str(exc)]) from None


def identity_attributes(ident: IdentitySpec) -> bytes:
    """Attributes 1-7 as Get_Attributes_All and ListIdentity carry them."""
    name = ident.product_name.encode("latin-1")
    return struct.pack("<HHHBBHI", ident.vendor_id, ident.device_type, ident.product_code,
                       ident.major, ident.minor, ident.status, ident.serial) \
        + bytes([len(name)]) + name


def single_attribute(ident: IdentitySpec, attribute: int) -> bytes | None:
    values = {1: struct.pack("<H", ident.vendor_id), 2: struct.pack("<H", ident.device_type),
              3: struct.pack("<H", ident.product_code), 4: bytes([ident.major, ident.minor]),
              5: struct.pack("<H", ident.status), 6: struct.pack("<I", ident.serial),
              7: identity_attributes(ident)[14:], 8: bytes([ident.state])}
    return values.get(attribute)


class EnipSimulator(SimulatedDevice):
    protocol = "enip"

    def __init__(self, profile: EnipProfile, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.profile = profile
        self.tls_port: int | None = None
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._sessions: set[int] = set()
        self._closed_port: socket.socket | None = None

    @property
    def endpoint_options(self) -> dict[str, Any]:
        """Inventory options a probe needs for this device once it runs: the TLS port, or
        (no CIP Security) a port held closed, so that the probe finds nothing there."""
        return {"tls_port": self.tls_port or 0}

    async def start(self) -> None:
        server = await asyncio.start_server(
            lambda r, w: self._serve(r, w, tls=False), self.host, self.port)
        self._servers.append(server)
        self.port = server.sockets[0].getsockname()[1]
        security = self.profile.cip_security
        if security is not None:
            tls = await asyncio.start_server(
                lambda r, w: self._serve(r, w, tls=True), self.host, security.port,
                ssl=_tls_context(self.profile), ssl_handshake_timeout=10)
            self._servers.append(tls)
            self.tls_port = tls.sockets[0].getsockname()[1]
        else:
            # bound but never listening: connections are refused, and no one else takes it
            self._closed_port = socket.socket(socket.AF_INET6 if ":" in self.host
                                              else socket.AF_INET)
            self._closed_port.bind((self.host, 0))
            self.tls_port = self._closed_port.getsockname()[1]

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
        self._servers.clear()
        if self._closed_port is not None:
            self._closed_port.close()
            self._closed_port = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                     tls: bool) -> None:
        peer_info = writer.get_extra_info("peername") or ("?", 0)
        peer = f"{peer_info[0]}:{peer_info[1]}"
        conn = self.log.open(peer)
        self._writers.add(writer)
        try:
            if tls:
                tls_object = writer.get_extra_info("ssl_object")
                self.log.record("tls_handshake", connection=conn, peer=peer,
                                version=tls_object.version() if tls_object else None)
            while True:
                head = await reader.readexactly(HEADER.size)
                command, length, session, _, context, _ = HEADER.unpack(head)
                data = await reader.readexactly(length)
                reply = self._answer(command, session, context, data, conn, peer, tls)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            self.log.close(conn)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _answer(self, command: int, session: int, context: bytes, data: bytes, conn: int,
                peer: str, tls: bool) -> bytes | None:
        """The reply to one encapsulation message; None closes the connection."""
        def reply(payload: bytes = b"", *, status: int = 0, handle: int = session) -> bytes:
            return HEADER.pack(command, len(payload), handle, status, context, 0) + payload

        log = self.log
        if command == LIST_IDENTITY:
            log.record("list_identity", connection=conn, peer=peer, tls=tls)
            return reply(self._identity_item())
        if command == REGISTER:
            log.record("register_session", connection=conn, peer=peer, tls=tls)
            if data[:2] != b"\x01\x00" or len(data) != 4:
                return reply(data, status=0x0069)  # unsupported protocol revision
            if self.profile.sessions == "refuse" and not tls:
                return reply(data, status=UNSUPPORTED_COMMAND, handle=0)
            handle = random.randint(1, 0xFFFFFFFF)
            self._sessions.add(handle)
            return reply(data, handle=handle)
        if command == UNREGISTER:
            log.record("unregister_session", connection=conn, peer=peer, tls=tls)
            self._sessions.discard(session)
            return None
        if command == SEND_RR_DATA:
            if session not in self._sessions:
                log.record("send_rr_data", connection=conn, peer=peer, tls=tls,
                           error="invalid session")
                return reply(status=INVALID_SESSION)
            cip = _unconnected_request(data)
            if cip is None:
                log.record("malformed", connection=conn, peer=peer, tls=tls,
                           data=data[:64].hex())
                return reply(status=INCORRECT_DATA)
            answer = self._cip(cip, conn, peer, tls)
            cpf = struct.pack("<IHH", 0, 0, 2) + struct.pack("<HH", ITEM_NULL, 0) \
                + struct.pack("<HH", ITEM_UNCONNECTED, len(answer)) + answer
            return reply(cpf)
        log.record("unsupported", connection=conn, peer=peer, tls=tls,
                   command=f"0x{command:04X}")
        return reply(status=UNSUPPORTED_COMMAND)

    def _cip(self, cip: bytes, conn: int, peer: str, tls: bool) -> bytes:
        service, words = cip[0], cip[1] if len(cip) > 1 else 0
        path = cip[2:2 + 2 * words]
        ident = self.profile.identity

        def answer(status: int, data: bytes = b"") -> bytes:
            return bytes([service | 0x80, 0, status, 0]) + data

        if path[:4] == b"\x20\x01\x24\x01" and service == 0x01 and len(path) == 4:
            self.log.record("get_attributes_all", connection=conn, peer=peer, tls=tls)
            return answer(0, identity_attributes(ident))
        if path[:4] == b"\x20\x01\x24\x01" and service == 0x0E and len(path) == 6 \
                and path[4] == 0x30:
            self.log.record("get_attribute_single", connection=conn, peer=peer, tls=tls,
                            attribute=path[5])
            value = single_attribute(ident, path[5])
            return answer(0, value) if value is not None else answer(ATTRIBUTE_NOT_SUPPORTED)
        self.log.record("cip_request", connection=conn, peer=peer, tls=tls,
                        service=f"0x{service:02X}", path=path.hex())
        if path[:4] != b"\x20\x01\x24\x01":
            return answer(PATH_DESTINATION_UNKNOWN)
        return answer(SERVICE_NOT_SUPPORTED)

    def _identity_item(self) -> bytes:
        ident = self.profile.identity
        address = bytes(int(part) for part in self.host.split(".")) if "." in self.host \
            else bytes(4)
        sockaddr = struct.pack(">hH", 2, self.port) + address + bytes(8)
        item = struct.pack("<H", 1) + sockaddr + identity_attributes(ident) \
            + bytes([ident.state])
        return struct.pack("<HHH", 1, ITEM_IDENTITY, len(item)) + item


def _unconnected_request(data: bytes) -> bytes | None:
    """The CIP request of a SendRRData with a null address and one unconnected data item."""
    if len(data) < 8:
        return None
    (count,) = struct.unpack_from("<H", data, 6)
    pos, found = 8, None
    for _ in range(count):
        if pos + 4 > len(data):
            return None
        kind, length = struct.unpack_from("<HH", data, pos)
        if kind == ITEM_UNCONNECTED:
            found = data[pos + 4:pos + 4 + length]
        pos += 4 + length
    return found if found and len(found) >= 2 else None


def _tls_context(profile: EnipProfile) -> ssl.SSLContext:
    security = profile.cip_security
    assert security is not None
    issued = make_certificate(security.certificate)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = getattr(ssl.TLSVersion, security.tls_min)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # weak profiles may have 1024-bit keys
    with tempfile.TemporaryDirectory(prefix="otaudit-enip-") as folder:
        cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        cert.write_bytes(issued.cert_pem)
        key.write_bytes(issued.key_pem)
        key.chmod(0o600)
        context.load_cert_chain(cert, key)
    return context
