"""SZL 0x0232/4 at every legal value and one past each limit (issue 23: boundaries first)."""

from __future__ import annotations

import struct

import pytest

from otaudit.probes.base import ParseError
from otaudit.probes.s7.parse import MAX_RECORDS, parse_protection, split_records


def protection_list(schal: int, par: int, rel: int, bart: int, anl: int) -> bytes:
    record = struct.pack(">6H", 4, schal, par, rel, bart, anl).ljust(40, b"\0")
    return struct.pack(">HH", 40, 1) + record


@pytest.mark.parametrize("level", [1, 2, 3])
def test_every_protection_level_parses(level: int) -> None:
    p = parse_protection(protection_list(level, level, level, 1, 0))
    assert (p.key_switch, p.parametrised, p.effective) == (level, level, level)
    assert p.meaning == {1: "no protection", 2: "write protection",
                         3: "read/write protection"}[level]


@pytest.mark.parametrize(("position", "name"), [
    (0, "undefined"), (1, "RUN"), (2, "RUN-P"), (3, "STOP"), (4, "MRES")])
def test_every_mode_selector_position(position: int, name: str) -> None:
    assert parse_protection(protection_list(1, 1, 1, position, 0)).mode_selector_name == name


@pytest.mark.parametrize("startup", [0, 1, 2])
def test_every_startup_switch_position(startup: int) -> None:
    assert parse_protection(protection_list(1, 1, 1, 1, startup)).startup_switch == startup


@pytest.mark.parametrize(("values", "field"), [
    ((4, 1, 1, 1, 0), "sch_schal=4"), ((1, 4, 1, 1, 0), "sch_par=4"),
    ((1, 1, 4, 1, 0), "sch_rel=4"), ((1, 1, 1, 5, 0), "bart_sch=5"),
    ((1, 1, 1, 1, 3), "anl_sch=3")])
def test_one_past_each_limit_is_implausible(values: tuple[int, ...], field: str) -> None:
    with pytest.raises(ParseError, match=field):
        parse_protection(protection_list(*values))


def test_level_zero_is_kept_as_undefined() -> None:
    # 0 is below the documented levels: the record is kept and said to be undefined
    assert parse_protection(protection_list(0, 0, 0, 0, 0)).meaning == "undefined (0)"


def test_record_count_limit_is_inclusive() -> None:
    record = bytes(4)
    assert len(split_records(struct.pack(">HH", 4, MAX_RECORDS) + record * MAX_RECORDS,
                             what="x", min_length=4)) == MAX_RECORDS
    with pytest.raises(ParseError, match="implausible record count"):
        split_records(struct.pack(">HH", 4, MAX_RECORDS + 1) + record * (MAX_RECORDS + 1),
                      what="x", min_length=4)


def test_minimum_record_length_is_inclusive() -> None:
    assert split_records(struct.pack(">HH", 12, 1) + bytes(12), what="x", min_length=12)
    with pytest.raises(ParseError, match="record length 11"):
        split_records(struct.pack(">HH", 11, 1) + bytes(11), what="x", min_length=12)


def test_header_of_exactly_four_bytes_is_read() -> None:
    with pytest.raises(ParseError, match="no records"):
        split_records(struct.pack(">HH", 12, 0), what="x", min_length=12)
    with pytest.raises(ParseError, match="3 bytes"):
        split_records(b"\0\0\0", what="x", min_length=12)
