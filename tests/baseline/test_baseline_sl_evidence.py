"""Evidence lines of SL reasons: long values cut at exactly 80 characters (issue 23)."""

from __future__ import annotations

import pytest

from otaudit.server.baseline.model import EvidenceItem, Finding
from otaudit.server.baseline.sl import _evidence_lines


def finding(value: object, present: bool = True, note: str = "") -> Finding:
    return Finding(asset_id="plc-1", zone="cell-1", check_id="OTA-X-001", title="t",
                   status="fail", evidence=[EvidenceItem(fact="f.x", op="eq", expected="y",
                                                         value=value, present=present,
                                                         note=note)])


@pytest.mark.parametrize(("value", "shown"), [
    ("a" * 79, "a" * 79), ("b" * 80, "b" * 80), ("c" * 81, "c" * 77 + "..."),
    ("d" * 200, "d" * 77 + "..."), (True, "true"),
])
def test_values_up_to_80_characters_are_shown_whole(value: object, shown: str) -> None:
    assert _evidence_lines([finding(value)]) == [f"plc-1: f.x eq y -> {shown}"]


@pytest.mark.parametrize(("note", "shown"), [
    ("", "not collected"), ("not collected", "not collected"),
    ("probe timed out", "not collected (probe timed out)")])
def test_missing_values_say_why(note: str, shown: str) -> None:
    assert _evidence_lines([finding(None, False, note)]) == [f"plc-1: f.x eq y -> {shown}"]


def test_each_line_once() -> None:
    assert _evidence_lines([finding("v"), finding("v")]) == ["plc-1: f.x eq y -> v"]
