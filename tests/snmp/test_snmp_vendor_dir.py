"""Site vendor knowledge (settings vendor_dir): merge rules, errors, and the docs' example."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from otaudit.probes.s7 import products
from otaudit.probes.snmp.identity import VENDORS_FILE, VendorTableError, load_vendors

from tests_helpers import doc_blocks as extending_blocks
from tests_helpers import free_udp_port, wait_for_line


def doc_blocks() -> dict[str, list[str]]:
    """The fenced blocks of the SNMP section of docs/extending.md, by language."""
    return extending_blocks("Add a vendor (SNMP identity)")


def test_the_docs_example_runs(tmp_path):
    """Exactly the worked example: site file -> replayed recording -> probe -> identity."""
    blocks = doc_blocks()
    recording, expected = blocks["text"]
    site_file, = blocks["yaml"]
    vendor_dir = tmp_path / "vendors"
    vendor_dir.mkdir()
    (vendor_dir / "snmp-vendors.yaml").write_text(site_file)
    (tmp_path / "io-gw.snmprec").write_text(recording)
    commands = [line for line in blocks["sh"][1].splitlines() if line.startswith("otaudit")]
    assert commands[0].startswith("otaudit sim snmp --snmprec io-gw.snmprec")
    port = str(free_udp_port())
    env = {**os.environ, "OTAUDIT_VENDOR_DIR": str(vendor_dir)}

    def argv(command: str) -> list[str]:
        words = command.rstrip(" &").split()[1:]
        words[words.index("--port") + 1] = port
        return [sys.executable, "-m", "otaudit.cli.main", *words]

    sim = subprocess.Popen(argv(commands[0]), cwd=tmp_path, env=env, stderr=subprocess.PIPE,
                           text=True)
    try:
        wait_for_line(sim, "listening")
        done = subprocess.run(argv(commands[1]), cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=60)
    finally:
        sim.terminate()
        sim.wait(10)
    got = {tuple(line.split(None, 1)) for line in done.stdout.splitlines()
           if line.startswith("  ")}
    want = {tuple(line.split(None, 1)) for line in expected.splitlines()}
    assert want <= got, done.stdout
    # without the site file, the same device has no identity
    env.pop("OTAUDIT_VENDOR_DIR")
    sim = subprocess.Popen(argv(commands[0]), cwd=tmp_path, env=env, stderr=subprocess.PIPE,
                           text=True)
    try:
        wait_for_line(sim, "listening")
        bare = subprocess.run(argv(commands[1]), cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=60)
    finally:
        sim.terminate()
        sim.wait(10)
    assert "identity.vendor" in bare.stdout and "match no vendor rule" in bare.stdout


def test_site_rules_first_and_same_id_replaces(tmp_path):
    (tmp_path / "snmp-vendors.yaml").write_text("""
rules:
  - id: moxa
    vendor: Moxa (site)
    match: {sys_object_id: ['1.3.6.1.4.1.8691.']}
  - id: site-first
    vendor: Site
    match: {sys_descr: '^Hirschmann '}
placeholders:
  name: ['^cell-tbd$']
""")
    bundled, merged = load_vendors(), load_vendors(VENDORS_FILE, tmp_path)
    assert merged.rules[0].id == "moxa" and merged.rules[1].id == "site-first"
    assert [r.id for r in merged.rules].count("moxa") == 1
    assert len(merged.rules) == len(bundled.rules) + 1
    assert merged.match("Hirschmann Railswitch", "1.3.6.1.4.1.248.14").id == "site-first"
    assert merged.match("EDS-405A", "1.3.6.1.4.1.8691.7.1").vendor == "Moxa (site)"
    assert merged.placeholder("name", "cell-tbd", None)
    assert not bundled.placeholder("name", "cell-tbd", None)


@pytest.mark.parametrize(("text", "message"), [
    ("rules:\n  - id: x\n    vendor: X\n    match: {sys_descr: '('}\n",
     r"snmp-vendors\.yaml: rule 'x': match\.sys_descr: bad regex"),
    ("rules:\n  - vendor: X\n", r"snmp-vendors\.yaml: every rule needs an 'id'"),
    ("rules:\n  - id: y\n    match: {sys_object_id: [1.3]}\n    kind: toaster\n",
     r"rule 'y': kind 'toaster' is not one of"),
    ("rules:\n  - id: z\n    match: {present: [1.3.6.1.4.1.1.0]}\n    oids:\n"
     "      - {oid: 1.3.6.1.4.1.1.0, field: colour}\n", r"rule 'z': oid 1.3.6.1.4.1.1.0: unknown "
     "field 'colour'"),
    ("rules: [\n", r"snmp-vendors\.yaml: not valid YAML"),
    ("vendors: []\n", r"unknown top-level key\(s\) \['vendors'\]"),
])
def test_malformed_site_file_names_file_and_entry(tmp_path, text, message):
    (tmp_path / "snmp-vendors.yaml").write_text(text)
    with pytest.raises(VendorTableError, match=message):
        load_vendors(VENDORS_FILE, tmp_path)


def test_site_table_is_reread_when_it_changes(tmp_path):
    site = tmp_path / "snmp-vendors.yaml"
    site.write_text("rules:\n  - id: a\n    vendor: A\n    match: {sys_descr: '^A'}\n")
    assert load_vendors(VENDORS_FILE, tmp_path).match("A1", "").vendor == "A"
    site.write_text("rules:\n  - id: a\n    vendor: B2\n    match: {sys_descr: '^A'}\n")
    os.utime(site, ns=(1, 10**18))
    assert load_vendors(VENDORS_FILE, tmp_path).match("A1", "").vendor == "B2"


def test_s7_products_site_file(tmp_path, monkeypatch):
    (tmp_path / "s7-products.yaml").write_text(
        "vendors:\n  - {prefix: '6XX9', vendor: Example}\n"
        "products:\n  - {pattern: '6XX9 1', product: Example CPU}\n")
    monkeypatch.setenv("OTAUDIT_VENDOR_DIR", str(tmp_path))
    assert products.vendor_of("6XX9 123-4") == "Example"
    assert products.product_of("6XX9 123-4") == "Example CPU"
    assert products.product_of("6ES7 214-1AG40-0XB0") == "SIMATIC S7-1200"
    (tmp_path / "s7-products.yaml").write_text("products:\n  - {pattern: '('}\n")
    os.utime(tmp_path / "s7-products.yaml", ns=(1, 10**18))
    with pytest.raises(products.ProductTableError, match=r"s7-products\.yaml: products entry 1"):
        products.vendor_of("6ES7 214")
