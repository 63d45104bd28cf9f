"""Import advisories from a source into the database, or into memory for one-off matching.

Transactions: **one transaction per import, one SAVEPOINT per document.** A document that
fails anywhere (parse, validation, normalisation, insert) is rolled back to its savepoint and
recorded as rejected with the reason; the others import. The run (counts, data-quality
problems worked around, rejections) commits together with the documents, so an interrupted
import leaves nothing behind. A newer revision (``tracking.version``, then
``current_release_date``) of a tracking id replaces the stored one; an older one is skipped as
``stale``; the same bytes again are ``unchanged``. Patch status is re-evaluated afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from otaudit.observation import utcnow
from otaudit.server.advisories import csaf
from otaudit.server.advisories.db import (
    AdvisoryCveRow,
    AdvisoryProductRow,
    AdvisoryRow,
    FetchStateRow,
    ImportRejectionRow,
    ImportRunRow,
)
from otaudit.server.advisories.matcher import AdvisoryIndex
from otaudit.server.advisories.normalise import NORMAL_FORM_VERSION, Advisory, normalise
from otaudit.server.advisories.openpgp import SignatureCheck
from otaudit.server.advisories.sources import (
    FETCH_RATE,
    MAX_DOCUMENT_BYTES,
    Fetcher,
    Item,
    iter_source,
)

MAX_DEPTH = 64  # CSAF documents nest ~14 levels; Python's JSON parser stops at ~1000


@dataclass
class ImportReport:
    """What an import did; ``quality`` counts the data-quality problems worked around."""

    source: str
    documents: int = 0
    imported: int = 0
    replaced: int = 0
    unchanged: int = 0
    stale: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    quality: Counter[str] = field(default_factory=Counter)
    run_id: int | None = None
    seconds: float = 0.0
    patch_rows_changed: int = 0
    signatures: Counter[str] = field(default_factory=Counter)  # result -> documents
    requests: int = 0  # HTTP requests sent (URL sources)
    not_modified: bool = False  # the provider answered 304 for the source itself

    def top_rejections(self, n: int = 5) -> list[tuple[str, int]]:
        kinds = Counter(" ".join(reason.split()[:2]) if reason.startswith("HTTP ")
                        else reason.split(":")[0] for _, reason in self.rejected)
        return kinds.most_common(n)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "documents": self.documents, "imported": self.imported,
            "replaced": self.replaced, "unchanged": self.unchanged, "stale": self.stale,
            "rejected": len(self.rejected), "seconds": round(self.seconds, 2),
            "top_rejection_reasons": dict(self.top_rejections()),
            "rejections": [{"document": d, "reason": r} for d, r in self.rejected],
            "data_quality": dict(self.quality.most_common()),
            "patch_rows_changed": self.patch_rows_changed, "run_id": self.run_id,
            "signatures": dict(self.signatures.most_common()), "http_requests": self.requests,
            "source_not_modified": self.not_modified,
        }


@dataclass
class Parsed:
    """A document read and compiled, or the reason it was not."""

    name: str
    advisory: Advisory | None = None
    document: dict[str, Any] | None = None
    sha256: str = ""
    text: str = ""
    reason: str | None = None
    unchanged: bool = False
    signature: str | None = None
    signature_detail: str | None = None


def parse_item(item: Item, check: SignatureCheck | None = None) -> Parsed:
    """Bytes → validated, normalised advisory with its signature result; never raises."""
    if item.unchanged:
        return Parsed(item.name, unchanged=True)
    if item.error is not None or item.data is None:
        return Parsed(item.name, reason=item.error or "no data")
    sha = hashlib.sha256(item.data).hexdigest()
    if len(item.data) > MAX_DOCUMENT_BYTES:
        return Parsed(item.name, sha256=sha, reason=f"the document is {len(item.data):,} bytes, "
                      f"larger than the limit of {MAX_DOCUMENT_BYTES:,} bytes for one advisory")
    try:
        doc = json.loads(item.data)
    except RecursionError:
        return Parsed(item.name, sha256=sha, reason="invalid JSON: nested too deeply for an "
                      f"advisory (CSAF documents nest fewer than {MAX_DEPTH} levels)")
    except (ValueError, UnicodeDecodeError) as exc:
        return Parsed(item.name, sha256=sha, reason=f"invalid JSON: {exc}")
    depth = json_depth(doc, MAX_DEPTH)
    if depth > MAX_DEPTH:
        return Parsed(item.name, sha256=sha, reason="invalid CSAF: nested more than "
                      f"{MAX_DEPTH} levels deep, more than an advisory needs")
    errors = csaf.validate(doc)
    if errors:
        return Parsed(item.name, sha256=sha, reason="invalid CSAF: " + "; ".join(errors))
    try:
        advisory = normalise(doc)
    except Exception as exc:  # a document must never crash the import
        return Parsed(item.name, sha256=sha,
                      reason=f"normalisation failed: {type(exc).__name__}: {exc}")
    check = check or SignatureCheck()
    result, detail = check.check(item.data, item.signature, item.signature_offered)
    refusal = check.refusal(result, detail)
    if refusal:
        return Parsed(item.name, sha256=sha, reason=refusal, signature=result,
                      signature_detail=detail)
    return Parsed(item.name, advisory, doc, sha, item.data.decode("utf-8", errors="replace"),
                  signature=result, signature_detail=detail)


def json_depth(value: Any, stop: int = 1_000_000) -> int:
    """Nesting depth of a decoded JSON value (level by level, no recursion; stops past ``stop``)."""
    depth = 0
    level = [value] if type(value) in (dict, list) else []
    while level and depth <= stop:
        depth += 1
        below: list[Any] = []
        for node in level:
            below += [v for v in (node.values() if type(node) is dict else node)
                      if type(v) is dict or type(v) is list]
        level = below
    return depth


def iter_parsed(source: str, check: SignatureCheck | None = None,
                fetcher: Fetcher | None = None) -> Iterator[Parsed]:
    check = check or SignatureCheck()
    fetcher = fetcher or Fetcher(signatures=check.wants_signatures, rate=fetch_rate())
    for item in iter_source(source, fetcher=fetcher):
        yield parse_item(item, check)


def load_index(source: str, check: SignatureCheck | None = None
               ) -> tuple[AdvisoryIndex, ImportReport]:
    """Read ``source`` into memory (no database): newest revision per tracking id wins."""
    report = ImportReport(source)
    start = utcnow()
    newest: dict[str, tuple[tuple[Any, ...], Advisory]] = {}
    for parsed in iter_parsed(source, check or SignatureCheck.from_environment()):
        report.documents += 1
        if parsed.signature:
            report.signatures[parsed.signature] += 1
        if parsed.advisory is None:
            report.rejected.append((parsed.name, parsed.reason or "unknown"))
            continue
        adv = parsed.advisory
        key = _revision_key(adv.version, adv.current_release_date)
        old = newest.get(adv.tracking_id)
        if old is not None and old[0] >= key:
            report.stale += 1
            continue
        if old is not None:
            report.replaced += 1
        else:
            report.imported += 1
        newest[adv.tracking_id] = (key, adv)
        report.quality.update(adv.quality)
    report.seconds = (utcnow() - start).total_seconds()
    return AdvisoryIndex(a for _, a in newest.values()), report


def import_source(session: Session, source: str,
                  parsed: Iterable[Parsed] | None = None,
                  refresh: Callable[[Session], int] | None = None,
                  check: SignatureCheck | None = None,
                  fetcher: Fetcher | None = None) -> ImportReport:
    """Import ``source`` inside ``session``'s transaction (the caller commits).

    ``check`` is the signature policy and keys (default: from the environment, see
    ``openpgp``). For a URL, the fetch state of the last run is read from and written to
    ``advisory_fetch_state`` in the same transaction.
    """
    check = check or SignatureCheck.from_environment()
    is_url = source.startswith(("http://", "https://"))
    if fetcher is None and is_url and parsed is None:
        fetcher = Fetcher(state=_fetch_state(session), signatures=check.wants_signatures,
                          rate=fetch_rate())
    elif fetcher is not None and not fetcher.state:
        fetcher.state = _fetch_state(session)
    report = ImportReport(source)
    start = utcnow()
    run = ImportRunRow(source=source, started_at=start, quality={})
    session.add(run)
    session.flush()
    report.run_id = run.id
    stored = {row.tracking_id: row for row in session.execute(sa.select(
        AdvisoryRow.id, AdvisoryRow.tracking_id, AdvisoryRow.version,
        AdvisoryRow.current_release_date, AdvisoryRow.sha256))}
    for item in parsed if parsed is not None else iter_parsed(source, check, fetcher):
        report.documents += 1
        if item.unchanged:
            report.unchanged += 1
            continue
        if item.signature:
            report.signatures[item.signature] += 1
        if item.advisory is None:
            _reject(session, run, report, item.name, None, item.reason or "unknown")
            continue
        adv = item.advisory
        try:
            with session.begin_nested():
                outcome = _store(session, run, item, stored.get(adv.tracking_id), start)
        except Exception as exc:  # keep the others; this one is rolled back to its savepoint
            _reject(session, run, report, item.name, adv.tracking_id,
                    f"storing failed: {type(exc).__name__}: {exc}")
            continue
        setattr(report, outcome, getattr(report, outcome) + 1)
        if outcome in ("imported", "replaced"):
            report.quality.update(adv.quality)
            stored[adv.tracking_id] = _Stored(adv.version, adv.current_release_date, item.sha256)
    if fetcher is not None:
        _save_fetch_state(session, fetcher.updates)
        report.requests, report.not_modified = fetcher.requests, bool(fetcher.not_modified)
    run.finished_at = utcnow()
    run.imported, run.replaced = report.imported, report.replaced
    run.unchanged, run.stale, run.rejected = report.unchanged, report.stale, len(report.rejected)
    run.quality = dict(report.quality)
    session.flush()
    if refresh is not None and (report.imported or report.replaced):
        report.patch_rows_changed = refresh(session)
    report.seconds = (utcnow() - start).total_seconds()
    return report


@dataclass
class _Stored:
    version: str
    current_release_date: Any
    sha256: str


def _store(session: Session, run: ImportRunRow, item: Parsed, old: Any, now: datetime) -> str:
    adv = item.advisory
    assert adv is not None and item.document is not None
    if old is not None:
        if old.sha256 == item.sha256:
            return "unchanged"
        if _revision_key(old.version, old.current_release_date) >= _revision_key(
                adv.version, adv.current_release_date):
            return "stale"
        _delete(session, adv.tracking_id)
    row = AdvisoryRow(
        tracking_id=adv.tracking_id, version=adv.version, title=adv.title,
        publisher=adv.publisher, status=adv.status,
        initial_release_date=csaf.parse_date(adv.initial_release_date),
        current_release_date=csaf.parse_date(adv.current_release_date), source=item.name,
        sha256=item.sha256, imported_at=now, import_run_id=run.id,
        normal_form=NORMAL_FORM_VERSION, normal=adv.to_dict(), document=item.text,
        signature=item.signature, signature_detail=(item.signature_detail or "")[:2000] or None)
    session.add(row)
    session.flush()
    session.execute(sa.insert(AdvisoryProductRow), [
        {"advisory_id": row.id, "product_id": p.pid, "vendor": p.vendor_raw[:200],
         "name": p.full_name or p.name, "order_numbers": list(p.identity.order_numbers),
         "expression": p.spec.raw or "", "spec_kind": p.spec.kind}
        for p in adv.products.values()] or [])
    cves = []
    for vuln in adv.vulnerabilities:
        best = max(vuln.scores, key=lambda s: s.get("score") or 0) if vuln.scores else {}
        cves.append({"advisory_id": row.id, "cve": vuln.cve[:64], "cvss": best.get("score"),
                     "severity": best.get("severity"), "vector": best.get("vector"),
                     "cwe": vuln.cwe})
    if cves:
        session.execute(sa.insert(AdvisoryCveRow), cves)
    return "replaced" if old is not None else "imported"


def fetch_rate() -> float:
    """Requests per second to a provider: ``OTAUDIT_ADVISORY_FETCH_RATE`` or the default."""
    try:
        return float(os.environ.get("OTAUDIT_ADVISORY_FETCH_RATE", FETCH_RATE))
    except ValueError:
        return FETCH_RATE


def _fetch_state(session: Session) -> dict[str, dict[str, Any]]:
    return {row.url: {"etag": row.etag, "last_modified": row.last_modified,
                      "updated": row.updated, "sha256": row.sha256}
            for row in session.scalars(sa.select(FetchStateRow))}


def _save_fetch_state(session: Session, updates: dict[str, dict[str, Any]]) -> None:
    """Upsert what this run saw per URL (ETag, Last-Modified, feed timestamp, hash)."""
    if not updates:
        return
    now = utcnow()
    urls = [u for u in updates if len(u) <= 2000]
    for part in [urls[i:i + 500] for i in range(0, len(urls), 500)]:
        session.execute(sa.delete(FetchStateRow).where(FetchStateRow.url.in_(part)))
    session.execute(sa.insert(FetchStateRow), [
        {"url": url, "etag": (updates[url].get("etag") or None) and updates[url]["etag"][:300],
         "last_modified": (updates[url].get("last_modified") or None)
         and updates[url]["last_modified"][:100],
         "updated": updates[url].get("updated"), "sha256": updates[url].get("sha256"),
         "fetched_at": now} for url in urls])


def _delete(session: Session, tracking_id: str) -> None:
    ids = [r for (r,) in session.execute(
        sa.select(AdvisoryRow.id).where(AdvisoryRow.tracking_id == tracking_id))]
    session.execute(sa.delete(AdvisoryProductRow).where(AdvisoryProductRow.advisory_id.in_(ids)))
    session.execute(sa.delete(AdvisoryCveRow).where(AdvisoryCveRow.advisory_id.in_(ids)))
    session.execute(sa.delete(AdvisoryRow).where(AdvisoryRow.id.in_(ids)))


def _reject(session: Session, run: ImportRunRow, report: ImportReport, name: str,
            tracking_id: str | None, reason: str) -> None:
    report.rejected.append((name, reason))
    session.add(ImportRejectionRow(run_id=run.id, document=name[:2000],
                                   tracking_id=tracking_id, reason=reason[:4000]))


def _revision_key(version: str, current: Any) -> tuple[Any, ...]:
    date = current if isinstance(current, datetime) else csaf.parse_date(current)
    if date is not None and date.tzinfo is None:
        from datetime import UTC

        date = date.replace(tzinfo=UTC)
    return (csaf.tracking_version_key(str(version)), date.timestamp() if date else 0.0)


def load_advisories(session: Session) -> list[Advisory]:
    """Every stored advisory's normal form (re-normalised if the normal form is outdated)."""
    out = []
    query = sa.select(AdvisoryRow.normal_form, AdvisoryRow.normal)
    for form, normal in session.execute(query):
        if form == NORMAL_FORM_VERSION:
            out.append(Advisory.from_dict(normal))
    stale = session.execute(sa.select(AdvisoryRow.document).where(
        AdvisoryRow.normal_form != NORMAL_FORM_VERSION))
    for (document,) in stale:
        out.append(normalise(json.loads(document)))
    return out
