"""The provider fetcher against a CSAF provider on 127.0.0.1: retries with backoff, a request
rate limit, ETag / Last-Modified conditional requests and incremental updates."""

from __future__ import annotations

import hashlib
import http.server
import itertools
import json
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import otaudit.server.advisories.db  # noqa: F401  (tables on Base before init_db)
from otaudit.server.advisories.db import AdvisoryRow, FetchStateRow
from otaudit.server.advisories.importer import import_source
from otaudit.server.advisories.sources import Fetcher, FetchError
from otaudit.server.db import init_db, make_engine, session_factory

FIXTURES = Path(__file__).parent.parent / "fixtures" / "csaf"
NAMES = ["icsa-19-183-01.json", "icsa-21-152-01.json", "icsa-22-207-04.json"]


class _Provider(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]
    fail: dict[str, list[tuple[int, dict[str, str]]]]  # path -> answers to give first
    log: list[tuple[str, float, dict[str, str], int]]  # path, time, request headers, status


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Provider
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path
        pending = self.server.fail.get(path)
        if pending:
            status, headers = pending.pop(0)
            self._answer(path, status, b"", headers)
            return
        body = self.server.files.get(path)
        if body is None:
            self._answer(path, 404, b"", {})
            return
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        modified = formatdate(1_700_000_000 + len(body), usegmt=True)
        if self.headers.get("If-None-Match") == etag:
            self._answer(path, 304, b"", {"ETag": etag})
            return
        self._answer(path, 200, body, {"ETag": etag, "Last-Modified": modified})

    def _answer(self, path: str, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.server.log.append((path, time.monotonic(), dict(self.headers), status))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[tuple[str, _Provider]]:
    server = _Provider(("127.0.0.1", 0), _Handler)
    server.files, server.fail, server.log = {}, {}, []
    base = f"http://127.0.0.1:{server.server_address[1]}"
    _publish(server, base, {n: "2024-01-01T00:00:00Z" for n in NAMES})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base + "/feed.json", server
    finally:
        server.shutdown()
        server.server_close()


def _publish(server: _Provider, base: str, updated: dict[str, str],
             docs: dict[str, bytes] | None = None) -> None:
    entries = []
    for name, when in updated.items():
        data = (docs or {}).get(name) or (FIXTURES / name).read_bytes()
        server.files[f"/docs/{name}"] = data
        server.files[f"/docs/{name}.sha512"] = hashlib.sha512(data).hexdigest().encode()
        entries.append({"id": name, "updated": when, "link": [
            {"rel": "self", "href": f"{base}/docs/{name}"},
            {"rel": "hash", "href": f"{base}/docs/{name}.sha512"}]})
    server.files["/feed.json"] = json.dumps({"feed": {"id": "test", "entry": entries}}).encode()


def _requests(server: _Provider, since: int = 0) -> list[str]:
    return [path for path, *_ in server.log[since:]]


@pytest.fixture
def sessions(sqlite_url: str) -> Any:
    engine = make_engine(sqlite_url)
    init_db(engine)
    yield session_factory(engine)
    engine.dispose()


def _import(sessions: Any, url: str, **fetcher: Any) -> Any:
    with sessions.begin() as session:
        return import_source(session, url, fetcher=Fetcher(backoff=0.01, rate=0, **fetcher)
                             if fetcher else None)


def test_second_run_asks_conditionally_and_downloads_nothing(
        provider: tuple[str, _Provider], sessions: Any) -> None:
    url, server = provider
    first = _import(sessions, url)
    assert (first.imported, first.rejected) == (3, [])
    with sessions() as session:
        state = {r.url: r for r in session.scalars(sa.select(FetchStateRow))}
    assert state[url].etag and state[url].last_modified
    assert all(state[f"{url.rsplit('/', 1)[0]}/docs/{n}"].updated == "2024-01-01T00:00:00Z"
               for n in NAMES)
    mark = len(server.log)
    second = _import(sessions, url)
    assert second.not_modified and second.documents == 0 and second.requests == 1
    (path, _, headers, status), = server.log[mark:]
    assert (path, status) == ("/feed.json", 304)
    assert headers["If-None-Match"] == state[url].etag
    assert headers["If-Modified-Since"] == state[url].last_modified


def test_incremental_update_fetches_only_what_changed(provider: tuple[str, _Provider],
                                                      sessions: Any) -> None:
    url, server = provider
    base = url.rsplit("/", 1)[0]
    _import(sessions, url)
    revised = json.loads((FIXTURES / NAMES[1]).read_text())
    revised["document"]["tracking"]["version"] = "9"
    revised["document"]["tracking"]["current_release_date"] = "2030-01-01T00:00:00Z"
    _publish(server, base, {NAMES[0]: "2024-01-01T00:00:00Z", NAMES[1]: "2030-01-01T00:00:00Z",
                            NAMES[2]: "2024-02-02T00:00:00Z"},
             {NAMES[1]: json.dumps(revised).encode()})
    mark = len(server.log)
    report = _import(sessions, url)
    asked = _requests(server, mark)
    assert f"/docs/{NAMES[0]}" not in asked  # same timestamp: not even asked
    assert f"/docs/{NAMES[1]}" in asked and f"/docs/{NAMES[1]}.sha512" in asked
    statuses = {p: s for p, _, _, s in server.log[mark:]}
    assert statuses[f"/docs/{NAMES[2]}"] == 304  # new timestamp, same bytes: 304, no body
    assert f"/docs/{NAMES[2]}.sha512" not in asked
    assert (report.replaced, report.unchanged, report.imported) == (1, 2, 0)
    with sessions() as session:
        assert session.scalar(sa.select(AdvisoryRow.version).where(
            AdvisoryRow.tracking_id == "ICSA-21-152-01")) == "9"


def test_retries_with_backoff_on_5xx_and_429_not_on_404(provider: tuple[str, _Provider],
                                                        sessions: Any) -> None:
    url, server = provider
    server.fail[f"/docs/{NAMES[0]}"] = [(503, {}), (503, {})]
    server.fail[f"/docs/{NAMES[1]}"] = [(429, {"Retry-After": "0"})]
    server.fail[f"/docs/{NAMES[2]}"] = [(404, {})]
    report = _import(sessions, url, retries=3)
    asked = _requests(server)
    assert asked.count(f"/docs/{NAMES[0]}") == 3 and asked.count(f"/docs/{NAMES[1]}") == 2
    assert asked.count(f"/docs/{NAMES[2]}") == 1  # a 404 is an answer, not a failure
    assert report.imported == 2
    assert dict(report.rejected)[f"{url.rsplit('/', 1)[0]}/docs/{NAMES[2]}"].startswith(
        "HTTP 404")


def test_backoff_doubles_and_gives_up_with_the_reason(provider: tuple[str, _Provider]) -> None:
    url, server = provider
    server.fail["/feed.json"] = [(503, {})] * 10
    slept: list[float] = []
    fetcher = Fetcher(retries=3, backoff=0.5, rate=0, sleep=slept.append)
    with pytest.raises(FetchError, match=r"HTTP 503 fetching .*after 4 attempts"):
        fetcher.get(url)
    assert slept == [0.5, 1.0, 2.0]


def test_request_rate_limit_spaces_all_workers(provider: tuple[str, _Provider]) -> None:
    url, server = provider
    fetcher = Fetcher(rate=20.0)
    items = list(fetcher.documents(url))
    assert len(items) == 3
    times = sorted(t for _, t, _, _ in server.log)
    assert len(times) == 1 + 2 * len(NAMES)  # feed, documents and their hashes
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.04
    assert times[-1] - times[0] >= 0.05 * (len(times) - 1) * 0.9


def test_rolie_signature_links_are_read_and_verified(provider: tuple[str, _Provider],
                                                     sessions: Any) -> None:
    import warnings

    import pysequoia

    from otaudit.server.advisories.openpgp import Keyring, SignatureCheck

    url, server = provider
    base = url.rsplit("/", 1)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        key = pysequoia.Tsk.generate("CSAF Provider <csaf@provider.example>")
    feed = json.loads(server.files["/feed.json"])
    for entry in feed["feed"]["entry"]:
        name = entry["id"]
        data = server.files[f"/docs/{name}"]
        if name == NAMES[2]:
            data = data + b"\n"  # the signed bytes differ from the served ones
        server.files[f"/docs/{name}.asc"] = pysequoia.sign(
            key.signer(), data, mode=pysequoia.SignatureMode.DETACHED)
        entry["link"].append({"rel": "signature", "href": f"{base}/docs/{name}.asc"})
    server.files["/feed.json"] = json.dumps(feed).encode()
    check = SignatureCheck("require", Keyring([key.extract_certificate()]))
    with sessions.begin() as session:
        report = import_source(session, url, check=check,
                               fetcher=Fetcher(rate=0, signatures=check.wants_signatures))
    assert report.imported == 2 and report.signatures == {"valid": 2, "invalid": 1}
    assert dict(report.rejected)[f"{base}/docs/{NAMES[2]}"].startswith(
        "OpenPGP signature invalid")
    assert sum(p.endswith(".asc") for p in _requests(server)) == 3


def test_directory_distribution_is_incremental_by_changes_csv(
        provider: tuple[str, _Provider], sessions: Any) -> None:
    """provider-metadata.json -> directory_url -> changes.csv: only changed dates are fetched."""
    url, server = provider
    base = url.rsplit("/", 1)[0]
    metadata = f"{base}/.well-known/csaf/provider-metadata.json"
    server.files["/.well-known/csaf/provider-metadata.json"] = json.dumps(
        {"distributions": [{"directory_url": f"{base}/docs/"}]}).encode()
    server.files["/docs/changes.csv"] = "".join(
        f'"{n}","2024-01-01T00:00:00Z"\n' for n in NAMES).encode()
    assert _import(sessions, metadata).imported == 3
    server.files["/docs/changes.csv"] = "".join(
        f'"{n}","{"2024-03-03T00:00:00Z" if n == NAMES[0] else "2024-01-01T00:00:00Z"}"\n'
        for n in NAMES).encode()
    mark = len(server.log)
    report = _import(sessions, metadata)
    asked = _requests(server, mark)
    assert asked[:2] == ["/.well-known/csaf/provider-metadata.json", "/docs/changes.csv"]
    assert [p for p in asked[2:] if p.endswith(".json")] == [f"/docs/{NAMES[0]}"]
    assert report.unchanged == 3 and report.imported == 0  # the one asked answered 304
