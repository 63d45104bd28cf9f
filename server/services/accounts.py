"""Users, their role per site, API tokens: create, check, revoke.

Passwords are argon2 hashes (argon2-cffi). A token is ``ota_<random>`` shown once; the
database keeps only its SHA-256. A site-scoped token's role is capped by its user's current
role at that site, so taking a role away also weakens the user's tokens; a login token
(no site) carries the user's roles.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from otaudit.errors import InputError
from otaudit.observation import utcnow
from otaudit.server.accounts import ROLES, ApiTokenRow, SiteRoleRow, UserRow
from otaudit.server.services import audit, iso

TOKEN_PREFIX = "ota_"
LOGIN_TOKEN_LIFETIME = timedelta(hours=12)
_hasher = PasswordHasher()
# verified against when the user does not exist, so both cases take as long
_DUMMY_HASH = _hasher.hash("not a password of anyone")


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the user and the role it holds per site."""

    user: str
    roles: dict[str, str] = field(default_factory=dict)
    token_id: int | None = None

    def role_at(self, site: str) -> str | None:
        return self.roles.get(site)

    def may(self, site: str, role: str) -> bool:
        held = self.roles.get(site)
        return held is not None and ROLES.index(held) >= ROLES.index(role)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError("--role", [f"{role!r}: expected one of {', '.join(ROLES)}"])
    return role


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(session: Session, name: str, password: str, actor: str) -> UserRow:
    """A new user (InputError when the name is taken or the password shorter than 12)."""
    if session.scalar(sa.select(UserRow.id).where(UserRow.name == name)) is not None:
        raise InputError("user", [f"{name!r} exists already"])
    if len(password) < 12:
        raise InputError("password", ["at least 12 characters"])
    user = UserRow(name=name, password_hash=_hasher.hash(password), created_at=utcnow(),
                   disabled_at=None)
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.create", f"user:{name}")
    return user


def grant(session: Session, user_name: str, site: str, role: str, actor: str) -> None:
    """Give ``user_name`` ``role`` at ``site`` (replacing the role it had there)."""
    user = _user(session, user_name)
    row = session.get(SiteRoleRow, (user.id, site))
    if row is None:
        session.add(SiteRoleRow(user_id=user.id, site=site, role=check_role(role)))
    else:
        row.role = check_role(role)
    audit.record(session, actor, "role.grant", f"user:{user_name}", site, {"role": role})


def _user(session: Session, name: str) -> UserRow:
    user = session.scalar(sa.select(UserRow).where(UserRow.name == name))
    if user is None:
        raise InputError("--user", [f"{name!r}: no such user"])
    return user


def roles_of(session: Session, user_id: int) -> dict[str, str]:
    rows = session.scalars(sa.select(SiteRoleRow).where(SiteRoleRow.user_id == user_id))
    return {r.site: r.role for r in rows}


def users_of_site(session: Session, site: str) -> list[dict[str, str]]:
    """The users holding a role at ``site``, by name."""
    rows = session.execute(sa.select(UserRow.name, SiteRoleRow.role)
                           .join(SiteRoleRow, SiteRoleRow.user_id == UserRow.id)
                           .where(SiteRoleRow.site == site).order_by(UserRow.name))
    return [{"name": name, "role": role} for name, role in rows]


def create_token(session: Session, user_name: str, site: str | None, role: str | None,
                 lifetime: timedelta, actor: str) -> tuple[int, str]:
    """A new token (id, secret); a site token needs the user to hold at least ``role``."""
    user = _user(session, user_name)
    if site is not None:
        held = roles_of(session, user.id).get(site)
        if held is None or ROLES.index(held) < ROLES.index(check_role(role or "")):
            raise InputError("--role", [f"{user_name!r} holds {held or 'no role'} at "
                                        f"{site!r}, not {role}"])
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiTokenRow(user_id=user.id, site=site, role=role, token_hash=hash_token(secret),
                      created_at=now, expires_at=now + lifetime, revoked_at=None)
    session.add(row)
    session.flush()
    audit.record(session, actor, "token.create" if site else "login", f"token:{row.id}", site,
                 {"user": user_name, "role": role,
                  "expires_at": iso(row.expires_at)})
    return row.id, secret


def revoke_token(session: Session, token_id: int, actor: str, site: str | None = None) -> bool:
    """Revoke token ``token_id`` (of ``site`` only, when given); False when there is none."""
    row = session.get(ApiTokenRow, token_id)
    if row is None or (site is not None and row.site != site):
        return False
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, actor, "token.revoke", f"token:{token_id}", row.site)
    return True


def authenticate(session: Session, token: str, now: datetime | None = None
                 ) -> Principal | None:
    """The principal of a bearer token; None when unknown, revoked, expired or disabled."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalar(sa.select(ApiTokenRow).where(ApiTokenRow.token_hash ==
                                                      hash_token(token)))
    now = now or utcnow()
    if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now:
        return None
    user = session.get(UserRow, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    roles = roles_of(session, user.id)
    if row.site is not None:
        held = roles.get(row.site)
        if held is None or row.role is None:
            return Principal(user.name, {}, row.id)
        capped = min(ROLES.index(held), ROLES.index(row.role))
        roles = {row.site: ROLES[capped]}
    return Principal(user.name, roles, row.id)


def login(session: Session, name: str, password: str) -> tuple[int, str] | None:
    """A login token for ``name`` when ``password`` is right, else None (same time)."""
    user = session.scalar(sa.select(UserRow).where(UserRow.name == name))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled_at is not None:
        return None
    return create_token(session, name, None, None, LOGIN_TOKEN_LIFETIME, name)


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)
