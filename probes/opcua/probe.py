"""OPC UA probe: how may one connect to this server, and what is it?

On one TCP connection (port 4840 by default): Hello, OpenSecureChannel with policy None,
GetEndpoints - no session - which lists the security policies and modes, the user token
types and the server certificate. Only when the inventory allows it (``read_build_info``)
and an endpoint without security takes anonymous users: CreateSession, ActivateSession
(anonymous), one Read of the BuildInfo values, CloseSession. Then CloseSecureChannel.
Every request is paced; nothing else can leave the probe (``guard.py``): no write, no
method call, no credentials.

``identify`` is the one harmless exchange discovery may use: the same without a session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from otaudit.observation import AssetKind
from otaudit.probes.base import (
    ParseError,
    Probe,
    ProbeContext,
    ProbeOptions,
    ProbeTarget,
    Recorder,
)
from otaudit.probes.certificates import CertSummary, summarise
from otaudit.probes.opcua.facts import FACTS

if TYPE_CHECKING:  # asyncua is imported when a run starts, not to list probes and facts
    from otaudit.probes.opcua.client import OpcUaConnection
    from otaudit.probes.opcua.parse import Endpoint

CERT_FACTS = ("opcua.cert_key_type", "opcua.cert_key_bits", "opcua.cert_signature_algorithm",
              "opcua.cert_signature_hash", "opcua.cert_not_before", "opcua.cert_not_after",
              "opcua.cert_days_left", "opcua.cert_self_signed", "opcua.cert_application_uri",
              "opcua.cert_uri_matches")
BUILD_FACTS = ("opcua.anonymous_session", "identity.vendor", "identity.product",
               "identity.firmware_version", "opcua.build_number", "opcua.build_date")


class OpcUaOptions(ProbeOptions):
    path: str = Field("", description="path of the endpoint URL after host:port (e.g. "
                      "/freeopcua/server/); default: none")
    read_build_info: bool = Field(False, description="open an anonymous session, where an "
                                  "endpoint without security allows one, to read BuildInfo "
                                  "(vendor, product, software version)")


class OpcUaProbe(Probe):
    name = "opcua"
    version = "1.0"
    typical_seconds = 0.4  # hello, channel, endpoints (+ session, read) paced
    default_port = 4840
    default_kind = AssetKind.HMI
    Options = OpcUaOptions
    facts = FACTS

    async def identify(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        """Hello, OpenSecureChannel, GetEndpoints, CloseSecureChannel: no session."""
        await self._run(target, ctx, OpcUaOptions(path=_options(target).path))

    async def collect(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        await self._run(target, ctx, _options(target))

    async def _run(self, target: ProbeTarget, ctx: ProbeContext, options: OpcUaOptions) -> None:
        from otaudit.probes.opcua.client import OpcUaConnection
        from otaudit.probes.opcua.parse import endpoints

        rec = ctx.recorder
        path = options.path if not options.path or options.path.startswith("/") \
            else "/" + options.path
        url = f"opc.tcp://{target.endpoint}{path}"
        await ctx.pace()
        async with OpcUaConnection(target.host, target.port, url, timeout=ctx.timeout,
                                   on_sent=ctx.sent) as conn:
            await conn.hello()
            await ctx.pace()
            await conn.open_channel()
            try:
                await ctx.pace()
                descriptions, raw = await conn.get_endpoints()
                eps = endpoints(descriptions)
                eid = rec.evidence_for(f"opcua GetEndpoints {url} (no session)",
                                       _summary(eps) + "\nraw " + raw.hex())
                if not eps:
                    raise ParseError("GetEndpoints returned no endpoint")
                _record_endpoints(rec, eps, eid)
                if options.read_build_info:
                    await _build_info(conn, ctx, eps)
                else:
                    for fact in BUILD_FACTS:
                        rec.unknown_fact(fact, "not read: read_build_info is false for this "
                                               "endpoint")
            finally:
                if conn.session_open:
                    await ctx.pace()
                    await conn.close_session()
                await ctx.pace()
                await conn.close()


def _options(target: ProbeTarget) -> OpcUaOptions:
    options = target.options
    if isinstance(options, OpcUaOptions):
        return options
    return OpcUaOptions.model_validate(options.model_dump())


def _summary(eps: list[Endpoint]) -> str:
    return "\n".join(f"{e.url} {e.security_policy}/{e.security_mode} level "
                     f"{e.security_level} tokens "
                     f"{','.join(t.type for t in e.tokens) or '-'}" for e in eps)


def _record_endpoints(rec: Recorder, eps: list[Endpoint], eid: str) -> None:
    from otaudit.probes.opcua.parse import posture

    p = posture(eps)
    rec.fact("opcua.endpoints", [e.to_fact() for e in eps], eid)
    rec.fact("opcua.security_policies", p.policies, eid)
    rec.fact("opcua.security_modes", p.modes, eid)
    rec.fact("opcua.security_none", p.security_none, eid)
    rec.fact("opcua.deprecated_policies", p.deprecated, eid)
    rec.fact("opcua.user_token_types", p.token_types, eid)
    rec.fact("opcua.anonymous", p.anonymous, eid)
    rec.fact("opcua.cleartext_password", p.cleartext_password, eid)
    first = eps[0]
    for path, value in (("opcua.application_uri", first.application_uri),
                        ("opcua.product_uri", first.product_uri),
                        ("opcua.application_name", first.application_name)):
        if value:
            rec.fact(path, value, eid)
        else:
            rec.unknown_fact(path, "empty in the endpoint description")
    certs = list(dict.fromkeys(e.certificate for e in eps if e.certificate))
    if not certs:
        for path in CERT_FACTS:
            rec.unknown_fact(path, "no endpoint carries a server certificate")
        return
    if len(certs) > 1:
        rec.error(f"the endpoints carry {len(certs)} different certificates; the first "
                  "is judged")
    try:
        cert = summarise(certs[0])
    except ParseError as exc:
        for path in CERT_FACTS:
            rec.unknown_fact(path, str(exc))
        rec.error(str(exc))
        return
    _record_certificate(rec, cert, first.application_uri, eid)


def _record_certificate(rec: Recorder, cert: CertSummary, app_uri: str, eid: str) -> None:
    rec.fact("opcua.cert_key_type", cert.key_type, eid)
    rec.fact("opcua.cert_key_bits", cert.key_bits, eid)
    rec.fact("opcua.cert_signature_algorithm", cert.signature_algorithm, eid)
    if cert.signature_hash:
        rec.fact("opcua.cert_signature_hash", cert.signature_hash, eid)
    else:
        rec.unknown_fact("opcua.cert_signature_hash",
                         f"{cert.signature_algorithm} signs without a separate hash")
    rec.fact("opcua.cert_not_before", cert.not_before, eid)
    rec.fact("opcua.cert_not_after", cert.not_after, eid)
    rec.fact("opcua.cert_days_left", cert.days_left, eid)
    rec.fact("opcua.cert_self_signed", cert.self_signed, eid)
    if cert.application_uri:
        rec.fact("opcua.cert_application_uri", cert.application_uri, eid)
        if app_uri:
            rec.fact("opcua.cert_uri_matches", cert.application_uri == app_uri, eid)
        else:
            rec.unknown_fact("opcua.cert_uri_matches", "the server names no ApplicationUri")
    else:
        rec.unknown_fact("opcua.cert_application_uri", "no URI in subjectAltName")
        rec.fact("opcua.cert_uri_matches", False, eid)


async def _build_info(conn: OpcUaConnection, ctx: ProbeContext, eps: list[Endpoint]) -> None:
    from otaudit.probes.opcua.client import OpcUaServiceFault
    from otaudit.probes.opcua.parse import anonymous_insecure_endpoint, build_info

    rec = ctx.recorder
    found = anonymous_insecure_endpoint(eps)
    if found is None:
        for fact in BUILD_FACTS:
            rec.unknown_fact(fact, "not read: no endpoint without security accepts anonymous "
                                   "users (the probe opens no other session)")
        return
    _, token = found
    await ctx.pace()
    await conn.create_session()
    await ctx.pace()
    try:
        await conn.activate_anonymous(token.policy_id)
    except OpcUaServiceFault as exc:  # only the server's answer says no (not damage)
        eid = rec.evidence_for("opcua ActivateSession (anonymous)", str(exc))
        rec.fact("opcua.anonymous_session", False, eid)
        for fact in BUILD_FACTS[1:]:
            rec.unknown_fact(fact, f"anonymous session refused: {exc}")
        return
    eid = rec.evidence_for("opcua CreateSession + ActivateSession (anonymous)",
                           conn.last_reply)
    rec.fact("opcua.anonymous_session", True, eid)
    await ctx.pace()
    values = await conn.read_build_info()
    eid = rec.evidence_for("opcua Read Server_ServerStatus_BuildInfo (i=2261..2266, Value)",
                           conn.last_reply)
    info = build_info(values)
    for path, value in (("identity.vendor", info.manufacturer),
                        ("identity.product", info.product_name),
                        ("identity.firmware_version", info.software_version),
                        ("opcua.build_number", info.build_number),
                        ("opcua.build_date", info.build_date)):
        if value:
            rec.fact(path, " ".join(value.split()), eid)
        else:
            rec.unknown_fact(path, "BuildInfo value empty or not readable")
    if info.product_uri and "opcua.product_uri" not in rec.facts:
        rec.fact("opcua.product_uri", info.product_uri, eid)
    await ctx.pace()
