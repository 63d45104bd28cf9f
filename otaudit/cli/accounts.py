"""``otaudit server user add`` and ``otaudit server token create|revoke``.

A password comes from ``OTAUDIT_PASSWORD`` or a hidden prompt, never from argv; a token is
printed once (the database keeps only its hash). Every change is in the audit trail with the
actor ``cli:<login>``.
"""

from __future__ import annotations

import getpass
import os
import re
from datetime import timedelta

import typer

from otaudit.cli.common import database, db_option
from otaudit.errors import InputError
from otaudit.settings import get_settings

user_app = typer.Typer(no_args_is_help=True, help="API users and their role per site.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens (hashed, scoped, expiring).")
PASSWORD_ENV = "OTAUDIT_PASSWORD"
_SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_DURATION = re.compile(r"^(\d{1,4})([dh])$")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _check(source: str, value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.match(value):
        raise InputError(source, [f"{value!r} is not {what} (letters, digits, _ . - ; "
                                  "at most 64)"])
    return value


def parse_lifetime(text: str) -> timedelta:
    """``30d`` or ``12h`` (1 hour to 366 days)."""
    match = _DURATION.match(text)
    if not match:
        raise InputError("--expires", [f"{text!r}: expected days or hours like 30d or 12h"])
    amount, unit = int(match[1]), match[2]
    lifetime = timedelta(days=amount) if unit == "d" else timedelta(hours=amount)
    if not timedelta(hours=1) <= lifetime <= timedelta(days=366):
        raise InputError("--expires", [f"{text!r}: between 1h and 366d"])
    return lifetime


def _password() -> str:
    if (env := os.environ.get(PASSWORD_ENV)) is not None:
        return env
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@user_app.command("add")
def user_add(name: str = typer.Argument(..., help="the user name"),
             site: str = typer.Option(..., "--site", help="the site the role is for"),
             role: str = typer.Option(..., "--role", help="viewer, auditor or admin"),
             db: str | None = db_option()) -> None:
    """Create a user (password from OTAUDIT_PASSWORD or a prompt) with a role at a site, or
    give an existing user a role at another site."""
    import sqlalchemy as sa

    from otaudit.server.accounts import UserRow
    from otaudit.server.db import session_factory
    from otaudit.server.services import accounts

    _check("NAME", name, _NAME, "a user name")
    _check("--site", site, _SITE, "a site id")
    accounts.check_role(role)
    engine = database(get_settings(database_url=db), None)
    with session_factory(engine).begin() as session:
        exists = session.scalar(sa.select(UserRow.id).where(UserRow.name == name)) is not None
        if not exists:
            accounts.add_user(session, name, _password(), _actor())
        accounts.grant(session, name, site, role, _actor())
    engine.dispose()
    typer.echo(f"{'user' if exists else 'new user'} {name}: {role} at {site}")


@token_app.command("create")
def token_create(user: str = typer.Option(..., "--user", help="whose token"),
                 site: str = typer.Option(..., "--site", help="the one site it is for"),
                 role: str = typer.Option(..., "--role", help="viewer, auditor or admin "
                                          "(at most the user's role there)"),
                 expires: str = typer.Option("30d", "--expires", help="lifetime: 30d, 12h"),
                 db: str | None = db_option()) -> None:
    """Create an API token and print it once (only its hash is kept)."""
    from otaudit.server.db import session_factory
    from otaudit.server.services import accounts

    _check("--user", user, _NAME, "a user name")
    _check("--site", site, _SITE, "a site id")
    accounts.check_role(role)
    lifetime = parse_lifetime(expires)
    engine = database(get_settings(database_url=db), None)
    with session_factory(engine).begin() as session:
        token_id, token = accounts.create_token(session, user, site, role, lifetime, _actor())
    engine.dispose()
    typer.echo(f"token {token_id} for {user}: {role} at {site}, expires in {expires} "
               "(shown once; store it now)", err=True)
    typer.echo(token)


@token_app.command("revoke")
def token_revoke(token_id: int = typer.Argument(..., help="the token's id"),
                 db: str | None = db_option()) -> None:
    """Revoke a token: it stops working at once."""
    from otaudit.server.db import session_factory
    from otaudit.server.services import accounts

    engine = database(get_settings(database_url=db), None)
    with session_factory(engine).begin() as session:
        found = accounts.revoke_token(session, token_id, _actor())
    engine.dispose()
    if not found:
        raise InputError("ID", [f"no token {token_id}"])
    typer.echo(f"token {token_id} revoked")
