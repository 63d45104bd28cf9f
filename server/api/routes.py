"""The routes of ``/api/v1``: read (viewer), policy and exports (auditor), accounts (admin)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response

from otaudit.server.api.models import LoginBody, RoleBody, TokenBody, UserBody, WaiverBody
from otaudit.server.api.paging import Page, json_response, paged
from otaudit.server.api.security import REPORT_CSP, current_principal, db_session, need
from otaudit.server.services import (
    accounts,
    assets,
    audit,
    drift,
    exports,
    findings,
    gap,
    patches,
    waivers,
)
from otaudit.server.services import sites as sites_svc
from otaudit.server.services.accounts import Principal
from otaudit.server.services.policy import site_policy

router = APIRouter(prefix="/api/v1")
VIEWER, AUDITOR, ADMIN = need("viewer"), need("auditor"), need("admin")
SITE = "/sites/{site}"
# The transaction ends (commit) before the response leaves, not after it was sent (FastAPI's
# default "request" scope): a client that uses a token right after POST /login, or reads what
# it just wrote, must see it committed.
DB = Depends(db_session, scope="function")


def _policy(request: Request, session: Session, site: str) -> Any:
    state = request.app.state
    return site_policy(session, site, state.baseline, state.exceptions_file,
                       state.attestations_file)


def _zone(session: Session, site: str, zone: str | None) -> None:
    if zone is not None and not sites_svc.zone_exists(session, site, zone):
        raise HTTPException(404, f"no zone {zone!r} in site {site!r}")


# -- authentication ---------------------------------------------------------------------

@router.post("/login", tags=["auth"])
def login(body: LoginBody, request: Request, session: Session = DB
          ) -> Any:
    """A token for a user and password (at most 5 attempts a minute per user and address)."""
    address = request.client.host if request.client else "-"
    wait = request.app.state.login_limiter.allow(body.username, address)
    if wait is not None:
        raise HTTPException(429, "too many login attempts",
                            headers={"Retry-After": str(int(wait) + 1)})
    issued = accounts.login(session, body.username, body.password)
    if issued is None:  # answered, not raised: the trail entry commits with the request
        audit.record(session, body.username, "login.failed", f"address:{address}")
        return JSONResponse({"detail": "wrong user name or password"}, status_code=401)
    token_id, token = issued
    return {"token": token, "token_id": token_id,
            "expires_in": int(accounts.LOGIN_TOKEN_LIFETIME.total_seconds())}


@router.get("/sites", tags=["sites"])
def list_sites(request: Request, page: Page = Depends(),
               principal: Principal = Depends(current_principal),
               session: Session = DB) -> Response:
    """The sites where the caller holds a role."""
    return paged(request, sites_svc.list_sites(session, set(principal.roles)), page)


# -- read (viewer) ----------------------------------------------------------------------

@router.get(SITE + "/zones", tags=["sites"])
def zones(site: str, request: Request, page: Page = Depends(), _: Principal = Depends(VIEWER),
          session: Session = DB) -> Response:
    """Per zone: SL-T, proven and reachable SL-A, assessed share (as the report computes)."""
    evaluation = gap.gap_evaluation(session, site, request.app.state.baseline,
                                    _policy(request, session, site))
    return paged(request, gap.zone_summaries(evaluation), page)


@router.get(SITE + "/gap", tags=["sites"])
def site_gap(site: str, request: Request, zone: str | None = None,
             _: Principal = Depends(VIEWER), session: Session = DB
             ) -> Response:
    """What ``otaudit gap --format json --site SITE`` prints."""
    _zone(session, site, zone)
    evaluation = gap.gap_evaluation(session, site, request.app.state.baseline,
                                    _policy(request, session, site), zone)
    return json_response(request, gap.gap_document(evaluation, zone))


@router.get(SITE + "/requirements", tags=["findings"])
def requirements(site: str, request: Request, zone: str | None = None,
                 status: str | None = None, page: Page = Depends(),
                 _: Principal = Depends(VIEWER), session: Session = DB
                 ) -> Response:
    """Every requirement per zone with its outcome and why (filter zone, status)."""
    _zone(session, site, zone)
    evaluation = gap.gap_evaluation(session, site, request.app.state.baseline,
                                    _policy(request, session, site), zone)
    return paged(request, gap.requirement_rows(evaluation, zone, status), page)


@router.get(SITE + "/assets", tags=["assets"])
def list_assets(site: str, request: Request, zone: str | None = None,
                page: Page = Depends(), _: Principal = Depends(VIEWER),
                session: Session = DB) -> Response:
    """The site's assets, by zone then id."""
    return paged(request, assets.list_assets(session, site, zone), page)


@router.get(SITE + "/assets/{asset_id}", tags=["assets"])
def asset(site: str, asset_id: str, request: Request, _: Principal = Depends(VIEWER),
          session: Session = DB) -> Response:
    """One asset with its latest facts, unknowns and evidence."""
    detail = assets.asset_detail(session, site, asset_id)
    if detail is None:
        raise HTTPException(404, f"no asset {asset_id!r} in site {site!r}")
    return json_response(request, detail)


@router.get(SITE + "/observations", tags=["assets"])
def observations(site: str, request: Request, asset: str | None = None,
                 probe: str | None = None, page: Page = Depends(),
                 _: Principal = Depends(VIEWER), session: Session = DB
                 ) -> Response:
    """Observations, newest first (filter asset, probe)."""
    items, total = assets.list_observations(session, site, asset, probe, page.limit,
                                            page.offset)
    return paged(request, items, page, total, already_sliced=True)


@router.get(SITE + "/findings", tags=["findings"])
def list_findings(site: str, request: Request, outcome: str | None = None,
                  check: str | None = None, zone: str | None = None,
                  asset: str | None = None, page: Page = Depends(),
                  _: Principal = Depends(VIEWER), session: Session = DB
                  ) -> Response:
    """Stored findings by asset then check (filter outcome, check, zone, asset)."""
    return paged(request, findings.list_findings(session, site, outcome=outcome, check=check,
                                                 zone=zone, asset=asset), page)


@router.get(SITE + "/patch-status", tags=["advisories"])
def patch_status(site: str, request: Request,
                 state: list[str] = Query([], description="open, needs_review, patched"),
                 kev: bool | None = None, zone: str | None = None, page: Page = Depends(),
                 _: Principal = Depends(VIEWER), session: Session = DB
                 ) -> Response:
    """``otaudit patch status`` rows, known exploited first (filter state, kev, zone)."""
    if bad := [s for s in state if s not in patches.STATES]:
        raise HTTPException(422, f"unknown state {bad[0]!r}: {', '.join(patches.STATES)}")
    return paged(request, patches.patch_status(session, site, zone=zone, states=state,
                                               kev=kev), page)


@router.get(SITE + "/advisories", tags=["advisories"])
def advisories(site: str, request: Request, page: Page = Depends(),
               _: Principal = Depends(VIEWER), session: Session = DB
               ) -> Response:
    """The advisories that concern the site's assets, with CVEs, assets and states."""
    return paged(request, patches.site_advisories(session, site), page)


@router.get(SITE + "/drift", tags=["assets"])
def drift_events(site: str, request: Request, since: datetime | None = None,
                 asset: str | None = None, page: Page = Depends(),
                 _: Principal = Depends(VIEWER), session: Session = DB
                 ) -> Response:
    """Drift events, oldest first (filter since, asset): before/after and both evidence ids."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return paged(request, drift.list_drift(session, site, since=since, asset=asset), page)


def _waiver_routes(kind: str) -> None:
    """List (viewer), create and expire (auditor) routes of one kind of waiver."""
    base = f"{SITE}/{kind}s"

    def list_kind(site: str, request: Request, page: Page = Depends(),
                  _: Principal = Depends(VIEWER), session: Session = DB
                  ) -> Response:
        return paged(request, waivers.list_waivers(session, site, kind), page)

    def create_kind(site: str, body: WaiverBody, request: Request,
                    principal: Principal = Depends(AUDITOR),
                    session: Session = DB) -> Response:
        try:
            view = waivers.create_waiver(session, site, kind, body.record, principal.user,
                                         request.app.state.baseline)
        except waivers.WaiverConflict as exc:
            raise HTTPException(409, str(exc)) from None
        findings.refresh_findings(session, site, request.app.state.baseline,
                                  _policy(request, session, site))
        return json_response(request, view, 201)

    def expire_kind(site: str, record_id: str, request: Request,
                    principal: Principal = Depends(AUDITOR),
                    session: Session = DB) -> Response:
        view = waivers.expire_waiver(session, site, kind, record_id, principal.user)
        if view is None:
            raise HTTPException(404, f"no {kind} {record_id!r} in site {site!r}")
        findings.refresh_findings(session, site, request.app.state.baseline,
                                  _policy(request, session, site))
        return json_response(request, view)

    router.add_api_route(base, list_kind, methods=["GET"], tags=["policy"],
                         name=f"list_{kind}s", summary=f"List {kind}s",
                         description=f"The {kind}s written through the API, expired ones too.")
    router.add_api_route(base, create_kind, methods=["POST"], tags=["policy"], status_code=201,
                         name=f"create_{kind}", summary=f"Create an {kind}",
                         description=f"Create an {kind} (the YAML file's fields); audited.")
    router.add_api_route(base + "/{record_id}/expire", expire_kind, methods=["POST"],
                         tags=["policy"], name=f"expire_{kind}", summary=f"Expire an {kind}",
                         description=f"Stop an {kind} counting from now; audited.")


for _kind in waivers.KINDS:
    _waiver_routes(_kind)


# -- exports (auditor) ------------------------------------------------------------------

@router.get(SITE + "/report", tags=["exports"], response_class=Response)
def report(site: str, request: Request, zone: str | None = None,
           _: Principal = Depends(AUDITOR), session: Session = DB
           ) -> Response:
    """The gap report as one HTML page."""
    _zone(session, site, zone)
    html = exports.report_html(session, site, request.app.state.baseline,
                               _policy(request, session, site), zone)
    return Response(html, media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": REPORT_CSP,
                             "Content-Disposition": f'attachment; filename="report-{site}.html"'})


@router.get(SITE + "/evidence", tags=["exports"], response_class=Response)
def evidence(site: str, request: Request, zone: str | None = None,
             _: Principal = Depends(AUDITOR), session: Session = DB
             ) -> Response:
    """The signed evidence package (zip); 409 when the server has no signing key."""
    _zone(session, site, zone)
    key = request.app.state.signing_key_file
    if key is None:
        raise HTTPException(409, "the server has no signing key "
                            "(OTAUDIT_SERVER_SIGNING_KEY_FILE)")
    data = exports.evidence_package(session, site, request.app.state.baseline,
                                    _policy(request, session, site), key, zone)
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition":
                             f'attachment; filename="evidence-{site}.zip"'})


# -- accounts (admin) -------------------------------------------------------------------

@router.get(SITE + "/users", tags=["accounts"])
def users(site: str, request: Request, page: Page = Depends(), _: Principal = Depends(ADMIN),
          session: Session = DB) -> Response:
    """The users holding a role at the site."""
    return paged(request, accounts.users_of_site(session, site), page)


@router.post(SITE + "/users", tags=["accounts"], status_code=201)
def create_user(site: str, body: UserBody, request: Request,
                principal: Principal = Depends(ADMIN),
                session: Session = DB) -> Response:
    """Create a user with a role at this site; audited."""
    accounts.add_user(session, body.name, body.password, principal.user)
    accounts.grant(session, body.name, site, body.role, principal.user)
    return json_response(request, {"name": body.name, "site": site, "role": body.role}, 201)


@router.put(SITE + "/users/{name}", tags=["accounts"])
def set_role(site: str, name: str, body: RoleBody, request: Request,
             principal: Principal = Depends(ADMIN),
             session: Session = DB) -> Response:
    """Give an existing user a role at this site; audited."""
    accounts.grant(session, name, site, body.role, principal.user)
    return json_response(request, {"name": name, "site": site, "role": body.role})


@router.post(SITE + "/tokens", tags=["accounts"], status_code=201)
def create_token(site: str, body: TokenBody, request: Request,
                 principal: Principal = Depends(ADMIN),
                 session: Session = DB) -> Response:
    """A token of a user for this site (shown once; the server keeps its hash)."""
    token_id, token = accounts.create_token(session, body.user, site, body.role,
                                            timedelta(days=body.expires_days), principal.user)
    return json_response(request, {"token_id": token_id, "token": token}, 201)


@router.delete(SITE + "/tokens/{token_id}", tags=["accounts"])
def revoke_token(site: str, token_id: int, request: Request,
                 principal: Principal = Depends(ADMIN),
                 session: Session = DB) -> Response:
    """Revoke a token of this site; audited."""
    if not accounts.revoke_token(session, token_id, principal.user, site):
        raise HTTPException(404, f"no token {token_id} of site {site!r}")
    return json_response(request, {"token_id": token_id, "revoked": True})


@router.get(SITE + "/audit-trail", tags=["accounts"])
def audit_trail(site: str, request: Request, page: Page = Depends(),
                _: Principal = Depends(ADMIN), session: Session = DB
                ) -> Response:
    """Every write at this site: who, when, what, target."""
    return paged(request, audit.trail(session, site), page)
