"""SNMP reply parsing at its limits: types, OIDs, tables, evidence text, engine IDs and
listener indexes, each exact (issue 23: snmp/parse.py killed 51 %)."""

from __future__ import annotations

import dataclasses

import pytest

from otaudit.probes.base import ParseError
from otaudit.probes.snmp.parse import (
    ENTITY_CLASSES,
    IF_STATUS,
    EngineReport,
    Val,
    build_v3_discovery,
    check_get_reply,
    decode_text,
    int_of,
    interfaces_up_unused,
    normalise_order_code,
    oid_of,
    oid_str,
    parse_entities,
    parse_interfaces,
    parse_listeners,
    parse_oid,
    parse_v3_report,
    reachable,
    render_value,
    render_varbinds,
    text_of,
)

ENTRY = (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1)
IF_DESCR = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
IF_NAME = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1)
IF_ADMIN = (1, 3, 6, 1, 2, 1, 2, 2, 1, 7)
IF_OPER = (1, 3, 6, 1, 2, 1, 2, 2, 1, 8)


def text(value: bytes) -> Val:
    return Val("OctetString", value)


# --- OIDs and types -----------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "oid"), [
    ("1.3.6.1", (1, 3, 6, 1)), (".1.3.6", (1, 3, 6)), (" 1.3 ", (1, 3)), ("0", (0,))])
def test_parse_oid(raw: str, oid: tuple) -> None:
    assert parse_oid(raw) == oid
    assert oid_str(oid) == raw.strip().lstrip(".")


@pytest.mark.parametrize("raw", ["", "1..3", "1.3.a", "1.-3", "１.3", "1.3."])
def test_parse_oid_refuses(raw: str) -> None:
    with pytest.raises(ParseError, match=r"^not a numeric OID: "):
        parse_oid(raw)


@pytest.mark.parametrize("kind", ["Integer", "Counter32", "Gauge32", "TimeTicks", "Counter64"])
def test_every_integer_type_is_a_number(kind: str) -> None:
    assert int_of(Val(kind, 7), "x") == 7


@pytest.mark.parametrize("val", [Val("OctetString", b"7"), Val("Integer", "7"), Val("Integer"),
                                 Val("IpAddress", 7)])
def test_other_values_are_not_numbers(val: Val) -> None:
    with pytest.raises(ParseError, match=f"^what: expected a number, got {val.type}$"):
        int_of(val, "what")


def test_text_and_oid_values() -> None:
    assert text_of(text(b"abc\0"), "x") == "abc"
    with pytest.raises(ParseError, match=r"^w: expected OCTET STRING, got Integer$"):
        text_of(Val("Integer", 1), "w")
    with pytest.raises(ParseError, match=r"^w: expected OCTET STRING, got OctetString$"):
        text_of(Val("OctetString", "abc"), "w")
    assert oid_of(Val("ObjectIdentifier", "1.3.6"), "x") == "1.3.6"
    with pytest.raises(ParseError, match=r"^w: expected an OBJECT IDENTIFIER, got OctetString$"):
        oid_of(text(b"1.3.6"), "w")
    with pytest.raises(ParseError, match=r"^w: expected an OBJECT IDENTIFIER, got "
                                         r"ObjectIdentifier$"):
        oid_of(Val("ObjectIdentifier", (1, 3)), "w")


def test_exception_values() -> None:
    assert [Val(t).is_exception for t in ("noSuchObject", "noSuchInstance", "endOfMibView",
                                          "Null", "Integer")] == [True, True, True, False, False]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Val("Null").type = "Integer"  # type: ignore[misc]


def test_text_is_cut_at_exactly_4096_characters() -> None:
    assert decode_text(b"y" * 4096) == ("y" * 4096, True)
    assert decode_text(b"y" * 4097) == ("y" * 4096, True)
    assert decode_text(b"\0") == ("", True)


# --- evidence -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("val", "shown"), [
    (text(b"Linux host"), "'Linux host'"), (text(b"a\r\nb\tc"), "'a\\r\\nb\\tc'"),
    (text(b"a\x01b"), "0x610162"), (text(b"\xff\xfe"), "0xfffe"), (text(b""), "''"),
    (Val("Integer", 5), "5"), (Val("ObjectIdentifier", "1.3.6"), "1.3.6"),
    (Val("noSuchObject"), "noSuchObject"), (Val("Integer", 0), "0"),
])
def test_render_value(val: Val, shown: str) -> None:
    assert render_value(val) == shown


def test_render_varbinds_exactly() -> None:
    rows = [((1, 3, 6, 1, 2, 1, 1, 1, 0), text(b"RS20")),
            ((1, 3, 6, 1, 2, 1, 1, 3, 0), Val("TimeTicks", 42))]
    assert render_varbinds(rows) == ("1.3.6.1.2.1.1.1.0 = OctetString: 'RS20'\n"
                                     "1.3.6.1.2.1.1.3.0 = TimeTicks: 42")
    assert render_varbinds([]) == ""


def test_get_reply_must_carry_the_requested_oids_in_order() -> None:
    a, b = (1, 3, 6, 1, 2, 1, 1, 1, 0), (1, 3, 6, 1, 2, 1, 1, 5, 0)
    check_get_reply([".1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.5.0"], [(a, Val("Null")),
                                                                  (b, Val("Null"))])
    with pytest.raises(ParseError, match=r"^GET reply carries 2 varbind\(s\) "
                                         r"\['1.3.6.1.2.1.1.5.0', '1.3.6.1.2.1.1.1.0'\] for the "
                                         r"2 requested"):
        check_get_reply(["1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.5.0"], [(b, Val("Null")),
                                                                     (a, Val("Null"))])
    with pytest.raises(ParseError, match=r"carries 1 varbind\(s\) .* for the 2 requested"):
        check_get_reply(["1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.5.0"], [(a, Val("Null"))])


# --- entity and interface tables ----------------------------------------------------------------

def test_every_entity_text_column_and_order() -> None:
    columns = {2: b"descr", 7: b"name", 8: b"hw", 9: b"fw", 10: b"sw", 11: b"serial",
               12: b"mfg", 13: b"model"}
    rows = [((*ENTRY, c, 5), text(v)) for c, v in columns.items()]
    rows += [((*ENTRY, 2, 3), text(b"first")), ((*ENTRY, 5, 5), Val("Integer", 3))]
    assert parse_entities(rows) == [
        {"index": 3, "descr": "first", "class": "unknown", "name": "", "hardware_rev": "",
         "firmware_rev": "", "software_rev": "", "serial": "", "mfg": "", "model": ""},
        {"index": 5, "descr": "descr", "class": "chassis", "name": "name", "hardware_rev": "hw",
         "firmware_rev": "fw", "software_rev": "sw", "serial": "serial", "mfg": "mfg",
         "model": "model"}]


ENTITY_CLASS_NAMES = {1: "other", 2: "unknown", 3: "chassis", 4: "backplane", 5: "container",
                      6: "powerSupply", 7: "fan", 8: "sensor", 9: "module", 10: "port",
                      11: "stack", 12: "cpu"}  # ENTITY-MIB PhysicalClass
IF_STATUS_NAMES = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant",
                   6: "notPresent", 7: "lowerLayerDown"}  # IF-MIB ifOperStatus


def test_class_and_status_tables_are_the_mibs() -> None:
    assert (ENTITY_CLASSES, IF_STATUS) == (ENTITY_CLASS_NAMES, IF_STATUS_NAMES)


@pytest.mark.parametrize(("number", "name"), [*sorted(ENTITY_CLASS_NAMES.items()),
                                              (0, "unknown(0)"), (13, "unknown(13)")])
def test_every_entity_class(number: int, name: str) -> None:
    assert parse_entities([((*ENTRY, 5, 1), Val("Integer", number))])[0]["class"] == name


def test_entity_class_must_be_a_number() -> None:
    with pytest.raises(ParseError, match=r"^entPhysicalClass\.4: expected a number"):
        parse_entities([((*ENTRY, 5, 4), text(b"chassis"))])


@pytest.mark.parametrize("oid", [(*ENTRY, 2), (*ENTRY, 2, 1, 1), (*ENTRY[:-1], 2, 2, 1),
                                 (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 2, 2, 1)])
def test_entity_rows_outside_the_table(oid: tuple) -> None:
    with pytest.raises(ParseError, match=r"^entPhysicalTable: unexpected OID .* \(index is one"):
        parse_entities([(oid, text(b"x"))])


def test_interface_names_fall_back_to_the_description() -> None:
    interfaces = parse_interfaces(
        [((*IF_DESCR, 1), text(b"eth0")), ((*IF_DESCR, 2), text(b"eth1")),
         ((*IF_DESCR, 4), text(b"eth3"))],
        [((*IF_NAME, 1), text(b"P1")), ((*IF_NAME, 2), text(b"")), ((*IF_NAME, 3), text(b"P3"))],
        [((*IF_ADMIN, 1), Val("Integer", 1))],
        [((*IF_OPER, 2), Val("Integer", 9))])
    assert interfaces == [
        {"index": 1, "name": "P1", "admin": "up", "oper": None},
        {"index": 2, "name": "eth1", "admin": None, "oper": "unknown(9)"},
        {"index": 3, "name": "P3", "admin": None, "oper": None},
        {"index": 4, "name": "eth3", "admin": None, "oper": None}]


@pytest.mark.parametrize(("number", "status"), [*sorted(IF_STATUS_NAMES.items()),
                                                (0, "unknown(0)"), (8, "unknown(8)")])
def test_every_interface_status(number: int, status: str) -> None:
    got = parse_interfaces([], [], [((*IF_ADMIN, 1), Val("Integer", number))],
                           [((*IF_OPER, 1), Val("Integer", number))])
    assert (got[0]["admin"], got[0]["oper"]) == (status, status)


@pytest.mark.parametrize(("column", "rows", "what"), [
    (0, [((*IF_DESCR, 1, 1), text(b"x"))], "ifDescr"),
    (1, [((*IF_NAME[:-1], 2, 1), text(b"x"))], "ifName"),
    (2, [(IF_ADMIN, Val("Integer", 1))], "ifAdminStatus"),
    (3, [((*IF_DESCR, 1), Val("Integer", 1))], "ifOperStatus"),
])
def test_interface_rows_outside_their_column(column: int, rows: list, what: str) -> None:
    args: list[list] = [[], [], [], []]
    args[column] = rows
    with pytest.raises(ParseError, match=rf"^{what}: unexpected OID .* \(index is one integer\)$"):
        parse_interfaces(*args)


@pytest.mark.parametrize(("admin", "oper", "counted"), [
    ("up", "down", True), ("up", "lowerLayerDown", True), ("up", "up", False),
    ("up", "notPresent", False), ("up", "dormant", False), ("up", None, False),
    ("down", "down", False), (None, "down", False), ("testing", "down", False)])
def test_up_but_unused(admin: str | None, oper: str | None, counted: bool) -> None:
    interfaces = [{"admin": admin, "oper": oper}, {"admin": "up", "oper": "down"}]
    assert interfaces_up_unused(interfaces) == 1 + counted


@pytest.mark.parametrize(("code", "normalised"), [
    ("6GK5 204-0BA00-2BA3", "6GK5 204-0BA00-2BA3"), ("6ES7-315-2EH14-0AB0", "6ES7 315-2EH14-0AB0"),
    ("6GK52040BA002BA", "6GK52040BA002BA"), ("6GK52040BA002BA34", "6GK52040BA002BA34"),
    ("7GK52040BA002BA3", "7GK52040BA002BA3"), ("6gk52040ba002ba3", "6gk52040ba002ba3"),
    ("  RS20-0800T1T1SDAE  ", "RS20-0800T1T1SDAE")])
def test_order_code_forms(code: str, normalised: str) -> None:
    assert normalise_order_code(code) == normalised


# --- SNMPv3 engine discovery --------------------------------------------------------------------

@pytest.mark.parametrize(("engine_id", "enterprise"), [
    (bytes.fromhex("800010e903208756001208"), 4329), (bytes.fromhex("8000000903"), 9),
    (bytes.fromhex("80000009"), None), (bytes.fromhex("000010e903"), None),
    (bytes.fromhex("ffffffff03"), 0x7FFFFFFF), (b"", None)])
def test_engine_enterprise(engine_id: bytes, enterprise: int | None) -> None:
    assert EngineReport(engine_id, 1, 2, ()).enterprise == enterprise


def test_v3_report_refuses_trailing_bytes_and_garbage() -> None:
    message = build_v3_discovery(5, 1)
    with pytest.raises(ParseError, match=r"^3 trailing bytes after the SNMPv3 message$"):
        parse_v3_report(message + b"\0\0\0", 5)
    with pytest.raises(ParseError, match=r"^malformed SNMPv3 reply: "):
        parse_v3_report(b"\x30\x03\x02\x01", 5)


# --- listener tables ----------------------------------------------------------------------------

TCP_LISTENER = (1, 3, 6, 1, 2, 1, 6, 20, 1, 4)
TCP_CONN = (1, 3, 6, 1, 2, 1, 6, 13, 1, 1)
UDP_ENDPOINT = (1, 3, 6, 1, 2, 1, 7, 7, 1, 8)
UDP_LOCAL = (1, 3, 6, 1, 2, 1, 7, 5, 1, 2)


def row(proto: str, address: str, port: int) -> dict:
    return {"proto": proto, "address": address, "port": port, "process": None}


@pytest.mark.parametrize(("index", "address"), [
    ((1, 4, 10, 0, 0, 5), "10.0.0.5"), ((3, 4, 10, 0, 0, 6), "10.0.0.6"),
    ((3, 8, 10, 0, 0, 6, 0, 0, 0, 3), "10.0.0.6"),
    ((2, 16, *([0] * 15), 1), "::1"), ((4, 16, 254, 128, *([0] * 13), 1), "fe80::1"),
    ((1, 0), "*"), ((0, 2, 1, 255), "01ff"), ((2, 4, 10, 0, 0, 5), "0a000005"),
    ((1, 3, 10, 0, 0), "0a0000")])
def test_listener_addresses(index: tuple, address: str) -> None:
    assert parse_listeners([((*TCP_LISTENER, *index, 502), Val("Integer", 0))], [], [], []) == [
        row("tcp", address, 502)]


@pytest.mark.parametrize("index", [(1, 4, 10, 0, 0), (1, 4, 10, 0, 0, 256, 1), (1,), ()])
def test_bad_listener_indexes(index: tuple) -> None:
    with pytest.raises(ParseError, match=r"^(bad InetAddress in index|listener table index)"):
        parse_listeners([((*TCP_LISTENER, *index), Val("Integer", 0))], [], [], [])


@pytest.mark.parametrize(("state", "index", "listed"), [
    (2, (0, 0, 0, 0, 80, 0, 0, 0, 0, 0), True), (1, (0, 0, 0, 0, 80, 0, 0, 0, 0, 0), False),
    (3, (0, 0, 0, 0, 80, 0, 0, 0, 0, 0), False), (2, (0, 0, 0, 0, 80), True),
    (2, (0, 0, 0, 0), False)])
def test_tcp_connection_table_lists_listen_state_only(state: int, index: tuple,
                                                      listed: bool) -> None:
    got = parse_listeners([], [((*TCP_CONN, *index), Val("Integer", state))], [], [])
    assert got == ([row("tcp", "0.0.0.0", 80)] if listed else [])


@pytest.mark.parametrize(("remote", "listed"), [
    ((1, 4, 0, 0, 0, 0, 0), True), ((0, 0, 0), True), ((2, 16, *([0] * 16), 0), True),
    ((1, 4, 0, 0, 0, 0, 53), False), ((1, 4, 10, 0, 0, 9, 0), False)])
def test_udp_endpoints_listed_when_unconnected(remote: tuple, listed: bool) -> None:
    oid = (*UDP_ENDPOINT, 1, 4, 10, 0, 0, 5, 161, *remote, 1)
    got = parse_listeners([], [], [(oid, Val("Unsigned32", 0))], [])
    assert got == ([row("udp", "10.0.0.5", 161)] if listed else [])


def test_udp_local_table_needs_an_address() -> None:
    rows = [((*UDP_LOCAL, 10, 0, 0, 5, 161), Val("Integer", 161)),
            ((*UDP_LOCAL, 10, 0, 0), Val("Integer", 9))]
    assert parse_listeners([], [], [], rows) == [row("udp", "10.0.0.5", 161)]
    with pytest.raises(ParseError, match=r"^udpLocalPort: expected a number"):
        parse_listeners([], [], [], [((*UDP_LOCAL, 10, 0, 0, 5, 161), text(b"161"))])


def test_listeners_sorted_by_protocol_port_address_without_duplicates() -> None:
    tcp = [((*TCP_LISTENER, 1, 4, 10, 0, 0, 2, 22), Val("Integer", 0)),
           ((*TCP_LISTENER, 1, 4, 10, 0, 0, 1, 22), Val("Integer", 0)),
           ((*TCP_LISTENER, 1, 4, 10, 0, 0, 1, 21), Val("Integer", 0))]
    conn = [((*TCP_CONN, 10, 0, 0, 1, 22, 0, 0, 0, 0, 0), Val("Integer", 2))]
    assert parse_listeners(tcp, conn, [], []) == [
        row("tcp", "10.0.0.1", 21), row("tcp", "10.0.0.1", 22), row("tcp", "10.0.0.2", 22)]


@pytest.mark.parametrize(("address", "seen"), [
    ("0.0.0.0", True), ("10.0.0.5", True), ("::", True), ("127.0.0.1", False),
    ("127.1.2.3", False), ("::1", False), ("::2", True), ("1.127.0.0", True)])
def test_reachable_means_not_loopback(address: str, seen: bool) -> None:
    rows = [row("tcp", address, 502)]
    assert reachable(rows, "tcp", 502) is seen
    assert reachable(rows, "udp", 502) is False
    assert reachable(rows, "tcp", 503) is False


def test_long_values_are_cut_in_messages() -> None:
    long = "1.3.x" + "5" * 80
    with pytest.raises(ParseError, match=rf"^not a numeric OID: '{long[:60]}'$"):
        parse_oid(long)
    oids = [(1, 3, 6, n) for n in range(5)]
    with pytest.raises(ParseError, match=r"^GET reply carries 5 varbind\(s\) \['1.3.6.0', "
                                         r"'1.3.6.1', '1.3.6.2'\] for the 4 requested "
                                         r"\['1.3.6.0', '1.3.6.1', '1.3.6.2'\]$"):
        check_get_reply([oid_str(o) for o in oids[:4]], [(o, Val("Null")) for o in oids])


def test_discovery_asks_with_empty_engine_and_zero_boots_and_time() -> None:
    from pyasn1.codec.ber import decoder
    from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
    from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

    message, rest = decoder.decode(build_v3_discovery(77, 5), asn1Spec=SNMPv3Message())
    assert rest == b""
    header = message["msgGlobalData"]
    assert (int(message["msgVersion"]), int(header["msgID"]), int(header["msgMaxSize"]),
            bytes(header["msgFlags"]), int(header["msgSecurityModel"])) == (3, 77, 65507,
                                                                              b"\x04", 3)
    usm, _ = decoder.decode(bytes(message["msgSecurityParameters"]),
                            asn1Spec=UsmSecurityParameters())
    assert (bytes(usm["msgAuthoritativeEngineId"]), int(usm["msgAuthoritativeEngineBoots"]),
            int(usm["msgAuthoritativeEngineTime"]), bytes(usm["msgUserName"]),
            bytes(usm["msgAuthenticationParameters"]), bytes(usm["msgPrivacyParameters"])) == (
        b"", 0, 0, b"", b"", b"")
    scoped = message["msgData"]["plaintext"]
    assert (bytes(scoped["contextEngineId"]), bytes(scoped["contextName"])) == (b"", b"")
    pdu = scoped["data"].getComponent()
    assert int(pdu["request-id"]) == 5 and len(pdu["variable-bindings"]) == 0


def test_listeners_order_is_protocol_then_port_then_address() -> None:
    addresses = ["10.0.0.9", "10.0.0.1", "10.0.0.5", "10.0.0.3", "10.0.0.7", "10.0.0.2"]
    tcp = [((*TCP_LISTENER, 1, 4, *map(int, a.split(".")), port), Val("Integer", 0))
           for a in addresses for port in (22, 21)]
    udp = [((*UDP_LOCAL, *map(int, a.split(".")), 7), Val("Integer", port))
           for a in addresses for port in (161, 123)]
    got = [(r["proto"], r["port"], r["address"]) for r in parse_listeners(tcp, [], [], udp)]
    assert got == [(p, port, a) for p, ports in (("tcp", (21, 22)), ("udp", (123, 161)))
                   for port in ports for a in sorted(addresses)]
