"""Signing in and out, and the start page (which sends each role to its own first page)."""

from __future__ import annotations

import asyncio

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from .auth import (SESSION_COOKIE, SIGN_IN_COOKIE, PageSession, check_csrf, csrf_protected, origin_of, service_of,
                   sign_in_token, signed_in)
from .render import render

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)

HOME_BY_ROLE = (("caseworker", "/hand-off"), ("operator", "/operations"), ("author", "/workflows"))


def safe_next(path: str) -> str:
    """Only a path on this site (never ``//host`` or a scheme) may follow a sign-in."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


@router.get("/")
def home(session: PageSession = Depends(signed_in())) -> Response:
    for role, path in HOME_BY_ROLE:
        if session.user.has(role):
            return RedirectResponse(path, status_code=303)
    return RedirectResponse("/sign-in", status_code=303)


def sign_in_form(request: Request, next_path: str, *, username: str = "", errors: dict[str, str] | None = None,
                 status: int = 200) -> Response:
    """The sign-in page: the password form, and the single sign-on button when it is configured."""
    token, new = sign_in_token(request)
    settings = service_of(request).settings
    response = render(request, "sign_in.html", {
        "title": "Sign in", "sign_in_token": token, "next": next_path, "username": username, "errors": errors or {},
        "sso": settings.oidc_label if settings.oidc_enabled else None}, status=status)
    if new:
        set_cookie(request, response, SIGN_IN_COOKIE, token, max_age=3600, path="/sign-in")
    return response


@router.get("/sign-in")
def sign_in_page(request: Request, next: str = "/") -> Response:
    return sign_in_form(request, safe_next(next))


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    check_csrf(str(form.get("csrf_token", "")), request.cookies.get(SIGN_IN_COOKIE, ""))
    username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
    next_path = safe_next(str(form.get("next", "/")))
    service, origin = service_of(request), origin_of(request)
    if not username or not password:  # an empty form is not an attempt
        errors = {"username": "Enter your user name"} if not username else {"password": "Enter your password"}
        return sign_in_form(request, next_path, username=username, errors=errors, status=401)
    verdict = await run_in_threadpool(service.sign_in_guard.check, username, origin)
    if verdict.locked:
        log.warning("sign-in locked", user=username, client=origin, failures=verdict.failures, by=verdict.why)
        await run_in_threadpool(service.ledger.audit.record, username, "sign_in.locked", "user", username,
                                origin=origin, detail={"failures": verdict.failures, "by": verdict.why})
        minutes = round(service.settings.sign_in_lock_minutes)
        return sign_in_form(request, next_path, username=username, status=429, errors={
            "password": f"There have been too many failed attempts to sign in. Try again in {minutes} minutes."})
    if verdict.delay_s:
        await asyncio.sleep(verdict.delay_s)  # the brake: each guess after the first few costs time
    user = await run_in_threadpool(service.accounts.authenticate, username, password)
    # the password never reaches the log or the trail
    await run_in_threadpool(service.ledger.audit.record, username, "sign_in" if user else "sign_in.failed",
                            "user", username, origin=origin)
    if user is None:
        log.warning("sign-in failed", user=username, client=origin, failures=verdict.failures + 1)
        return sign_in_form(request, next_path, username=username, status=401,
                            errors={"password": "The user name or password is not right"})
    started = await run_in_threadpool(service.accounts.start_session, user, service.settings.session_hours)
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(request, response, SESSION_COOKIE, started.session_id, max_age=int(service.settings.session_hours * 3600))
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return response


@router.post("/sign-out")
def sign_out(request: Request, session: PageSession = Depends(csrf_protected())) -> Response:
    service = service_of(request)
    service.accounts.end_session(request.cookies.get(SESSION_COOKIE, ""))
    service.ledger.audit.record(session.user.username, "sign_out", "user", session.user.username,
                                origin=origin_of(request))
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int, path: str = "/") -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True, samesite="lax",
                        secure=service_of(request).settings.cookie_secure)
