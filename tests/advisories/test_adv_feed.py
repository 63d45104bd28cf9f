"""Import from a CSAF provider over HTTP: the real ROLIE feed served on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import otaudit.server.advisories.db  # noqa: F401
from otaudit.server.advisories.db import AdvisoryRow, ImportRejectionRow
from otaudit.server.advisories.importer import import_source, load_index
from otaudit.server.db import init_db, make_engine, session_factory

ORIGIN = "https://raw.githubusercontent.com/cisagov/CSAF/develop/csaf_files/OT/white/"
SERVED = 60  # advisories served (a subset keeps the test fast)
MISSING = 3  # feed entries whose document the server does not have (held-out files)
TAMPERED = "icsa-24-298-03.json"  # served with a wrong .sha512


class _Provider(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]
    requests: list[str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Provider

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def provider(shared_dir: Path) -> Iterator[tuple[str, _Provider, dict[str, Any]]]:
    corpus = shared_dir / "advisories" / "corpus"
    feed = json.loads(gzip.decompress((corpus / "rolie-feed-example.json.gz").read_bytes()))
    with tarfile.open(corpus / "cisa-ot-csaf.tar.gz") as tar:
        docs = {Path(m.name).name: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers() if m.name.endswith(".json")}
    server = _Provider(("127.0.0.1", 0), _Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}/csaf/"
    entries, served, missing = [], 0, 0
    for entry in feed["feed"]["entry"]:
        name = entry["link"][0]["href"].rsplit("/", 1)[-1]
        if name in docs and (served < SERVED or name == TAMPERED):
            served += 1
        elif name not in docs and missing < MISSING:
            missing += 1
        else:
            continue
        entries.append(json.loads(json.dumps(entry).replace(ORIGIN, base)))
    feed["feed"]["entry"] = entries
    files: dict[str, bytes] = {}
    for entry in entries:
        links = {link["rel"]: link["href"] for link in entry["link"]}
        path = links["self"].removeprefix(f"http://127.0.0.1:{server.server_address[1]}")
        name = path.rsplit("/", 1)[-1]
        if name in docs:
            files[path] = docs[name]
            digest = hashlib.sha512(docs[name]).hexdigest()
            if name == TAMPERED:
                digest = hashlib.sha512(b"tampered").hexdigest()
            files[path + ".sha512"] = f"{digest}  {name}\n".encode()
    feed_url = base + "cisa-csaf-ot-feed-tlp-white.json"
    files["/csaf/cisa-csaf-ot-feed-tlp-white.json"] = json.dumps(feed).encode()
    metadata = {"canonical_url": base + "provider-metadata.json", "distributions": [
        {"rolie": {"feeds": [{"tlp_label": "WHITE", "url": feed_url}]}}],
        "metadata_version": "2.0", "publisher": {"name": "test"}, "role": "csaf_trusted_provider"}
    files["/csaf/provider-metadata.json"] = json.dumps(metadata).encode()
    server.files, server.requests = files, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield feed_url, server, {"served": served, "missing": missing}
    finally:
        server.shutdown()
        server.server_close()


def test_rolie_feed_import_checks_sha512(provider: tuple[str, _Provider, dict[str, Any]],
                                         sqlite_url: str) -> None:
    feed_url, server, counts = provider
    engine = make_engine(sqlite_url)
    init_db(engine)
    with session_factory(engine).begin() as session:
        report = import_source(session, feed_url)
    assert report.documents == counts["served"] + counts["missing"]
    reasons = {name.rsplit("/", 1)[-1]: reason for name, reason in report.rejected}
    assert reasons[TAMPERED].startswith("sha512 mismatch")
    assert sum(r.startswith("HTTP 404") for r in reasons.values()) == counts["missing"]
    assert report.imported == counts["served"] - 1
    with session_factory(engine)() as session:
        ids = set(session.scalars(sa.select(AdvisoryRow.tracking_id)))
        stored = {r.document.rsplit("/", 1)[-1]: r.reason
                  for r in session.scalars(sa.select(ImportRejectionRow))}
    assert "ICSA-24-298-03" not in ids
    assert stored[TAMPERED].startswith("sha512 mismatch")
    assert any(p.endswith(".sha512") for p in server.requests)
    assert not any(p.endswith(".asc") for p in server.requests)
    engine.dispose()


def test_provider_metadata_url_leads_to_the_same_documents(
        provider: tuple[str, _Provider, dict[str, Any]]) -> None:
    feed_url, _, counts = provider
    index, report = load_index(feed_url.rsplit("/", 1)[0] + "/provider-metadata.json")
    assert len(index) == counts["served"] - 1
    assert len(report.rejected) == counts["missing"] + 1


def test_directory_distribution_from_provider_metadata(tmp_path: Path) -> None:
    """``directory_url`` + ``changes.csv``; a sidecar hash that does not match rejects."""
    fixtures = Path(__file__).parent.parent / "fixtures" / "csaf"
    names = sorted(p.name for p in fixtures.glob("*.json"))
    server = _Provider(("127.0.0.1", 0), _Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    files: dict[str, bytes] = {}
    for i, name in enumerate(names):
        data = (fixtures / name).read_bytes()
        files[f"/white/2024/{name}"] = data
        if i == 0:
            files[f"/white/2024/{name}.sha512"] = b"0" * 128 + b"  x.json\n"
        elif i % 2:
            files[f"/white/2024/{name}.sha512"] = hashlib.sha512(data).hexdigest().encode()
    files["/white/2024/changes.csv"] = "".join(
        f'"{n}","2024-10-24T00:00:00Z"\n' for n in names).encode()
    files["/.well-known/csaf/provider-metadata.json"] = json.dumps({
        "distributions": [{"directory_url": f"{base}/white/2024/"}]}).encode()
    server.files, server.requests = files, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        index, report = load_index(f"{base}/.well-known/csaf/provider-metadata.json")
    finally:
        server.shutdown()
        server.server_close()
    assert len(index) == len(names) - 1
    assert [r for _, r in report.rejected] == [
        "sha512 mismatch: the published .sha512 says 0000000000000000…, the document hashes to "
        + hashlib.sha512((fixtures / names[0]).read_bytes()).hexdigest()[:16] + "…"]
