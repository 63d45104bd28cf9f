"""Who asks (bearer tokens), what they may do per site, login rate limiting, headers."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import Response

from otaudit.server.services.accounts import Principal, authenticate

bearer = HTTPBearer(auto_error=False, description="a token from `otaudit server token "
                    "create` or POST /api/v1/login")

API_CSP = "default-src 'none'; frame-ancestors 'none'"
# the gap report is one page with inline CSS and SVG: nothing else may load
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; " \
             "frame-ancestors 'none'"


def db_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, else rolled back."""
    with request.app.state.sessions.begin() as session:
        yield session


def current_principal(request: Request,
                      credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                      ) -> Principal:
    """The principal of the request's bearer token; 401 without a valid one."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "authentication required",
                            headers={"WWW-Authenticate": "Bearer"})
    with request.app.state.sessions() as session:
        principal = authenticate(session, credentials.credentials)
    if principal is None:
        raise HTTPException(401, "invalid, expired or revoked token",
                            headers={"WWW-Authenticate": "Bearer"})
    return principal


def need(role: str) -> Callable[..., Principal]:
    """A dependency: the principal holds at least ``role`` at the path's ``site`` (403)."""

    def check(site: str, principal: Principal = Depends(current_principal)) -> Principal:
        if not principal.may(site, role):
            raise HTTPException(403, f"needs role {role} at this site")
        return principal

    check.role = role  # type: ignore[attr-defined]  # read by the role matrix test
    return check


class LoginLimiter:
    """At most ``attempts`` logins per ``window`` seconds per (user name, client address)."""

    def __init__(self, attempts: int = 5, window: float = 60.0) -> None:
        self.attempts, self.window = attempts, window
        self._seen: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, user: str, address: str) -> float | None:
        """None if this attempt may go on, else the seconds until one may."""
        now = time.monotonic()
        with self._lock:
            times = self._seen.setdefault((user, address), deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.attempts:
                return self.window - (now - times[0])
            times.append(now)
            if len(self._seen) > 10_000:  # forget the idle ones
                self._seen = {k: v for k, v in self._seen.items() if v}
            return None


class SecurityHeaders(BaseHTTPMiddleware):
    """nosniff, no-referrer, DENY framing, a CSP, and no-store on everything but /healthz."""

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        headers = response.headers
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        headers["X-Frame-Options"] = "DENY"
        headers.setdefault("Content-Security-Policy", API_CSP)
        if request.url.path != "/healthz":
            headers["Cache-Control"] = "no-store"
        return response
