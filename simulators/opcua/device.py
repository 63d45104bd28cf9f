"""Simulated OPC UA server on asyncua's ``Server``, one per profile, on a loopback port.

The endpoints, user token types, certificate (generated when the server starts) and
BuildInfo come from the profile. Every message is logged before the server handles it:
``hello``, ``open_secure_channel`` (with the policy), ``close_secure_channel``, and per
service request its name in snake case - ``get_endpoints``, ``create_session``,
``activate_session`` (with the token type), ``read`` (with the node ids), ``write``,
``call``, ``browse``, ... - so a test can prove that a client only read.
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from asyncua import Server, ua
from asyncua.common.utils import Buffer
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.binary_server_asyncio import BinaryServer, OPCUAProtocol
from asyncua.server.user_managers import UserManager
from asyncua.ua.ua_binary import nodeid_from_binary, struct_from_binary
from pydantic import ValidationError

from otaudit.errors import InputError, pydantic_problems
from otaudit.simulators import bundled_profile
from otaudit.simulators.base import RequestLog, SimulatedDevice
from otaudit.simulators.certs import CertSpec, make_certificate
from otaudit.simulators.opcua.profile import POLICIES, OpcUaProfile

DEFAULT_PROFILE = "opcua-weak"
TOKEN_TYPES = {"anonymous": ua.AnonymousIdentityToken, "username": ua.UserNameIdentityToken,
               "certificate": ua.X509IdentityToken}
CLI_OPTIONS: dict[str, str] = {}
for _name in ("asyncua", "asyncua.server", "asyncua.crypto"):
    logging.getLogger(_name).setLevel(logging.ERROR)  # its warnings are about our weak profiles


def from_profile(profile: Path | None, host: str = "127.0.0.1", port: int = 0,
                 **options: Any) -> OpcUaSimulator:
    path = Path(profile) if profile else bundled_profile("opcua", DEFAULT_PROFILE)
    unknown = sorted(set(options) - set(OpcUaProfile.model_fields))
    if unknown:
        raise InputError("command line", [
            f"unknown option(s) {', '.join('--' + u.replace('_', '-') for u in unknown)}; "
            "the OPC UA simulator takes --profile, --host, --port and --log"])
    try:
        data = OpcUaProfile.load(path).model_dump()
        data.update(options)
        return OpcUaSimulator(OpcUaProfile.model_validate(data), host=host, port=port)
    except (ValidationError, ValueError) as exc:
        problems = pydantic_problems(exc) if isinstance(exc, ValidationError) else [str(exc)]
        raise InputError(path, problems) from None
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(path, [str(exc)]) from None


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class _Users(UserManager):
    def __init__(self, users: dict[str, str], tokens: list[str]) -> None:
        self._users, self._tokens = users, tokens

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if username is not None:
            ok = "username" in self._tokens and self._users.get(username) == password
            return User(role=UserRole.User, name=username) if ok else None
        # anonymous and certificate tokens: the server already refused types the profile
        # does not list (asyncua checks supported_tokens before asking here)
        return User(role=UserRole.User)


class _LoggingProtocol(OPCUAProtocol):
    request_log: RequestLog

    def connection_made(self, transport: Any) -> None:
        peer = transport.get_extra_info("peername") or ("?", 0)
        self._peer = f"{peer[0]}:{peer[1]}"
        self._conn = self.request_log.open(self._peer)
        super().connection_made(transport)
        if self.processor is not None:
            process_message = self.processor.process_message

            async def logged(seqhdr: Any, body: Buffer) -> Any:
                self._log_service(body.copy())
                return await process_message(seqhdr, body)

            self.processor.process_message = logged  # type: ignore[method-assign]

    def connection_lost(self, ex: BaseException | None) -> None:
        self.request_log.close(self._conn)
        super().connection_lost(ex)

    async def _process_one_msg(self, header: Any, buf: Buffer) -> bool:
        kind = {ua.MessageType.Hello: "hello", ua.MessageType.SecureOpen: "open_secure_channel",
                ua.MessageType.SecureClose: "close_secure_channel"}.get(header.MessageType)
        if kind:
            self.request_log.record(kind, connection=self._conn, peer=self._peer)
        return await super()._process_one_msg(header, buf)

    def _log_service(self, body: Buffer) -> None:
        detail: dict[str, Any] = {}
        try:
            typeid = nodeid_from_binary(body.copy())
            name = ua.ObjectIdNames.get(typeid.Identifier, f"i={typeid.Identifier}")
            kind = _snake(name.split("_Encoding")[0].removesuffix("Request"))
            if name.startswith("ReadRequest"):
                request = struct_from_binary(ua.ReadRequest, body)
                detail["nodes"] = [rv.NodeId.to_string() for rv in
                                   request.Parameters.NodesToRead]
            elif name.startswith("ActivateSessionRequest"):
                request = struct_from_binary(ua.ActivateSessionRequest, body)
                detail["token"] = type(request.Parameters.UserIdentityToken).__name__
        except Exception:  # log what cannot be decoded too
            kind = "malformed"
        self.request_log.record(kind, connection=self._conn, peer=self._peer, **detail)


class _LoggingBinaryServer(BinaryServer):
    request_log: RequestLog

    def _make_protocol(self) -> OPCUAProtocol:
        protocol = _LoggingProtocol(iserver=self.iserver, policies=self._policies,
                                    clients=self.clients, closing_tasks=self.closing_tasks,
                                    limits=self.limits)
        protocol.request_log = self.request_log
        return protocol


class _Server(Server):
    """asyncua's Server whose binary server logs every message."""

    request_log: RequestLog

    async def start(self) -> None:
        await self._setup_server_nodes()  # (no certificate check: weak profiles mean it)
        await self.iserver.start()
        try:
            host, port = self._get_bind_socket_info()
            self.bserver = _LoggingBinaryServer(self.iserver, host, port, self.limits)
            self.bserver.request_log = self.request_log
            self.bserver.set_policies(self._policies)
            await self.bserver.start()
        except Exception:
            await self.iserver.stop()
            raise


class OpcUaSimulator(SimulatedDevice):
    protocol = "opcua"

    def __init__(self, profile: OpcUaProfile, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.profile = profile
        self._server: _Server | None = None

    @property
    def endpoint_options(self) -> dict[str, Any]:
        """Inventory options a probe needs for this server (the endpoint path)."""
        return {"path": self.profile.path} if self.profile.path != "/" else {}

    @property
    def url(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}{self.profile.path}"

    async def start(self) -> None:
        p = self.profile
        server = _Server(user_manager=_Users(p.users, p.tokens))
        server.request_log = self.log
        await server.init()
        server.set_endpoint(f"opc.tcp://{self.host}:{self.port}{p.path}")
        server.set_server_name(p.application_name)
        server.product_uri = p.product_uri
        await server.set_application_uri(p.application_uri)
        server.set_security_policy([getattr(ua.SecurityPolicyType, POLICIES[e])
                                    for e in p.endpoints])
        server.set_identity_tokens([TOKEN_TYPES[t] for t in p.tokens])
        spec = p.certificate.model_copy(update={
            "application_uri": p.cert_application_uri or p.application_uri})
        await _load_certificate(server, spec)
        info = p.build_info
        await server.set_build_info(info.product_uri or p.product_uri, info.manufacturer,
                                    info.product_name, info.software_version,
                                    info.build_number, info.build_date)
        await server.start()
        assert server.bserver is not None
        self.port = server.bserver.port or self.port
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.stop()
            self._server = None


async def _load_certificate(server: Server, spec: CertSpec) -> None:
    issued = make_certificate(spec)
    with tempfile.TemporaryDirectory(prefix="otaudit-opcua-") as folder:
        cert, key = Path(folder) / "cert.der", Path(folder) / "key.pem"
        cert.write_bytes(issued.cert_der)
        key.write_bytes(issued.key_pem)
        key.chmod(0o600)
        await server.load_certificate(str(cert))
        await server.load_private_key(str(key))
