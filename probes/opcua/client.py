"""One guarded OPC UA connection on asyncua's low-level ``UaClient``.

Only what the probe needs, each call one request: ``hello``, ``open_channel`` (policy
None, no client certificate), ``get_endpoints``, ``create_session``,
``activate_anonymous``, ``read_build_info``, ``close_session``, ``close``. Every request
object passes ``guard.check_request`` and every message's bytes ``guard.check_frame``
before they are written; ``on_sent`` is called as they leave (the probe's pacing clock).
asyncua's high-level ``Client`` is not used: it starts keep-alive reads of its own.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Any

from asyncua import ua
from asyncua.client.ua_client import UaClient, UASocketProtocol

from otaudit.probes.base import ProbeError, ProbeTimeout, time_limit
from otaudit.probes.opcua.guard import check_frame, check_request
from otaudit.probes.opcua.parse import BUILD_INFO, decode_get_endpoints

CLIENT_URI = "urn:otaudit:probe"
# What asyncua raises on a reply it cannot read: an enum value out of range (ValueError), a
# field cut short (struct.error, IndexError), and its own ``assert`` that the reply it waited
# for was decoded (found by the fuzz campaign: an OpenSecureChannel reply cut inside).
UNDECODABLE = (AssertionError, ValueError, struct.error, IndexError, UnicodeError)


class OpcUaServiceFault(ProbeError):
    """The server answered, well formed, with a bad status code: its refusal. Anything
    else that fails a call (no answer, a closed connection, a reply that cannot be
    decoded) is a plain ``ProbeError``/``ProbeTimeout``: no answer, not a refusal."""


class _GuardedTransport:
    """The socket transport seen by asyncua: every write is checked, then counted."""

    def __init__(self, transport: Any, on_sent: Callable[[], None]) -> None:
        self._transport = transport
        self._on_sent = on_sent

    def write(self, data: bytes) -> None:
        check_frame(bytes(data))
        self._transport.write(data)
        self._on_sent()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _GuardedProtocol(UASocketProtocol):
    on_sent: Callable[[], None] = staticmethod(lambda: None)
    replies: dict[int, bytes]

    def connection_made(self, transport: Any) -> None:
        self.replies = {}
        super().connection_made(_GuardedTransport(transport, self.on_sent))

    def _send_request(self, request: Any, timeout: float = 1,
                      message_type: ua.MessageType = ua.MessageType.SecureMessage) -> Any:
        check_request(request)
        return super()._send_request(request, timeout, message_type)

    def _call_callback(self, request_id: int, body: Any) -> None:
        if not isinstance(body, ua.Acknowledge):
            self.replies[request_id] = bytes(body)
        super()._call_callback(request_id, body)

    def last_reply(self) -> bytes:
        return self.replies[max(self.replies)] if self.replies else b""


class _GuardedUaClient(UaClient):
    def __init__(self, timeout: float, on_sent: Callable[[], None]) -> None:
        super().__init__(timeout)
        self._on_sent = on_sent

    def _make_protocol(self) -> UASocketProtocol:
        protocol = super()._make_protocol()
        guarded = _GuardedProtocol(self._timeout, security_policy=self.security_policy)
        guarded.on_sent = self._on_sent  # type: ignore[method-assign]
        for attr in ("pre_request_hook", "on_connection_lost", "is_session_closing"):
            setattr(guarded, attr, getattr(protocol, attr))
        self.protocol = guarded
        return guarded


class OpcUaConnection:
    """``async with OpcUaConnection(host, port, url, timeout=..) as c: await c.hello()``"""

    def __init__(self, host: str, port: int, url: str, *, timeout: float,
                 on_sent: Callable[[], None] | None = None) -> None:
        self.host, self.port, self.url, self.timeout = host, port, url, timeout
        self._client = _GuardedUaClient(timeout, on_sent or (lambda: None))
        self._session_open = False

    async def __aenter__(self) -> OpcUaConnection:
        try:
            await self._client.connect_socket(self.host, self.port)
        except TimeoutError:
            raise ProbeTimeout(f"no TCP connection to {self.host}:{self.port} within "
                               f"{self.timeout:g} s") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._client.disconnect_socket()

    @property
    def session_open(self) -> bool:
        return self._session_open

    @property
    def last_reply(self) -> bytes:
        protocol = self._client.protocol
        return protocol.last_reply() if isinstance(protocol, _GuardedProtocol) else b""

    async def hello(self) -> None:
        await self._call(self._client.send_hello(self.url), "Hello")

    async def open_channel(self) -> None:
        params = ua.OpenSecureChannelParameters()
        params.ClientProtocolVersion = 0
        params.RequestType = ua.SecurityTokenRequestType.Issue
        params.SecurityMode = ua.MessageSecurityMode.None_
        params.ClientNonce = b""
        params.RequestedLifetime = 600_000
        await self._call(self._client.open_secure_channel(params), "OpenSecureChannel")

    async def get_endpoints(self) -> tuple[list[ua.EndpointDescription], bytes]:
        """The endpoints, decoded by ``parse.decode_get_endpoints``, and the raw body."""
        params = ua.GetEndpointsParameters()
        params.EndpointUrl = self.url
        request = ua.GetEndpointsRequest()
        request.Parameters = params
        raw = await self._raw(request, "GetEndpoints")
        return decode_get_endpoints(raw), raw

    async def create_session(self) -> None:
        params = ua.CreateSessionParameters()
        params.ClientDescription = ua.ApplicationDescription(
            ApplicationUri=CLIENT_URI, ProductUri=CLIENT_URI,
            ApplicationName=ua.LocalizedText("otaudit probe"),
            ApplicationType=ua.ApplicationType.Client)
        params.EndpointUrl = self.url
        params.SessionName = "otaudit read-only audit"
        params.ClientNonce = os.urandom(32)
        params.RequestedSessionTimeout = 30_000
        params.MaxResponseMessageSize = 0
        await self._call(self._client.create_session(params), "CreateSession")
        self._session_open = True

    async def activate_anonymous(self, policy_id: str) -> None:
        params = ua.ActivateSessionParameters()
        params.LocaleIds = ["en"]
        params.UserIdentityToken = ua.AnonymousIdentityToken(PolicyId=policy_id)
        await self._call(self._client.activate_session(params), "ActivateSession")

    async def read_build_info(self) -> dict[int, ua.DataValue]:
        params = ua.ReadParameters()
        for node in BUILD_INFO:
            item = ua.ReadValueId()
            item.NodeId = ua.NodeId(node, 0)
            item.AttributeId = ua.AttributeIds.Value
            params.NodesToRead.append(item)
        values = await self._call(self._client.read(params), "Read BuildInfo")
        return dict(zip(BUILD_INFO, values, strict=False))

    async def close_session(self) -> None:
        self._session_open = False
        await self._call(self._client.close_session(False), "CloseSession")

    async def close(self) -> None:
        """CloseSecureChannel (the server answers by closing the socket)."""
        await self._client.close_secure_channel()

    async def _raw(self, request: Any, what: str) -> bytes:
        protocol = self._client.protocol
        if protocol is None:
            raise ProbeError(f"{what}: the connection is closed")
        data = await self._call(protocol.send_request(request, self.timeout), what)
        return bytes(data)

    async def _call(self, call: Any, what: str) -> Any:
        try:
            async with time_limit(self.timeout):  # (asyncua's wait_for2: see time_limit)
                return await call
        except TimeoutError:
            raise ProbeTimeout(f"no answer to {what} within {self.timeout:g} s") from None
        except ua.UaStatusCodeError as exc:
            raise OpcUaServiceFault(f"{what}: {type(exc).__name__} {exc}") from None
        except (ConnectionError, ua.UaError) as exc:
            raise ProbeError(f"{what}: {exc}") from None
        except UNDECODABLE as exc:  # asyncua could not read the reply (or asserted it had)
            raise ProbeError(f"{what}: the reply cannot be decoded ({type(exc).__name__})"
                             ) from None

