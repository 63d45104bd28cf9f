"""Console sessions: the cookie, the principal behind it, CSRF tokens, form bodies."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from urllib.parse import parse_qs

from fastapi import Depends, Request

from otaudit.server.services.accounts import Principal, authenticate

COOKIE = "otaudit_console"
CONSOLE_CSP = ("default-src 'self'; img-src 'self' data:; object-src 'none'; "
               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
MAX_FORM = 64 * 1024


class LoginRequired(Exception):
    """No valid session: the handler redirects to the login page."""


class Forbidden(Exception):
    """A session without the role (or without the CSRF token) this needs: 403 page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def session_token(request: Request) -> str | None:
    return request.cookies.get(COOKIE)


def csrf_token(request: Request, token: str) -> str:
    """The CSRF token of a session (an HMAC of its token under the app's secret)."""
    secret: bytes = request.app.state.console_secret
    return hmac.new(secret, token.encode(), hashlib.sha256).hexdigest()


def principal(request: Request) -> Principal:
    """The principal of the session cookie (LoginRequired without a valid one)."""
    token = session_token(request)
    if not token:
        raise LoginRequired()
    with request.app.state.sessions() as session:
        found = authenticate(session, token)
    if found is None:
        raise LoginRequired()
    request.state.csrf = csrf_token(request, token)
    return found


async def form(request: Request) -> dict[str, str]:
    """The urlencoded body as {name: first value} (no multipart; at most 64 KiB)."""
    body = await request.body()
    if len(body) > MAX_FORM:
        raise Forbidden("form too large")
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"),
                                         keep_blank_values=True).items()}


def check_csrf(request: Request, fields: dict[str, str]) -> None:
    token = session_token(request) or ""
    if not hmac.compare_digest(fields.get("csrf", ""), csrf_token(request, token)):
        raise Forbidden("missing or wrong CSRF token: reload the page and submit again")


def need(role: str) -> Callable[..., Principal]:
    """A dependency: a session holding at least ``role`` at the path's ``site``."""

    def check(site: str, who: Principal = Depends(principal)) -> Principal:
        if not who.may(site, role):
            raise Forbidden(f"this needs the role {role} at site {site}")
        return who

    check.role = role  # type: ignore[attr-defined]  # read by the console role matrix test
    return check


def need_post(role: str) -> Callable[..., tuple[Principal, dict[str, str]]]:
    """A dependency for POST forms: the role at ``site``, then a valid CSRF token."""

    def check(request: Request, site: str, who: Principal = Depends(need(role)),
              fields: dict[str, str] = Depends(form)) -> tuple[Principal, dict[str, str]]:
        check_csrf(request, fields)
        return who, fields

    check.role = role  # type: ignore[attr-defined]
    return check
