"""Tables of the advisory module (on the server's ``Base``; ``init_db`` imports this module).

- ``advisories``: one row per tracking id (the newest revision imported), with the raw CSAF
  document and its compiled normal form; ``advisory_products`` and ``advisory_cves`` make the
  normal form queryable (which advisories name this order number / CVE).
- ``advisory_import_runs`` and ``advisory_import_rejections``: what each import did.
- ``advisory_fetch_state``: per provider URL, the ETag / Last-Modified / feed timestamp and hash
  of what was fetched, so the next run asks conditionally and skips what did not change.
- ``kev_entries`` and ``kev_catalogs``: CISA's Known Exploited Vulnerabilities catalogue (the
  last one imported, replacing the previous) and each import of it.
- ``patch_assets`` (current identity, observation cursor, advisory generation evaluated),
  ``patch_identity_history`` (each identity an asset reported, first and last seen),
  ``patch_status`` (current status per asset × advisory × CVE) and
  ``patch_status_history`` (every change of it).

Child rows are deleted explicitly (SQLite does not enforce cascades by default).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column

from otaudit.server.db import Base


class AdvisoryRow(Base):
    __tablename__ = "advisories"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    tracking_id: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    version: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    publisher: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    initial_release_date: Mapped[datetime]
    current_release_date: Mapped[datetime]
    source: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime]
    import_run_id: Mapped[int | None] = mapped_column(Integer)
    normal_form: Mapped[int] = mapped_column(Integer)
    normal: Mapped[dict[str, Any]] = deferred(mapped_column(sa.JSON))
    document: Mapped[str] = deferred(mapped_column(Text))  # the CSAF JSON exactly as received
    # OpenPGP signature (.asc) of the document: valid / invalid / no_key / missing / not_checked
    signature: Mapped[str | None] = mapped_column(String(16))
    signature_detail: Mapped[str | None] = mapped_column(Text)


class AdvisoryProductRow(Base):
    __tablename__ = "advisory_products"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    advisory_id: Mapped[int] = mapped_column(ForeignKey("advisories.id", ondelete="CASCADE"),
                                             index=True)
    product_id: Mapped[str] = mapped_column(String(128))
    vendor: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(Text)
    order_numbers: Mapped[list[Any]] = mapped_column(sa.JSON)
    expression: Mapped[str] = mapped_column(Text)
    spec_kind: Mapped[str] = mapped_column(String(16))


class AdvisoryCveRow(Base):
    __tablename__ = "advisory_cves"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    advisory_id: Mapped[int] = mapped_column(ForeignKey("advisories.id", ondelete="CASCADE"),
                                             index=True)
    cve: Mapped[str] = mapped_column(String(64), index=True)
    cvss: Mapped[float | None] = mapped_column(Float)
    severity: Mapped[str | None] = mapped_column(String(16))
    vector: Mapped[str | None] = mapped_column(String(200))
    cwe: Mapped[str | None] = mapped_column(String(32))


class ImportRunRow(Base):
    __tablename__ = "advisory_import_runs"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    imported: Mapped[int] = mapped_column(Integer, default=0)
    replaced: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    stale: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    quality: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)


class ImportRejectionRow(Base):
    __tablename__ = "advisory_import_rejections"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("advisory_import_runs.id"), index=True)
    document: Mapped[str] = mapped_column(Text)
    tracking_id: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)


class PatchAssetRow(Base):
    __tablename__ = "patch_assets"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    asset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    zone: Mapped[str] = mapped_column(String(64), index=True)
    identity: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    identity_key: Mapped[str] = mapped_column(String(64))
    observation_id: Mapped[str | None] = mapped_column(String(36))
    cursor: Mapped[datetime | None]  # finished_at of the newest observation read
    evaluated: Mapped[str | None] = mapped_column(String(200))  # advisory generation last used


class PatchIdentityRow(Base):
    __tablename__ = "patch_identity_history"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    asset_id: Mapped[str] = mapped_column(String(64))
    identity_key: Mapped[str] = mapped_column(String(64))
    identity: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    observation_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (Index("ix_patch_identity_site_asset", "site", "asset_id"),)


class PatchStatusRow(Base):
    __tablename__ = "patch_status"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    asset_id: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(64), index=True)
    advisory_id: Mapped[str] = mapped_column(String(128))
    cve: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    product_id: Mapped[str] = mapped_column(String(128))
    product_name: Mapped[str] = mapped_column(Text)
    expression: Mapped[str] = mapped_column(Text)
    basis: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    installed_version: Mapped[str | None] = mapped_column(String(128))
    fixed_in: Mapped[str | None] = mapped_column(String(128))
    remediation_category: Mapped[str | None] = mapped_column(String(32))
    remediation: Mapped[str | None] = mapped_column(Text)
    cvss: Mapped[float | None] = mapped_column(Float)
    severity: Mapped[str | None] = mapped_column(String(16))
    affected_since: Mapped[datetime | None]
    patched_at: Mapped[datetime | None]
    first_seen: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        sa.UniqueConstraint("site", "asset_id", "advisory_id", "cve",
                            name="uq_patch_site_asset_adv_cve"),
    )


class PatchHistoryRow(Base):
    __tablename__ = "patch_status_history"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    asset_id: Mapped[str] = mapped_column(String(64))
    advisory_id: Mapped[str] = mapped_column(String(128))
    cve: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    state_from: Mapped[str | None] = mapped_column(String(16))
    state_to: Mapped[str] = mapped_column(String(16))
    installed_version: Mapped[str | None] = mapped_column(String(128))
    fixed_in: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_patch_history_site_asset", "site", "asset_id"),)


class FetchStateRow(Base):
    """What was fetched from a provider URL last time (conditional requests, incremental runs)."""

    __tablename__ = "advisory_fetch_state"

    url: Mapped[str] = mapped_column(String(2000), primary_key=True)
    etag: Mapped[str | None] = mapped_column(String(300))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    updated: Mapped[str | None] = mapped_column(String(64))  # the feed's "updated" of the entry
    sha256: Mapped[str | None] = mapped_column(String(64))
    fetched_at: Mapped[datetime]


class KevEntryRow(Base):
    """One CVE of CISA's Known Exploited Vulnerabilities catalogue (the last one imported)."""

    __tablename__ = "kev_entries"

    cve: Mapped[str] = mapped_column(String(64), primary_key=True)
    vendor: Mapped[str] = mapped_column(String(200))
    product: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(Text)
    date_added: Mapped[date]
    due_date: Mapped[date | None]
    ransomware: Mapped[str] = mapped_column(String(16))
    required_action: Mapped[str] = mapped_column(Text)


class KevCatalogRow(Base):
    """Each KEV catalogue imported: its version, release date and where it came from."""

    __tablename__ = "kev_catalogs"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(64))
    released: Mapped[datetime | None]
    entries: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime]
