"""Signing in and out, and the start page (which sends each role to its own first page)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from .auth import (SESSION_COOKIE, SIGN_IN_COOKIE, PageSession, check_csrf, csrf_protected, origin_of, service_of,
                   sign_in_token, signed_in)
from .render import render

router = APIRouter(include_in_schema=False)

HOME_BY_ROLE = (("caseworker", "/hand-off"), ("operator", "/operations"), ("author", "/workflows"))


def _safe_next(path: str) -> str:
    """Only a path on this site (never ``//host`` or a scheme) may follow a sign-in."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


@router.get("/")
def home(session: PageSession = Depends(signed_in())) -> Response:
    for role, path in HOME_BY_ROLE:
        if session.user.has(role):
            return RedirectResponse(path, status_code=303)
    return RedirectResponse("/sign-in", status_code=303)


@router.get("/sign-in")
def sign_in_page(request: Request, next: str = "/") -> Response:
    token, new = sign_in_token(request)
    response = render(request, "sign_in.html", {"title": "Sign in", "sign_in_token": token, "next": _safe_next(next),
                                                "username": "", "errors": {}})
    if new:
        _set_cookie(request, response, SIGN_IN_COOKIE, token, max_age=3600, path="/sign-in")
    return response


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    check_csrf(str(form.get("csrf_token", "")), request.cookies.get(SIGN_IN_COOKIE, ""))
    username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
    next_path = _safe_next(str(form.get("next", "/")))
    service = service_of(request)
    user = await run_in_threadpool(service.accounts.authenticate, username, password) if username and password else None
    if username:  # an empty form is not an attempt; the password never reaches the trail
        await run_in_threadpool(service.ledger.audit.record, username, "sign_in" if user else "sign_in.failed",
                                "user", username, origin=origin_of(request))
    if user is None:
        errors = {"username": "Enter your user name"} if not username else (
            {"password": "Enter your password"} if not password else
            {"password": "The user name or password is not right"})
        return render(request, "sign_in.html", {"title": "Sign in", "sign_in_token": request.cookies[SIGN_IN_COOKIE],
                                                "next": next_path, "username": username, "errors": errors}, status=401)
    started = await run_in_threadpool(service.accounts.start_session, user, service.settings.session_hours)
    response = RedirectResponse(next_path, status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, started.session_id, max_age=int(service.settings.session_hours * 3600))
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return response


@router.post("/sign-out")
def sign_out(request: Request, session: PageSession = Depends(csrf_protected())) -> Response:
    service_of(request).accounts.end_session(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int, path: str = "/") -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True, samesite="lax",
                        secure=service_of(request).settings.cookie_secure)
