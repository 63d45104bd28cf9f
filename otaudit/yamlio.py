"""YAML loading that remembers line numbers, so errors can say where they are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

Location = tuple[str | int, ...]


class YamlDoc:
    """Parsed YAML plus a map from each key path to its 1-based line number."""

    def __init__(self, data: Any, lines: dict[Location, int], source: str):
        self.data = data
        self.lines = lines
        self.source = source

    def line_of(self, loc: Location) -> int | None:
        """Line of the deepest known prefix of ``loc``."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), None)

    def locate(self, loc: Location) -> str | None:
        line = self.line_of(loc)
        return f"line {line}" if line else None


class YamlError(ValueError):
    pass


# libyaml's C parser when PyYAML was built with it (same results, ~10x faster).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _walk(node: yaml.Node, loc: Location, lines: dict[Location, int]) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlError(f"line {key_node.start_mark.line + 1}: a mapping key must be "
                                "a plain value, not a list or mapping")
            key = _scalar(key_node)
            if key in out:
                raise YamlError(
                    f"line {key_node.start_mark.line + 1}: duplicate key {key!r}"
                )
            out[key] = _walk(value_node, (*loc, key), lines)
            lines[(*loc, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*loc, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


_CONSTRUCTOR = yaml.SafeLoader("")  # used only for its scalar constructors (stateless)


def _scalar(node: yaml.Node) -> Any:
    """The value of a resolved scalar node: int, float, bool, null, timestamp or str."""
    construct = (_CONSTRUCTOR.yaml_constructors.get(node.tag)
                 or _CONSTRUCTOR.yaml_constructors[None])
    try:
        return construct(_CONSTRUCTOR, node)
    except ValueError as exc:  # e.g. a date with month 13
        raise YamlError(f"line {node.start_mark.line + 1}: invalid value {node.value!r}: "
                        f"{exc}") from None


def _yaml_error(exc: yaml.YAMLError) -> YamlError:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark else ""
    return YamlError(f"{where}invalid YAML: {getattr(exc, 'problem', exc)}")


def parse_yaml(text: str, source: str = "<string>") -> YamlDoc:
    """Parse one YAML document safely; raise ``YamlError`` with the line on syntax errors."""
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc) from None
    if node is None:
        return YamlDoc(None, {}, source)
    lines: dict[Location, int] = {}
    try:
        data = _walk(node, (), lines)
    except yaml.YAMLError as exc:  # e.g. an unknown !tag or an invalid timestamp
        raise _yaml_error(exc) from None
    return YamlDoc(data, lines, source)


def load_yaml(path: str | Path) -> YamlDoc:
    path = Path(path)
    return parse_yaml(path.read_text(encoding="utf-8"), str(path))
