"""SNMP probe: system group, ENTITY-MIB, IF-MIB, vendor identity and SNMP posture.

Order of a run, and what each step concludes from what:

1. GET the system group with the configured credential. Silence is ambiguous (wrong
   community and dead host look the same), so an unauthenticated SNMPv3 engine
   discovery follows: a Report proves the agent is up, hence "credential rejected or
   version disabled" (auth_failed); junk datagrams mean a broken agent (error);
   nothing at all means "cannot tell which" (timeout).
2. The other versions the configured credentials allow (v1 and v2c with the
   community, v3 with the user) get one quick GET each.
3. SNMPv3 engine discovery: any v3 agent must answer it, with no credential at all.
   Silence is weak evidence: a lost datagram or a busy agent or collector looks the same
   as a version switched off, and "v1 off" passes a "v1 must be off" check. So every
   silence of step 2 and 3 is confirmed: a control GET with the credential that answered
   the system group (full timeout) must be answered now, then the silent request is sent
   once more with the full timeout (and retries). Only when the control answers and the
   confirmation stays silent is the version off (``false``, with the three requests as
   evidence); when the control goes unanswered too, the version is ``unknown`` with the
   reason.
4. Bounded walks of ENTITY-MIB and IF-MIB, vendor OIDs from vendors.yaml, identity.
5. Only for assets with ``credential_checks: true``: well-known communities.
"""

from __future__ import annotations

import re
from typing import Any

from otaudit.observation import AssetKind
from otaudit.probes.base import (
    ParseError,
    Probe,
    ProbeAuthFailed,
    ProbeContext,
    ProbeError,
    ProbeTarget,
    ProbeTimeout,
    Recorder,
)
from otaudit.probes.snmp import identity as vendor_identity
from otaudit.probes.snmp.client import (
    AgentError,
    AuthError,
    Credential,
    NoAnswer,
    SnmpError,
    SnmpSession,
    WalkResult,
)
from otaudit.probes.snmp.facts import FACTS
from otaudit.probes.snmp.options import SnmpOptions
from otaudit.probes.snmp.parse import (
    ENT_PHYSICAL_ENTRY,
    IF_ADMIN,
    IF_DESCR,
    IF_NAME,
    IF_OPER,
    INT_TYPES,
    MAX_TEXT,
    SYS_DESCR,
    SYSTEM_OIDS,
    TCP_CONN_STATE,
    TCP_LISTENER,
    UDP_ENDPOINT,
    UDP_LOCAL_PORT,
    EngineReport,
    Val,
    decode_text,
    int_of,
    interfaces_up_unused,
    oid_of,
    parse_entities,
    parse_interfaces,
    parse_listeners,
    parse_v3_report,
    reachable,
    render_varbinds,
    text_of,
)

MGMT_PORTS = {"mgmt.telnet_enabled": ("tcp", 23), "mgmt.http_enabled": ("tcp", 80),
              "mgmt.https_enabled": ("tcp", 443), "mgmt.modbus_listening": ("tcp", 502),
              "mgmt.s7_listening": ("tcp", 102)}
OID_BATCH = 10  # vendor OIDs per GET (small agents answer tooBig to long requests)
SYSTEM_FACTS = ("sys_descr", "sys_object_id", "sys_uptime", "sys_contact", "sys_name",
                "sys_location")
VERSIONS = ("v1", "v2c", "v3")
MAX_WALK_SECONDS = 30.0


class SnmpProbe(Probe):
    name = "snmp"
    version = "0.1.0"
    typical_seconds = 1.5  # dozens of paced GETBULKs (bench/RESULTS.md medians)
    default_port = 161
    default_kind = AssetKind.SWITCH
    Options = SnmpOptions
    facts = FACTS

    async def collect(self, target: ProbeTarget, ctx: ProbeContext,
                      identify_only: bool = False) -> None:
        options = target.options
        if not isinstance(options, SnmpOptions):
            raise ProbeError(f"snmp probe got {type(options).__name__} options")
        credentials = _credentials(options, ctx)
        timeout = min(options.request_timeout, ctx.timeout)
        async with SnmpSession(target.host, target.port, timeout=timeout,
                               retries=options.retries, pace=ctx.pace, sent=ctx.sent,
                               max_repetitions=options.max_repetitions) as session:
            audit = _Audit(session, ctx.recorder, options, credentials, target,
                           walk_seconds=min(ctx.timeout, MAX_WALK_SECONDS))
            try:
                await (audit.identify() if identify_only else audit.run())
            finally:
                _redact_facts(ctx)

    async def identify(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        """The system group with the configured credential, and the vendor OIDs its
        sysDescr/sysObjectID point to: no table walk, no other version, no default
        community."""
        await self.collect(target, ctx, identify_only=True)


def vendor_table() -> vendor_identity.VendorTable:
    """The bundled vendor table merged with the site's (settings ``vendor_dir``)."""
    from otaudit.settings import get_settings

    site = get_settings().vendor_dir
    try:
        return vendor_identity.load_vendors(vendor_identity.VENDORS_FILE, site)
    except vendor_identity.VendorTableError as exc:
        raise ProbeError(f"vendor table: {exc}") from None


def _redact_facts(ctx: ProbeContext) -> None:
    """A device may echo a credential (e.g. the community in sysContact): mask it in facts.

    The runner redacts evidence, reasons and errors; facts are the probe's job. The list
    of accepted well-known communities stays as is, even when the configured community
    is one of them ("public" is no secret, and accepting it is the finding).
    """
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return ctx.redact(value)
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    rec = ctx.recorder
    for path, fact in list(rec.facts.items()):
        if path == "snmp.default_communities_accepted":
            continue  # well-known strings from vendors.yaml, public by definition
        cleaned = clean(fact.value)
        if cleaned != fact.value:
            rec.fact(path, cleaned, *fact.evidence)


def _credentials(options: SnmpOptions, ctx: ProbeContext) -> dict[str, Credential]:
    """The configured credentials per version (secrets resolved through ``ctx``)."""
    creds: dict[str, Credential] = {}
    if options.community is not None:
        community = ctx.secret(options.community).get_secret_value()
        creds["v1"] = Credential("v1", community=community)
        creds["v2c"] = Credential("v2c", community=community)
    if options.v3_user:
        auth = ctx.secret(options.v3_auth_key).get_secret_value() \
            if options.v3_auth_key else None
        priv = ctx.secret(options.v3_priv_key).get_secret_value() \
            if options.v3_priv_key else None
        creds["v3"] = Credential("v3", user=options.v3_user, auth_key=auth, priv_key=priv,
                                 auth_protocol=options.v3_auth_protocol,
                                 priv_protocol=options.v3_priv_protocol)
    return creds


credentials = _credentials  # the recorder (record.py) authenticates like the probe


class _Audit:
    def __init__(self, session: SnmpSession, rec: Recorder, options: SnmpOptions,
                 creds: dict[str, Credential], target: ProbeTarget, walk_seconds: float
                 ) -> None:
        self.session, self.rec, self.options, self.creds = session, rec, options, creds
        self.target, self.walk_seconds = target, walk_seconds
        self.primary = creds[options.version]
        self.answered: dict[str, str] = {}  # version -> evidence id of an answer
        self.first_silent: dict[str, str] = {}  # version -> evidence id of a first silence
        # version (or "discovery") -> evidence ids of a confirmed silence: first try,
        # answered control, silent confirmation
        self.silent: dict[str, list[str]] = {}
        self.unconfirmed: dict[str, str] = {}  # version -> why its silence is not evidence
        self.unsure: set[str] = set()  # versions answered with invalid datagrams
        self.v3_report: tuple[EngineReport, str] | None = None
        self.v3_discovery_silent: str | None = None
        self.v3_rejected: str | None = None  # evidence id of a USM report: v3 is on
        self.discovered = False
        self.system_eid = ""
        self.entities_eid = ""

    # --- 1. system group ----------------------------------------------------------------

    async def run(self) -> None:
        system = await self._system_group()
        for version in VERSIONS:
            if version in self.creds and version != self.primary.version:
                silence = await self._try_version(self.creds[version])
                if silence is not None:
                    self.first_silent[version] = silence
        await self._discover()
        await self._confirm_silence()
        self._conclude_versions()
        entities = await self._entities()
        await self._interfaces()
        await self._listeners()
        await self._identity(system, entities)
        if self.target.credential_checks:
            await self._default_communities()
        else:
            self.rec.unknown_fact("snmp.default_communities_accepted",
                                  "not checked: the asset does not opt in "
                                  "(credential_checks: false)")

    async def identify(self) -> None:
        await self._identity(await self._system_group(), [])

    def _request_name(self, credential: Credential, what: str) -> str:
        return f"snmp {credential.version} {what} [{credential.describe()}]"

    async def _system_group(self) -> dict[str, Val]:
        primary = self.primary
        try:
            varbinds = await self.session.get(primary, list(SYSTEM_OIDS))
        except NoAnswer as exc:
            raise await self._no_answer(exc) from None
        except AuthError as exc:
            self._rejected(primary, exc, "GET system group")
            raise ProbeAuthFailed(f"{primary.describe()} rejected: {exc}") from None
        except AgentError as exc:
            eid = self.rec.evidence_for(self._request_name(primary, "GET system group"),
                                        str(exc))
            self.answered[primary.version] = eid
            if exc.name in ("authorizationError", "noAccess"):
                raise ProbeAuthFailed(f"{primary.describe()}: {exc} — the credential is "
                                      "known but not allowed to read") from None
            raise ProbeError(f"GET of the system group: {exc}") from None
        eid = self.rec.evidence_for(self._request_name(primary, "GET system group"),
                                    render_varbinds(varbinds))
        self.system_eid = eid
        self._answered(primary, eid)
        values = {name: val for name, (_, val) in zip(SYSTEM_FACTS, varbinds, strict=True)}
        for name, val in values.items():
            if val.is_exception:
                self.rec.unknown_fact(f"snmp.{name}", f"agent answered {val.type}")
                continue
            if name == "sys_uptime":
                self.rec.fact("snmp.sys_uptime", int_of(val, "sysUpTime.0"), eid)
            elif name == "sys_object_id":
                self.rec.fact("snmp.sys_object_id", oid_of(val, "sysObjectID.0"), eid)
            else:
                text = text_of(val, f"{name}.0")
                raw = val.value if isinstance(val.value, bytes) else b""
                if not decode_text(raw)[1]:
                    self.rec.error(f"{name}.0 is not valid UTF-8; read as Latin-1")
                if len(raw) > MAX_TEXT:
                    self.rec.error(f"{name}.0 is {len(raw)} bytes long; kept the first "
                                   f"{MAX_TEXT} characters")
                self.rec.fact(f"snmp.{name}", text, eid)
        return values

    async def _no_answer(self, exc: NoAnswer) -> ProbeError:
        primary = self.primary
        report = await self._discover()
        what = primary.describe()
        if report is not None:
            self._conclude_versions()
            engine = report.engine_id.hex()
            if primary.version == "v3":
                return ProbeTimeout(f"no answer to {what} within {exc.waited:g} s although "
                                    f"the agent answered an SNMPv3 engine discovery "
                                    f"(engine {engine})")
            self.rec.unknown_fact(f"snmp.{primary.version}_enabled",
                                  "cannot tell: community wrong or version disabled")
            return ProbeAuthFailed(
                f"no answer to {primary.version} with the configured community within "
                f"{exc.waited:g} s, but the agent answered an SNMPv3 engine discovery "
                f"(engine {engine}): the community is wrong or {primary.version} is "
                "disabled")
        if exc.stray:
            return ProbeError(
                f"{exc.stray} datagram(s) came back from {self.target.endpoint} within "
                f"{exc.waited:g} s but none was a valid SNMP answer to our request "
                "(malformed reply or wrong request id)")
        if primary.version == "v3":
            return ProbeTimeout(
                f"no SNMP answer to {what} within {exc.waited:g} s and none to an "
                "SNMPv3 engine discovery: host down, SNMP off or filtered — cannot tell "
                "which")
        return ProbeTimeout(
            f"no SNMP answer with the configured {primary.version} credential within "
            f"{exc.waited:g} s: wrong community or host down — cannot tell which "
            "(an SNMPv3 engine discovery got no answer either)")

    # --- 2./3. versions -------------------------------------------------------------------

    def _answered(self, credential: Credential, eid: str) -> None:
        self.answered[credential.version] = eid
        if credential.version == "v3":
            self.rec.fact("snmp.v3_security_level", credential.security_level, eid)
            if credential.auth_key:
                self.rec.fact("snmp.v3_auth_protocol", credential.auth_protocol, eid)
            else:
                self.rec.unknown_fact("snmp.v3_auth_protocol", "the v3 user has no auth key")
            if credential.priv_key:
                self.rec.fact("snmp.v3_priv_protocol", credential.priv_protocol, eid)
            else:
                self.rec.unknown_fact("snmp.v3_priv_protocol", "the v3 user has no priv key")

    def _rejected(self, credential: Credential, exc: SnmpError, what: str) -> str:
        eid = self.rec.evidence_for(self._request_name(credential, what), f"rejected: {exc}")
        self.rec.error(f"{credential.describe()}: {exc}")
        if credential.version == "v3":  # a USM report is an answer from a v3 engine
            self.rec.fact("snmp.v3_enabled", True, eid)
            self.v3_rejected = eid
        return eid

    async def _try_version(self, credential: Credential, confirm: bool = False
                           ) -> str | None:
        """A GET with ``credential``: one quick try, or (``confirm``) the full timeout and
        retries, as any request gets. Returns the evidence id of silence; an answer, a
        rejection or an invalid answer (no sign the version is off: the version stays
        unknown) are recorded here."""
        what = "GET sysDescr.0" + (" (confirmation of an earlier silence)" if confirm else "")
        try:
            varbinds = await self.session.get(credential, [SYS_DESCR], quick=not confirm)
        except NoAnswer as exc:
            eid = self.rec.evidence_for(self._request_name(credential, what), f"({exc})")
            if not exc.stray:
                return eid
            self.unsure.add(credential.version)
            self.rec.unknown_fact(f"snmp.{credential.version}_enabled",
                                  f"{credential.describe()}: {exc}")
        except AuthError as exc:
            self._rejected(credential, exc, what)
            for name in ("v3_security_level", "v3_auth_protocol", "v3_priv_protocol"):
                self.rec.unknown_fact(f"snmp.{name}", f"{credential.describe()}: {exc}")
        except AgentError as exc:
            eid = self.rec.evidence_for(self._request_name(credential, what), str(exc))
            self.rec.error(f"{credential.describe()}: {exc}")
            self._answered(credential, eid)
        else:
            self._answered(credential, self.rec.evidence_for(
                self._request_name(credential, what), render_varbinds(varbinds)))
        return None

    async def _confirm_silence(self) -> None:
        """Confirm every first silence (versions, engine discovery) against a control.

        The control is a GET of sysDescr.0 with the credential that answered the system
        group, full timeout: any answer shows the agent and the path work *now*. Then each
        silent request goes once more with the full timeout. Silence twice, with an answered
        control in between, is a version that does not answer (false); without an answered
        control the silence proves nothing (unknown, with the reason). The control and the
        discovery's confirmation get one try with the full timeout, a version's confirmation
        the full timeout and retries (a loss on every try of it is what it takes to pass
        damage off as "off")."""
        discovery = (self.v3_discovery_silent is not None and "v3" not in self.answered
                     and self.v3_rejected is None)
        if not self.first_silent and not discovery:
            return
        control = self.primary
        what = "GET sysDescr.0 (control: does the agent still answer?)"
        request = self._request_name(control, what)
        try:
            varbinds = await self.session.get(control, [SYS_DESCR], once=True)
        except NoAnswer as exc:
            self.rec.evidence_for(request, f"({exc})")
            reason = (f"no answer within {self.session.quick_timeout:g} s, and the silence "
                      f"could not be confirmed: a control request with "
                      f"{control.describe()}, which answered earlier in this run, got no "
                      f"valid answer either ({exc}); loss or a busy agent cannot be told "
                      "from a version switched off")
            for version in self.first_silent:
                self.unconfirmed[version] = f"{version}: {reason}"
            if discovery:
                self.unconfirmed["discovery"] = f"SNMPv3 engine discovery: {reason}"
            return
        except SnmpError as exc:  # rejected, or an error status: the agent answered
            control_eid = self.rec.evidence_for(request, str(exc))
        else:
            control_eid = self.rec.evidence_for(request, render_varbinds(varbinds))
        for version, first in self.first_silent.items():
            confirmation = await self._try_version(self.creds[version], confirm=True)
            if confirmation is not None:
                self.silent[version] = [first, control_eid, confirmation]
        if discovery:
            assert self.v3_discovery_silent is not None
            got = await self.session.discover_engine(timeout=self.session.timeout)
            name = "snmp v3 engine discovery (no credential; confirmation)"
            if got is None:
                self.silent["discovery"] = [
                    self.v3_discovery_silent, control_eid, self.rec.evidence_for(
                        name, f"(no answer within {self.session.timeout:g} s)")]
            else:
                self._engine_report(got, self.rec.evidence_for(name, got[0]))

    async def _discover(self) -> EngineReport | None:
        """One SNMPv3 engine discovery per run (later calls return the first result)."""
        if self.discovered:
            return self.v3_report[0] if self.v3_report else None
        self.discovered = True
        request = "snmp v3 engine discovery (no credential)"
        got = await self.session.discover_engine()
        if got is None:
            self.v3_discovery_silent = self.rec.evidence_for(
                request, f"(no answer within {self.session.quick_timeout:g} s)")
            self.rec.unknown_fact("snmp.engine_id", "no answer to an SNMPv3 engine discovery")
            return None
        return self._engine_report(got, self.rec.evidence_for(request, got[0]))

    def _engine_report(self, got: tuple[bytes, int], eid: str) -> EngineReport | None:
        datagram, msg_id = got
        try:
            report = parse_v3_report(datagram, msg_id)
        except ParseError as exc:
            self.rec.error(f"SNMPv3 engine discovery: {exc}")
            return None
        self.v3_report = (report, eid)
        self.rec.fact("snmp.engine_id", report.engine_id.hex(), eid)
        return report

    def _conclude_versions(self) -> None:
        rec = self.rec
        answering = [v for v in VERSIONS if v in self.answered]
        silent = [eid for v, eids in self.silent.items() if v != "discovery" for eid in eids]
        unconfirmed = sorted(v for v in self.unconfirmed if v != "discovery")
        if self.unsure:
            rec.unknown_fact("snmp.versions_answering", f"invalid answers to "
                             f"{', '.join(sorted(self.unsure))}: the list cannot be told")
        elif unconfirmed:
            rec.unknown_fact("snmp.versions_answering",
                             "; ".join(self.unconfirmed[v] for v in unconfirmed))
        elif answering or silent:
            rec.fact("snmp.versions_answering", answering,
                     *[self.answered[v] for v in answering], *silent)
        for version in ("v1", "v2c"):
            if version in self.answered:
                rec.fact(f"snmp.{version}_enabled", True, self.answered[version])
            elif version in self.silent:
                rec.fact(f"snmp.{version}_enabled", False, *self.silent[version])
            elif version in self.unconfirmed:
                rec.unknown_fact(f"snmp.{version}_enabled", self.unconfirmed[version])
            elif version not in self.creds:
                rec.unknown_fact(f"snmp.{version}_enabled",
                                 "not tested: no community configured")
        if "v3" in self.answered:
            rec.fact("snmp.v3_enabled", True, self.answered["v3"])
        elif self.v3_report is not None:
            rec.fact("snmp.v3_enabled", True, self.v3_report[1])
        elif self.v3_rejected is not None:
            rec.fact("snmp.v3_enabled", True, self.v3_rejected)
        elif "discovery" in self.silent and self.answered:
            rec.fact("snmp.v3_enabled", False, *self.silent["discovery"],
                     *self.silent.get("v3", []))
        elif "discovery" in self.unconfirmed:
            rec.unknown_fact("snmp.v3_enabled", self.unconfirmed["discovery"])
        if "v3" not in self.creds:
            for name in ("v3_security_level", "v3_auth_protocol", "v3_priv_protocol"):
                rec.unknown_fact(f"snmp.{name}", "not tested: no v3 user configured")

    # --- 4. tables and identity -----------------------------------------------------------

    async def _walk(self, root: str, what: str) -> tuple[WalkResult, str]:
        primary = self.primary
        try:
            result = await self.session.walk(primary, root, max_oids=self.options.max_oids,
                                             deadline=self.walk_seconds)
        except NoAnswer as exc:
            raise ProbeTimeout(f"walk of {what}: the agent stopped answering ({exc})") \
                from None
        except SnmpError as exc:
            raise ProbeError(f"walk of {what}: {exc}") from None
        kind = "GETNEXT" if primary.version == "v1" else "GETBULK"
        eid = self.rec.evidence_for(
            self._request_name(primary, f"{kind} walk {root} ({what}): {result.requests} "
                                        f"request(s), {len(result.rows)} OID(s)"),
            render_varbinds(result.rows))
        n = len(result.rows)
        if result.stop == "non_increasing":
            raise ProbeError(f"walk of {what}: the agent returned a non-increasing OID after "
                             f"{n} OID(s) (looping table); walk stopped")
        if result.stop == "bound":
            raise ProbeError(f"walk of {what}: more than {self.options.max_oids} OIDs "
                             "(max_oids); walk stopped — endless table?")
        if result.stop == "time":
            raise ProbeTimeout(f"walk of {what}: not finished within {self.walk_seconds:g} s "
                               f"({n} OIDs read)")
        return result, eid

    async def _entities(self) -> list[dict[str, Any]]:
        result, eid = await self._walk(ENT_PHYSICAL_ENTRY, "ENTITY-MIB entPhysicalTable")
        entities = parse_entities(result.rows)
        self.rec.fact("snmp.entities", entities, eid)
        self.entities_eid = eid
        return entities

    async def _interfaces(self) -> None:
        columns, eids = {}, []
        for root, what in ((IF_DESCR, "ifDescr"), (IF_NAME, "ifName"),
                           (IF_ADMIN, "ifAdminStatus"), (IF_OPER, "ifOperStatus")):
            result, eid = await self._walk(root, f"IF-MIB {what}")
            columns[what] = result.rows
            eids.append(eid)
        interfaces = parse_interfaces(columns["ifDescr"], columns["ifName"],
                                      columns["ifAdminStatus"], columns["ifOperStatus"])
        self.rec.fact("snmp.interfaces", interfaces, *eids)
        self.rec.fact("snmp.interfaces_up_unused", interfaces_up_unused(interfaces), *eids)

    async def _listeners(self) -> None:
        """services.listening and mgmt.* from the TCP/UDP listener tables (like ssh's)."""
        tables, eids = {}, []
        for root, what in ((TCP_LISTENER, "TCP-MIB tcpListenerTable"),
                           (TCP_CONN_STATE, "TCP-MIB tcpConnTable"),
                           (UDP_ENDPOINT, "UDP-MIB udpEndpointTable"),
                           (UDP_LOCAL_PORT, "UDP-MIB udpTable")):
            result, eid = await self._walk(root, what)
            tables[root] = result.rows
            if result.rows:
                eids.append(eid)
        if not tables[TCP_LISTENER] and not tables[TCP_CONN_STATE]:
            reason = "the agent exposes no TCP listener table (TCP-MIB)"
            for path in ("services.listening", *MGMT_PORTS):
                self.rec.unknown_fact(path, reason)
            return
        try:
            listeners = parse_listeners(tables[TCP_LISTENER], tables[TCP_CONN_STATE],
                                        tables[UDP_ENDPOINT], tables[UDP_LOCAL_PORT])
        except ParseError as exc:
            self.rec.error(f"listener tables: {exc}")
            for path in ("services.listening", *MGMT_PORTS):
                self.rec.unknown_fact(path, f"listener tables unreadable: {exc}")
            return
        self.rec.fact("services.listening", listeners, *eids)
        for path, (proto, port) in MGMT_PORTS.items():
            self.rec.fact(path, reachable(listeners, proto, port), *eids)

    async def _identity(self, system: dict[str, Val], entities: list[dict[str, Any]]) -> None:
        """identity.* (the device), snmp.management_card (its agent card), device kind."""
        table = vendor_table()
        descr_val, oid_val = system["sys_descr"], system["sys_object_id"]
        sys_descr = text_of(descr_val, "sysDescr") if descr_val.type == "OctetString" else ""
        object_id = oid_of(oid_val, "sysObjectID") if oid_val.type == "ObjectIdentifier" else ""
        rule = table.match(sys_descr, object_id)
        eids = {"sysDescr": self.system_eid, "entity": self.entities_eid}
        if rule is None or rule.generic:
            rule = await self._present_rule(table) or rule
        sources: list[tuple[str, dict[str, str]]] = []
        chassis = vendor_identity.chassis(entities)
        if chassis:
            firmware_columns = rule.entity_firmware if rule else ("firmware_rev", "software_rev")
            sources.append(("entity", vendor_identity.fields_from_entity(chassis,
                                                                          firmware_columns)))
        if rule and rule.oids:
            oid_fields, eids["oid"] = await self._vendor_oids(rule, object_id, table)
            sources.append(("oid", oid_fields))
        descr_fields: dict[str, str] = {}
        if rule:
            if rule.vendor:
                descr_fields["vendor"] = rule.vendor
            if rule.sys_descr:
                descr_fields.update(vendor_identity.fields_from_text(
                    rule.sys_descr, sys_descr, rule.templates))
            elif rule.templates:
                descr_fields.update(vendor_identity.fields_from_text(
                    re.compile(""), "", rule.templates))
        sources.append(("sysDescr", descr_fields))
        if chassis and chassis.get("mfg") and not (rule and rule.vendor):
            vendor = table.manufacturer(chassis["mfg"])
            if vendor:
                sources.append(("entity", {"vendor": vendor}))
        placeholders: dict[str, str] = {}
        for _, values in sources:
            for name, value in list(values.items()):
                pattern = table.placeholder(name.removeprefix("card_"), value, rule)
                if pattern is not None:
                    placeholders.setdefault(name, f"{value!r} is a vendor placeholder "
                                                  f"(matches {pattern!r} in the vendor table)")
                    del values[name]
        card: dict[str, str] = {}
        card_eids: list[str] = []
        for name, (value, source) in vendor_identity.merge(sources, rule).items():
            if name.startswith("card_"):
                card[name.removeprefix("card_")] = value
                card_eids.append(eids[source])
            else:
                self.rec.fact(f"identity.{name}", value, eids[source])
        if card:
            self.rec.fact("snmp.management_card", card, *dict.fromkeys(card_eids))
        else:
            self.rec.unknown_fact("snmp.management_card",
                                  "no separate management card identity in this agent")
        if rule and rule.kind:
            self.rec.fact("snmp.device_kind", rule.kind, self.system_eid)
        else:
            self.rec.unknown_fact("snmp.device_kind", "the vendor rule names no device kind")
        reason = (f"not in sysDescr/ENTITY-MIB/vendor OIDs for vendor rule {rule.id!r}"
                  if rule else
                  "sysDescr/sysObjectID match no vendor rule (probes/snmp/vendors.yaml) "
                  "and ENTITY-MIB has no chassis entry")
        for name in vendor_identity.FIELDS:
            self.rec.unknown_fact(f"identity.{name}", placeholders.get(name, reason))
        self._name_and_posture_text(system, table, rule)

    def _name_and_posture_text(self, system: dict[str, Val], table: vendor_identity.VendorTable,
                               rule: vendor_identity.VendorRule | None) -> None:
        """identity.name and snmp.sys_contact_set/sys_location_set, placeholders excluded."""
        for name, fact, path in (("sys_name", "name", "identity.name"),
                                 ("sys_contact", "sys_contact", "snmp.sys_contact_set"),
                                 ("sys_location", "sys_location", "snmp.sys_location_set")):
            val = system[name]
            if val.type != "OctetString":
                self.rec.unknown_fact(path, f"{name}.0 not read ({val.type})")
                continue
            text = text_of(val, name).strip()
            pattern = table.placeholder(fact, text, rule) if text else None
            if path == "identity.name":
                if text and pattern is None:
                    self.rec.fact(path, text, self.system_eid)
                else:
                    self.rec.unknown_fact(path, f"sysName {text!r} is a vendor placeholder "
                                                f"(matches {pattern!r})" if text else
                                                "sysName is empty")
            else:
                self.rec.fact(path, bool(text) and pattern is None, self.system_eid)

    async def _present_rule(self, table: vendor_identity.VendorTable
                            ) -> vendor_identity.VendorRule | None:
        """The first rule whose marker OID answers (devices behind a generic agent)."""
        candidates = table.present_candidates()
        oids = list(dict.fromkeys(o for r in candidates for o in r.match_present))
        if not oids:
            return None
        values: dict[str, Val] = {}
        requests = []
        for start in range(0, len(oids), OID_BATCH):
            batch = oids[start:start + OID_BATCH]
            try:
                varbinds = await self.session.get(self.primary, batch)
            except SnmpError as exc:
                requests.append(self.rec.evidence_for(self._request_name(
                    self.primary, "GET vendor marker OIDs"), str(exc)))
                continue
            requests.append(self.rec.evidence_for(self._request_name(
                self.primary, "GET vendor marker OIDs"), render_varbinds(varbinds)))
            values.update({oid: val for oid, (_, val) in zip(batch, varbinds, strict=True)})
        for rule in candidates:
            for oid in rule.match_present:
                val = values.get(oid)
                if val is not None and not val.is_exception and val.value not in (b"", ""):
                    return rule
        return None

    async def _vendor_oids(self, rule: vendor_identity.VendorRule, object_id: str,
                           table: vendor_identity.VendorTable) -> tuple[dict[str, str], str]:
        """Identity fields from the rule's vendor OIDs (GETs, GETNEXT for table columns)."""
        wanted = [(o, o.resolve(object_id)) for o in rule.oids]
        wanted = [(o, oid) for o, oid in wanted if oid]
        got: dict[str, Val] = {}
        eids: list[str] = []
        plain = [oid for o, oid in wanted if not o.next]
        for start in range(0, len(plain), OID_BATCH):
            batch = plain[start:start + OID_BATCH]
            request = self._request_name(self.primary, f"GET vendor OIDs ({rule.id})")
            try:
                varbinds = await self.session.get(self.primary, batch)
            except SnmpError as exc:
                eids.append(self.rec.evidence_for(request, str(exc)))
                self.rec.error(f"vendor OIDs of {rule.id}: {exc}")
                continue
            eids.append(self.rec.evidence_for(request, render_varbinds(varbinds)))
            got.update({oid: val for oid, (_, val) in zip(batch, varbinds, strict=True)})
        for oid_rule, oid in wanted:
            if not oid_rule.next:
                continue
            try:
                result = await self.session.walk(self.primary, oid, max_oids=1,
                                                 deadline=self.walk_seconds)
            except SnmpError as exc:
                self.rec.error(f"vendor OID {oid_rule.name} of {rule.id}: {exc}")
                continue
            eids.append(self.rec.evidence_for(self._request_name(
                self.primary, f"GETNEXT {oid} ({oid_rule.name})"), render_varbinds(result.rows)))
            if result.rows:
                got[oid] = result.rows[0][1]
        fields: dict[str, str] = {}
        for oid_rule, oid in wanted:
            val = got.get(oid)
            if val is None or val.is_exception or val.type not in ("OctetString", *INT_TYPES):
                continue
            text = text_of(val, oid_rule.name) if val.type == "OctetString" else str(val.value)
            for name, value in vendor_identity.fields_from_text(oid_rule.pattern, text).items():
                if name.endswith("vendor"):
                    value = table.manufacturer(value) or value
                if table.placeholder(name.removeprefix("card_"), value, rule) is None:
                    fields.setdefault(name, value)
        eid = eids[0] if len(eids) == 1 else (
            self.rec.evidence_for(self._request_name(self.primary, f"vendor OIDs ({rule.id})"),
                                  "see " + ", ".join(eids)) if eids else "")
        return fields, eid

    # --- 5. default communities -----------------------------------------------------------

    async def _default_communities(self) -> None:
        version = "v2c"
        if self.answered.get("v1") and "v2c" in self.silent:
            version = "v1"  # the agent talks v1 only
        configured = self.creds.get(version)
        accepted, eids = [], []
        for name in vendor_table().default_communities:
            if configured and configured.community == name and version in self.answered:
                accepted.append(name)  # the configured community itself is a default
                eids.append(self.answered[version])
                continue
            credential = Credential(version, community=name)
            request = f"snmp {version} GET sysDescr.0 [well-known community {name!r}]"
            try:
                varbinds = await self.session.get(credential, [SYS_DESCR], quick=True)
            except NoAnswer as exc:
                eids.append(self.rec.evidence_for(request, f"({exc})"))
                if exc.stray:  # an invalid answer is no refusal: the list cannot be told
                    self.rec.unknown_fact("snmp.default_communities_accepted",
                                          f"community {name!r}: {exc}")
                    return
                continue
            except AgentError as exc:
                eid = self.rec.evidence_for(request, str(exc))
            else:
                eid = self.rec.evidence_for(request, render_varbinds(varbinds))
            accepted.append(name)
            eids.append(eid)
            enabled = self.rec.facts.get(f"snmp.{version}_enabled")
            if enabled is None or enabled.value is not True:
                self.rec.fact(f"snmp.{version}_enabled", True, eid)
        silent = [n for n in vendor_table().default_communities if n not in accepted]
        if silent:  # silence is "not accepted" only if the agent still answers right after
            control = await self._control("well-known communities")
            if control is None:
                self.rec.unknown_fact(
                    "snmp.default_communities_accepted",
                    f"no answer to the well-known communities {', '.join(silent)}, and a "
                    f"control request with {self.primary.describe()} got none either: a busy "
                    "agent or lost replies cannot be told from communities it refuses")
                return
            eids.append(control)
        self.rec.fact("snmp.default_communities_accepted", accepted, *eids)

    async def _control(self, after: str) -> str | None:
        """A GET of sysDescr.0 with the credential that answered the system group (one try,
        full timeout): its evidence id when the agent answered (an error status or a
        rejection is an answer too), None when it stayed silent."""
        what = f"GET sysDescr.0 (control after the {after}: does the agent still answer?)"
        request = self._request_name(self.primary, what)
        try:
            varbinds = await self.session.get(self.primary, [SYS_DESCR], once=True)
        except NoAnswer as exc:
            self.rec.evidence_for(request, f"({exc})")
            return None
        except SnmpError as exc:
            return self.rec.evidence_for(request, str(exc))
        return self.rec.evidence_for(request, render_varbinds(varbinds))
