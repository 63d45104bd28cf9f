"""Vendor rules and identity merging read exactly: every refusal names file and entry,
matching, placeholders, templates, chassis choice and precedence (issue 23:
snmp/identity.py killed 51 %)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from otaudit.probes.base import ParseError
from otaudit.probes.snmp.identity import (
    SOURCES,
    VENDORS_FILE,
    OidRule,
    VendorTable,
    VendorTableError,
    chassis,
    fields_from_entity,
    fields_from_text,
    load_vendors,
    merge,
    parse_rule,
)

MATCH = {"sys_descr": "^X"}


def rule(**raw) -> object:
    return parse_rule({"id": "r", "match": MATCH, **raw}, "f.yaml")


# --- rule validation ----------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "message"), [
    ({"vendor": "X"}, "f.yaml: every rule needs an 'id'"),
    ({"id": "", "match": MATCH}, "f.yaml: every rule needs an 'id'"),
    ({"id": "r", "match": MATCH, "colour": 1}, "f.yaml: rule 'r': unknown key(s) ['colour']"),
    ({"id": "r"}, "f.yaml: rule 'r': 'match' is empty (the rule would never apply)"),
    ({"id": "r", "match": {}}, "f.yaml: rule 'r': 'match' is empty"),
    ({"id": "r", "match": {"model": "x"}},
     "f.yaml: rule 'r': match takes sys_descr, sys_object_id, present"),
    ({"id": "r", "match": ["x"]}, "f.yaml: rule 'r': match takes sys_descr"),
    ({"id": "r", "match": MATCH, "identity": {"colour": "{x}"}},
     "f.yaml: rule 'r': identity template for unknown field 'colour'"),
    ({"id": "r", "match": MATCH, "precedence": {"model": ["entity", "guess"]}},
     "f.yaml: rule 'r': precedence.model must list entity, oid, sysDescr"),
    ({"id": "r", "match": MATCH, "precedence": {"colour": ["entity"]}},
     "f.yaml: rule 'r': precedence.colour must list"),
    ({"id": "r", "match": MATCH, "sys_descr": "(?P<model"},
     "f.yaml: rule 'r': sys_descr: bad regex"),
    ({"id": "r", "match": MATCH, "oids": [{"name": "x"}]},
     "f.yaml: rule 'r': an oid entry needs 'oid'"),
    ({"id": "r", "match": MATCH, "oids": ["1.3.6"]},
     "f.yaml: rule 'r': an oid entry needs 'oid'"),
    ({"id": "r", "match": MATCH, "oids": [{"oid": "1.3", "field": "model", "x": 1}]},
     "f.yaml: rule 'r': unknown key(s) ['x'] in oid 1.3"),
    ({"id": "r", "match": MATCH, "oids": [{"oid": "1.3.x", "field": "model"}]},
     "f.yaml: rule 'r': oid '1.3.x' is not numeric (or {sys_object_id}.N)"),
    ({"id": "r", "match": MATCH, "oids": [{"oid": "1.3"}]},
     "f.yaml: rule 'r': oid 1.3 needs exactly one of 'pattern' or 'field'"),
    ({"id": "r", "match": MATCH, "oids": [{"oid": "1.3", "field": "model", "pattern": "x"}]},
     "f.yaml: rule 'r': oid 1.3 needs exactly one of 'pattern' or 'field'"),
    ({"id": "r", "match": MATCH, "oids": [{"oid": "1.3", "pattern": "(?P<colour>.*)"}]},
     "f.yaml: rule 'r': oid 1.3: groups ['colour'] name no field (prefix helper groups"),
    ({"id": "r", "match": MATCH, "oids": [{"oid": "1.3", "pattern": "("}]},
     "f.yaml: rule 'r': oid 1.3: bad regex"),
    ({"id": "r", "match": MATCH, "placeholders": ["x"]},
     "f.yaml: rule 'r': placeholders must map a field (or '*') to regexes"),
    ({"id": "r", "match": MATCH, "placeholders": {"colour": ["x"]}},
     "f.yaml: rule 'r': placeholders for unknown field 'colour'"),
    ({"id": "r", "match": MATCH, "placeholders": {"model": "x"}},
     "f.yaml: rule 'r': placeholders.model must be a list of regexes"),
    ({"id": "r", "match": MATCH, "placeholders": {"model": ["("]}},
     "f.yaml: rule 'r': placeholders.model: bad regex"),
])
def test_bad_rules_name_file_rule_and_problem(raw: dict, message: str) -> None:
    with pytest.raises(VendorTableError, match="^" + re.escape(message)):
        parse_rule(raw, "f.yaml")


@pytest.mark.parametrize("kind", [None, "plc", "switch"])
def test_known_kinds_are_accepted(kind: str | None) -> None:
    assert rule(**({"kind": kind} if kind else {})).kind == kind


def test_a_rule_as_parsed() -> None:
    parsed = rule(vendor="V", match={"sys_descr": "^X", "sys_object_id": [".1.3.6.1.4.1.9."],
                                     "present": ["1.3.6.1.4.1.9.1.0"]},
                  sys_descr=r"(?P<model>\S+)", identity={"product": "P {model}"},
                  oids=[{"oid": "{sys_object_id}.1", "field": "serial", "next": True},
                        {"oid": "1.3.6", "pattern": r"(?P<_x>a)(?P<os>.*)", "name": "os"}],
                  entity_firmware=["software_rev"], precedence={"model": ["sysDescr"]},
                  placeholders={"*": ["^tbd$"], "name": ["^cell$"]}, generic=True)
    assert (parsed.id, parsed.vendor, parsed.match_object_id, parsed.match_present,
            parsed.templates, parsed.entity_firmware, parsed.precedence, parsed.generic,
            parsed.source) == ("r", "V", ("1.3.6.1.4.1.9.",), ("1.3.6.1.4.1.9.1.0",),
                               {"product": "P {model}"}, ("software_rev",),
                               {"model": ("sysDescr",)}, True, "f.yaml: rule 'r'")
    assert [(o.name, o.oid, o.next) for o in parsed.oids] == [
        ("{sys_object_id}.1", "{sys_object_id}.1", True), ("os", "1.3.6", False)]
    assert set(parsed.placeholders) == {"*", "name"}
    plain = rule()
    assert (plain.vendor, plain.match_object_id, plain.match_present, plain.oids, plain.kind,
            plain.generic, plain.entity_firmware, plain.sys_descr) == (
        None, (), (), (), None, False, ("firmware_rev", "software_rev"), None)


def test_field_oid_takes_the_whole_value_trimmed() -> None:
    oid = rule(oids=[{"oid": "1.3", "field": "serial"}]).oids[0]
    assert fields_from_text(oid.pattern, "  SN 42\n ") == {"serial": "SN 42"}


@pytest.mark.parametrize(("oid", "sys_object_id", "resolved"), [
    ("{sys_object_id}.1.0", "1.3.6.1.4.1.248.14", "1.3.6.1.4.1.248.14.1.0"),
    ("{sys_object_id}.1.0", ".1.3.6.1.4.1.248.14", "1.3.6.1.4.1.248.14.1.0"),
    ("{sys_object_id}.1.0", "", None), ("1.3.6.1.2.1.1.1.0", "", "1.3.6.1.2.1.1.1.0")])
def test_oid_resolution(oid: str, sys_object_id: str, resolved: str | None) -> None:
    assert OidRule("n", oid, re.compile("")).resolve(sys_object_id) == resolved


@pytest.mark.parametrize(("sys_descr", "object_id", "matched"), [
    ("Xylo", "", True), ("a Xylo", "", False), ("", "1.3.6.1.4.1.9.1.5", True),
    ("", ".1.3.6.1.4.1.9.1.5", True), ("", "1.3.6.1.4.1.9", True), ("", "1.3.6.1.4.1.99", False),
    ("", "1.3.6.1.4.1.91", False), ("X" + "Y" * 4096, "", True)])
def test_rule_matching(sys_descr: str, object_id: str, matched: bool) -> None:
    parsed = rule(match={"sys_descr": "^X", "sys_object_id": ["1.3.6.1.4.1.9."]})
    assert parsed.matches(sys_descr, object_id) is matched


def test_rule_order_defaults_to_entity_oid_sysdescr() -> None:
    parsed = rule(precedence={"model": ["sysDescr", "entity"]})
    assert (parsed.order("model"), parsed.order("serial")) == (("sysDescr", "entity"), SOURCES)
    assert SOURCES == ("entity", "oid", "sysDescr")


# --- tables -------------------------------------------------------------------------------------

def table(tmp_path: Path, text: str) -> VendorTable:
    (tmp_path / "snmp-vendors.yaml").write_text(text)
    return load_vendors(VENDORS_FILE, tmp_path)


def test_site_manufacturers_placeholders_and_communities(tmp_path: Path) -> None:
    bundled = load_vendors()
    merged = table(tmp_path, """
rules:
  - {id: p, vendor: P, match: {present: ['1.3.6.1.4.1.4242.1.0']}}
manufacturers:
  - {pattern: '^Acme', vendor: Acme}
placeholders:
  model: ['^TBD$']
default_communities: [public, site-secret]
""")
    assert merged.manufacturer("Acme Widgets") == "Acme"
    assert bundled.manufacturer("Acme Widgets") is None
    assert merged.manufacturers[0][1] == "Acme"
    assert merged.placeholder("model", " TBD ", None) == "^TBD$"
    assert merged.placeholders["model"][0].pattern == "^TBD$"
    assert merged.default_communities.count("public") == bundled.default_communities.count(
        "public")
    assert merged.default_communities[-1] == "site-secret"
    assert merged.present_candidates()[0].id == "p"
    assert all(r.match_present for r in merged.present_candidates())


def test_rule_placeholders_come_first_then_the_table(tmp_path: Path) -> None:
    merged = table(tmp_path, "placeholders:\n  '*': ['^none$']\n")
    own = rule(placeholders={"model": ["^x+$"]})
    assert merged.placeholder("model", "xx", own) == "^x+$"
    assert merged.placeholder("model", "xx", None) is None
    assert merged.placeholder("serial", "none", own) == "^none$"
    assert merged.placeholder("serial", "nonesuch", own) is None


@pytest.mark.parametrize(("text", "message"), [
    ("- a\n", "expected a mapping with 'rules'"),
    ("rules:\n  - {id: a, match: {sys_descr: a}}\n  - {id: a, match: {sys_descr: b}}\n",
     "rule 'a' is defined twice"),
    ("manufacturers:\n  - {pattern: x}\n", "manufacturers entry 1 needs pattern and vendor"),
    ("manufacturers:\n  - {pattern: x, vendor: X}\n  - vendor: Y\n",
     "manufacturers entry 2 needs pattern and vendor"),
    ("manufacturers:\n  - {pattern: '(', vendor: X}\n", "manufacturers entry 1: bad regex"),
])
def test_bad_site_tables(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(VendorTableError, match=re.escape(message)):
        table(tmp_path, text)


def test_an_empty_site_file_changes_nothing(tmp_path: Path) -> None:
    assert table(tmp_path, "").rules == load_vendors().rules


def test_vendor_dir_must_be_a_directory(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(VendorTableError, match=r"vendor_dir is not a directory$"):
        load_vendors(VENDORS_FILE, not_a_dir)
    assert load_vendors(VENDORS_FILE, tmp_path / "missing").rules == load_vendors().rules


def test_a_missing_table_file(tmp_path: Path) -> None:
    with pytest.raises(VendorTableError, match=r"missing.yaml: No such file"):
        load_vendors(tmp_path / "missing.yaml")


# --- fields, chassis, merge ---------------------------------------------------------------------

def test_fields_from_text_groups_templates_and_order_codes() -> None:
    pattern = re.compile(r"(?P<model>\S+) (?P<_rev>\S+)(?: (?P<order_code>\S+))?(?P<os> *)")
    assert fields_from_text(pattern, "M1 r2 6GK52040BA002BA3") == {
        "model": "M1", "order_code": "6GK5 204-0BA00-2BA3"}
    assert fields_from_text(pattern, "M1 r2", {"product": "P {model} {_rev}",
                                               "firmware_version": "{missing}"}) == {
        "model": "M1", "product": "P M1 r2"}
    assert fields_from_text(pattern, "nothing") == {}
    with pytest.raises(ParseError, match=r"^template for unknown identity field 'colour'$"):
        fields_from_text(pattern, "M1 r2", {"colour": "{model}"})
    assert fields_from_text(re.compile("(?P<model>X)"), "Y" * 4096 + "X") == {}


def entity(**values) -> dict:
    return {"class": "unknown", "model": "", "serial": "", **values}


@pytest.mark.parametrize(("entities", "index"), [
    ([entity(index=1, **{"class": "port"}), entity(index=2, **{"class": "chassis"}),
      entity(index=3, **{"class": "chassis"})], 2),
    ([entity(index=1, **{"class": "port"})], 1),
    ([entity(index=1), entity(index=2, serial="S"), entity(index=3, model="M")], 2),
    ([entity(index=1, **{"class": ""}), entity(index=2, model="M", **{"class": None})], 2),
    ([entity(index=1), entity(index=2)], None),
    ([entity(index=1, **{"class": "port"}), entity(index=2, model="M")], None),
    ([], None),
])
def test_chassis_choice(entities: list[dict], index: int | None) -> None:
    chosen = chassis(entities)
    assert (chosen["index"] if chosen else None) == index


def test_fields_from_entity() -> None:
    row = {"model": " M ", "serial": "", "hardware_rev": "B", "firmware_rev": "",
           "software_rev": " 2.0 "}
    assert fields_from_entity(row, ("firmware_rev", "software_rev")) == {
        "model": "M", "hardware_version": "B", "firmware_version": "2.0"}
    assert fields_from_entity({**row, "firmware_rev": "1.0"}, ("firmware_rev", "software_rev")
                              )["firmware_version"] == "1.0"
    assert fields_from_entity({"model": "  "}, ()) == {}


def test_merge_takes_the_first_source_with_a_value() -> None:
    sources = [("sysDescr", {"model": "S", "os": "L"}), ("oid", {"model": "", "serial": "O"}),
               ("entity", {"serial": "E", "model": "EM"}), ("other", {"vendor": "V"})]
    assert merge(sources) == {"model": ("EM", "entity"), "os": ("L", "sysDescr"),
                              "serial": ("E", "entity"), "vendor": ("V", "other")}
    ordered = rule(precedence={"serial": ["oid"], "model": ["oid", "sysDescr"]})
    assert merge(sources, ordered) == {"model": ("S", "sysDescr"), "os": ("L", "sysDescr"),
                                       "serial": ("O", "oid"), "vendor": ("V", "other")}
    only_other = rule(precedence={"vendor": ["entity"]})
    assert merge(sources, only_other)["vendor"] == ("V", "other")
    assert merge([]) == {}


def test_only_the_first_4096_characters_are_matched() -> None:
    parsed = rule(match={"sys_descr": "X"})
    assert parsed.matches("Y" * 4095 + "X", "") is True
    assert parsed.matches("Y" * 4096 + "X", "") is False
    pattern = re.compile("(?P<model>X)")
    assert fields_from_text(pattern, "Y" * 4095 + "X") == {"model": "X"}
    assert fields_from_text(pattern, "Y" * 4096 + "X") == {}
