"""Simulated SNMP agent: pysnmp's command responders over our own OID table.

Per profile it enables SNMP versions (a disabled version is dropped unanswered, as
on a real agent), communities with read or read-write access and v3 USM users;
VACM enforces the access and the v3 security level. Every datagram that arrives is
logged before pysnmp looks at it (kind GET/GETNEXT/GETBULK/SET/..., version,
community or v3 user, ``accepted`` once the agent authenticated it); v3 keys are never
logged. The agent never changes state: a SET that passes access control gets
``notWritable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import cmdrsp
from pysnmp.entity.rfc3413 import context as snmp_context
from pysnmp.proto.api import v2c
from pysnmp.smi import error as smi_error
from pysnmp.smi import instrum

from otaudit.errors import InputError, pydantic_problems
from otaudit.simulators import bundled_profile
from otaudit.simulators.base import NotLoopback, SimulatedDevice
from otaudit.simulators.snmp.mib import build_table
from otaudit.simulators.snmp.profile import Agent, Community, SnmpProfile
from otaudit.simulators.snmp.values import OidTable
from otaudit.simulators.snmp.wire import pdu_details, pdu_kind, summarize

DEFAULT_PROFILE = "scalance-x204irt-weak"
WHOLE_TREE = (1, 3, 6)
MP_MODELS = {"v1": 0, "v2c": 1, "v3": 3}
SECURITY_MODELS = {"v1": 1, "v2c": 2}
AUTH = {"MD5": config.USM_AUTH_HMAC96_MD5, "SHA": config.USM_AUTH_HMAC96_SHA,
        "SHA-224": config.USM_AUTH_HMAC128_SHA224, "SHA-256": config.USM_AUTH_HMAC192_SHA256,
        "SHA-384": config.USM_AUTH_HMAC256_SHA384, "SHA-512": config.USM_AUTH_HMAC384_SHA512}
PRIV = {"DES": config.USM_PRIV_CBC56_DES, "3DES": config.USM_PRIV_CBC168_3DES,
        "AES-128": config.USM_PRIV_CFB128_AES, "AES-192": config.USM_PRIV_CFB192_AES,
        "AES-256": config.USM_PRIV_CFB256_AES}


# `otaudit sim snmp` flags beyond --profile/--host/--port/--log.
CLI_OPTIONS = {
    "--snmprec FILE": "replay a recording (.snmprec, or snmpwalk -On output) instead of a "
                      "profile",
    "--community C": "community the recording answers (default public; with --snmprec)",
}


def from_profile(profile: Path | None = None, host: str = "127.0.0.1", port: int = 0, *,
                 snmprec: str | Path | None = None, community: str | None = None,
                 skip_bad_lines: bool | str = False, **options: Any) -> SnmpSimulator:
    """Agent from a profile (default: a bundled one) or replaying a device recording.

    ``snmprec`` names a ``.snmprec`` or ``snmpwalk`` file (numeric or symbolic OIDs); it is
    served over v1 and v2c with community ``community`` (default ``public``). A recording
    with unreadable lines is refused unless ``skip_bad_lines``. Bad input raises InputError.
    """
    if options:
        flags = ", ".join("--" + k.replace("_", "-") for k in options)
        raise InputError("snmp simulator options", [
            f"unknown option(s) {flags}; known: --snmprec FILE, --community C, "
            "--skip-bad-lines (with --snmprec)"])
    skip = skip_bad_lines if isinstance(skip_bad_lines, bool) else \
        str(skip_bad_lines).lower() in ("1", "true", "yes")
    if snmprec is not None and profile is not None:
        raise InputError("snmp simulator options", ["give either --profile or --snmprec"])
    if snmprec is None and community is not None:
        raise InputError("snmp simulator options",
                         ["--community only applies to --snmprec (profiles name their own)"])
    source = snmprec or profile or bundled_profile("snmp", DEFAULT_PROFILE)
    try:
        if snmprec is not None:
            return SnmpSimulator(recording_profile(snmprec, community or "public", skip),
                                 host, port)
        return SnmpSimulator(SnmpProfile.load(Path(source)), host, port)
    except NotLoopback:
        raise
    except ValidationError as exc:
        raise InputError(source, pydantic_problems(exc)) from None
    except (ValueError, OSError, yaml.YAMLError) as exc:  # RecordingError, bad values
        raise InputError(source, [str(exc)]) from None


def recording_profile(path: str | Path, community: str = "public",
                      skip_bad_lines: bool = False) -> SnmpProfile:
    """A v1/v2c agent with one read-only community that serves a recording as is."""
    return SnmpProfile(name=Path(path).name, description=f"replay of {path}",
                       agent=Agent(versions=["v1", "v2c"],
                                   communities=[Community(community=community)]),
                       recording=str(Path(path).resolve()), skip_bad_lines=skip_bad_lines)


class TableInstrum(instrum.AbstractMibInstrumController):
    """Answers GET/GETNEXT/GETBULK from an ``OidTable``; VACM decides via ``acFun``."""

    def __init__(self, table: OidTable) -> None:
        self.table = table

    @staticmethod
    def _not_in_view(view: str, oid: Any, value: Any, idx: int, ctx: dict[str, Any]) -> bool:
        check: Callable[..., Any] | None = ctx.get("acFun")
        return bool(check and check(view, (oid, value), **dict(ctx, idx=idx)))

    def read_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Any, Any]]:
        out = []
        for idx, (oid, _) in enumerate(var_binds):
            value = self.table.get(tuple(oid))
            if value is None or self._not_in_view("read", oid, value, idx, ctx):
                value = v2c.NoSuchInstance()
            out.append((oid, value))
        return out

    def read_next_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Any, Any]]:
        out = []
        for idx, (oid, _) in enumerate(var_binds):
            for key in self.table.keys_after(tuple(oid)):
                value = self.table.get(key)
                try:
                    if self._not_in_view("read", key, value, idx, ctx):
                        continue
                except smi_error.NoAccessError:  # e.g. Counter64 asked over SNMPv1
                    continue
                out.append((v2c.ObjectIdentifier(key), value))
                break
            else:
                out.append((oid, v2c.EndOfMibView()))
        return out

    def write_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Any, Any]]:
        for idx, (oid, value) in enumerate(var_binds):
            self._not_in_view("write", oid, value, idx, ctx)  # raises for read-only access
        raise smi_error.NotWritableError(name=var_binds[0][0] if var_binds else (), idx=0)


class SnmpSimulator(SimulatedDevice):
    protocol = "snmp"

    def __init__(self, profile: SnmpProfile, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.profile = profile
        self.table = build_table(profile)
        self._engine: engine.SnmpEngine | None = None
        self._current: int | None = None  # index of the record being processed
        self._peers: dict[str, int] = {}
        self._closed = asyncio.Event()

    async def start(self) -> None:
        agent = self.profile.agent
        self._closed.clear()
        engine_id = v2c.OctetString(hexValue=agent.engine_id) if agent.engine_id else None
        snmp_engine = engine.SnmpEngine(snmpEngineID=engine_id)
        ipv6 = ":" in self.host
        sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.port))
            self.port = sock.getsockname()[1]
            transport = _logging_transport(udp6.Udp6AsyncioTransport if ipv6
                                           else udp.UdpAsyncioTransport, self)()
            await asyncio.get_running_loop().create_datagram_endpoint(lambda: transport,
                                                                      sock=sock)
        except BaseException:
            sock.close()
            raise
        config.add_transport(snmp_engine, udp6.DOMAIN_NAME if ipv6 else udp.DOMAIN_NAME,
                             transport)
        self._configure_access(snmp_engine, agent)
        snmp_ctx = snmp_context.SnmpContext(snmp_engine)
        snmp_ctx.unregister_context_name(v2c.OctetString(""))
        snmp_ctx.register_context_name(v2c.OctetString(""), TableInstrum(self.table))
        for responder in (cmdrsp.GetCommandResponder, cmdrsp.NextCommandResponder,
                          cmdrsp.BulkCommandResponder, cmdrsp.SetCommandResponder):
            responder(snmp_engine, snmp_ctx)
        snmp_engine.observer.register_observer(self._on_request,
                                               "rfc3412.receiveMessage:request")
        self._engine = snmp_engine

    @staticmethod
    def _configure_access(snmp_engine: engine.SnmpEngine, agent: Agent) -> None:
        for number, item in enumerate(agent.communities):
            name = f"community-{number}"
            config.add_v1_system(snmp_engine, name, item.community)
            for version, model in SECURITY_MODELS.items():
                if version in agent.versions:
                    config.add_vacm_user(snmp_engine, model, name, "noAuthNoPriv", WHOLE_TREE,
                                         WHOLE_TREE if item.access == "rw" else ())
        for user in agent.users:
            config.add_v3_user(
                snmp_engine, user.name,
                AUTH[user.auth] if user.auth else config.USM_AUTH_NONE, user.auth_key,
                PRIV[user.priv] if user.priv else config.USM_PRIV_NONE, user.priv_key)
            config.add_vacm_user(snmp_engine, 3, user.name, user.security_level, WHOLE_TREE,
                                 WHOLE_TREE if user.access == "rw" else ())
        disabled = {MP_MODELS[v] for v in MP_MODELS if v not in agent.versions}
        subsystems = snmp_engine.message_processing_subsystems
        for key in [k for k in subsystems if int(k) in disabled]:
            del subsystems[key]  # datagrams of a disabled version are dropped unanswered

    async def stop(self) -> None:
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None
            with contextlib.suppress(TimeoutError):  # the socket closes on the next loop turn
                await asyncio.wait_for(self._closed.wait(), 2.0)
        for connection in self._peers.values():
            self.log.close(connection)
        self._peers.clear()

    def forget_peers(self) -> None:
        """End the log's "connection" of every client port seen so far. UDP has no close:
        a long-running simulator (a fuzz campaign: two ports per probe run) would keep one
        entry per port ever seen; a port that speaks again is a new connection."""
        for connection in self._peers.values():
            self.log.close(connection)
        self._peers.clear()

    # --- request log -----------------------------------------------------------------

    def _begin(self, datagram: bytes, address: Any, arrived: float) -> None:
        """Log the datagram, stamped with the time the transport received it."""
        summary = summarize(datagram)
        summary["accepted"] = False
        peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
        if peer not in self._peers:
            self._peers[peer] = self.log.open(peer)
        kind = summary.pop("kind")
        self.log.record(kind, connection=self._peers[peer], peer=peer, at=arrived, **summary)
        self._current = len(self.log.records) - 1

    def _on_request(self, snmp_engine: Any, execpoint: str, variables: dict[str, Any],
                    cb_ctx: Any) -> None:
        """pysnmp accepted the current datagram (community/USM ok): complete its record."""
        if self._current is None:
            return
        record = self.log.records[self._current]
        record.detail["accepted"] = True
        if record.kind == "ENCRYPTED":  # now decrypted: log the real PDU type
            pdu = variables["pdu"]
            record.detail.update(pdu_details(pdu))
            self.log.records[self._current] = replace(record, kind=pdu_kind(pdu))

    def _end(self) -> None:
        self._current = None


def _logging_transport(base: type, device: SnmpSimulator) -> type:
    """A pysnmp UDP transport class that wraps each datagram in the device's log."""

    class LoggingTransport(base):  # type: ignore[misc, valid-type]
        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            device._closed.set()

        def datagram_received(self, datagram: bytes, address: Any) -> None:
            # Stamped now: the handling below waits behind the other devices' datagrams
            # of this worker, and a late stamp would make the next gap look too short.
            self.loop.call_soon(self._dispatch, datagram, address, time.time())

        def _dispatch(self, datagram: bytes, address: Any, arrived: float) -> None:
            device._begin(datagram, address, arrived)
            try:
                if self._callback_function is not None:
                    self._callback_function(self, address, datagram)
            finally:
                device._end()

    return LoggingTransport
