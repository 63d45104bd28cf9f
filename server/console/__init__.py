"""The web console: server-rendered pages (Jinja2) over the same services as the API.

``create_app`` mounts ``console_app`` at ``/console``. A login sets a session cookie
(HttpOnly, SameSite=Strict, Secure behind TLS) holding a login token of
``services.accounts``; every POST form carries a CSRF token derived from it. Roles are the
API's (viewer/auditor/admin per site). Pages work without JavaScript; the CSP allows only
this origin (``default-src 'self'``).
"""

from otaudit.server.console.pages import console_app

__all__ = ["console_app"]
