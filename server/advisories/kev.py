"""CISA's Known Exploited Vulnerabilities (KEV) catalogue: import and exploitation priority.

``update_kev`` reads a catalogue (a file, or CISA's feed URL, with the same size limit and
http(s)-only rule as advisory sources), validates it against the catalogue's JSON schema
(shipped in ``schemas/``), and replaces the stored entries in the caller's transaction: a bad
catalogue changes nothing. ``kev_entries`` answers "is this CVE known to be exploited, since
when, and by when must it be fixed"; ``patch_status_rows`` marks open verdicts with it and lists
them first. EPSS or another exploitation signal can follow the same seam (a CVE-keyed table).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import sqlalchemy as sa
from sqlalchemy.orm import Session

from otaudit.observation import utcnow
from otaudit.server.advisories import csaf
from otaudit.server.advisories.db import KevCatalogRow, KevEntryRow
from otaudit.server.advisories.sources import MAX_DOCUMENT_BYTES, FetchError, fetch

KEV_URL = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
SCHEMA = Path(__file__).with_name("schemas") / "known_exploited_vulnerabilities_schema.json"
MAX_REASONS = 5


class KevError(ValueError):
    """The catalogue cannot be read or is not a KEV catalogue; ``reasons`` say why."""

    def __init__(self, source: str, reasons: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(reasons))
        self.source = source
        self.reasons = reasons


@dataclass(frozen=True)
class KevEntry:
    cve: str
    vendor: str
    product: str
    name: str
    date_added: date
    due_date: date | None
    ransomware: str
    required_action: str


@dataclass
class KevReport:
    source: str
    version: str
    released: str | None
    entries: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "version": self.version, "released": self.released,
                "entries": self.entries, "added": len(self.added), "removed": len(self.removed),
                "added_cves": self.added[:50], "removed_cves": self.removed[:50]}


@cache
def _validator() -> Any:
    return jsonschema_rs.validator_for(json.loads(SCHEMA.read_text(encoding="utf-8")),
                                       validate_formats=True)


def read_source(source: str, timeout: float = 30.0) -> bytes:
    """The catalogue's bytes from a file or an http(s) URL, with the advisory size limit."""
    if source.startswith(("http://", "https://")):
        try:
            return fetch(source, timeout)
        except FetchError as exc:
            raise KevError(source, [str(exc)]) from exc
    path = Path(source)
    if not path.is_file():
        raise KevError(source, ["no such file"])
    if path.stat().st_size > MAX_DOCUMENT_BYTES:
        raise KevError(source, [f"larger than the limit of {MAX_DOCUMENT_BYTES:,} bytes"])
    return path.read_bytes()


def parse_catalog(data: bytes, source: str = "catalogue") -> tuple[dict[str, Any],
                                                                  list[KevEntry]]:
    """(catalogue metadata, entries) of a KEV catalogue; ``KevError`` with reasons otherwise."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise KevError(source, [f"not JSON: {exc}"[:300]]) from None
    reasons = []
    for error in _validator().iter_errors(doc):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                        for p in error.instance_path).lstrip(".") or "(catalogue)"
        reasons.append(f"KEV schema: {where}: {error.message[:200]}")
        if len(reasons) >= MAX_REASONS:
            break
    if reasons:
        raise KevError(source, reasons)
    entries: dict[str, KevEntry] = {}
    for i, v in enumerate(doc["vulnerabilities"]):
        try:
            added = date.fromisoformat(v["dateAdded"])
            due = date.fromisoformat(v["dueDate"]) if v.get("dueDate") else None
        except (KeyError, ValueError) as exc:
            raise KevError(source, [f"vulnerabilities[{i}]: bad date ({exc})"]) from None
        entries[v["cveID"]] = KevEntry(
            v["cveID"], v.get("vendorProject", "")[:200], v.get("product", "")[:200],
            v.get("vulnerabilityName", ""), added, due,
            (v.get("knownRansomwareCampaignUse") or "Unknown")[:16], v.get("requiredAction", ""))
    meta = {"version": doc["catalogVersion"], "released": doc.get("dateReleased")}
    return meta, list(entries.values())


def update_kev(session: Session, source: str = KEV_URL, timeout: float = 30.0) -> KevReport:
    """Replace the stored catalogue with ``source`` inside ``session``'s transaction."""
    data = read_source(source, timeout)
    meta, entries = parse_catalog(data, source)
    before = set(session.scalars(sa.select(KevEntryRow.cve)))
    session.execute(sa.delete(KevEntryRow))
    if entries:
        session.execute(sa.insert(KevEntryRow), [
            {"cve": e.cve, "vendor": e.vendor, "product": e.product, "name": e.name,
             "date_added": e.date_added, "due_date": e.due_date, "ransomware": e.ransomware,
             "required_action": e.required_action} for e in entries])
    released = csaf.parse_date(meta["released"])
    session.add(KevCatalogRow(version=str(meta["version"])[:64], released=released,
                              entries=len(entries), source=source,
                              sha256=hashlib.sha256(data).hexdigest(), imported_at=utcnow()))
    session.flush()
    now = {e.cve for e in entries}
    return KevReport(source, str(meta["version"]), meta["released"], len(entries),
                     sorted(now - before), sorted(before - now))


def kev_entries(session: Session, cves: list[str] | None = None) -> dict[str, KevEntryRow]:
    """Stored KEV entries by CVE (all, or those of ``cves``)."""
    query = sa.select(KevEntryRow)
    if cves is not None:
        if not cves:
            return {}
        query = query.where(KevEntryRow.cve.in_(sorted(set(cves))))
    return {row.cve: row for row in session.scalars(query)}


def kev_catalog(session: Session) -> KevCatalogRow | None:
    """The last catalogue imported (None when there is none)."""
    return session.scalars(sa.select(KevCatalogRow).order_by(KevCatalogRow.id.desc())).first()
