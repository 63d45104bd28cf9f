"""Where advisories come from: a file, a folder, a ``.tar.gz``, or a CSAF provider URL.

A URL may be a ROLIE feed (``feed.entry[].link`` with ``rel`` self / hash / signature), a
``provider-metadata.json`` (its ROLIE feeds, or a directory distribution read through
``changes.csv`` / ``index.txt``), or one advisory. When a ``.sha512`` (or ``.sha256``) is
offered — a ``hash`` link, a sidecar file next to a local document or archive member — the
document must match it, else it is rejected with the reason. OpenPGP signatures (``.asc``) are
not verified. Fetching uses the standard library (``urllib``), http(s) only, in parallel.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tarfile
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
FETCH_WORKERS = 8
USER_AGENT = "otaudit-advisories/1"


@dataclass
class Item:
    """One document to import: its bytes, or why it could not be read."""

    name: str
    data: bytes | None = None
    error: str | None = None


class SourceError(Exception):
    """The source itself cannot be read (missing path, unreachable feed)."""


def iter_source(source: str, timeout: float = 30.0) -> Iterator[Item]:
    """Every document of ``source``, in a stable order."""
    if source.startswith(("http://", "https://")):
        yield from _iter_url(source, timeout)
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
    for algo in ("sha512", "sha256"):
        sidecar = file.with_name(file.name + "." + algo)
        if sidecar.is_file():
            error = check_hash(data, sidecar.read_text(errors="replace"), algo)
            return Item(name, None if error else data, error)
    return Item(name, data)


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
                                                                   ".sha256"))):
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
        item = Item(name, data)
        for algo in ("sha512", "sha256"):
            side = contents.get(f"{name}.{algo}")
            if side is not None:
                error = check_hash(data, side.decode(errors="replace"), algo)
                item = Item(name, None if error else data, error)
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


def fetch(url: str, timeout: float = 30.0) -> bytes:
    """GET ``url`` (http/https only) with a size limit; FetchError with a clear reason."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise FetchError(f"refusing to fetch {url!r}: only http and https are allowed")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"HTTP {exc.code} fetching {url}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"cannot fetch {url}: {reason}") from exc
    if len(data) > MAX_DOCUMENT_BYTES:
        raise FetchError(f"{url} is larger than {MAX_DOCUMENT_BYTES} bytes")
    return data


@dataclass
class _Entry:
    url: str
    hash_url: str | None = None
    hash_algo: str = "sha512"
    hash_optional: bool = False


def _iter_url(url: str, timeout: float) -> Iterator[Item]:
    try:
        data = fetch(url, timeout)
    except FetchError as exc:
        raise SourceError(str(exc)) from exc
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise SourceError(f"{url} is not JSON: {exc}") from exc
    if isinstance(doc, dict) and "document" in doc:
        yield Item(url, data)
        return
    entries = _entries(doc, url, timeout)
    with ThreadPoolExecutor(FETCH_WORKERS) as pool:
        yield from pool.map(lambda e: _fetch_entry(e, timeout), entries)


def _entries(doc: Any, base: str, timeout: float) -> list[_Entry]:
    if isinstance(doc, dict) and isinstance(doc.get("feed"), dict):
        return _rolie_entries(doc["feed"], base)
    if isinstance(doc, dict) and "distributions" in doc:
        out: list[_Entry] = []
        for dist in doc.get("distributions") or []:
            for feed in ((dist.get("rolie") or {}).get("feeds") or []):
                feed_url = urllib.parse.urljoin(base, feed.get("url", ""))
                try:
                    feed_doc = json.loads(fetch(feed_url, timeout))
                except (FetchError, ValueError) as exc:
                    raise SourceError(f"ROLIE feed {feed_url}: {exc}") from exc
                out += _rolie_entries(feed_doc.get("feed") or {}, feed_url)
            if dist.get("directory_url"):
                out += _directory_entries(urllib.parse.urljoin(base, dist["directory_url"]),
                                          timeout)
        return out
    raise SourceError(f"{base} is neither a CSAF advisory, a ROLIE feed nor provider metadata")


def _rolie_entries(feed: dict[str, Any], base: str) -> list[_Entry]:
    out = []
    for entry in feed.get("entry") or []:
        links = {link.get("rel"): link.get("href") for link in entry.get("link") or []
                 if isinstance(link, dict)}
        doc_url = links.get("self") or (entry.get("content") or {}).get("src")
        if not doc_url:
            continue
        hash_url = None
        algo = "sha512"
        for link in entry.get("link") or []:
            if link.get("rel") == "hash" and link.get("href"):
                hash_url = link["href"]
                algo = "sha256" if hash_url.endswith(".sha256") else "sha512"
                if algo == "sha512":
                    break
        out.append(_Entry(urllib.parse.urljoin(base, doc_url),
                          urllib.parse.urljoin(base, hash_url) if hash_url else None, algo))
    return out


def _directory_entries(directory: str, timeout: float) -> list[_Entry]:
    directory = directory.rstrip("/") + "/"
    try:
        text = fetch(directory + "changes.csv", timeout).decode(errors="replace")
        names = [row[0] for row in csv.reader(io.StringIO(text)) if row]
    except FetchError:
        try:
            text = fetch(directory + "index.txt", timeout).decode(errors="replace")
        except FetchError as exc:
            raise SourceError(f"{directory}: neither changes.csv nor index.txt ({exc})") from exc
        names = [line.strip() for line in text.splitlines() if line.strip()]
    return [_Entry(directory + name, directory + name + ".sha512", "sha512", hash_optional=True)
            for name in names if name.endswith(".json")]


def _fetch_entry(entry: _Entry, timeout: float) -> Item:
    try:
        data = fetch(entry.url, timeout)
    except FetchError as exc:
        return Item(entry.url, None, str(exc))
    if entry.hash_url:
        try:
            published = fetch(entry.hash_url, timeout).decode(errors="replace")
        except FetchError as exc:
            if entry.hash_optional:
                return Item(entry.url, data)
            return Item(entry.url, None, f"the offered hash is unavailable: {exc}")
        error = check_hash(data, published, entry.hash_algo)
        if error:
            return Item(entry.url, None, error)
    return Item(entry.url, data)
