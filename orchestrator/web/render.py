"""Rendering a page: the templates (ours first, then GOV.UK Frontend's macros), the service navigation a
user's roles give them, the error summary's links and the response's CSP nonce."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from . import filters

HERE = Path(__file__).resolve().parent


def templates() -> Jinja2Templates:
    """Our templates first, then the GOV.UK Frontend macros under ``govuk_frontend_jinja/``."""
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([
            jinja2.FileSystemLoader(str(HERE / "templates")),
            jinja2.PrefixLoader({"govuk_frontend_jinja": jinja2.PackageLoader("govuk_frontend_jinja")}),
        ]),
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.ChainableUndefined)
    env.filters.update(filters.FILTERS)
    env.tests.update(filters.TESTS)
    return Jinja2Templates(env=env)


NAVIGATION = (
    ("caseworker", "/hand-off", "Hand off work"),
    ("caseworker", "/exceptions", "Exceptions"),
    (("caseworker", "operator"), "/batches", "Batches"),
    ("operator", "/operations", "Operations"),
    ("operator", "/audit", "Audit trail"),
    ("author", "/workflows", "Workflows"),
)


def navigation(session: Any, path: str) -> list[dict[str, Any]]:
    """The service navigation items the signed-in user's roles give them (the audit trail, the whole service's
    record, not to a user limited to some workflows)."""
    if session is None:
        return []
    items = []
    for roles, href, text in NAVIGATION:
        if href == "/audit" and session.user.limited:
            continue
        if session.user.has(*((roles,) if isinstance(roles, str) else roles)):
            items.append({"href": href, "text": text, "active": path == href or path.startswith(href + "/")})
    return items


def render(request: Request, name: str, context: dict[str, Any], *, status: int = 200,
           session: Any = None) -> HTMLResponse:
    """A page, with the signed-in user's session and navigation, the error summary's links, the CSP nonce and
    the session's one-time message (a page that is sent successfully shows it and so uses it up)."""
    env: Jinja2Templates = request.app.state.templates
    if session is not None and status < 400 and "flash" not in context:
        from .auth import pop_flash  # auth needs the service, which pages reach only after the app is built

        context = {**context, "flash": pop_flash(request)}
    errors = context.get("errors") or {}
    links = context.get("error_links") or {}
    page = {"cspNonce": request.scope.get("state", {}).get("csp_nonce", ""), "assetPath": "/static/govuk/assets",
            "session": session, "navigation": navigation(session, request.url.path),
            "error_list": [{"text": message, "href": f"#{links.get(field, field)}"} for field, message in errors.items()],
            **context}
    return env.TemplateResponse(request, name, page, status_code=status)
