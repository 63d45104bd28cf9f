"""Pure functions over SNMP replies. They raise only ``ParseError``.

Values arrive as ``Val`` (SNMP type name + plain Python value) so that these functions
do not depend on pysnmp's object model; ``client.py`` does the conversion.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto.api import v2c
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

from otaudit.probes.base import ParseError

Oid = tuple[int, ...]
MAX_TEXT = 4096  # longest string kept in a fact (sysDescr is 255 by the MIB)
EXCEPTION_TYPES = ("noSuchObject", "noSuchInstance", "endOfMibView")
INT_TYPES = ("Integer", "Counter32", "Gauge32", "TimeTicks", "Counter64")

SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.3.0"
SYS_CONTACT, SYS_NAME, SYS_LOCATION = "1.3.6.1.2.1.1.4.0", "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.6.0"
SYSTEM_OIDS = (SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, SYS_CONTACT, SYS_NAME, SYS_LOCATION)
ENT_PHYSICAL_ENTRY = "1.3.6.1.2.1.47.1.1.1.1"
IF_DESCR, IF_ADMIN, IF_OPER = "1.3.6.1.2.1.2.2.1.2", "1.3.6.1.2.1.2.2.1.7", "1.3.6.1.2.1.2.2.1.8"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
# Listener tables: TCP-MIB tcpListenerProcess / legacy tcpConnState, UDP-MIB
# udpEndpointProcess / legacy udpLocalPort (RFC 4022, RFC 4113, RFC 1213)
TCP_LISTENER = "1.3.6.1.2.1.6.20.1.4"
TCP_CONN_STATE = "1.3.6.1.2.1.6.13.1.1"
UDP_ENDPOINT = "1.3.6.1.2.1.7.7.1.8"
UDP_LOCAL_PORT = "1.3.6.1.2.1.7.5.1.2"
TCP_LISTEN_STATE = 2

ENTITY_CLASSES = {1: "other", 2: "unknown", 3: "chassis", 4: "backplane", 5: "container",
                  6: "powerSupply", 7: "fan", 8: "sensor", 9: "module", 10: "port",
                  11: "stack", 12: "cpu"}
ENTITY_TEXT_COLUMNS = {2: "descr", 7: "name", 8: "hardware_rev", 9: "firmware_rev",
                       10: "software_rev", 11: "serial", 12: "mfg", 13: "model"}
IF_STATUS = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent",
             7: "lowerLayerDown"}
NOT_RUNNING = ("down", "lowerLayerDown")


@dataclass(frozen=True)
class Val:
    """One SNMP value: ``type`` is the SNMP type name, ``value`` plain Python."""

    type: str
    value: int | bytes | str | None = None

    @property
    def is_exception(self) -> bool:
        return self.type in EXCEPTION_TYPES


VarBind = tuple[Oid, Val]


def parse_oid(text: str) -> Oid:
    parts = text.strip().lstrip(".").split(".")
    if not parts or not all(p.isascii() and p.isdigit() for p in parts):
        raise ParseError(f"not a numeric OID: {text[:60]!r}")
    return tuple(int(p) for p in parts)


def oid_str(oid: Iterable[int]) -> str:
    return ".".join(str(n) for n in oid)


def decode_text(raw: bytes) -> tuple[str, bool]:
    """Text of an OCTET STRING and whether it was valid UTF-8 (else Latin-1, never fails).

    Trailing NUL padding is dropped; the result is cut at ``MAX_TEXT`` characters.
    """
    raw = raw.rstrip(b"\x00")
    try:
        text, utf8 = raw.decode("utf-8"), True
    except UnicodeDecodeError:
        text, utf8 = raw.decode("latin-1"), False
    return text[:MAX_TEXT], utf8


def text_of(val: Val, what: str) -> str:
    if val.type != "OctetString" or not isinstance(val.value, bytes):
        raise ParseError(f"{what}: expected OCTET STRING, got {val.type}")
    return decode_text(val.value)[0]


def int_of(val: Val, what: str) -> int:
    if val.type not in INT_TYPES or not isinstance(val.value, int):
        raise ParseError(f"{what}: expected a number, got {val.type}")
    return val.value


def oid_of(val: Val, what: str) -> str:
    if val.type != "ObjectIdentifier" or not isinstance(val.value, str):
        raise ParseError(f"{what}: expected an OBJECT IDENTIFIER, got {val.type}")
    return val.value


def render_value(val: Val) -> str:
    if isinstance(val.value, bytes):
        text, utf8 = decode_text(val.value)
        printable = utf8 and all(c.isprintable() or c in "\r\n\t" for c in text)
        return repr(text) if printable else "0x" + val.value.hex()
    return val.type if val.value is None else str(val.value)


def render_varbinds(varbinds: Sequence[VarBind]) -> str:
    """Evidence text: one ``OID = Type: value`` line per varbind."""
    return "\n".join(f"{oid_str(o)} = {v.type}: {render_value(v)}" for o, v in varbinds)


def check_get_reply(requested: Sequence[str], varbinds: Sequence[VarBind]) -> None:
    """A GET response must carry exactly the requested OIDs, in order."""
    got = [oid_str(o) for o, _ in varbinds]
    wanted = [oid_str(parse_oid(o)) for o in requested]
    if got != wanted:
        raise ParseError(f"GET reply carries {len(got)} varbind(s) {got[:3]} for the "
                         f"{len(wanted)} requested {wanted[:3]}")


def columns_by_index(rows: Sequence[VarBind], entry: Oid, what: str) -> dict[int, dict[int, Val]]:
    """``entry.column.index`` rows -> ``{index: {column: value}}`` (single-integer index)."""
    table: dict[int, dict[int, Val]] = {}
    for oid, val in rows:
        suffix = oid[len(entry):]
        if oid[: len(entry)] != entry or len(suffix) != 2:
            raise ParseError(f"{what}: unexpected OID {oid_str(oid)} (index is one integer)")
        table.setdefault(suffix[1], {})[suffix[0]] = val
    return table


def parse_entities(rows: Sequence[VarBind]) -> list[dict[str, Any]]:
    """entPhysicalTable rows -> ``snmp.entities`` (ordered by index)."""
    entry = parse_oid(ENT_PHYSICAL_ENTRY)
    entities = []
    for index, columns in sorted(columns_by_index(rows, entry, "entPhysicalTable").items()):
        entity: dict[str, Any] = {"index": index}
        for column, key in ENTITY_TEXT_COLUMNS.items():
            entity[key] = text_of(columns[column], f"entPhysical {key}.{index}") \
                if column in columns else ""
        klass = columns.get(5)
        if klass is None:
            entity["class"] = "unknown"
        else:
            number = int_of(klass, f"entPhysicalClass.{index}")
            entity["class"] = ENTITY_CLASSES.get(number, f"unknown({number})")
        entities.append({k: entity[k] for k in ("index", "descr", "class", "name",
                                                "hardware_rev", "firmware_rev", "software_rev",
                                                "serial", "mfg", "model")})
    return entities


def _column(rows: Sequence[VarBind], column_oid: str, what: str) -> dict[int, Val]:
    base = parse_oid(column_oid)
    out: dict[int, Val] = {}
    for oid, val in rows:
        suffix = oid[len(base):]
        if oid[: len(base)] != base or len(suffix) != 1:
            raise ParseError(f"{what}: unexpected OID {oid_str(oid)} (index is one integer)")
        out[suffix[0]] = val
    return out


def parse_interfaces(descr: Sequence[VarBind], name: Sequence[VarBind],
                     admin: Sequence[VarBind], oper: Sequence[VarBind]) -> list[dict[str, Any]]:
    """ifDescr/ifName/ifAdminStatus/ifOperStatus columns -> ``snmp.interfaces``."""
    descrs = _column(descr, IF_DESCR, "ifDescr")
    names = _column(name, IF_NAME, "ifName")
    admins = _column(admin, IF_ADMIN, "ifAdminStatus")
    opers = _column(oper, IF_OPER, "ifOperStatus")
    interfaces = []
    for index in sorted(set(descrs) | set(names) | set(admins) | set(opers)):
        label = text_of(names[index], f"ifName.{index}") if index in names else ""
        if not label and index in descrs:
            label = text_of(descrs[index], f"ifDescr.{index}")
        interfaces.append({
            "index": index, "name": label,
            "admin": _status(admins.get(index), f"ifAdminStatus.{index}"),
            "oper": _status(opers.get(index), f"ifOperStatus.{index}"),
        })
    return interfaces


def _status(val: Val | None, what: str) -> str | None:
    if val is None:
        return None
    number = int_of(val, what)
    return IF_STATUS.get(number, f"unknown({number})")


def interfaces_up_unused(interfaces: Iterable[dict[str, Any]]) -> int:
    """Interfaces administratively up whose link is down (down or lowerLayerDown)."""
    return sum(1 for i in interfaces if i.get("admin") == "up" and i.get("oper") in NOT_RUNNING)


def normalise_order_code(code: str) -> str:
    """Siemens MLFB to ``6GK5 204-0BA00-2BA3`` form; anything else stripped, unchanged."""
    compact = re.sub(r"[\s-]", "", code)
    if re.fullmatch(r"6[A-Z]{2}\d{4}[0-9A-Z]{9}", compact):
        return f"{compact[:4]} {compact[4:7]}-{compact[7:12]}-{compact[12:]}"
    return code.strip()


# --- SNMPv3 engine discovery (RFC 3414 4.) -------------------------------------------

@dataclass(frozen=True)
class EngineReport:
    engine_id: bytes
    boots: int
    time: int
    report_oids: tuple[str, ...]

    @property
    def enterprise(self) -> int | None:
        """IANA enterprise number of an RFC 3411 engine ID (first bit set), else None."""
        if len(self.engine_id) >= 5 and self.engine_id[0] & 0x80:
            return int.from_bytes(self.engine_id[:4], "big") & 0x7FFFFFFF
        return None


def build_v3_discovery(msg_id: int, request_id: int) -> bytes:
    """An unauthenticated SNMPv3 GET with empty engine ID and user: asks for a Report."""
    usm = UsmSecurityParameters()
    usm["msgAuthoritativeEngineId"] = b""
    usm["msgAuthoritativeEngineBoots"] = 0
    usm["msgAuthoritativeEngineTime"] = 0
    usm["msgUserName"] = b""
    usm["msgAuthenticationParameters"] = b""
    usm["msgPrivacyParameters"] = b""
    pdu = v2c.GetRequestPDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_request_id(pdu, request_id)
    message = SNMPv3Message()
    message["msgVersion"] = 3
    header = message["msgGlobalData"]
    header["msgID"] = msg_id
    header["msgMaxSize"] = 65507
    header["msgFlags"] = b"\x04"  # reportable, noAuthNoPriv
    header["msgSecurityModel"] = 3
    message["msgSecurityParameters"] = encoder.encode(usm)
    scoped = message["msgData"]["plaintext"]
    scoped["contextEngineId"] = b""
    scoped["contextName"] = b""
    scoped["data"]["get-request"] = pdu
    return encoder.encode(message)


def parse_v3_report(datagram: bytes, msg_id: int) -> EngineReport:
    """The agent's Report to ``build_v3_discovery``: engine ID, boots and time."""
    try:
        message, rest = decoder.decode(datagram, asn1Spec=SNMPv3Message())
        if rest:
            raise ParseError(f"{len(rest)} trailing bytes after the SNMPv3 message")
        if int(message["msgVersion"]) != 3:
            raise ParseError("not an SNMPv3 message")
        if int(message["msgGlobalData"]["msgID"]) != msg_id:
            raise ParseError("reply to another message (msgID differs)")
        usm, _ = decoder.decode(bytes(message["msgSecurityParameters"]),
                                asn1Spec=UsmSecurityParameters())
        data = message["msgData"]
        if data.getName() != "plaintext":
            raise ParseError("discovery reply is encrypted")
        pdu = data["plaintext"]["data"].getComponent()
        if pdu.tagSet.superTags[-1].tagId != 8:
            raise ParseError("discovery reply is not a Report PDU")
        oids = tuple(str(vb[0]) for vb in pdu["variable-bindings"])
        return EngineReport(engine_id=bytes(usm["msgAuthoritativeEngineId"]),
                            boots=int(usm["msgAuthoritativeEngineBoots"]),
                            time=int(usm["msgAuthoritativeEngineTime"]), report_oids=oids)
    except ParseError:
        raise
    except Exception as exc:  # pyasn1 raises a variety of errors on malformed BER
        raise ParseError(f"malformed SNMPv3 reply: {type(exc).__name__}") from None


def _inet(index: Oid, pos: int) -> tuple[str, int]:
    """InetAddressType + length-prefixed InetAddress at ``pos``; (text, next position)."""
    kind, length = index[pos], index[pos + 1]
    raw = index[pos + 2:pos + 2 + length]
    if len(raw) != length or any(b > 255 for b in raw):
        raise ParseError(f"bad InetAddress in index {oid_str(index)}")
    if kind in (1, 3) and length >= 4:
        text = ".".join(str(b) for b in raw[:4])
    elif kind in (2, 4) and length >= 16:
        text = ipaddress.IPv6Address(bytes(raw[:16])).compressed
    else:
        text = "*" if length == 0 else bytes(raw).hex()
    return text, pos + 2 + length


def _listener(proto: str, address: str, port: int) -> dict[str, Any]:
    return {"proto": proto, "address": address, "port": port, "process": None}


def parse_listeners(tcp_listener: Sequence[VarBind], tcp_conn: Sequence[VarBind],
                    udp_endpoint: Sequence[VarBind], udp_local: Sequence[VarBind]
                    ) -> list[dict[str, Any]]:
    """Listening sockets from the TCP/UDP MIB tables, like ``ss -tlnu`` rows (sorted)."""
    found: set[tuple[str, str, int]] = set()
    try:
        for oid, _ in tcp_listener:
            index = oid[len(parse_oid(TCP_LISTENER)):]
            address, pos = _inet(index, 0)
            found.add(("tcp", address, index[pos]))
        for oid, val in tcp_conn:
            index = oid[len(parse_oid(TCP_CONN_STATE)):]
            if int_of(val, "tcpConnState") == TCP_LISTEN_STATE and len(index) >= 5:
                found.add(("tcp", ".".join(map(str, index[:4])), index[4]))
        for oid, _ in udp_endpoint:
            index = oid[len(parse_oid(UDP_ENDPOINT)):]
            address, pos = _inet(index, 0)
            port = index[pos]
            remote, rpos = _inet(index, pos + 1)
            if remote in ("*", "0.0.0.0", "::") and index[rpos] == 0:
                found.add(("udp", address, port))
        for oid, val in udp_local:
            index = oid[len(parse_oid(UDP_LOCAL_PORT)):]
            if len(index) >= 4:
                found.add(("udp", ".".join(map(str, index[:4])), int_of(val, "udpLocalPort")))
    except IndexError:
        raise ParseError("listener table index too short") from None
    return [_listener(*row) for row in sorted(found, key=lambda r: (r[0], r[2], r[1]))]


def reachable(listeners: Iterable[dict[str, Any]], proto: str, port: int) -> bool:
    """A listener on ``port`` bound to something else than loopback."""
    return any(r["proto"] == proto and r["port"] == port
               and not r["address"].startswith("127.") and r["address"] != "::1"
               for r in listeners)
