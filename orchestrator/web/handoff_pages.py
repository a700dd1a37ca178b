"""The caseworker's hand-off pages: choose a workflow, hand off one case through a form generated from
its input schema, or upload a batch (CSV, JSON lines or an .xlsx workbook) that is checked and queued as it
arrives."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from workflows import LoadedWorkflow

from ..errors import ConfigurationError
from ..queue import Receipt
from .auth import PageSession, csrf_protected, flash, origin_of, service_of, signed_in
from .forms import error_links, form_fields, readable_errors, row_from_form
from .receive import receive_batch
from .render import render

router = APIRouter(include_in_schema=False)
SHEET_HINT = "type the name of the sheet that holds the cases under 'Sheet' and upload the file again"
CASEWORKER = signed_in("caseworker")


@router.get("/hand-off")
def choose(request: Request, session: PageSession = Depends(CASEWORKER)) -> Response:
    service = service_of(request)
    workflows = []
    for row in service.published(session.user):
        loaded = service.workflow(row["name"])
        if loaded is not None:
            workflows.append({**row, "description": loaded.definition.description or ""})
    return render(request, "handoff.html", {"title": "Hand off work", "workflows": workflows}, session=session)


def _workflow_or_404(request: Request, name: str, session: PageSession) -> LoadedWorkflow | Response:
    """The published workflow, when the user's limit reaches it (one outside it looks like one not published)."""
    loaded = service_of(request).workflow(name, session.user)
    if loaded is None:
        return render(request, "not_found.html", {"title": "Page not found",
                                                  "message": f"There is no published workflow called {name}."},
                      status=404, session=session)
    return loaded


@router.get("/hand-off/{workflow}/case")
def case_form(request: Request, workflow: str, session: PageSession = Depends(CASEWORKER)) -> Response:
    loaded = _workflow_or_404(request, workflow, session)
    if isinstance(loaded, Response):
        return loaded
    fields = form_fields(loaded.definition)
    return render(request, "handoff_case.html", {"title": f"Hand off one case: {workflow}", "workflow": workflow,
                                                 "fields": fields, "errors": {}, "back": "/hand-off"}, session=session)


@router.post("/hand-off/{workflow}/case")
async def hand_off_case(request: Request, workflow: str, session: PageSession = Depends(csrf_protected("caseworker"))
                        ) -> Response:
    loaded = await run_in_threadpool(_workflow_or_404, request, workflow, session)
    if isinstance(loaded, Response):
        return loaded
    definition = loaded.definition
    row = row_from_form(definition, await request.form())
    try:
        result = await run_in_threadpool(lambda: service_of(request).hand_off_case(session.user, loaded, row,
                                                                                   origin=origin_of(request)))
    except ConfigurationError as exc:
        return _cannot_run(request, session, str(exc))
    if isinstance(result, Receipt):
        tx_id = service_of(request).ledger.cases.by_ref(definition.name, row[definition.reference_field].strip())
        flash(request, "The case was handed off." + (
            " No bot is running yet, so it waits until one starts." if result.warnings else ""))
        target = f"/cases/{tx_id['id']}" if tx_id else f"/batches/{result.batch_id}"
        return RedirectResponse(target, status_code=303)
    errors = readable_errors(definition, result)
    fields = form_fields(definition, row, errors)
    return render(request, "handoff_case.html", {"title": f"Hand off one case: {workflow}", "workflow": workflow,
                                                 "fields": fields, "errors": errors, "error_links": error_links(fields),
                                                 "back": "/hand-off"}, status=422, session=session)


@router.get("/hand-off/{workflow}/batch")
def batch_form(request: Request, workflow: str, session: PageSession = Depends(CASEWORKER)) -> Response:
    loaded = _workflow_or_404(request, workflow, session)
    if isinstance(loaded, Response):
        return loaded
    return render(request, "handoff_batch.html", _batch_context(workflow, loaded, {}), session=session)


def _batch_context(workflow: str, loaded: LoadedWorkflow, errors: dict[str, str]) -> dict[str, object]:
    definition = loaded.definition
    columns = [{"name": name, "required": spec.required, "type": spec.type} for name, spec in definition.input.items()]
    return {"title": f"Upload a batch: {workflow}", "workflow": workflow, "columns": columns, "errors": errors,
            "error_links": {"file": "file", "deadline": "deadline", "within": "within"}, "back": "/hand-off", "sheet": ""}


@router.post("/hand-off/{workflow}/batch")
async def upload_batch(request: Request, workflow: str, session: PageSession = Depends(CASEWORKER)) -> Response:
    # The session is checked first; the CSRF token is the first field of the form, read before the file.
    loaded = await run_in_threadpool(_workflow_or_404, request, workflow, session)
    if isinstance(loaded, Response):
        return loaded
    outcome = await receive_batch(request, service_of(request), session.user, loaded, csrf_token=session.csrf_token,
                                  sheet_hint=SHEET_HINT)
    if isinstance(outcome, Receipt):
        flash(request, "The batch was handed off." + (
            " No bot is running yet, so its cases wait until one starts." if outcome.warnings
            else " Its cases are being worked now."))
        return RedirectResponse(f"/batches/{outcome.batch_id}", status_code=303)
    if outcome.status == 503:
        return _cannot_run(request, session, outcome.message)
    return render(request, "handoff_batch.html", _batch_context(workflow, loaded, {outcome.field: outcome.message}),
                  status=outcome.status, session=session)


def _cannot_run(request: Request, session: PageSession, reason: str) -> Response:
    """The bots cannot run the workflow now: nothing was queued; the reason is for whoever runs the service."""
    return render(request, "refused.html", {"title": "This work cannot be handed off now", "message": (
        "The bots are not set up to run this workflow, so nothing was handed off. Ask the people who run "
        "Autoclerk to fix it, then try again."), "detail": reason}, status=503, session=session)
