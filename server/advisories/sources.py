"""Where advisories come from: a file, a folder, a ``.tar.gz``, or a CSAF provider URL.

A URL may be a ROLIE feed (``feed.entry[].link`` with ``rel`` self / hash / signature), a
``provider-metadata.json`` (its ROLIE feeds, or a directory distribution read through
``changes.csv`` / ``index.txt``), or one advisory. When a ``.sha512`` (or ``.sha256``) is
offered — a ``hash`` link, a sidecar file next to a local document or archive member — the
document must match it, else it is rejected with the reason. A detached OpenPGP signature
(``.asc``: a ``signature`` link, ``<url>.asc``, a sidecar file or member) travels with the
document; ``openpgp`` checks it.

Fetching (``Fetcher``, standard library ``urllib``, http(s) only, in parallel) follows what
the CSAF ecosystem's reference downloader does: retries with exponential backoff on network
errors, 429 and 5xx (``Retry-After`` honoured), a request-rate limit shared by all workers,
conditional requests (``If-None-Match`` / ``If-Modified-Since`` from the last run's ETag and
Last-Modified), and an incremental update: an entry whose feed timestamp (``updated`` in ROLIE,
the date in ``changes.csv``) did not change since the last run is not requested at all, and a
``304 Not Modified`` document is not downloaded. The state of the last run is a dict per URL
that the importer keeps in ``advisory_fetch_state``.

Limits: one document at most ``MAX_DOCUMENT_BYTES``; a tar member above it is refused from its
header without being read, and at most ``MAX_ARCHIVE_BYTES`` of documents are kept from one
archive.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_DOCUMENT_BYTES = 32 * 1024 * 1024  # one advisory (the CISA corpus' largest is 0.7 MB)
MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024  # decompressed documents read from one archive
MAX_SIGNATURE_BYTES = 64 * 1024
FETCH_WORKERS = 8
FETCH_RETRIES = 3  # further attempts after the first, on network errors, 429 and 5xx
FETCH_BACKOFF = 1.0  # seconds before the first retry, doubled each time (capped at 30 s)
FETCH_RATE = 50.0  # requests per second at most, all workers together
USER_AGENT = "otaudit-advisories/1"


@dataclass
class Item:
    """One document to import: its bytes, or why it could not be read."""

    name: str
    data: bytes | None = None
    error: str | None = None
    signature: bytes | None = None  # the detached OpenPGP signature, when one was read
    unchanged: bool = False  # the provider says it did not change since the last run
    signature_offered: bool = False  # a signature link exists (read or not)


class SourceError(Exception):
    """The source itself cannot be read (missing path, unreachable feed)."""


def iter_source(source: str, timeout: float = 30.0, fetcher: Fetcher | None = None
                ) -> Iterator[Item]:
    """Every document of ``source``, in a stable order (URLs: through ``fetcher``)."""
    if source.startswith(("http://", "https://")):
        yield from (fetcher or Fetcher(timeout=timeout)).documents(source)
        return
    path = Path(source)
    if not path.exists():
        raise SourceError(f"{source}: no such file or folder")
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*.json") if p.is_file()):
            yield _local(file, str(file.relative_to(path)))
    elif path.name.endswith((".tar.gz", ".tgz", ".tar")):
        yield from _iter_tar(path)
    else:
        yield _local(path, path.name)


def _too_large(size: int) -> str:
    return (f"the document is {size:,} bytes, larger than the limit of {MAX_DOCUMENT_BYTES:,} "
            "bytes for one advisory")


def _local(file: Path, name: str) -> Item:
    size = file.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        return Item(name, None, _too_large(size))
    data = file.read_bytes()
    asc = file.with_name(file.name + ".asc")
    signature = asc.read_bytes()[:MAX_SIGNATURE_BYTES + 1] if asc.is_file() else None
    for algo in ("sha512", "sha256"):
        sidecar = file.with_name(file.name + "." + algo)
        if sidecar.is_file():
            error = check_hash(data, sidecar.read_text(errors="replace"), algo)
            return Item(name, None if error else data, error, signature)
    return Item(name, data, signature=signature)


def _iter_tar(path: Path) -> Iterator[Item]:
    """The archive's documents; a member above the size limits is rejected without reading it.

    A tar header states each member's size, so a gzip bomb (a small archive whose member
    decompresses to gigabytes) is refused before a byte of it is kept.
    """
    contents: dict[str, bytes] = {}
    refused: dict[str, str] = {}
    kept = 0
    try:  # one sequential pass: random access into a gzip stream is quadratic
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if not (member.isfile() and member.name.endswith((".json", ".sha512",
                                                                   ".sha256", ".asc"))):
                    continue
                if member.size > MAX_DOCUMENT_BYTES:
                    refused[member.name] = _too_large(member.size)
                    continue
                if kept + member.size > MAX_ARCHIVE_BYTES:
                    refused[member.name] = (f"the archive holds more than {MAX_ARCHIVE_BYTES:,} "
                                            "bytes of documents; the rest is not read")
                    continue
                reader = archive.extractfile(member)
                contents[member.name] = reader.read(MAX_DOCUMENT_BYTES + 1) if reader else b""
                kept += len(contents[member.name])
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise SourceError(f"{path}: not a readable archive ({exc})") from exc
    for name in sorted(n for n in refused if n.endswith(".json")):
        yield Item(name, None, refused[name])
    for name in sorted(n for n in contents if n.endswith(".json")):
        data = contents[name]
        signature = contents.get(f"{name}.asc")
        item = Item(name, data, signature=signature)
        for algo in ("sha512", "sha256"):
            side = contents.get(f"{name}.{algo}")
            if side is not None:
                error = check_hash(data, side.decode(errors="replace"), algo)
                item = Item(name, None if error else data, error, signature)
                break
        yield item


def check_hash(data: bytes, published: str, algo: str = "sha512") -> str | None:
    """None when ``data`` matches the published ``<hex>  <file name>`` line, else why not."""
    expected = published.strip().split()[0].lower() if published.strip() else ""
    actual = hashlib.new(algo, data).hexdigest()
    if not expected:
        return f"{algo} mismatch: the published .{algo} file is empty"
    if expected != actual:
        return (f"{algo} mismatch: the published .{algo} says {expected[:16]}…, "
                f"the document hashes to {actual[:16]}…")
    return None


# ---- URLs --------------------------------------------------------------------------------

class FetchError(Exception):
    pass


@dataclass
class Response:
    status: int  # 200, or 304 when a conditional request found it unchanged
    data: bytes = b""
    etag: str | None = None
    last_modified: str | None = None


State = dict[str, dict[str, Any]]  # url -> {"etag", "last_modified", "updated", "sha256"}


class Fetcher:
    """HTTP(S) GETs with retries and backoff, a shared rate limit and conditional requests.

    ``state`` is what the last run saw per URL; ``updates`` collects what this run saw, for
    the caller to keep. ``requests`` counts the HTTP requests sent (retries included).
    """

    def __init__(self, timeout: float = 30.0, state: State | None = None,
                 retries: int = FETCH_RETRIES, backoff: float = FETCH_BACKOFF,
                 rate: float = FETCH_RATE, signatures: bool = True,
                 sleep: Any = time.sleep) -> None:
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.state: State = state or {}
        self.updates: State = {}
        self.signatures = signatures
        self.requests = 0
        self.not_modified: list[str] = []
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0

    # -- one request ------------------------------------------------------------------------

    def _pace(self) -> None:
        """Wait for this request's slot: at most ``rate`` requests per second in all."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
            self.requests += 1
        if slot > now:
            self._sleep(slot - now)

    def get(self, url: str, conditional: bool = False) -> Response:
        """GET ``url``; with ``conditional``, ask with the last run's ETag / Last-Modified."""
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise FetchError(f"refusing to fetch {url!r}: only http and https are allowed")
        headers = {"User-Agent": USER_AGENT}
        known = self.state.get(url) or {}
        if conditional and known.get("etag"):
            headers["If-None-Match"] = known["etag"]
        if conditional and known.get("last_modified"):
            headers["If-Modified-Since"] = known["last_modified"]
        attempt = 0
        while True:
            self._pace()
            try:
                return self._once(url, headers)
            except _Retry as exc:
                if attempt >= self.retries:
                    raise FetchError(f"{exc.reason} fetching {url} (after {attempt + 1} "
                                     "attempts)") from None
                delay = min(30.0, exc.after if exc.after is not None
                            else self.backoff * (2 ** attempt))
                attempt += 1
                self._sleep(delay)

    def _once(self, url: str, headers: dict[str, str]) -> Response:
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data = response.read(MAX_DOCUMENT_BYTES + 1)
                etag = response.headers.get("ETag")
                modified = response.headers.get("Last-Modified")
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return Response(304)
            if exc.code == 429 or exc.code >= 500:
                raise _Retry(f"HTTP {exc.code}", _retry_after(exc.headers)) from None
            raise FetchError(f"HTTP {exc.code} fetching {url}") from None
        except (urllib.error.URLError, OSError) as exc:  # timeouts, refused, reset
            raise _Retry(f"cannot fetch: {getattr(exc, 'reason', exc)}") from None
        except ValueError as exc:
            raise FetchError(f"cannot fetch {url}: {exc}") from None
        if len(data) > MAX_DOCUMENT_BYTES:
            raise FetchError(f"{url} is larger than {MAX_DOCUMENT_BYTES} bytes")
        return Response(200, data, etag, modified)

    # -- a provider's documents ---------------------------------------------------------------

    def documents(self, url: str) -> Iterator[Item]:
        """The documents behind ``url`` (an advisory, a ROLIE feed or provider metadata)."""
        # Only a feed or a document that did not change means nothing changed; provider
        # metadata stays the same while the feeds and directories it names change.
        kind = (self.state.get(url) or {}).get("updated")
        try:
            top = self.get(url, conditional=kind in (_FEED, _DOCUMENT))
        except FetchError as exc:
            raise SourceError(str(exc)) from exc
        if top.status == 304:
            self.not_modified.append(url)
            self.updates[url] = dict(self.state[url])
            return
        try:
            doc = json.loads(top.data)
        except (ValueError, RecursionError) as exc:
            raise SourceError(f"{url} is not JSON: {exc}"[:500]) from exc
        if isinstance(doc, dict) and "document" in doc:
            self._remember(url, top, _DOCUMENT)
            yield Item(url, top.data)
            return
        entries = self._entries(doc, url)
        self._remember(url, top, _FEED if isinstance(doc.get("feed"), dict) else _METADATA)
        with ThreadPoolExecutor(FETCH_WORKERS) as pool:
            yield from pool.map(self._fetch_entry, entries)

    def _remember(self, url: str, response: Response, updated: str | None,
                  data: bytes | None = None) -> None:
        self.updates[url] = {
            "etag": response.etag, "last_modified": response.last_modified, "updated": updated,
            "sha256": hashlib.sha256(data).hexdigest() if data is not None else None}

    def _entries(self, doc: Any, base: str) -> list[_Entry]:
        if isinstance(doc, dict) and isinstance(doc.get("feed"), dict):
            return _rolie_entries(doc["feed"], base)
        if isinstance(doc, dict) and "distributions" in doc:
            out: list[_Entry] = []
            for dist in doc.get("distributions") or []:
                for feed in ((dist.get("rolie") or {}).get("feeds") or []):
                    feed_url = urllib.parse.urljoin(base, feed.get("url", ""))
                    try:
                        feed_doc = json.loads(self.get(feed_url).data)
                    except (FetchError, ValueError) as exc:
                        raise SourceError(f"ROLIE feed {feed_url}: {exc}") from exc
                    out += _rolie_entries(feed_doc.get("feed") or {}, feed_url)
                if dist.get("directory_url"):
                    out += self._directory_entries(
                        urllib.parse.urljoin(base, dist["directory_url"]))
            return out
        raise SourceError(f"{base} is neither a CSAF advisory, a ROLIE feed nor provider "
                          "metadata")

    def _directory_entries(self, directory: str) -> list[_Entry]:
        directory = directory.rstrip("/") + "/"
        try:
            text = self.get(directory + "changes.csv").data.decode(errors="replace")
            rows = [(row[0], row[1] if len(row) > 1 else None)
                    for row in csv.reader(io.StringIO(text)) if row]
        except FetchError:
            try:
                text = self.get(directory + "index.txt").data.decode(errors="replace")
            except FetchError as exc:
                raise SourceError(f"{directory}: neither changes.csv nor index.txt ({exc})") \
                    from exc
            rows = [(line.strip(), None) for line in text.splitlines() if line.strip()]
        return [_Entry(directory + name, directory + name + ".sha512", "sha512",
                       hash_optional=True, signature_url=directory + name + ".asc",
                       signature_optional=True, updated=updated)
                for name, updated in rows if name.endswith(".json")]

    def _fetch_entry(self, entry: _Entry) -> Item:
        known = self.state.get(entry.url) or {}
        if entry.updated and known.get("updated") == entry.updated and known.get("sha256"):
            self.updates[entry.url] = dict(known)  # the feed says: not changed since last run
            return Item(entry.url, unchanged=True)
        try:
            response = self.get(entry.url, conditional=True)
        except FetchError as exc:
            return Item(entry.url, None, str(exc))
        if response.status == 304:
            self.updates[entry.url] = {**known, "updated": entry.updated}
            return Item(entry.url, unchanged=True)
        data = response.data
        if entry.hash_url:
            try:
                published = self.get(entry.hash_url).data.decode(errors="replace")
            except FetchError as exc:
                if not entry.hash_optional:
                    return Item(entry.url, None, f"the offered hash is unavailable: {exc}")
                published = None
            if published is not None:
                error = check_hash(data, published, entry.hash_algo)
                if error:
                    return Item(entry.url, None, error)
        signature = None
        if self.signatures and entry.signature_url:
            try:  # an unavailable signature is a missing one: the policy decides
                signature = self.get(entry.signature_url).data[:MAX_SIGNATURE_BYTES + 1]
            except FetchError:
                signature = None
        self._remember(entry.url, response, entry.updated, data)
        return Item(entry.url, data, signature=signature,
                    signature_offered=bool(entry.signature_url and not entry.signature_optional)
                    or signature is not None)


_FEED, _DOCUMENT, _METADATA = "(feed)", "(document)", "(provider metadata)"  # top-level kinds


class _Retry(Exception):
    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.after = reason, after


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def fetch(url: str, timeout: float = 30.0) -> bytes:
    """GET ``url`` (http/https only, retries, size limit); FetchError with a clear reason."""
    return Fetcher(timeout=timeout).get(url).data


@dataclass
class _Entry:
    url: str
    hash_url: str | None = None
    hash_algo: str = "sha512"
    hash_optional: bool = False
    signature_url: str | None = None
    signature_optional: bool = False  # a guessed "<url>.asc", not a link the provider gave
    updated: str | None = None


def _rolie_entries(feed: dict[str, Any], base: str) -> list[_Entry]:
    out = []
    for entry in feed.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        links = {link.get("rel"): link.get("href") for link in entry.get("link") or []
                 if isinstance(link, dict)}
        doc_url = links.get("self") or (entry.get("content") or {}).get("src")
        if not doc_url:
            continue
        hash_url = None
        algo = "sha512"
        for link in entry.get("link") or []:
            if isinstance(link, dict) and link.get("rel") == "hash" and link.get("href"):
                hash_url = link["href"]
                algo = "sha256" if hash_url.endswith(".sha256") else "sha512"
                if algo == "sha512":
                    break
        sig = links.get("signature")
        updated = entry.get("updated")
        out.append(_Entry(urllib.parse.urljoin(base, doc_url),
                          urllib.parse.urljoin(base, hash_url) if hash_url else None, algo,
                          signature_url=urllib.parse.urljoin(base, sig) if sig else None,
                          updated=str(updated)[:64] if updated else None))
    return out
