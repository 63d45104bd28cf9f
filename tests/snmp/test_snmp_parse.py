"""Pure SNMP parsers and vendor patterns, on real-world strings; property tests."""

from __future__ import annotations

import contextlib
import json
import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from otaudit.probes.base import ParseError
from otaudit.probes.snmp.identity import (
    ALL_FIELDS,
    chassis,
    fields_from_entity,
    fields_from_text,
    load_vendors,
    merge,
)
from otaudit.probes.snmp.parse import (
    Val,
    build_v3_discovery,
    decode_text,
    interfaces_up_unused,
    normalise_order_code,
    oid_str,
    parse_entities,
    parse_interfaces,
    parse_oid,
    parse_v3_report,
    render_varbinds,
)

VENDORS = load_vendors()

# sysDescr strings of real devices (published snmpwalks, scanner plugins, monitoring code)
REAL_SYS_DESCR = [
    ("Siemens, SIMATIC NET, SCALANCE X204IRT, 6GK5 204-0BA00-2BA3, HW: Version 9, FW: "
     "Version V05.04.02, SVPL6147920", "1.3.6.1.4.1.4196.1.1.5.2.5", "siemens-scalance",
     {"vendor": "Siemens", "product": "SCALANCE X204IRT", "model": "SCALANCE X204IRT",
      "order_code": "6GK5 204-0BA00-2BA3", "hardware_version": "9",
      "firmware_version": "V05.04.02", "serial": "SVPL6147920"}),
    ("Siemens, SIMATIC NET, SCALANCE XM408-8C, 6GK5 408-8GS00-2AM2, HW: Version 2, FW: "
     "Version V06.01.00, SVPK2138923", "", "siemens-scalance",
     {"product": "SCALANCE XM408-8C", "firmware_version": "V06.01.00"}),
    ("Siemens, SIMATIC NET, SCALANCE M876-4 EU, 6GK5 876-4AA00-2BA2, HW: Version 1, FW: "
     "Version V04.02.03, SVPJ5127948", "", "siemens-scalance",
     {"product": "SCALANCE M876-4 EU", "order_code": "6GK5 876-4AA00-2BA2"}),
    ("Siemens, SIMATIC NET, Scalance S612, 6GK56120BA102AA3, HW: Version 2, FW: Version "
     "V03.00.00.01_01.00.00.01, VPCO544487", "", "siemens-scalance",
     {"order_code": "6GK5 612-0BA10-2AA3", "firmware_version": "V03.00.00.01_01.00.00.01"}),
    ("Siemens, SIMATIC NET, SCALANCE X212-2, 6GK5 212-2BB00-2AA3, HW: 7, FW: V4.02", "",
     "siemens-scalance", {"hardware_version": "7", "firmware_version": "V4.02"}),
    ("Siemens, SIMATIC, S7-200", "1.3.6.1.4.1.20408", "siemens-simatic",
     {"vendor": "Siemens", "product": "SIMATIC S7-200", "model": "S7-200"}),
    ("Hirschmann Railswitch", "1.3.6.1.4.1.248.14.10.22", "hirschmann-classic",
     {"vendor": "Hirschmann", "product": "Railswitch"}),
    ("EDS-G508E-T", "1.3.6.1.4.1.8691.7.69", "moxa",
     {"vendor": "Moxa", "product": "EDS-G508E", "model": "EDS-G508E-T"}),
    ("IKS-6726A-2GTXSFP-T", "1.3.6.1.4.1.8691.7.116", "moxa",
     {"product": "IKS-6726A", "model": "IKS-6726A-2GTXSFP-T"}),
    ("EDS-P510A-8PoE-2GTXSFP-T", "", "moxa", {"product": "EDS-P510A"}),
    ("Linux cray 2.6.21.5-smp #2 SMP Tue Jun 19 14:58:11 CDT 2007 i686",
     "1.3.6.1.4.1.8072.3.2.10", "net-snmp-linux", {"os": "Linux 2.6.21.5-smp"}),
]
HM_SYS_VERSION = [("SW: L2P-09.0.04 CH: 1.10 BP: 000", "L2P-09.0.04", "1.10"),
                  ("SW: 5.07 CH: 1.00 BP: 000", "5.07", "1.00")]


def identity_of(sys_descr: str, object_id: str) -> tuple[str | None, dict[str, str]]:
    rule = VENDORS.match(sys_descr, object_id)
    if rule is None:
        return None, {}
    fields = {"vendor": rule.vendor} if rule.vendor else {}
    if rule.sys_descr:
        fields.update(fields_from_text(rule.sys_descr, sys_descr, rule.templates))
    return rule.id, fields


@pytest.mark.parametrize(("sys_descr", "object_id", "rule", "expected"), REAL_SYS_DESCR)
def test_vendor_rules_on_real_sys_descr(sys_descr, object_id, rule, expected):
    got_rule, fields = identity_of(sys_descr, object_id)
    assert got_rule == rule
    assert {k: fields.get(k) for k in expected} == expected


@pytest.mark.parametrize(("text", "firmware", "hardware"), HM_SYS_VERSION)
def test_hirschmann_hm_sys_version(text, firmware, hardware):
    rule = next(r for r in VENDORS.rules if r.id == "hirschmann-classic")
    assert rule.oids[0].oid == "1.3.6.1.4.1.248.14.1.1.2.0"
    fields = fields_from_text(rule.oids[0].pattern, text)
    assert fields == {"firmware_version": firmware, "hardware_version": hardware}


@pytest.mark.parametrize("name", ["ntc_cisco_ios_show_version.raw",
                                  "ntc_cisco_ios_show_version1.raw",
                                  "ntc_cisco_ios_show_version_01.raw"])
def test_cisco_sys_descr_against_ntc_templates(shared_dir, name):
    """A Cisco sysDescr is the first lines of 'show version'; ntc-templates' parse decides."""
    raw = (shared_dir / "fixtures/real/cisco" / name).read_text()
    expected = yaml.safe_load((shared_dir / "fixtures/real/cisco" /
                               name.replace(".raw", ".yml")).read_text())["parsed_sample"][0]
    sys_descr = "\r\n".join(raw.splitlines()[:4])
    rule, fields = identity_of(sys_descr, "1.3.6.1.4.1.9.1.1208")
    assert rule == "cisco-ios"
    assert fields["vendor"] == "Cisco"
    assert fields["firmware_version"] == expected["version"]


def test_bundled_profile_products_appear_in_csaf(shared_dir):
    """The identities the demo switches report name products of real advisories."""
    names = set()
    for path in (shared_dir / "advisories/csaf").glob("*.json"):
        names |= set(re.findall(r'"name": "([^"]+)"', path.read_text()))
    squashed = {re.sub(r"\s", "", n).upper() for n in names}
    for product, order in (("SCALANCE XC208", "6GK5208-0BA00-2AC2"),
                           ("SCALANCE X204IRT", "6GK5204-0BA00-2BA3")):
        assert any(re.sub(r"\s", "", product).upper() in n for n in squashed), product
        assert any(order in n for n in names), order


def test_unknown_sys_descr_matches_no_rule():
    assert identity_of("Acme Widget 3000", "1.3.6.1.4.1.99999")[0] is None


def test_order_code_normalisation():
    assert normalise_order_code("6GK52040BA002BA3") == "6GK5 204-0BA00-2BA3"
    assert normalise_order_code("6GK5204-0BA00-2BA3") == "6GK5 204-0BA00-2BA3"
    assert normalise_order_code(" 6GK5 204-0BA00-2BA3 ") == "6GK5 204-0BA00-2BA3"
    assert normalise_order_code("WS-C4948E") == "WS-C4948E"


def test_decode_text():
    assert decode_text(b"abc\x00\x00") == ("abc", True)
    assert decode_text("Électrique".encode()) == ("Électrique", True)
    assert decode_text(b"\xc9lectrique") == ("Électrique", False)
    assert decode_text(b"x" * 5000)[0] == "x" * 4096


ENTRY = (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1)


def test_entities_and_chassis_identity():
    rows = [((*ENTRY, 2, 1), Val("OctetString", b"SCALANCE XC208")),
            ((*ENTRY, 5, 1), Val("Integer", 3)),
            ((*ENTRY, 9, 1), Val("OctetString", b"")),
            ((*ENTRY, 10, 1), Val("OctetString", b"V04.05.00")),
            ((*ENTRY, 11, 1), Val("OctetString", b"SVPK1")),
            ((*ENTRY, 5, 2), Val("Integer", 10)),
            ((*ENTRY, 3, 2), Val("ObjectIdentifier", "0.0"))]
    entities = parse_entities(rows)
    assert [e["class"] for e in entities] == ["chassis", "port"]
    assert entities[0]["descr"] == "SCALANCE XC208" and entities[1]["descr"] == ""
    fields = fields_from_entity(chassis(entities), ("firmware_rev", "software_rev"))
    assert fields == {"serial": "SVPK1", "firmware_version": "V04.05.00"}
    with pytest.raises(ParseError, match="expected OCTET STRING"):
        parse_entities([((*ENTRY, 2, 1), Val("Integer", 5))])
    with pytest.raises(ParseError, match="index is one integer"):
        parse_entities([((*ENTRY, 2, 1, 7), Val("OctetString", b""))])
    assert parse_entities([((*ENTRY, 5, 1), Val("Integer", 99))])[0]["class"] == "unknown(99)"


def test_interfaces():
    descr = [((1, 3, 6, 1, 2, 1, 2, 2, 1, 2, 1), Val("OctetString", b"Port 1")),
             ((1, 3, 6, 1, 2, 1, 2, 2, 1, 2, 2), Val("OctetString", b"Port 2"))]
    name = [((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1, 1), Val("OctetString", b"P1"))]
    admin = [((1, 3, 6, 1, 2, 1, 2, 2, 1, 7, 1), Val("Integer", 1)),
             ((1, 3, 6, 1, 2, 1, 2, 2, 1, 7, 2), Val("Integer", 1))]
    oper = [((1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 1), Val("Integer", 2)),
            ((1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 2), Val("Integer", 7))]
    interfaces = parse_interfaces(descr, name, admin, oper)
    assert interfaces == [{"index": 1, "name": "P1", "admin": "up", "oper": "down"},
                          {"index": 2, "name": "Port 2", "admin": "up",
                           "oper": "lowerLayerDown"}]
    assert interfaces_up_unused(interfaces) == 2
    with pytest.raises(ParseError):
        parse_interfaces(descr, name, [((1, 3, 6, 1, 2, 1, 2, 2, 1, 7, 1),
                                        Val("OctetString", b"up"))], oper)


def test_merge_prefers_entity_then_oids_then_sysdescr_unless_the_rule_orders():
    sources = [("sysDescr", {"firmware_version": "V1", "product": "X"}),
               ("oid", {"firmware_version": "V3"}),
               ("entity", {"firmware_version": "V2", "model": ""})]
    assert merge(sources) == {"firmware_version": ("V2", "entity"), "product": ("X", "sysDescr")}
    cisco = VENDORS.match("Cisco IOS Software, C3560 Software (C3560-IPSERVICESK9-M), "
                          "Version 12.2(55)SE12, RELEASE SOFTWARE", "1.3.6.1.4.1.9.1.634")
    assert cisco is not None and cisco.id == "cisco-ios"
    assert merge(sources, cisco)["firmware_version"] == ("V1", "sysDescr")


def test_discovery_request_shape():
    """Our discovery: SNMPv3, reportable noAuthNoPriv, empty engine id and user, empty GET."""
    message = build_v3_discovery(0x4A69, 1)
    assert message[:2] == b"\x30" + bytes([len(message) - 2])
    with pytest.raises(ParseError, match="not a Report PDU"):
        parse_v3_report(message, 0x4A69)
    with pytest.raises(ParseError, match="msgID differs"):
        parse_v3_report(message, 1)


# --- property tests: any input -> result or ParseError ------------------------------

@given(st.binary(max_size=300))
def test_decode_text_never_fails(raw):
    text, utf8 = decode_text(raw)
    body = raw.rstrip(b"\x00")
    assert text == (body.decode("utf-8") if utf8 else body.decode("latin-1"))[:4096]


@given(st.binary(max_size=400), st.integers(0, 2**31 - 1))
@settings(max_examples=300)
def test_v3_report_parser_raises_only_parse_error(raw, msg_id):
    with contextlib.suppress(ParseError):
        parse_v3_report(raw, msg_id)


@given(st.binary(max_size=120))
def test_v3_report_parser_on_mutated_messages(noise):
    message = bytearray(build_v3_discovery(7, 9))
    for i, byte in enumerate(noise):
        message[(i * 7) % len(message)] ^= byte
    with contextlib.suppress(ParseError):
        parse_v3_report(bytes(message), 7)


@given(st.text(max_size=300), st.text(max_size=60))
@settings(max_examples=300)
def test_sys_descr_rules_take_any_text(sys_descr, object_id):
    rule = VENDORS.match(sys_descr, object_id)
    if rule is not None and rule.sys_descr is not None:
        fields = fields_from_text(rule.sys_descr, sys_descr, rule.templates)
        assert set(fields) <= set(ALL_FIELDS)
        assert all(isinstance(v, str) for v in fields.values())
    for rule in VENDORS.rules:
        for oid_rule in rule.oids:
            assert set(fields_from_text(oid_rule.pattern, sys_descr)) <= set(ALL_FIELDS)


@given(st.text(max_size=80))
def test_order_code_normalisation_takes_any_text(text):
    """Any text: an MLFB in catalogue form with the same characters, else the text
    stripped; normalising twice changes nothing."""
    normalised = normalise_order_code(text)
    compact = re.sub(r"[\s-]", "", text)
    if re.fullmatch(r"6[A-Z]{2}\d{4}[0-9A-Z]{9}", compact):
        assert re.fullmatch(r"6[A-Z]{2}\d \d{3}-[0-9A-Z]{5}-[0-9A-Z]{4}", normalised)
        assert re.sub(r"[\s-]", "", normalised) == compact
    else:
        assert normalised == text.strip()
    assert normalise_order_code(normalised) == normalised


VALUES = st.one_of(
    st.builds(Val, st.just("OctetString"), st.binary(max_size=20)),
    st.builds(Val, st.sampled_from(["Integer", "Counter32", "TimeTicks"]),
              st.integers(-5, 2**32)),
    st.builds(Val, st.just("ObjectIdentifier"), st.just("1.3.6")),
    st.builds(Val, st.sampled_from(["Null", "noSuchInstance", "endOfMibView"])),
)
OIDS = st.lists(st.integers(0, 20), min_size=0, max_size=14).map(tuple)


@given(st.lists(st.tuples(st.one_of(OIDS, st.builds(lambda c, i: (*ENTRY, c, i),
                                                    st.integers(1, 16), st.integers(1, 5))),
                          VALUES), max_size=20))
def test_table_parsers_raise_only_parse_error(rows):
    for parse in (parse_entities,
                  lambda r: parse_interfaces(r, r, r, r)):
        with contextlib.suppress(ParseError):
            json.dumps(parse(rows))
    lines = render_varbinds(rows).split("\n") if rows else []
    assert len(lines) == len(rows)
    assert all(line.startswith(f"{oid_str(o)} = {v.type}: ") for line, (o, v) in zip(lines, rows,
                                                                                    strict=True))


@given(st.text(max_size=40))
def test_parse_oid_raises_only_parse_error(text):
    with contextlib.suppress(ParseError):
        oid = parse_oid(text)
        assert oid and parse_oid(oid_str(oid)) == oid
        assert oid_str(oid) == ".".join(str(int(p)) for p in text.strip().lstrip(".").split("."))

