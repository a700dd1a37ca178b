"""The hand-off service's web application: GOV.UK-style pages for people, a JSON API for machines.

Every response carries a strict Content-Security-Policy (scripts only from this origin, or inline with
the response's nonce), no framing, no MIME sniffing and a same-origin referrer. Templates autoescape
everything; text that came from a person or a file is only ever passed to the GOV.UK macros as ``text``.
"""

from __future__ import annotations

import secrets

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import api, audit_pages, batch_pages, handoff_pages, ops_pages, signin, sso
from .access_log import AccessLog, access_logger
from .auth import Refused, SignInRequired, sign_in_redirect
from .render import HERE, render, templates
from .service import HandoffService


class SecurityHeaders:
    """Adds the security headers to every response, and a fresh CSP nonce for the page's inline script."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", (
                        f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; "
                        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'").encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if not any(k == b"cache-control" for k, _ in headers):  # pages hold case data: never cached
                    static = scope.get("path", "").startswith("/static/")
                    headers.append((b"cache-control", b"public, max-age=3600" if static else b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(service: HandoffService) -> FastAPI:
    """The application for ``service``: pages at ``/``, the API at ``/api`` (OpenAPI at ``/api/openapi.json``)."""
    app = FastAPI(title="Autoclerk hand-off service", version="1", docs_url=None, redoc_url=None, openapi_url=None,
                  description=api.DESCRIPTION)
    app.state.service = service
    app.state.sso = sso.sso_client(service.settings) if service is not None else None  # None: the routes alone (OpenAPI)
    app.state.templates = templates()
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (signin, sso, handoff_pages, batch_pages, ops_pages, audit_pages, api):
        app.include_router(module.router)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(sign_in_redirect(exc.next_path), status_code=303)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> Response:
        return render(request, "refused.html", {"title": "You cannot do this", "message": exc.message}, status=403)

    @app.get("/healthz", include_in_schema=False)
    async def _healthz() -> Response:
        return JSONResponse({"ok": True})

    @app.get("/readyz", include_in_schema=False)
    async def _readyz() -> Response:
        checks = await run_in_threadpool(service.readiness)
        down = [name for name, state in checks.items() if state == "unreachable"]
        return JSONResponse({"ok": not down, **checks}, status_code=503 if down else 200)

    if app.state.sso is not None:  # Authlib keeps the sign-on flow's state here, for ten minutes, on /sign-in only
        app.add_middleware(SessionMiddleware, secret_key=sso.flow_cookie_key(service.settings),
                           session_cookie=sso.SSO_COOKIE, max_age=sso.FLOW_SECONDS, path="/sign-in",
                           same_site="lax", https_only=service.settings.cookie_secure)
    app.add_middleware(SecurityHeaders)
    if service is not None and service.settings.access_log:
        app.add_middleware(AccessLog, logger=access_logger(json=service.settings.log_json))
    return app
