"""Thin read-only SNMP client on pysnmp's asyncio hlapi: GET, bounded walks, v3 discovery.

Only GET, GETNEXT and GETBULK are ever sent: no write command is imported, and the v1/v2c
dispatcher refuses any other PDU before it leaves. Every request is preceded by ``pace()``.

v1 and v2c go through pysnmp's v1arch ``SnmpDispatcher`` with numeric OIDs: no SNMP engine,
no MIB. SNMPv3 needs a v3arch ``SnmpEngine`` (USM); a session builds one only when it first
uses a v3 credential. Both ride on the session's one transport dispatcher and UDP socket.

A reply that cannot be decoded or answers no pending request is dropped (as the v3
engine does), which then looks like a timeout; the transport counts every datagram that
arrives so a timeout can say whether the agent sent junk instead of nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pyasn1.codec.ber import decoder
from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher
from pysnmp.hlapi.v1arch.asyncio import (
    CommunityData,
    SnmpDispatcher,
    Udp6TransportTarget,
    UdpTransportTarget,
)
from pysnmp.hlapi.v1arch.asyncio import bulk_cmd as v1arch_bulk
from pysnmp.hlapi.v1arch.asyncio import get_cmd as v1arch_get
from pysnmp.hlapi.v1arch.asyncio import next_cmd as v1arch_next
from pysnmp.hlapi.v3arch.asyncio import (
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UsmUserData,
    usm3DESEDEPrivProtocol,
    usmAesCfb128Protocol,
    usmAesCfb192Protocol,
    usmAesCfb256Protocol,
    usmDESPrivProtocol,
    usmHMAC128SHA224AuthProtocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMAC256SHA384AuthProtocol,
    usmHMAC384SHA512AuthProtocol,
    usmHMACMD5AuthProtocol,
    usmHMACSHAAuthProtocol,
)
from pysnmp.hlapi.v3arch.asyncio import bulk_cmd as v3arch_bulk
from pysnmp.hlapi.v3arch.asyncio import get_cmd as v3arch_get
from pysnmp.hlapi.v3arch.asyncio import next_cmd as v3arch_next
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD, VB_PROCESSOR
from pysnmp.proto import api, errind
from pysnmp.proto.api import v2c, verdec

from otaudit.probes.base import ForbiddenOperation
from otaudit.probes.snmp.engine import mib_view, new_engine
from otaudit.probes.snmp.parse import (
    Oid,
    ParseError,
    Val,
    build_v3_discovery,
    check_get_reply,
    oid_str,
    parse_oid,
    parse_v3_report,
)

Version = Literal["v1", "v2c", "v3"]
AUTH_PROTOCOLS = {"MD5": usmHMACMD5AuthProtocol, "SHA": usmHMACSHAAuthProtocol,
                  "SHA-224": usmHMAC128SHA224AuthProtocol,
                  "SHA-256": usmHMAC192SHA256AuthProtocol,
                  "SHA-384": usmHMAC256SHA384AuthProtocol,
                  "SHA-512": usmHMAC384SHA512AuthProtocol}
PRIV_PROTOCOLS = {"DES": usmDESPrivProtocol, "3DES": usm3DESEDEPrivProtocol,
                  "AES-128": usmAesCfb128Protocol, "AES-192": usmAesCfb192Protocol,
                  "AES-256": usmAesCfb256Protocol}
ERROR_STATUS = {1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly", 5: "genErr",
                6: "noAccess", 7: "wrongType", 8: "wrongLength", 9: "wrongEncoding",
                10: "wrongValue", 11: "noCreation", 12: "inconsistentValue",
                13: "resourceUnavailable", 14: "commitFailed", 15: "undoFailed",
                16: "authorizationError", 17: "notWritable", 18: "inconsistentName"}
AUTH_ERRORS = {  # USM report -> what it means for the configured v3 user
    errind.WrongDigest: "wrong authentication key (WrongDigest)",
    errind.UnknownUserName: "user unknown to the agent (UnknownUserName)",
    errind.UnsupportedSecurityLevel: "security level not allowed for this user "
                                "(UnsupportedSecurityLevel)",
    errind.DecryptionError: "wrong privacy key or protocol (DecryptionError)",
    errind.UnknownEngineID: "engine ID not accepted (UnknownEngineID)",
    errind.NotInTimeWindow: "message outside the time window (NotInTimeWindow)",
}
_PRIMITIVES: list[tuple[Any, str]] = [
    (v2c.Integer, "Integer"), (v2c.OctetString, "OctetString"), (v2c.Null, "Null"),
    (v2c.ObjectIdentifier, "ObjectIdentifier"), (v2c.IpAddress, "IpAddress"),
    (v2c.Counter32, "Counter32"), (v2c.Gauge32, "Gauge32"), (v2c.TimeTicks, "TimeTicks"),
    (v2c.Opaque, "Opaque"), (v2c.Counter64, "Counter64"),
    (v2c.NoSuchObject, "noSuchObject"), (v2c.NoSuchInstance, "noSuchInstance"),
    (v2c.EndOfMibView, "endOfMibView"),
]


class SnmpError(Exception):
    """A request did not produce a usable answer."""


class NoAnswer(SnmpError):
    def __init__(self, waited: float, stray: int, tries: int = 1) -> None:
        self.waited, self.stray, self.tries = waited, stray, tries
        junk = f"; {stray} datagram(s) arrived but none was a valid answer" if stray else ""
        each = f" after {tries} tries of {waited / tries:g} s" if tries > 1 else ""
        super().__init__(f"no answer within {waited:g} s{each}{junk}")


class AuthError(SnmpError):
    """The agent rejected the v3 credential (a USM report)."""


class AgentError(SnmpError):
    def __init__(self, status: int, index: int) -> None:
        self.status, self.index = status, index
        self.name = ERROR_STATUS.get(status, f"error {status}")
        super().__init__(f"agent answered {self.name} (index {index})")


@dataclass(frozen=True)
class Credential:
    """How to ask: version plus community or v3 user. ``repr`` shows no secret."""

    version: Version
    community: str | None = None
    user: str | None = None
    auth_key: str | None = None
    priv_key: str | None = None
    auth_protocol: str = "SHA"
    priv_protocol: str = "AES-128"

    def __repr__(self) -> str:
        return f"Credential({self.describe()})"

    @property
    def security_level(self) -> str:
        if self.version != "v3":
            return "noAuthNoPriv"
        if self.auth_key and self.priv_key:
            return "authPriv"
        return "authNoPriv" if self.auth_key else "noAuthNoPriv"

    def describe(self) -> str:
        if self.version != "v3":
            return f"{self.version} with the configured community"
        return f"v3 user {self.user!r} ({self.security_level})"

    def auth_data(self) -> CommunityData | UsmUserData:
        """v1arch ``CommunityData`` for v1/v2c, v3arch ``UsmUserData`` for v3."""
        if self.version != "v3":
            return CommunityData(self.community, mpModel=0 if self.version == "v1" else 1)
        return UsmUserData(
            self.user, self.auth_key, self.priv_key,
            authProtocol=AUTH_PROTOCOLS[self.auth_protocol] if self.auth_key else None,
            privProtocol=PRIV_PROTOCOLS[self.priv_protocol] if self.priv_key else None)


def to_val(value: Any) -> Val:
    """pysnmp value -> ``Val`` (type name + plain Python value)."""
    for cls, name in _PRIMITIVES:
        if value.tagSet == cls.tagSet:
            if name in ("OctetString", "Opaque"):
                return Val(name, bytes(value))
            if name == "ObjectIdentifier":
                return Val(name, oid_str(value))
            if name == "IpAddress":
                return Val(name, ".".join(str(b) for b in bytes(value)))
            if name in ("Null", "noSuchObject", "noSuchInstance", "endOfMibView"):
                return Val(name)
            return Val(name, int(value))
    return Val(f"unknown({value.tagSet})")


@dataclass
class WalkResult:
    rows: list[tuple[Oid, Val]]
    stop: Literal["end", "bound", "time", "non_increasing"]
    requests: int


log = logging.getLogger(__name__)
Op = Literal["get", "next", "bulk"]
_V1ARCH: dict[str, Callable[..., Awaitable[Any]]] = {
    "get": v1arch_get, "next": v1arch_next, "bulk": v1arch_bulk}
_V3ARCH: dict[str, Callable[..., Awaitable[Any]]] = {
    "get": v3arch_get, "next": v3arch_next, "bulk": v3arch_bulk}
_V3_APP = "v3"  # the engine's receive-callback id on the session's transport dispatcher
_V1_APP = None  # the v1arch dispatcher's (pysnmp's default id)


class _DatagramCounter:
    def __init__(self, sent: Callable[[], None] | None = None) -> None:
        self.count = 0
        self.socket_open = asyncio.Event()
        self.sent = sent or (lambda: None)  # told of every datagram the session sends


def _deliver(callback: Callable[..., Any], transport: Any, address: Any, datagram: bytes
             ) -> None:
    """Hand a datagram to pysnmp; one that pysnmp cannot process is dropped, not raised.

    Such a datagram is already counted, so a request it leaves unanswered ends as
    ``NoAnswer`` with ``stray`` > 0 (a malformed reply), never as an exception escaping
    into the event loop.
    """
    try:
        callback(transport, address, datagram)
    except Exception as exc:  # pysnmp/pyasn1 errors on an untrusted datagram
        log.debug("dropped a %d-byte datagram from %s: %s", len(datagram), address,
                  type(exc).__name__)


def _counting_target(base: type, counter: _DatagramCounter) -> type:
    proto = base.PROTO_TRANSPORT

    class CountingTransport(proto):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            counter.socket_open.set()

        def datagram_received(self, datagram: bytes, address: Any) -> None:
            counter.count += 1
            if self._callback_function is not None:  # None once the session closed
                self.loop.call_soon(_deliver, self._callback_function, self, address,
                                    datagram)

        def send_message(self, outgoingMessage: bytes, transportAddress: Any) -> None:
            counter.sent()  # pysnmp's own datagrams too (v3 discovery, retransmissions)
            super().send_message(outgoingMessage, transportAddress)

    class CountingTarget(base):  # type: ignore[misc, valid-type]
        PROTO_TRANSPORT = CountingTransport

    return CountingTarget


_READ_PDUS = {v2c.GetRequestPDU.tagSet, v2c.GetNextRequestPDU.tagSet,
              v2c.GetBulkRequestPDU.tagSet}  # v1 Get/GetNext carry the same tags


class _Dispatcher(SnmpDispatcher):
    """v1arch dispatcher for one agent that sends only reads and accepts only true answers.

    pysnmp's own receive path decodes every message in a datagram, raises on undecodable
    bytes and takes any PDU whose request id is pending. As the v3arch engine did for
    v1/v2c, an answer here must be exactly one message of the request's version and
    community carrying a Response PDU with a pending request id; anything else is dropped.
    """

    def __init__(self, carrier: AsyncioDispatcher) -> None:
        super().__init__(carrier)  # not "automatic": the session owns the carrier
        self.cache["mibViewController"] = mib_view()  # never used with numeric OIDs

    def send_pdu(self, authData: Any, transportTarget: Any, reqPdu: Any, cbFun: Any = None,
                 cbCtx: Any = None) -> int:
        if reqPdu.tagSet not in _READ_PDUS:
            raise ForbiddenOperation(f"SNMP PDU {reqPdu.__class__.__name__} is not a read; "
                                     "refused")
        request_id = super().send_pdu(authData, transportTarget, reqPdu, cbFun, cbCtx)
        community = bytes(v2c.OctetString(authData.communityName))  # as the request has it
        self._pendingReqs[request_id]["expect"] = (authData.mpModel, community)
        return request_id

    def _recv_callback(self, carrier: Any, domain: Any, address: Any, datagram: bytes) -> None:
        try:
            answer = self._answer(datagram)
        except Exception:  # pyasn1/pysnmp decoding errors: not an SNMP answer
            answer = None
        if answer is None:
            return
        request_id, pdu = answer
        state = self._pendingReqs.pop(request_id)
        self.transport_dispatcher.job_finished(id(self))
        if state["cbFun"]:
            state["cbFun"](self, request_id, None, pdu, state["cbCtx"])

    def _answer(self, datagram: bytes) -> tuple[int, Any] | None:
        version = int(verdec.decode_message_version(datagram))
        module = api.PROTOCOL_MODULES[version]  # KeyError: not v1/v2c
        message, rest = decoder.decode(datagram, asn1Spec=module.Message())
        pdu = module.apiMessage.get_pdu(message)
        if rest or pdu.tagSet != v2c.ResponsePDU.tagSet:
            return None
        request_id = int(module.apiPDU.get_request_id(pdu))
        state = self._pendingReqs.get(request_id)
        community = bytes(module.apiMessage.get_community(message))
        if state is None or state["expect"] != (version, community):
            return None
        return request_id, pdu

    def close(self) -> None:
        # Every request was awaited or cancelled with its task; pysnmp's close() would call
        # their callbacks with an argument missing.
        self._pendingReqs.clear()
        super().close()


class SnmpSession:
    """One UDP socket towards one agent, used sequentially (engine only for SNMPv3)."""

    def __init__(self, host: str, port: int, *, timeout: float, retries: int,
                 pace: Callable[[], Awaitable[None]], max_repetitions: int = 25,
                 quick_timeout: float = 1.0, sent: Callable[[], None] | None = None) -> None:
        """``pace`` is awaited before each request; ``sent`` (``ProbeContext.sent``) is
        called for every datagram that leaves, so the next request is paced from the last."""
        self.host, self.port = host, port
        self.timeout, self.retries = timeout, retries
        self.quick_timeout = min(quick_timeout, timeout)
        self.pace = pace
        self.max_repetitions = max_repetitions
        self.requests = 0
        self._counter = _DatagramCounter(sent)
        self._carrier: AsyncioDispatcher | None = None  # the socket, opened on first use
        self._dispatcher: _Dispatcher | None = None  # v1/v2c, on the first v1/v2c request
        self._engine: SnmpEngine | None = None  # SNMPv3, on the first v3 request
        self._app: str | None = _V1_APP  # who gets incoming datagrams: the asking one
        self._target: Any = None
        self._quick: Any = None
        self._once: Any = None
        self._discovery: asyncio.DatagramTransport | None = None  # v3 discovery's socket
        self._discovery_reply: asyncio.Future[bytes] | None = None
        self._discovery_ids: list[int] = []

    async def __aenter__(self) -> SnmpSession:
        base = Udp6TransportTarget if ":" in self.host else UdpTransportTarget
        target_cls = _counting_target(base, self._counter)
        self._target = await target_cls.create((self.host, self.port), timeout=self.timeout,
                                               retries=self.retries)
        self._quick = await target_cls.create((self.host, self.port),
                                              timeout=self.quick_timeout, retries=0)
        self._once = await target_cls.create((self.host, self.port), timeout=self.timeout,
                                             retries=0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._discovery is not None:
            self._discovery.close()
            self._discovery = None
        if self._dispatcher is not None:
            self._dispatcher.close()
        if self._engine is not None:
            self._engine.close_dispatcher()  # closes the carrier too
        elif self._carrier is not None:
            self._carrier.close_dispatcher()
        self._dispatcher = self._engine = self._carrier = None

    @property
    def waited(self) -> float:
        return self.timeout * (self.retries + 1)

    def _open_carrier(self) -> AsyncioDispatcher:
        """The session's transport dispatcher and its one (counting) UDP socket."""
        if self._carrier is None:
            carrier = AsyncioDispatcher()
            transport = self._target.PROTO_TRANSPORT().open_client_mode()
            carrier.register_transport(self._target.TRANSPORT_DOMAIN, transport)
            carrier.register_routing_callback(lambda *_: self._app)
            self._carrier = carrier
        return self._carrier

    def _v1arch(self) -> _Dispatcher:
        if self._dispatcher is None:
            self._dispatcher = _Dispatcher(self._open_carrier())
        return self._dispatcher

    def _v3arch(self) -> SnmpEngine:
        if self._engine is None:
            engine = new_engine()  # MIB code compiled once per process
            engine.register_transport_dispatcher(self._open_carrier(), _V3_APP)
            self._engine = engine
        return self._engine

    def _prepare(self, op: Op, credential: Credential, oids: list[str], repetitions: int,
                 target: Any) -> Callable[[], Awaitable[Any]]:
        """Set up the app for ``credential`` and return the request, ready to send."""
        if credential.version != "v3":
            dispatcher, auth = self._v1arch(), credential.auth_data()
            binds = [(v2c.ObjectIdentifier(o), v2c.Null()) for o in oids]  # numeric: no MIB
            bulk = (0, repetitions) if op == "bulk" else ()
            self._app = _V1_APP
            return lambda: _V1ARCH[op](dispatcher, auth, target, *bulk, *binds,
                                       lookupMib=False)
        engine, auth = self._v3arch(), credential.auth_data()
        objects = tuple(ObjectType(ObjectIdentity(o)) for o in oids)
        # Target, socket and localised keys now, so that the paced moment is the moment the
        # request leaves; pysnmp's retransmissions and its SNMPv3 engine-discovery exchange
        # belong to the same paced request.
        LCD.configure(engine, auth, target, b"")
        VB_PROCESSOR.make_varbinds(engine.cache, objects)
        bulk = (0, repetitions) if op == "bulk" else ()
        self._app = _V3_APP
        return lambda: _V3ARCH[op](engine, auth, target, ContextData(), *bulk, *objects,
                                   lookupMib=False)

    async def _request(self, op: Op, credential: Credential, oids: list[str], *,
                       repetitions: int = 0, quick: bool = False, once: bool = False
                       ) -> list[tuple[Oid, Val]]:
        assert self._target is not None, "use 'async with SnmpSession(...)'"
        # quick: one try with the quick timeout; once: one try with the full timeout
        target = self._quick if quick else self._once if once else self._target
        send = self._prepare(op, credential, oids, repetitions, target)
        await asyncio.wait_for(self._counter.socket_open.wait(), self.timeout)
        await self.pace()
        self.requests += 1
        before = self._counter.count
        indication, status, index, varbinds = await send()
        if indication is not None:
            if isinstance(indication, errind.RequestTimedOut):
                if quick or once:
                    raise NoAnswer(self.quick_timeout if quick else self.timeout,
                                   self._counter.count - before)
                raise NoAnswer(self.waited, self._counter.count - before, self.retries + 1)
            for kind, meaning in AUTH_ERRORS.items():
                if isinstance(indication, kind):
                    raise AuthError(meaning)
            raise SnmpError(f"{type(indication).__name__}: {indication}")
        if status:
            raise AgentError(int(status), int(index))
        return [(tuple(oid), to_val(value)) for oid, value in varbinds]

    async def get(self, credential: Credential, oids: list[str], *, quick: bool = False,
                  once: bool = False) -> list[tuple[Oid, Val]]:
        """GET ``oids``. SNMPv1 ``noSuchName`` for one OID becomes ``noSuchObject`` there.

        Full timeout and retries by default; ``quick``: one try with the quick timeout;
        ``once``: one try with the full timeout. Raises ParseError when the reply does not
        carry exactly the requested OIDs.
        """
        try:
            varbinds = await self._request("get", credential, oids, quick=quick, once=once)
            check_get_reply(oids, varbinds)  # ParseError: a malformed answer
            return varbinds
        except AgentError as exc:
            if credential.version != "v1" or exc.status != 2 or not 1 <= exc.index <= len(oids):
                raise
            missing = exc.index - 1  # v1 fails the whole PDU: ask again without that OID
        rest = oids[:missing] + oids[missing + 1:]
        values = await self.get(credential, rest, quick=quick, once=once) if rest else []
        values.insert(missing, (parse_oid(oids[missing]), Val("noSuchObject")))
        return values

    async def walk(self, credential: Credential, root: str, *, max_oids: int,
                   deadline: float) -> WalkResult:
        """All OIDs under ``root`` (GETBULK; GETNEXT over v1), bounded in count and time."""
        start, prefix = time.monotonic(), parse_oid(root)
        current, rows, requests = prefix, [], 0
        while True:
            if time.monotonic() - start > deadline:
                return WalkResult(rows, "time", requests)
            requests += 1
            oids = [oid_str(current)]
            if credential.version == "v1":
                try:
                    got = await self._request("next", credential, oids)
                except AgentError as exc:
                    if exc.status == 2:  # noSuchName: end of the MIB view
                        return WalkResult(rows, "end", requests)
                    raise
            else:
                repetitions = max(1, min(self.max_repetitions, max_oids - len(rows)))
                got = await self._request("bulk", credential, oids, repetitions=repetitions)
            if not got:
                return WalkResult(rows, "end", requests)
            for oid, val in got:
                if val.type == "endOfMibView" or oid[: len(prefix)] != prefix:
                    return WalkResult(rows, "end", requests)
                if oid <= current:
                    return WalkResult(rows, "non_increasing", requests)
                rows.append((oid, val))
                current = oid
                if len(rows) >= max_oids:
                    return WalkResult(rows, "bound", requests)

    async def discover_engine(self, timeout: float | None = None) -> tuple[bytes, int] | None:
        """One unauthenticated SNMPv3 discovery (one try, ``timeout`` or the quick timeout):
        (reply, msg_id), None on silence. Every discovery of the session leaves from one
        second socket (pysnmp owns the first), opened on the first and closed with the
        session: a device sees at most two peers per run."""
        msg_id = random.randint(1, 2**31 - 1)
        self._discovery_ids.append(msg_id)
        datagram = build_v3_discovery(msg_id, random.randint(1, 2**31 - 1))
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[bytes] = loop.create_future()
        self._discovery_reply = reply
        if self._discovery is None:
            session = self

            class Replies(asyncio.DatagramProtocol):
                def datagram_received(self, data: bytes, addr: Any) -> None:
                    waiting = session._discovery_reply
                    if waiting is not None and not waiting.done():
                        waiting.set_result(data)

            self._discovery, _ = await loop.create_datagram_endpoint(
                Replies, remote_addr=(self.host, self.port))
        try:
            await self.pace()
            self.requests += 1
            self._discovery.sendto(datagram)
            self._counter.sent()
            with contextlib.suppress(TimeoutError):
                data = await asyncio.wait_for(reply, timeout or self.quick_timeout)
                return data, self._answered_id(data, msg_id)
            return None
        finally:
            self._discovery_reply = None

    def _answered_id(self, data: bytes, msg_id: int) -> int:
        """The msgID of this session's discovery that ``data`` answers: a late reply to an
        earlier discovery is an answer too; ``msg_id`` (the last) when none matches."""
        for sent in reversed(self._discovery_ids):
            with contextlib.suppress(ParseError):
                parse_v3_report(data, sent)
                return sent
        return msg_id
