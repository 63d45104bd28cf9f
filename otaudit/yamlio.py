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
_CONSTRUCTOR = yaml.SafeLoader("")  # used only for its scalar constructors (stateless)


class _Reader:
    """Builds values and the line map straight from the parser's events.

    No node tree is composed (PyYAML's ``compose`` keeps every node with two marks in
    memory until the end: ~10 MiB for a 1,000-asset inventory, most of it kept by the
    allocator afterwards); only the anchors' values are kept.
    """

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.lines: dict[Location, int] = {}
        self.anchors: dict[str, Any] = {}

    def node(self, loc: Location) -> Any:
        event = self.loader.get_event()
        line = event.start_mark.line + 1
        self.lines[loc] = line
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in self.anchors:
                raise YamlError(f"line {line}: unknown alias *{event.anchor}")
            return self.anchors[event.anchor]
        if isinstance(event, yaml.ScalarEvent):
            value = self.scalar(event)
        elif isinstance(event, yaml.SequenceStartEvent):
            value = []
            self.remember(event, value)
            while not isinstance(self.loader.peek_event(), yaml.SequenceEndEvent):
                value.append(self.node((*loc, len(value))))
            self.loader.get_event()
            return value
        elif isinstance(event, yaml.MappingStartEvent):
            value = {}
            self.remember(event, value)
            while not isinstance(self.loader.peek_event(), yaml.MappingEndEvent):
                self.entry(value, loc)
            self.loader.get_event()
            return value
        else:  # the parser yields only these inside a document
            raise YamlError(f"line {line}: unexpected YAML event {type(event).__name__}")
        self.remember(event, value)
        return value

    def entry(self, mapping: dict[Any, Any], loc: Location) -> None:
        key_event = self.loader.peek_event()
        line = key_event.start_mark.line + 1
        if not isinstance(key_event, yaml.ScalarEvent):
            raise YamlError(f"line {line}: a mapping key must be a plain value, not a list "
                            "or mapping")
        key = self.scalar(self.loader.get_event())
        if key in mapping:
            raise YamlError(f"line {line}: duplicate key {key!r}")
        mapping[key] = self.node((*loc, key))
        self.lines[(*loc, key)] = line

    def scalar(self, event: yaml.ScalarEvent) -> Any:
        """The value of a scalar: int, float, bool, null, timestamp or str (YAML 1.1 rules)."""
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        construct = (_CONSTRUCTOR.yaml_constructors.get(tag)
                     or _CONSTRUCTOR.yaml_constructors[None])
        try:
            return construct(_CONSTRUCTOR, node)
        except ValueError as exc:  # e.g. a date with month 13
            raise YamlError(f"line {event.start_mark.line + 1}: invalid value {event.value!r}: "
                            f"{exc}") from None

    def remember(self, event: Any, value: Any) -> None:
        if event.anchor:
            self.anchors[event.anchor] = value


def _yaml_error(exc: yaml.YAMLError) -> YamlError:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark else ""
    return YamlError(f"{where}invalid YAML: {getattr(exc, 'problem', exc)}")


def parse_yaml(text: str, source: str = "<string>") -> YamlDoc:
    """Parse one YAML document safely; raise ``YamlError`` with the line on any error."""
    loader = _LOADER(text)
    try:
        loader.get_event()  # StreamStart
        if isinstance(loader.peek_event(), yaml.StreamEndEvent):
            return YamlDoc(None, {}, source)
        loader.get_event()  # DocumentStart
        reader = _Reader(loader)
        data = reader.node(())
        loader.get_event()  # DocumentEnd
        if not isinstance(loader.peek_event(), yaml.StreamEndEvent):
            event = loader.peek_event()
            raise YamlError(f"line {event.start_mark.line + 1}: expected a single document "
                            "in the file, but found another")
    except yaml.YAMLError as exc:  # syntax errors, unknown !tags
        raise _yaml_error(exc) from None
    finally:
        loader.dispose()
    return YamlDoc(data, reader.lines, source)


def load_yaml(path: str | Path) -> YamlDoc:
    """Parse a YAML file (UTF-8); ``YamlError`` with the line on bad syntax or encoding."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YamlError(f"line {line}: byte 0x{data[exc.start]:02x} at offset {exc.start} is "
                        "not UTF-8 (save the file as UTF-8)") from None
    return parse_yaml(text, str(path))
