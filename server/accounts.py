"""Tables of who may do what: users, their role per site, API tokens, the audit trail, and the
exceptions/attestations written through the API (``waivers``).

A password is kept only as an argon2 hash, a token only as the SHA-256 of its secret (tokens
are 256-bit random, so a fast hash is enough and lets a lookup be an index seek). Roles are
per site: ``viewer`` < ``auditor`` < ``admin``. The audit trail is append-only: who, when,
what, on which target of which site.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from otaudit.server.db import Base

ROLES = ("viewer", "auditor", "admin")


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class SiteRoleRow(Base):
    __tablename__ = "site_roles"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    # None: a login token, it carries the user's roles; else the one site it is scoped to
    site: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AuditRow(Base):
    __tablename__ = "audit_trail"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))  # a user name, or "cli:<os user>"
    action: Mapped[str] = mapped_column(String(64))
    site: Mapped[str | None] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]]


class WaiverRow(Base):
    __tablename__ = "waivers"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # exception | attestation
    record_id: Mapped[str] = mapped_column(String(64))
    record: Mapped[dict[str, Any]]  # the ExceptionRecord / Attestation, as validated
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expired_by: Mapped[str | None] = mapped_column(String(64))
    expired_at: Mapped[datetime | None]

    __table_args__ = (sa.UniqueConstraint("site", "kind", "record_id",
                                          name="uq_waiver_site_kind_record"),)
