"""Bad input that still hurt (issue 16, adversarial run of 2026-12-06), each with a clear
error and no secret in it: a too-short SNMPv3 key (pyasn1 quoted it in the log, 5 times a
run), a ``{file:}`` secret that is a FIFO (it blocked the collector 60 s), a non-UTF-8 byte
in the inventory (the daemon crashed on reload), ESC sequences in device text (they reached
the terminal through the report)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
import yaml

from otaudit.collector.targets import load_plan
from otaudit.errors import InputError
from otaudit.inventory import load_inventory
from otaudit.observation import AssetKind, AssetRef, ProbeStatus
from otaudit.probes.base import ProbeTarget
from otaudit.probes.runner import run_probe
from otaudit.probes.snmp.options import SnmpOptions
from otaudit.probes.snmp.probe import SnmpProbe
from otaudit.secrets import MAX_SECRET_FILE, SecretRef, SecretUnavailable
from otaudit.server.baseline.render import render_gap_table
from otaudit.server.db import init_db, make_engine, session_factory
from otaudit.server.ingest import Ingestor
from otaudit.server.report import build_report, render_table
from otaudit.simulators import bundled_profile, create_simulator
from otaudit.text import device_text

from support.observations import make_observation

SHORT_KEY = "k3y-6x"  # 6 characters: RFC 3414 wants at least 8


def inventory(path: Path, endpoint: dict, name: str = "sw-1") -> Path:
    path.write_text(yaml.safe_dump({
        "site": "s1", "zones": [{"id": "z1", "sl_t": 2}],
        "assets": [{"id": name, "kind": "switch", "zone": "z1",
                    "endpoints": {"snmp": endpoint}}]}))
    return path


def secret_forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [secret, raw.hex(), repr(raw)]


def test_a_too_short_snmpv3_key_is_refused_at_inventory_load_without_its_value(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SW_AUTH", SHORT_KEY)
    key_file = tmp_path / "priv"
    key_file.write_text("sh0rt\n")
    path = inventory(tmp_path / "inv.yaml", {
        "host": "127.0.0.1", "v3_user": "auditor", "v3_auth_key": {"env": "SW_AUTH"},
        "v3_priv_key": {"file": str(key_file)}})
    with pytest.raises(InputError) as caught:
        load_plan(path)
    text = str(caught.value)
    assert "v3_auth_key (line" in text
    assert "an SNMPv3 passphrase (env:SW_AUTH) has 6 characters; at least 8 are needed" in text
    assert f"(file:{key_file}) has 5 characters" in text
    assert not any(form in text for s in (SHORT_KEY, "sh0rt") for form in secret_forms(s))


async def test_a_key_that_became_too_short_fails_the_run_not_the_log(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Loaded while the key was long enough, resolved when it is not: the probe stops
    before pysnmp sees it, and nothing at any level quotes it."""
    monkeypatch.setenv("SW_AUTH", "long-enough-key")
    options = SnmpOptions.model_validate({"v3_user": "admin", "v3_auth_key": {"env": "SW_AUTH"},
                                          "v3_priv_key": {"env": "SW_AUTH"},
                                          "request_timeout": 0.3, "retries": 0})
    monkeypatch.setenv("SW_AUTH", SHORT_KEY)
    device = create_simulator("snmp", "scalance-xc208-hardened")
    caplog.set_level(logging.DEBUG)
    async with device:
        target = ProbeTarget(asset=AssetRef(id="sw", kind=AssetKind.SWITCH, zone="z"),
                             host=device.host, port=device.port, options=options)
        obs = await run_probe(SnmpProbe(), target, collector_id="c", site="s", deadline=5)
    assert obs.status is ProbeStatus.ERROR
    assert "has 6 characters; at least 8 are needed" in (obs.reason or "")
    formatter = logging.Formatter("%(message)s")
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    assert not any(form in logged + obs.model_dump_json() for form in secret_forms(SHORT_KEY))


def test_a_fifo_secret_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "secret.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(SecretUnavailable, match=r"is not a regular file \(a FIFO\)"):
        SecretRef(file=fifo).resolve()
    assert time.monotonic() - started < 1.0  # no writer: opening it would have blocked
    with pytest.raises(SecretUnavailable, match=r"not a regular file \(a folder\)"):
        SecretRef(file=tmp_path).resolve()
    big = tmp_path / "big"
    big.write_bytes(b"x" * (MAX_SECRET_FILE + 1))
    with pytest.raises(SecretUnavailable, match="holds at most"):
        SecretRef(file=big).resolve()
    with pytest.raises(SecretUnavailable, match="No such file"):
        SecretRef(file=tmp_path / "missing").resolve()
    fine = tmp_path / "fine"
    fine.write_text("s3cret-value\n")
    assert SecretRef(file=fine).resolve().get_secret_value() == "s3cret-value"


def test_a_non_utf8_inventory_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_bytes(b"site: s1\nzones:\n  - {id: z1, sl_t: 2, name: \"Caf\xe9\"}\nassets: []\n")
    with pytest.raises(InputError) as caught:
        load_inventory(path)
    assert str(caught.value) == (f"{path}: 1 problem(s)\n  - line 3: byte 0xe9 at offset 48 is "
                                 "not UTF-8 (save the file as UTF-8)")


def test_the_daemon_keeps_its_inventory_when_a_reload_meets_a_non_utf8_byte(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from otaudit import probes
    from otaudit.collector.daemon import CollectorDaemon
    from otaudit.settings import Settings

    monkeypatch.setitem(probes.REGISTRY, "fake", "support.fake_probe:FakeProbe")
    monkeypatch.setenv("OTAUDIT_STATE_DIR", str(tmp_path / "state"))
    path = tmp_path / "inv.yaml"
    good = {"site": "s1", "collector": "c1", "zones": [{"id": "z1", "sl_t": 2}],
            "assets": [{"id": "a0", "kind": "plc", "zone": "z1",
                        "endpoints": {"fake": {"host": "127.0.0.1", "port": 9}}}]}
    path.write_text(yaml.safe_dump(good))
    daemon = CollectorDaemon(path, Settings(_env_file=None))
    path.write_bytes(path.read_bytes().replace(b"a0", b"a\xff0"))
    with caplog.at_level(logging.ERROR, logger="otaudit.collector"):
        assert daemon.reload("SIGHUP") is False
    assert [p.asset.id for p in daemon.plans] == ["a0"]
    assert daemon.reload_errors == 1 and "is not UTF-8" in (daemon.last_reload_error or "")
    assert "keeping the previous inventory" in caplog.text


ESC_TITLE = "\x1b]0;pwned\x07"


def test_escape_sequences_from_a_device_never_reach_the_terminal(tmp_path: Path) -> None:
    """Stored before the probes escaped device text (or sent by anyone): the renderers
    escape what is left, in every field."""
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    init_db(engine)
    obs = make_observation(asset="sw-1", probe="snmp", facts={
        "identity.vendor": f"Siemens{ESC_TITLE}", "identity.model": "X\r\x1b[2Joverwritten",
        "identity.firmware_version": "V1\u202eevil", "snmp.sys_descr": ESC_TITLE})
    obs = obs.model_copy(update={"reason": f"device said {ESC_TITLE}"})
    Ingestor(engine).ingest([(f"otaudit/v1/{obs.site}/{obs.collector_id}/obs/sw-1",
                              obs.to_json())])
    with session_factory(engine)() as session:
        report = build_report(session)
    text = render_table(report)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\r" not in text
    assert "Siemens\\x1b]0;pwned\\x07" in text and "V1\\u202eevil" in text
    from otaudit.server.baseline import evaluate, load_baseline
    from otaudit.server.store import latest_asset_facts

    with session_factory(engine)() as session:
        facts = latest_asset_facts(session)
    gap = render_gap_table(evaluate(load_baseline(), {"cell-1": 2}, facts, now=obs.finished_at))
    assert "\x1b" not in gap and "\x07" not in gap
    engine.dispose()


async def test_device_text_is_escaped_where_it_enters_the_facts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SNMP simulator answering a sysDescr with a terminal-title sequence: the probe
    records it escaped (the raw bytes stay in the evidence, as hex)."""
    spec = yaml.safe_load(bundled_profile("snmp", "scalance-x204irt-weak").read_text())
    spec["system"]["descr"] = f"SCALANCE X204{ESC_TITLE}\x00tail"
    profile = tmp_path / "esc.yaml"
    profile.write_text(yaml.safe_dump(spec))
    device = create_simulator("snmp", profile)
    monkeypatch.setenv("OTAUDIT_TEST_COMMUNITY", "public")
    async with device:
        options = SnmpOptions.model_validate({"community": {"env": "OTAUDIT_TEST_COMMUNITY"},
                                              "request_timeout": 0.3})
        target = ProbeTarget(asset=AssetRef(id="sw", kind=AssetKind.SWITCH, zone="z"),
                             host=device.host, port=device.port, options=options)
        obs = await run_probe(SnmpProbe(), target, collector_id="c", site="s", deadline=10)
    descr = obs.facts["snmp.sys_descr"].value
    assert descr == "SCALANCE X204\\x1b]0;pwned\\x07\\x00tail"
    assert device_text(descr) == descr
    assert not any("\x1b" in str(f.value) for f in obs.facts.values())


@pytest.mark.parametrize(("raw", "shown"), [
    ("plain text, tab\tand\nnewline", "plain text, tab\tand\nnewline"),
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),          # OSC: terminal title
    ("\x9b2J", "\\x9b2J"),                                # C1 CSI: clear screen
    ("ok\rforged", "ok\\x0dforged"),                      # carriage return overwrite
    ("\x00\x7f", "\\x00\\x7f"),                           # NUL, DEL
    ("abc\u202edcba", "abc\\u202edcba"),                  # right-to-left override
    ("line\u2028sep", "line\\u2028sep"),
    ("Grüße, 東京", "Grüße, 東京"),                        # printable Unicode stays
])
def test_device_text_escapes_exactly_the_screen_controls(raw: str, shown: str) -> None:
    assert device_text(raw) == shown
    assert device_text(shown) == shown  # idempotent: escapes are printable


def test_lone_surrogates_from_a_library_become_escapes_everywhere_device_text_is_stored(
        ) -> None:
    """asyncua decodes device strings with ``surrogateescape``: a byte that is not UTF-8
    arrives as a lone surrogate, which pydantic, JSON and the databases refuse."""
    from otaudit.observation import Evidence, excerpt, utcnow
    from otaudit.text import device_value, storable_text

    for bad, shown in (("\udcff", "\\udcff"), ("\ud800", "\\ud800"), ("\udfff", "\\udfff")):
        assert device_text(f"a{bad}b") == f"a{shown}b"
        assert device_text(f"a{bad}b", single_line=True) == f"a{shown}b"
        assert storable_text(f"a{bad}\x1bb") == f"a{shown}\x1bb"  # controls: renderers' job
        assert device_value({f"k{bad}": [bad]}) == {f"k{shown}": [shown]}
        text, encoding, truncated = excerpt(f"opc{bad}tcp")
        assert (text, encoding, truncated) == (f"opc{shown}tcp", "text", False)
        Evidence(id="e1", request="r", excerpt=text, at=utcnow())  # storable
    assert storable_text("\ud7ff\ue000 ok") == "\ud7ff\ue000 ok"  # neighbours are no surrogates
    assert excerpt("x" * 10, limit=4) == ("xxxx", "text", True)
