"""The console's routes: ``console_app(state)`` is mounted at ``/console`` by ``create_app``."""

from __future__ import annotations

import csv
import io
import secrets
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, HTTPException, Request
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.datastructures import State
from starlette.responses import HTMLResponse, RedirectResponse, Response

from otaudit.errors import InputError
from otaudit.server.api.security import db_session
from otaudit.server.console import views
from otaudit.server.console.auth import (
    CONSOLE_CSP,
    COOKIE,
    Forbidden,
    LoginRequired,
    check_csrf,
    form,
    need,
    need_post,
    principal,
)
from otaudit.server.reporting.html import stylesheet
from otaudit.server.services import (
    accounts,
    audit,
    collectors,
    exports,
    findings,
    patches,
    waivers,
)
from otaudit.server.services import sites as sites_svc
from otaudit.server.services.accounts import Principal
from otaudit.server.services.gap import EvaluationCache
from otaudit.server.services.policy import Policy, site_policy

VIEWER, AUDITOR = need("viewer"), need("auditor")
# committed before the response leaves: a redirect's next page sees the write (login, forms)
DB = Depends(db_session, scope="function")
SITE = "/sites/{site}"
HTMX = "static/vendor/htmx/htmx.min.js"
PAGE_ROWS = 200  # findings per page (the CSV has them all)
OUTCOMES = ("fail", "capability_gap", "unknown", "compensated", "attested", "pass",
            "not_applicable")


@cache
def environment() -> Environment:
    return Environment(loader=PackageLoader("otaudit.server.console", "templates"),
                       autoescape=select_autoescape(("html", "j2")),
                       trim_blocks=True, lstrip_blocks=True)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page; every HTML answer of the console carries its CSP."""
    html = environment().get_template(template).render(
        request=request, url_for=lambda name, **params: url(request, name, **params),
        csrf=getattr(request.state, "csrf", ""),
        user=getattr(request.state, "user", None), **context)
    return HTMLResponse(html, status, headers={"Content-Security-Policy": CONSOLE_CSP})


def url(request: Request, name: str, **params: Any) -> str:
    """The path of a console route (under the mount's root path)."""
    return request.scope.get("root_path", "") + str(request.app.url_path_for(name, **params))


def _policy(request: Request, session: Session, site: str) -> Policy:
    state = request.app.state
    return site_policy(session, site, state.baseline, state.exceptions_file,
                       state.attestations_file)


def _site(session: Session, site: str) -> None:
    if not sites_svc.site_exists(session, site):
        raise HTTPException(404, f"no site {site!r}")


def _seen(request: Request, who: Principal) -> Principal:
    request.state.user = who
    return who


def console_app(state: State) -> FastAPI:
    """The console, sharing ``state`` (engine, baseline, policy files, limiter) with the API."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state = state
    state.console_secret = secrets.token_bytes(32)
    state.evaluations = EvaluationCache()  # the pages' gap, while its inputs are unchanged
    _handlers(app)
    _routes(app)
    return app


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _: LoginRequired) -> Response:
        return RedirectResponse(url(request, "login_page"), 303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "error.html.j2", 403, title="Not allowed", message=exc.message)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        return render(request, "error.html.j2", exc.status_code, title="Not found"
                      if exc.status_code == 404 else "Error", message=str(exc.detail))


def _routes(app: FastAPI) -> None:
    @app.get("/", name="home")
    def home(request: Request, who: Principal = Depends(principal)) -> Response:
        """The sites overview."""
        return RedirectResponse(url(request, "sites_page"), 303)

    @app.get("/static/console.css", name="css")
    def css() -> Response:
        """The report's stylesheet (status badges, tables) and the console's own."""
        text = stylesheet() + files("otaudit.server.console").joinpath(
            "static/console.css").read_text()
        return Response(text, media_type="text/css")

    @app.get("/static/htmx.min.js", name="htmx")
    def htmx() -> Response:
        """The vendored htmx (static/vendor/htmx/README.md): progressive enhancement only."""
        text = files("otaudit.server.console").joinpath(HTMX).read_bytes()
        return Response(text, media_type="text/javascript")

    @app.get("/login", name="login_page")
    def login_page(request: Request) -> Response:
        return render(request, "login.html.j2", title="Sign in")

    @app.post("/login", name="login")
    def login(request: Request, fields: dict[str, str] = Depends(form),
              session: Session = DB) -> Response:
        """A login token in an HttpOnly, SameSite=Strict cookie (rate limited as the API)."""
        name, password = fields.get("username", ""), fields.get("password", "")
        address = request.client.host if request.client else "-"
        if request.app.state.login_limiter.allow(name, address) is not None:
            return render(request, "login.html.j2", 429, title="Sign in", username=name,
                          error="Too many attempts: wait a minute and try again.")
        issued = accounts.login(session, name, password)
        if issued is None:
            audit.record(session, name, "login.failed", f"address:{address}")
            return render(request, "login.html.j2", 401, title="Sign in", username=name,
                          error="Wrong user name or password.")
        response = RedirectResponse(url(request, "sites_page"), 303)
        response.set_cookie(COOKIE, issued[1], httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/console",
                            max_age=int(accounts.LOGIN_TOKEN_LIFETIME.total_seconds()))
        return response

    @app.post("/logout", name="logout")
    def logout(request: Request, who: Principal = Depends(principal),
               fields: dict[str, str] = Depends(form),
               session: Session = DB) -> Response:
        """Revoke the session's token and drop the cookie."""
        check_csrf(request, fields)
        if who.token_id is not None:
            accounts.revoke_token(session, who.token_id, who.user)
        response = RedirectResponse(url(request, "login_page"), 303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    @app.get("/sites", name="sites_page")
    def sites_page(request: Request, who: Principal = Depends(principal),
                   session: Session = DB) -> Response:
        """Per site of the user: zones SL-T vs SL-A, open exploited advisories, drift, and
        the collectors with their last-seen."""
        _seen(request, who)
        mine = sites_svc.list_sites(session, set(who.roles))
        state = request.app.state
        overviews = [views.site_overview(session, s["site"], s["assets"], state.baseline,
                                         _policy(request, session, s["site"]),
                                         state.evaluations) for s in mine]
        presence = state.presence
        beat = (presence.interval, presence.intervals) if presence else state.heartbeat
        heard = collectors.collectors_by_site(session, [s["site"] for s in mine], presence,
                                              *beat)
        for overview in overviews:
            overview["collectors"] = heard[overview["site"]]
        return render(request, "sites.html.j2", title="Sites", overviews=overviews,
                      levels=views.levels, duration=views.duration,
                      drift_days=views.DRIFT_DAYS, roles=who.roles)

    @app.get(SITE + "/zones/{zone}", name="zone_page")
    def zone_page(site: str, zone: str, request: Request, who: Principal = Depends(VIEWER),
                  session: Session = DB) -> Response:
        """The zone: FR chart, requirements with outcome and reason, assets, exceptions."""
        _seen(request, who)
        if not sites_svc.zone_exists(session, site, zone):
            raise HTTPException(404, f"no zone {zone!r} in site {site!r}")
        data = views.zone_page(session, site, zone, request.app.state.baseline,
                               _policy(request, session, site), request.app.state.evaluations)
        return render(request, "zone.html.j2", title=f"Zone {zone}", levels=views.levels,
                      **data)

    @app.get(SITE + "/assets/{asset_id}", name="asset_page")
    def asset_page(site: str, asset_id: str, request: Request,
                   who: Principal = Depends(VIEWER), session: Session = DB
                   ) -> Response:
        """The asset: identity, facts with evidence, findings, advisories, timeline."""
        _seen(request, who)
        data = views.asset_page(session, site, asset_id)
        if data is None:
            raise HTTPException(404, f"no asset {asset_id!r} in site {site!r}")
        return render(request, "asset.html.j2", title=f"Asset {asset_id}", **data)

    @app.get(SITE + "/findings", name="findings_page")
    def findings_page(site: str, request: Request, outcome: str = "", check: str = "",
                      zone: str = "", asset: str = "", format: str = "html", page: int = 1,
                      who: Principal = Depends(VIEWER), session: Session = DB
                      ) -> Response:
        """Findings filtered by a GET form; ``format=csv`` downloads the same rows."""
        _seen(request, who)
        _site(session, site)
        rows = findings.list_findings(session, site, outcome=outcome or None,
                                      check=check or None, zone=zone or None,
                                      asset=asset or None, detail=False)
        if format == "csv":
            return _csv(site, rows)
        filters = {"outcome": outcome, "check": check, "zone": zone, "asset": asset}
        pages = max(1, -(-len(rows) // PAGE_ROWS))
        page = min(max(page, 1), pages)
        query = urlencode({k: v for k, v in filters.items() if v})
        return render(request, "findings.html.j2", title="Findings", site=site,
                      rows=rows[(page - 1) * PAGE_ROWS:page * PAGE_ROWS], total=len(rows),
                      page=page, pages=pages, query=query, first=(page - 1) * PAGE_ROWS + 1,
                      outcomes=OUTCOMES, filters=filters)

    @app.get(SITE + "/patches", name="patches_page")
    def patches_page(site: str, request: Request, who: Principal = Depends(VIEWER),
                     session: Session = DB) -> Response:
        """Open and to-review advisories, known exploited first, then by CVSS."""
        _seen(request, who)
        _site(session, site)
        rows = patches.patch_status(session, site, states=["open", "needs_review"])
        return render(request, "patches.html.j2", title="Patch board", site=site, rows=rows)

    @app.get(SITE + "/risks", name="risks_page")
    def risks_page(site: str, request: Request, who: Principal = Depends(VIEWER),
                   session: Session = DB) -> Response:
        """The risk register; auditors also get the create/expire forms."""
        _seen(request, who)
        _site(session, site)
        return _risks(request, session, site, who)

    @app.post(SITE + "/risks", name="create_risk")
    def create_risk(site: str, request: Request,
                    posted: tuple[Principal, dict[str, str]] = Depends(need_post("auditor")),
                    session: Session = DB) -> Response:
        """Create an exception (audited, findings re-evaluated), then back to the register."""
        who, fields = posted
        _seen(request, who)
        record = views.exception_record(fields)
        try:
            waivers.create_waiver(session, site, "exception", record, who.user,
                                  request.app.state.baseline)
        except (InputError, waivers.WaiverConflict) as exc:
            problems = exc.problems if isinstance(exc, InputError) else [str(exc)]
            return _risks(request, session, site, who, 422, problems=problems, form=fields)
        findings.refresh_findings(session, site, request.app.state.baseline,
                                  _policy(request, session, site))
        return RedirectResponse(url(request, "risks_page", site=site), 303)

    @app.post(SITE + "/risks/{record_id}/expire", name="expire_risk")
    def expire_risk(site: str, record_id: str, request: Request,
                    posted: tuple[Principal, dict[str, str]] = Depends(need_post("auditor")),
                    session: Session = DB) -> Response:
        """Stop an exception counting from now."""
        who, _ = posted
        if waivers.expire_waiver(session, site, "exception", record_id, who.user) is None:
            raise HTTPException(404, f"no exception {record_id!r} in site {site!r}")
        findings.refresh_findings(session, site, request.app.state.baseline,
                                  _policy(request, session, site))
        return RedirectResponse(url(request, "risks_page", site=site), 303)

    @app.get(SITE + "/exports", name="exports_page")
    def exports_page(site: str, request: Request, who: Principal = Depends(VIEWER),
                     session: Session = DB) -> Response:
        """Links to the report and the evidence package (auditor)."""
        _seen(request, who)
        _site(session, site)
        return render(request, "exports.html.j2", title="Exports", site=site,
                      auditor=who.may(site, "auditor"),
                      signing=request.app.state.signing_key_file is not None)

    @app.get(SITE + "/exports/report.html", name="report_export")
    def report_export(site: str, request: Request, _: Principal = Depends(AUDITOR),
                      session: Session = DB) -> Response:
        _site(session, site)
        html = exports.report_html(session, site, request.app.state.baseline,
                                   _policy(request, session, site))
        return Response(html, media_type="text/html; charset=utf-8", headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                       "img-src data:; frame-ancestors 'none'",
            "Content-Disposition": f'attachment; filename="report-{site}.html"'})

    @app.get(SITE + "/exports/evidence.zip", name="evidence_export")
    def evidence_export(site: str, request: Request, _: Principal = Depends(AUDITOR),
                        session: Session = DB) -> Response:
        _site(session, site)
        key = request.app.state.signing_key_file
        if key is None:
            raise HTTPException(409, "the server has no signing key "
                                "(OTAUDIT_SERVER_SIGNING_KEY_FILE)")
        data = exports.evidence_package(session, site, request.app.state.baseline,
                                        _policy(request, session, site), key)
        return Response(data, media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="evidence-{site}.zip"'})


def _risks(request: Request, session: Session, site: str, who: Principal, status: int = 200,
           **extra: Any) -> Response:
    data = views.risk_register(session, site, _policy(request, session, site))
    return render(request, "risks.html.j2", status, title="Risk register", site=site,
                  auditor=who.may(site, "auditor"), checks=sorted(request.app.state.baseline
                                                                  .checks), **data, **extra)


def _csv(site: str, rows: list[dict[str, Any]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["asset_id", "zone", "check_id", "outcome", "evaluated_at"])
    for r in rows:
        writer.writerow([r["asset_id"], r["zone"], r["check_id"], r["outcome"],
                         r["evaluated_at"]])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="findings-{site}.csv"'})
