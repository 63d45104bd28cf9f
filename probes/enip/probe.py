"""EtherNet/IP probe: who is this device, and who may talk CIP to it?

On one TCP connection to port 44818: ListIdentity, then (unless ``explicit: false``)
RegisterSession, Get_Attributes_All of the Identity object, UnRegisterSession - which
shows whether any host can open an unauthenticated CIP session. Then, on the CIP Security
port (2221 unless ``tls_port`` says otherwise, 0 to skip), a TLS handshake only. Every
request is paced; only the identity requests can leave the probe (``guard.py``).

``identify`` is the one harmless request discovery may send: ListIdentity alone.
"""

from __future__ import annotations

import asyncio

from pydantic import Field

from otaudit.observation import AssetKind
from otaudit.probes.base import (
    ParseError,
    Probe,
    ProbeContext,
    ProbeOptions,
    ProbeTarget,
    ProbeTimeout,
    Recorder,
)
from otaudit.probes.certificates import summarise
from otaudit.probes.enip.client import EnipClosed, EnipConnection, TlsPosture, tls_posture
from otaudit.probes.enip.facts import FACTS
from otaudit.probes.enip.identity import device_type_name, identity_facts
from otaudit.probes.enip.parse import (
    ENCAPSULATION_STATUS,
    Identity,
    decode_status,
    parse_identity_all,
    parse_list_identity,
    parse_register_session,
    parse_send_rr_data,
    state_name,
)

TLS_FACTS = ("enip.tls_port_open", "enip.cip_security", "enip.tls_version", "enip.tls_cipher",
             "enip.cert_key_type", "enip.cert_key_bits", "enip.cert_signature_hash",
             "enip.cert_not_after", "enip.cert_days_left", "enip.cert_self_signed")
SESSION_FACTS = ("enip.session_accepted", "enip.explicit_read")


class EnipOptions(ProbeOptions):
    explicit: bool = Field(True, description="also open a CIP session and read the Identity "
                           "object with Get_Attributes_All (shows whether unauthenticated "
                           "sessions are accepted)")
    tls_port: int = Field(2221, ge=0, le=65535, description="CIP Security (EtherNet/IP over "
                          "TLS) port to look at with a TLS handshake; 0: do not look")


class EnipProbe(Probe):
    name = "enip"
    version = "1.0"
    typical_seconds = 0.3  # three or four paced requests and a TLS handshake
    default_port = 44818
    default_kind = AssetKind.PLC
    Options = EnipOptions
    facts = FACTS

    async def identify(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        """ListIdentity only: identity facts for discovery, one paced request."""
        async with EnipConnection(target.host, target.port, timeout=ctx.timeout,
                                  on_sent=ctx.sent) as conn:
            await _list_identity(conn, ctx)

    async def collect(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        options = target.options
        if not isinstance(options, EnipOptions):
            options = EnipOptions.model_validate(options.model_dump())
        rec = ctx.recorder
        check_tls = bool(options.tls_port)
        try:
            async with EnipConnection(target.host, target.port, timeout=ctx.timeout,
                                      on_sent=ctx.sent) as conn:
                listed = await _list_identity(conn, ctx)
                if options.explicit:
                    await _explicit(conn, ctx, listed)
                else:
                    for path in SESSION_FACTS:
                        rec.unknown_fact(path, "not checked: explicit is false for this "
                                               "endpoint")
        except (ProbeTimeout, TimeoutError, asyncio.CancelledError):
            check_tls = False  # an unreachable device would only cost a second timeout
            raise
        finally:
            if check_tls:
                await ctx.pace()
                posture = await tls_posture(target.host, options.tls_port,
                                            timeout=ctx.timeout, on_sent=ctx.sent)
                _record_tls(rec, options.tls_port, posture)
            elif not options.tls_port:
                for path in TLS_FACTS:
                    rec.unknown_fact(path, "not checked: tls_port is 0 for this endpoint")


async def _list_identity(conn: EnipConnection, ctx: ProbeContext) -> Identity:
    rec = ctx.recorder
    await ctx.pace()
    raw = await conn.list_identity()
    eid = rec.evidence_for("enip ListIdentity (encapsulation command 0x63)", raw)
    items = parse_list_identity(raw)
    if len(items) > 1:
        rec.error(f"ListIdentity returned {len(items)} identity items; the first is used")
    item = items[0]
    ident = item.identity
    rec.fact("enip.list_identity", True, eid)
    rec.fact("enip.socket_address", item.socket_address, eid)
    rec.fact("enip.state", ident.state, eid)
    rec.fact("enip.state_name", state_name(ident.state), eid)
    _record_identity(rec, ident, eid)
    return ident


def _record_identity(rec: Recorder, ident: Identity, eid: str) -> None:
    rec.fact("enip.vendor_id", ident.vendor_id, eid)
    rec.fact("enip.device_type", ident.device_type, eid)
    rec.fact("enip.device_type_name", device_type_name(ident.device_type), eid)
    rec.fact("enip.product_code", ident.product_code, eid)
    rec.fact("enip.revision", ident.revision, eid)
    rec.fact("enip.product_name", ident.product_name, eid)
    status = decode_status(ident.status)
    rec.fact("enip.status", ident.status, eid)
    rec.fact("enip.status_owned", status.owned, eid)
    rec.fact("enip.status_configured", status.configured, eid)
    rec.fact("enip.extended_status", status.extended, eid)
    rec.fact("enip.faults", list(status.faults), eid)
    facts, unknown = identity_facts(ident)
    for path, value in facts.items():
        rec.fact(path, value, eid)
    for path, reason in unknown.items():
        rec.unknown_fact(path, reason)


async def _explicit(conn: EnipConnection, ctx: ProbeContext, listed: Identity) -> None:
    """RegisterSession, Get_Attributes_All Identity/1, UnRegisterSession."""
    rec = ctx.recorder
    await ctx.pace()
    request = "enip RegisterSession (0x65, protocol version 1)"
    try:
        raw = await conn.register_session()
    except EnipClosed as exc:
        eid = rec.evidence_for(request, f"no session: {exc}")
        rec.fact("enip.session_accepted", False, eid)
        rec.unknown_fact("enip.explicit_read", "the device refused a CIP session")
        return
    eid = rec.evidence_for(request, raw)
    session, status = parse_register_session(raw)
    if status:
        rec.fact("enip.session_accepted", False, eid)
        rec.unknown_fact("enip.explicit_read", f"RegisterSession refused with status "
                         f"0x{status:08X} ({ENCAPSULATION_STATUS.get(status, 'unknown')})")
        return
    rec.fact("enip.session_accepted", True, eid)
    await ctx.pace()
    raw = await conn.identity_attributes(session)
    eid = rec.evidence_for("enip SendRRData Get_Attributes_All (0x01) Identity class 1 "
                           "instance 1", raw)
    try:
        reply = parse_send_rr_data(raw)
        if reply.status:
            rec.fact("enip.explicit_read", False, eid)
            rec.error(f"Get_Attributes_All of the Identity object: {reply.describe()}")
        else:
            rec.fact("enip.explicit_read", True, eid)
            _compare(rec, listed, parse_identity_all(reply.data))
    except ParseError as exc:
        rec.unknown_fact("enip.explicit_read", f"malformed reply: {exc}")
        rec.error(f"Get_Attributes_All of the Identity object: malformed reply: {exc}")
    await ctx.pace()
    await conn.unregister_session(session)
    rec.evidence_for(f"enip UnRegisterSession (0x66) session 0x{session:08X}", "")


def _compare(rec: Recorder, listed: Identity, read: Identity) -> None:
    """The explicit read should tell the same identity as ListIdentity."""
    for field in ("vendor_id", "device_type", "product_code", "major", "minor", "serial",
                  "product_name"):
        a, b = getattr(listed, field), getattr(read, field)
        if a != b:
            rec.error(f"ListIdentity and Get_Attributes_All disagree on {field}: "
                      f"{a!r} vs {b!r}")


def _record_tls(rec: Recorder, port: int, posture: TlsPosture) -> None:
    request = f"enip TLS handshake on port {port} (CIP Security; no CIP sent)"
    if posture.timed_out:  # silence is no answer: a busy device is not one without TLS
        eid = rec.evidence_for(request, posture.reason)
        if posture.open:
            rec.fact("enip.tls_port_open", True, eid)
        else:
            rec.unknown_fact("enip.tls_port_open", posture.reason)
        for path in TLS_FACTS[1:]:
            rec.unknown_fact(path, posture.reason)
        return
    if not posture.open:
        eid = rec.evidence_for(request, posture.reason)
        rec.fact("enip.tls_port_open", False, eid)
        rec.fact("enip.cip_security", False, eid)
        for path in TLS_FACTS[2:]:
            rec.unknown_fact(path, f"port {port} is not open: {posture.reason}")
        return
    if not posture.handshake:
        eid = rec.evidence_for(request, posture.reason)
        rec.fact("enip.tls_port_open", True, eid)
        rec.fact("enip.cip_security", False, eid)
        for path in TLS_FACTS[2:]:
            rec.unknown_fact(path, posture.reason)
        return
    cert = summarise(posture.certificate) if posture.certificate else None
    summary = (f"{posture.version} {posture.cipher}; certificate "
               + (f"{cert.subject}, {cert.key_type} {cert.key_bits} bit, "
                  f"{cert.signature_algorithm}, valid until {cert.not_after}, sha256 "
                  f"{cert.fingerprint_sha256}" if cert else "none"))
    eid = rec.evidence_for(request, summary)
    rec.fact("enip.tls_port_open", True, eid)
    rec.fact("enip.cip_security", True, eid)
    rec.fact("enip.tls_version", posture.version, eid)
    rec.fact("enip.tls_cipher", posture.cipher, eid)
    if cert is None:
        for path in TLS_FACTS[4:]:
            rec.unknown_fact(path, "the TLS server sent no certificate")
        return
    rec.fact("enip.cert_key_type", cert.key_type, eid)
    rec.fact("enip.cert_key_bits", cert.key_bits, eid)
    if cert.signature_hash:
        rec.fact("enip.cert_signature_hash", cert.signature_hash, eid)
    else:
        rec.unknown_fact("enip.cert_signature_hash", f"{cert.signature_algorithm} signs "
                         "without a separate hash")
    rec.fact("enip.cert_not_after", cert.not_after, eid)
    rec.fact("enip.cert_days_left", cert.days_left, eid)
    rec.fact("enip.cert_self_signed", cert.self_signed, eid)
