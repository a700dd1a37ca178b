"""Who is asking, and may they: sign-in sessions for pages, bearer tokens for the API, roles, CSRF.

Pages take only the session cookie (``autoclerk_session``: random, HttpOnly, SameSite=Lax, Secure unless
settings say otherwise); the API takes only ``Authorization: Bearer TOKEN``, never a cookie, so a page
on another site can make a browser send neither. Every form post carries the session's own CSRF token
(the synchronizer-token pattern), compared in constant time; the sign-in form, which has no session yet,
carries a token bound to a short-lived cookie of its own.

Why not a CSRF middleware package: the ones for ASGI skip posts that carry no cookie (so the sign-in
form goes unprotected), keep whole request bodies in memory while they look for the token, or tie the
token to a cookie rather than to the server-side session. This check is a comparison with the token
the session row already holds.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from ..accounts import User
from ..errors import OrchestratorError
from .service import HandoffService

SESSION_COOKIE = "autoclerk_session"
SIGN_IN_COOKIE = "autoclerk_sign_in"
CSRF_FIELD = "csrf_token"


class SignInRequired(OrchestratorError):
    """A page was asked for without a live session: the answer is the sign-in page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class Refused(OrchestratorError):
    """A page was refused: the user lacks the role, or the form lacked its CSRF token (403)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class PageSession:
    """The signed-in user of a page request, and the CSRF token their forms carry."""

    user: User
    csrf_token: str


def service_of(request: Request) -> HandoffService:
    return request.app.state.service  # type: ignore[no-any-return]


def _session(request: Request) -> PageSession | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    found = service_of(request).accounts.session(cookie)
    if found:
        request.state.user = found[0].username  # for the access log
    return PageSession(*found) if found else None


WHOLE_SERVICE = ("The audit trail is the record of the whole service, so it is for operators whose access is not "
                 "limited to some workflows. You are signed in as {user}, limited to {workflows}.")


def _limited_to(user: User) -> str:
    return ", ".join(sorted(user.workflows or ())) or "no workflows"


def signed_in(*roles: str, whole_service: bool = False) -> Callable[..., Any]:
    """A dependency: the page's session, whose user has one of ``roles`` (any role when none are named), and
    is not limited to some workflows when the page shows the ``whole_service`` (the audit trail).

    Raises:
        SignInRequired: no live session.
        Refused: the user has none of the roles, or is limited and the page is the whole service's.
    """
    def dependency(request: Request) -> PageSession:
        session = _session(request)
        if session is None:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(path)
        if roles and not session.user.has(*roles):
            raise Refused(f"This page is for {' or '.join(roles)}s. You are signed in as {session.user.username}.")
        if whole_service and session.user.limited:
            raise Refused(WHOLE_SERVICE.format(user=session.user.username, workflows=_limited_to(session.user)))
        return session

    dependency.__name__ = f"signed_in_{'_'.join(roles) or 'any'}"
    dependency.roles = roles  # type: ignore[attr-defined]
    return dependency


def csrf_protected(*roles: str) -> Callable[..., Any]:
    """A dependency for form posts: :func:`signed_in`, and the form's CSRF token matches the session's."""
    session_dependency = signed_in(*roles)

    async def dependency(request: Request) -> PageSession:
        session = await run_in_threadpool(session_dependency, request)
        form = await request.form(max_files=0, max_fields=200)
        check_csrf(str(form.get(CSRF_FIELD, "")), session.csrf_token)
        return session

    dependency.__name__ = f"csrf_{'_'.join(roles) or 'any'}"
    dependency.roles = roles  # type: ignore[attr-defined]
    return dependency


def check_csrf(sent: str, expected: str) -> None:
    """Raises :class:`Refused` unless ``sent`` is the expected token (compared in constant time)."""
    if not sent or not secrets.compare_digest(sent.encode(), expected.encode()):
        raise Refused("The form could not be sent because its security token was missing or out of date. "
                      "Go back, reload the page and try again.")


def sign_in_token(request: Request) -> tuple[str, bool]:
    """The sign-in form's token, from its cookie, or a new one (and whether the cookie must be set)."""
    token = request.cookies.get(SIGN_IN_COOKIE)
    return (token, False) if token else (secrets.token_urlsafe(32), True)


def api_user(*roles: str, whole_service: bool = False) -> Callable[..., Any]:
    """A dependency for the API: the user of the ``Authorization: Bearer`` token, with one of ``roles`` (and
    not limited to some workflows, for the ``whole_service``'s routes: the audit trail).

    Raises:
        HTTPException: 401 without a valid token, 403 without the role or when limited on such a route.
    """
    def dependency(request: Request) -> User:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        user = service_of(request).accounts.token_user(token.strip()) if scheme.lower() == "bearer" and token else None
        if user is None:
            raise HTTPException(401, "a valid API token is required: send 'Authorization: Bearer TOKEN' "
                                     "(autoclerk users add NAME --role ROLE --token)",
                                headers={"WWW-Authenticate": "Bearer"})
        request.state.user = user.username  # for the access log
        if roles and not user.has(*roles):
            raise HTTPException(403, f"this route is for the role(s) {', '.join(roles)}; {user.username} has "
                                     f"{', '.join(sorted(user.roles))}")
        if whole_service and user.limited:
            raise HTTPException(403, f"the audit trail is for operators not limited to some workflows; {user.username} "
                                     f"is limited to {_limited_to(user)}")
        return user

    dependency.__name__ = f"api_{'_'.join(roles) or 'any'}"
    dependency.roles = roles  # type: ignore[attr-defined]
    return dependency


def flash(request: Request, message: str) -> None:
    """Keep a one-time message (a success banner) for the next page the signed-in person opens.

    It lives in the server-side session, never in the address: it shows once, is gone on refresh, and
    only the person whose action it reports sees it.
    """
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        service_of(request).accounts.set_flash(cookie, message)


def pop_flash(request: Request) -> str | None:
    """The session's one-time message, forgotten as it is read (see :func:`flash`)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    return service_of(request).accounts.pop_flash(cookie) if cookie else None


def origin_of(request: Request) -> str:
    """Where a request came from, for the audit trail: the client's address (behind a proxy, the proxy's,
    unless the server is run with forwarded headers trusted)."""
    return request.client.host if request.client else "unknown"


def sign_in_redirect(next_path: str) -> str:
    return f"/sign-in?next={quote(next_path, safe='/')}"

