"""The line-aware YAML loader: same values as PyYAML's safe loader, errors with their line."""

from __future__ import annotations

import datetime

import pytest
import yaml

from otaudit.yamlio import YamlError, parse_yaml

DOCUMENT = """\
site: plant-a
zones:
  - id: cell-1
    sl_t: 2
assets:
  - id: plc-1
    ip: 10.0.0.5
    port: 0x1F6
    weight: 2.5
    enabled: true
    since: 2024-05-01
    note: ~
    tags: [a, "b", 3]
    shared: &ref {x: 1}
    again: *ref
"""


def test_values_match_pyyaml_safe_load() -> None:
    doc = parse_yaml(DOCUMENT)
    assert doc.data == yaml.safe_load(DOCUMENT)
    asset = doc.data["assets"][0]
    assert asset["port"] == 502 and asset["since"] == datetime.date(2024, 5, 1)
    assert asset["enabled"] is True and asset["note"] is None


def test_lines_of_keys_and_items() -> None:
    doc = parse_yaml(DOCUMENT)
    assert doc.line_of(("assets", 0, "port")) == 8
    assert doc.line_of(("zones", 0, "sl_t")) == 4
    assert doc.locate(("assets", 0, "tags", 2)) == "line 13"
    assert doc.line_of(("assets", 0, "missing", "deeper")) == doc.line_of(("assets", 0))


@pytest.mark.parametrize(("text", "expected"), [
    ("a: 1\nb: [\n", "line 3: invalid YAML"),
    ("a: 1\na: 2\n", "line 2: duplicate key 'a'"),
    ("a: 1\n[1, 2]: x\n", "line 2: a mapping key must be a plain value"),
    ("a: 1\nb: !custom x\n", "line 2: invalid YAML: could not determine a constructor"),
    ("a:\n  when: 2024-13-01\n", "line 2: invalid value '2024-13-01'"),
    ("a: 1\nb: *nowhere\n", "line 2: unknown alias"),
    ("a: 1\n---\nb: 2\n", "line 2: expected a single document"),
])
def test_errors_name_the_line(text: str, expected: str) -> None:
    with pytest.raises(YamlError, match=expected.replace("[", r"\[")):
        parse_yaml(text)


def test_anchors_and_aliases_share_the_value() -> None:
    asset = parse_yaml(DOCUMENT).data["assets"][0]
    assert asset["again"] == {"x": 1} and asset["again"] is asset["shared"]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_document(text: str) -> None:
    assert parse_yaml(text).data is None
