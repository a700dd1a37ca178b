"""The demo portal: a legacy case-management web application for the demo, the tests and the benchmarks.

Pages: sign-in (session cookie), case search, case details with change history and notes, a multi-field
change-of-address form with server-side validation and a one-time form token, a confirmation page with
a generated reference, and an add-a-note form with attachments and a JavaScript confirm dialog.
``GET /api/export`` lists every accepted change of address and ``GET /api/notes`` every saved note;
``PUT /api/faults`` sets the fault knobs (latency, a rate of 5xx answers, a page that always answers 5xx,
a rate of hanging requests, session lifetime, a renamed element id, a full outage, a share of changes confirmed
but never stored, and ``drift``: a release that renamed, moved, relabelled, doubled or removed an element,
see :data:`DRIFTS`); ``GET /api/sessions`` counts sign-ins and live sessions, and ``DELETE /api/sessions`` ends
every session at once. ``GET /api/load`` tells the load the portal has seen (bot sessions at once, their peak, sessions and
page requests started in the busiest minute; see :mod:`demo_portal.load`), and ``DELETE /api/load``
starts counting afresh.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import random
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from .load import LoadMeter, LoadMiddleware
from .notes import CATEGORIES, STAFF, NoteStore, case_status, validate_note
from .records import COUNTRIES, CONTACT_METHODS, FORM_FIELDS, SubmissionStore, find_case, loses, validate_change

SESSION_COOKIE = "PORTALSESSID"
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


DRIFTS = {
    "": "no drift",
    "renamed_id": "the change-of-address form's 'Town or city' field has a new id (town)",
    "changed_classes": "the confirmation reference has new classes (ref-value instead of reference)",
    "moved_field": "the 'Postcode' field moved to the top of the form, with a new id (post-code)",
    "relabelled_submit": "the submit button reads 'Send change' and has a new id (send-change)",
    "twin_fields": "the 'Town or city' field became two near-identical ones (city-home, city-work)",
    "removed_field": "the 'Town or city' field is gone",
}
"""The releases the ``drift`` knob can simulate."""


@dataclass
class Faults:
    """The fault knobs. Rates are fractions of page requests (``/api/*`` is never affected)."""

    latency_ms: int = 0
    error_rate: float = 0.0
    hang_rate: float = 0.0
    hang_s: float = 3600.0
    session_ttl_s: float = 3600.0
    error_path: str = ""
    """Every page request whose path starts with this answers 503 (a page that always fails; "": none)."""
    error_method: str = ""
    """Only ``error_path``'s requests of this method answer 503 ("POST": a submit; "": any method)."""
    error_path_times: int = -1
    """How many more of ``error_path``'s requests answer 503, counting down (1: a blip; -1: all of them)."""
    id_drift: int = 0
    """1: a new release renamed the case search field's id (its label stays): locators must fall back."""
    outage: int = 0
    """1: the application is down: every page and ``/healthz`` answer 503, while ``/`` still answers 200 with a
    holding page (as a front web server does), so only the health page tells the outage."""
    lose_rate: float = 0.0
    """The share of accepted changes of address the portal confirms but never stores (0.05: about 1 case in
    20, the same ones every time, chosen by "Your reference": see ``records.loses``)."""
    drift: str = ""
    """A new release changed a page (see :data:`DRIFTS`): what self-healing locators are tested against."""

    def update(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if key not in self.__dataclass_fields__:
                raise ValueError(f"unknown fault knob '{key}'")
            if key == "drift" and value not in DRIFTS:
                raise ValueError(f"unknown drift '{value}' (one of: {', '.join(sorted(DRIFTS))})")
            setattr(self, key, type(getattr(self, key))(value))


@dataclass
class PortalState:
    username: str
    password: str
    faults: Faults
    store: SubmissionStore
    sessions: dict[str, float]
    form_tokens: set[str]
    notes: NoteStore = field(default_factory=NoteStore)
    load: LoadMeter = field(default_factory=LoadMeter)
    logins: int = 0


class FaultMiddleware:
    """Adds latency, 5xx answers and hanging requests to page requests, as the knobs say."""

    def __init__(self, app: ASGIApp, state: PortalState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        faults = self.state.faults
        if scope["type"] == "http" and faults.outage and not path.startswith("/api/"):
            if path == "/":
                await PlainTextResponse("Case portal: the service is unavailable at the moment.")(scope, receive, send)
            else:
                await PlainTextResponse("Service unavailable", status_code=503)(scope, receive, send)
            return
        if scope["type"] != "http" or path.startswith("/api/") or path == "/healthz":
            await self.app(scope, receive, send)
            return
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.hang_rate and random.random() < faults.hang_rate:
            await asyncio.sleep(faults.hang_s)
        if (faults.error_rate and random.random() < faults.error_rate) or self._on_error_path(path, scope["method"]):
            await PlainTextResponse("Service temporarily unavailable", status_code=503)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _on_error_path(self, path: str, method: str) -> bool:
        """Whether this request is one of ``error_path``'s that answer 503 (and, when they are counted, count it)."""
        faults = self.state.faults
        if not faults.error_path or not path.startswith(faults.error_path) or faults.error_path_times == 0:
            return False
        if faults.error_method and method != faults.error_method.upper():
            return False
        if faults.error_path_times > 0:
            faults.error_path_times -= 1
        return True


def create_app(username: str = "clerk", password: str = "demo-password", faults: Faults | None = None) -> ASGIApp:
    """Build the portal application.

    Args:
        username: the one account that can sign in.
        password: its password.
        faults: initial fault knobs (all off by default).
    """
    state = PortalState(username, password, faults or Faults(), SubmissionStore(), {}, set())

    def signed_in(request: Request) -> bool:
        token = request.cookies.get(SESSION_COOKIE)
        started = state.sessions.get(token or "")
        if started is None:
            return False
        if time.monotonic() - started > state.faults.session_ttl_s:
            state.sessions.pop(token or "", None)
            return False
        return True

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        return TEMPLATES.TemplateResponse(request, name, {"drift": state.faults.drift, **context}, status_code=status)

    def to_login(request: Request) -> Response:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    async def home(request: Request) -> Response:
        return RedirectResponse("/cases" if signed_in(request) else "/login", status_code=303)

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return page(request, "login.html", next=request.query_params.get("next", "/cases"))
        form = await request.form()
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        target = str(form.get("next", "/cases"))
        if not target.startswith("/") or target.startswith("//"):
            target = "/cases"
        if not (secrets.compare_digest(user, state.username) and secrets.compare_digest(password, state.password)):
            return page(request, "login.html", status=401, error="The user name or password is wrong", next=target)
        token = secrets.token_urlsafe(24)
        state.sessions[token] = time.monotonic()
        state.logins += 1
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax")
        return response

    async def logout(request: Request) -> Response:
        state.sessions.pop(request.cookies.get(SESSION_COOKIE, ""), None)
        return RedirectResponse("/login", status_code=303)

    async def search(request: Request) -> Response:
        if not signed_in(request):
            return to_login(request)
        ref = request.query_params.get("ref", "").strip()
        case = find_case(ref) if ref else None
        return page(request, "search.html", ref=ref, searched=bool(ref), case=case,
                    search_id="case-ref-input" if state.faults.id_drift else "search-ref")

    async def case_details(request: Request) -> Response:
        if not signed_in(request):
            return to_login(request)
        case = find_case(request.path_params["ref"])
        if case is None:
            return page(request, "not_found.html", status=404)
        return page(request, "case.html", case=case, history=state.store.for_case(case.ref),
                    case_status=case_status(case.ref), notes=state.notes.for_case(case.ref), categories=CATEGORIES)

    async def change_address(request: Request) -> Response:
        if not signed_in(request):
            return to_login(request)
        case = find_case(request.path_params["ref"])
        if case is None:
            return page(request, "not_found.html", status=404)
        values: dict[str, str] = {}
        errors: dict[str, str] = {}
        if request.method == "POST":
            form = await request.form()
            values = {k: str(form.get(k, "")) for k in FORM_FIELDS}
            token = str(form.get("form_token", ""))
            if token not in state.form_tokens:
                errors["form"] = "This form has expired. Open the case again and re-enter the change"
            else:
                errors = validate_change(values)
                if not errors:
                    state.form_tokens.discard(token)
                    sub = state.store.add(case.ref, values, lose=loses(values["your_ref"], state.faults.lose_rate))
                    return RedirectResponse(f"/confirmation/{sub.confirmation}", status_code=303)
        token = secrets.token_urlsafe(16)
        state.form_tokens.add(token)
        return page(
            request,
            "change_address.html",
            case=case,
            values=values,
            errors=errors,
            form_token=token,
            countries=COUNTRIES,
            contact_methods=CONTACT_METHODS,
            today=dt.date.today().isoformat(),
        )

    async def confirmation(request: Request) -> Response:
        if not signed_in(request):
            return to_login(request)
        sub = state.store.by_confirmation(request.path_params["confirmation"])
        if sub is None:
            return page(request, "not_found.html", status=404)
        return page(request, "confirmation.html", sub=sub)

    async def add_note(request: Request) -> Response:
        if not signed_in(request):
            return to_login(request)
        case = find_case(request.path_params["ref"])
        if case is None:
            return page(request, "not_found.html", status=404)
        values: dict[str, str] = {}
        errors: dict[str, str] = {}
        if request.method == "POST":
            form = await request.form()
            values = {k: str(form.get(k, "")) for k in ("category", "text", "notify_customer", "your_ref", "follow_up")}
            attachments = []
            for upload in form.getlist("attachments"):
                if getattr(upload, "filename", ""):
                    content = await upload.read()  # type: ignore[union-attr]
                    attachments.append({"name": upload.filename, "size": len(content),  # type: ignore[union-attr]
                                        "sha256": hashlib.sha256(content).hexdigest()})
            errors = validate_note(values, attachments, case_status(case.ref))
            if not errors:
                note = state.notes.add(case.ref, values, attachments)
                return RedirectResponse(f"/notes/{note.reference}", status_code=303)
        return page(request, "add_note.html", status=422 if errors else 200, case=case, values=values,
                    errors=errors, categories=CATEGORIES, staff=STAFF, case_status=case_status(case.ref))

    async def note_saved(request: Request) -> Response:
        if not signed_in(request):
            return to_login(request)
        note = state.notes.by_reference(request.path_params["reference"])
        if note is None:
            return page(request, "not_found.html", status=404)
        return page(request, "note_saved.html", note=note)

    async def notes_export(request: Request) -> Response:
        return JSONResponse(state.notes.export())

    async def export(request: Request) -> Response:
        return JSONResponse(state.store.export())

    async def faults_endpoint(request: Request) -> Response:
        if request.method == "PUT":
            try:
                state.faults.update(await request.json())
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(asdict(state.faults))

    async def sessions_endpoint(request: Request) -> Response:
        if request.method == "DELETE":  # every session ends at once (a restart of the legacy system)
            state.sessions.clear()
        return JSONResponse({"logins": state.logins, "sessions": len(state.sessions)})

    async def load_endpoint(request: Request) -> Response:
        if request.method == "DELETE":
            state.load.reset()
        return JSONResponse(state.load.snapshot())

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/cases", search),
            Route("/cases/{ref}", case_details),
            Route("/cases/{ref}/address", change_address, methods=["GET", "POST"]),
            Route("/confirmation/{confirmation}", confirmation),
            Route("/cases/{ref}/notes/new", add_note, methods=["GET", "POST"]),
            Route("/notes/{reference}", note_saved),
            Route("/api/export", export),
            Route("/api/notes", notes_export),
            Route("/api/faults", faults_endpoint, methods=["GET", "PUT"]),
            Route("/api/sessions", sessions_endpoint, methods=["GET", "DELETE"]),
            Route("/api/load", load_endpoint, methods=["GET", "DELETE"]),
            Route("/healthz", healthz),
        ]
    )
    return LoadMiddleware(FaultMiddleware(app, state), state.load)
