"""Readers of device recordings: snmpsim .snmprec and net-snmp ``snmpwalk -On`` text."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from snmp_testkit import CONPOT_WALK, LINUX_SNMPREC

from otaudit.simulators.snmp.recordings import (
    RecordingError,
    load_recording,
    parse_snmprec,
    parse_snmpwalk,
)


def test_linux_snmprec():
    table = load_recording(LINUX_SNMPREC)
    assert len(table) == 3882
    assert bytes(table[(1, 3, 6, 1, 2, 1, 1, 1, 0)]).startswith(b"Linux cray 2.6.21.5-smp")
    assert str(table[(1, 3, 6, 1, 2, 1, 1, 2, 0)]) == "1.3.6.1.4.1.8072.3.2.10"
    assert int(table[(1, 3, 6, 1, 2, 1, 1, 3, 0)]) == 233425120
    assert bytes(table[(1, 3, 6, 1, 2, 1, 2, 2, 1, 6, 2)]) == bytes.fromhex("00127962f940")
    ip = table[(1, 3, 6, 1, 2, 1, 4, 20, 1, 1, 127, 0, 0, 1)]  # 64x
    assert ip.prettyPrint() == "127.0.0.1"
    hc = table[(1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 2)]  # 70: Counter64
    assert type(hc).__name__ == "Counter64"


def test_copied_fixture_is_the_shared_one(shared_dir):
    original = shared_dir / "fixtures/real/snmp/snmpsim_linux-full-walk.snmprec"
    assert LINUX_SNMPREC.read_bytes() == original.read_bytes()


def test_conpot_snmpwalk(shared_dir):
    table = load_recording(shared_dir / CONPOT_WALK)  # starts with "Created directory: ..."
    assert {oid[-2]: v.prettyPrint() for oid, v in table.items()} == {
        1: "Siemens, SIMATIC, S7-200", 2: "1.3.6.1.4.1.20408", 3: "89", 4: "Siemens AG",
        5: "CP 443-1 EX40", 6: "Venus", 7: "72", 8: "0"}


def test_snmpwalk_multiline_hex_named_integers_and_quotes():
    text = ('.1.3.6.1.2.1.1.1.0 = STRING: "line one\nline \\"two\\""\n'
            ".1.3.6.1.2.1.2.2.1.6.1 = Hex-STRING: 00 11 22 \n33 44 \n"
            ".1.3.6.1.2.1.2.2.1.7.1 = INTEGER: up(1)\n"
            ".1.3.6.1.2.1.2.2.1.8.1 = INTEGER: 2\n"
            ".1.3.6.1.2.1.1.9.0 = \"\"\n"
            ".1.3.6.1.2.1.1.8.0 = Timeticks: (12345) 0:02:03.45\n"
            ".1.3.6.1.2.1.4.20.1.1.10.0.0.1 = IpAddress: 10.0.0.1\n"
            ".1.3.6.1.2.1.31.1.1.1.6.1 = Counter64: 18446744073709551615\n"
            ".1.3.6.1.2.1.1.10.0 = No Such Object available on this agent at this OID\n")
    table = parse_snmpwalk(text)
    assert bytes(table[(1, 3, 6, 1, 2, 1, 1, 1, 0)]) == b'line one\nline "two"'
    assert bytes(table[(1, 3, 6, 1, 2, 1, 2, 2, 1, 6, 1)]) == bytes.fromhex("0011223344")
    assert int(table[(1, 3, 6, 1, 2, 1, 2, 2, 1, 7, 1)]) == 1
    assert int(table[(1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 1)]) == 2
    assert bytes(table[(1, 3, 6, 1, 2, 1, 1, 9, 0)]) == b""
    assert int(table[(1, 3, 6, 1, 2, 1, 1, 8, 0)]) == 12345
    assert table[(1, 3, 6, 1, 2, 1, 4, 20, 1, 1, 10, 0, 0, 1)].prettyPrint() == "10.0.0.1"
    assert int(table[(1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1)]) == 2**64 - 1
    assert (1, 3, 6, 1, 2, 1, 1, 10, 0) not in table


@pytest.mark.parametrize(("text", "message"), [
    ("1.3.6.1.2.1.1.1.0|4\n", "snmprec>:1: expected 'oid|tag|value'"),
    ("1.3.6.1.2.1.1.1.0|4|ok\n1.3.6.x|4|bad\n", ":2: not a numeric OID"),
    ("1.3.6.1.2.1.1.1.0|99|x\n", "unsupported BER tag 99"),
    ("1.3.6.1.2.1.1.1.0|4:numeric|x\n", "variation modules are not supported"),
    ("1.3.6.1.2.1.1.1.0|4x|zz\n", "bad hex value"),
    ("1.3.6.1.2.1.1.3.0|67|soon\n", "bad TimeTicks value"),
])
def test_snmprec_errors_name_the_line(text, message):
    with pytest.raises(RecordingError, match=message):
        parse_snmprec(text)


@pytest.mark.parametrize(("text", "message"), [
    ('.1.3.6.1.2.1.1.1.0 = STRING: "ok"\nrandom words\n', ":2: not an 'OID = TYPE: value'"),
    ('.1.3.6.1.2.1.1.1.0 = STRING: "never closed\n', ":1: unterminated quoted string"),
    (".1.3.6.1.2.1.1.1.0 = Weird: 1\n", "unsupported snmpwalk type 'Weird'"),
    (".1.3.6.1.2.1.1.3.0 = Counter32: many\n", "expected a number"),
])
def test_snmpwalk_errors_name_the_line(text, message):
    with pytest.raises(RecordingError, match=message):
        parse_snmpwalk(text)


def test_missing_file_is_a_recording_error(tmp_path):
    with pytest.raises(RecordingError, match="No such file"):
        load_recording(tmp_path / "absent.snmprec")


@given(st.text(max_size=400))
@settings(max_examples=300, deadline=None)
def test_snmprec_reader_raises_only_recording_error(text):
    with contextlib.suppress(RecordingError):
        parse_snmprec(text)


LINE = st.builds(lambda oid, kind, value: f".1.3.6.{oid} = {kind}: {value}",
                 st.integers(0, 99), st.sampled_from(["STRING", "INTEGER", "Hex-STRING", "OID",
                                                      "Timeticks", "Gauge32", "IpAddress"]),
                 st.text(max_size=30))


@given(st.lists(st.one_of(LINE, st.text(max_size=40)), max_size=8))
@settings(max_examples=300, deadline=None)
def test_snmpwalk_reader_raises_only_recording_error(lines):
    with contextlib.suppress(RecordingError):
        parse_snmpwalk("\n".join(lines))
