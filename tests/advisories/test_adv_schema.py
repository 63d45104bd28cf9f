"""CSAF 2.0 documents are validated against the official JSON schema, offline."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

import otaudit.server.advisories.db  # noqa: F401  (tables on Base before init_db)
from otaudit.server.advisories import csaf
from otaudit.server.advisories.importer import import_source
from otaudit.server.db import init_db, make_engine, session_factory

FIXTURES = Path(__file__).parent.parent / "fixtures" / "csaf"
GOOD = "icsa-21-152-01.json"


def _doc() -> dict[str, Any]:
    return json.loads((FIXTURES / GOOD).read_text())


def test_every_shipped_fixture_passes_both_checks() -> None:
    for path in sorted(FIXTURES.glob("*.json")):
        assert csaf.validate(json.loads(path.read_text())) == [], path.name


@pytest.mark.parametrize(("change", "where"), [
    (lambda d: d["document"].__setitem__("lang", "not a language tag!"), "document.lang"),
    (lambda d: d["document"]["tracking"].__setitem__("generator", {"engine": {}}),
     "document.tracking.generator.engine"),
    (lambda d: d["vulnerabilities"][0]["scores"][0]["cvss_v3"].__setitem__(
        "baseSeverity", "SEVERE"), "vulnerabilities[0].scores[0].cvss_v3"),
    (lambda d: d["document"]["references"][0].__setitem__("category", "mine"),
     "document.references[0].category"),
])
def test_schema_rejects_what_the_semantic_checks_accept(change: Any, where: str) -> None:
    doc = _doc()
    change(doc)
    assert csaf.semantic_errors(doc) == []
    reasons = csaf.validate(doc)
    assert reasons and all(r.startswith("CSAF 2.0 schema: ") for r in reasons)
    assert any(f": {where}: " in r for r in reasons), reasons


def test_the_schema_never_reaches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the schema validation opened a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    csaf._validator.cache_clear()
    assert csaf.validate(_doc()) == []  # CVSS $refs resolve from the shipped schemas
    registry = jsonschema_rs.Registry([], retriever=csaf._refuse)
    with pytest.raises(Exception, match="nothing is fetched"):
        jsonschema_rs.Draft202012Validator(
            {"$ref": "https://example.invalid/other.json"}, registry=registry)


def test_a_schema_violation_is_a_rejection_with_its_reason(tmp_path: Path,
                                                           sqlite_url: str) -> None:
    bad = _doc()
    bad["document"]["lang"] = "not a language tag!"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    engine = make_engine(sqlite_url)
    init_db(engine)
    with session_factory(engine).begin() as session:
        report = import_source(session, str(tmp_path))
    engine.dispose()
    assert report.imported == 0
    assert report.rejected[0][1].startswith("invalid CSAF: CSAF 2.0 schema: document.lang: ")
