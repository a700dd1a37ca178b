"""Batches and cases: the batch list, a batch's counts and cases (with filters), its rejected rows, the
operator's actions on it, a case with its attempts and evidence, and the caseworker's exceptions inbox
with the three ways to deal with an exception (correct and resubmit, done by hand, close)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from workflows import label_of

from ..errors import LedgerError
from ..ledger import ACTIVE, ERASED, STATES, TERMINAL, WAITING
from ..queue import ACTIONS, CASE_ACTIONS, DONE, REJECTION_KINDS, act_on_case, operate_batch, reconcile
from .auth import PageSession, csrf_protected, flash, origin_of, service_of, signed_in
from .downloads import rejections_download, results_download
from .forms import error_links, field_labels, form_fields, readable_errors, row_from_form
from .render import render
from .service import evidence_paths, screenshots_of

router = APIRouter(include_in_schema=False)
VIEWER = signed_in("caseworker", "operator")
PAGE_SIZE = 50


def _not_found(request: Request, session: PageSession, what: str) -> Response:
    return render(request, "not_found.html", {"title": "Page not found", "message": f"There is no {what} here, or "
                                              "you do not have access to it."}, status=404, session=session)


def visible_batch(request: Request, session: PageSession, batch_id: str) -> dict[str, Any] | None:
    return service_of(request).visible_batch(session.user, batch_id)


def visible_case(request: Request, session: PageSession, tx_id: int) -> dict[str, Any] | None:
    return service_of(request).visible_case(session.user, tx_id)


@router.get("/batches")
def batches(request: Request, session: PageSession = Depends(VIEWER)) -> Response:
    service = service_of(request)
    rows = service.batches(session.user)
    for row in rows:
        row["total"] = sum(row["counts"].values())
        row["finished"] = sum(row["counts"][s] for s in TERMINAL)
    return render(request, "batches.html", {"title": "Batches", "batches": rows}, session=session)


@router.get("/batches/{batch_id}")
def batch(request: Request, batch_id: str, state: str = "", ref: str = "", after: int = 0,
          session: PageSession = Depends(VIEWER)) -> Response:
    found = visible_batch(request, session, batch_id)
    if found is None:
        return _not_found(request, session, "batch")
    service = service_of(request)
    counts = service.ledger.reports.counts(batch_id)
    total = sum(counts.values())
    state = state if state in STATES or state == "open_exception" else ""
    cases = service.ledger.cases.list(batch_id, state=state or None, ref=ref.strip() or None, after=max(after, 0),
                                   limit=PAGE_SIZE + 1)
    more = len(cases) > PAGE_SIZE
    cases = cases[:PAGE_SIZE]
    return render(request, "batch.html", {
        "title": f"Batch {batch_id}", "batch": found, "counts": counts, "total": total,
        "finished": sum(counts[s] for s in TERMINAL), "open_exceptions": service.ledger.reports.open_exceptions(batch_id),
        "cases": cases, "state": state, "ref": ref, "next_after": cases[-1]["id"] if more and cases else None,
        "after": after, "states": STATES, "rejections": service.ledger.reports.rejections(batch_id, limit=10),
        "reconciliation": reconcile(service.ledger, batch_id), "rejection_kinds": REJECTION_KINDS,
        "deadlines": _deadline_figures(service.ledger.reports.deadlines(service.settings.deadline_margin_s,
                                                                        batch_id=batch_id)),
        "now": time.time(), "active_states": ACTIVE, "deadline_margin": service.settings.deadline_margin,
        "pruned": service.ledger.retention.pruned(batch_id), "labels": _labels(service, found["digest"]),
        "back": "/batches"}, session=session)


def _labels(service: Any, digest: str) -> dict[str, str]:
    """What a caseworker reads for each field a rejected row names (the workflow version's labels)."""
    try:
        return field_labels(service.ledger.workflows.load(digest).definition)
    except LedgerError:  # the version is gone (pruned): the keys in words still read better than nothing
        return {}


@router.get("/batches/{batch_id}/rejections")
def rejections(request: Request, batch_id: str, after: int = 0, session: PageSession = Depends(VIEWER)) -> Response:
    found = visible_batch(request, session, batch_id)
    if found is None:
        return _not_found(request, session, "batch")
    service = service_of(request)
    rows = service.ledger.reports.rejections(batch_id, after_row=max(after, 0), limit=PAGE_SIZE + 1)
    return render(request, "rejections.html", {
        "title": f"Rejected rows of batch {batch_id}", "batch": found, "rows": rows[:PAGE_SIZE],
        "labels": _labels(service, found["digest"]),
        "next_after": rows[PAGE_SIZE - 1]["row"] if len(rows) > PAGE_SIZE else None,
        "back": f"/batches/{batch_id}"}, session=session)


@router.get("/batches/{batch_id}/rejections.csv")
def rejections_csv(request: Request, batch_id: str, session: PageSession = Depends(VIEWER)) -> Response:
    """Every rejected row as CSV (row, field, reason), streamed a page at a time."""
    if visible_batch(request, session, batch_id) is None:
        return _not_found(request, session, "batch")
    return rejections_download(service_of(request).ledger, batch_id)


@router.get("/batches/{batch_id}/results.{fmt}")
def results(request: Request, batch_id: str, fmt: str, session: PageSession = Depends(VIEWER)) -> Response:
    """Every case's result as CSV or JSON lines (the keys of the API), streamed."""
    if fmt not in ("csv", "jsonl") or visible_batch(request, session, batch_id) is None:
        return _not_found(request, session, "batch")
    return results_download(service_of(request).ledger, batch_id, fmt)


@router.post("/batches/{batch_id}/{action}")
def operate(request: Request, batch_id: str, action: str, session: PageSession = Depends(csrf_protected("operator"))
            ) -> Response:
    if action not in ACTIONS or visible_batch(request, session, batch_id) is None:
        return _not_found(request, session, "batch")
    service = service_of(request)
    try:
        done = operate_batch(service.ledger, batch_id, action, by=session.user.username, origin=origin_of(request),
                             publisher=service.publisher)
    except LedgerError:  # a finished batch has nothing to pause, resume or cancel (its page offers none)
        return render(request, "refused.html", {"title": "This batch has finished", "message": (
            "Every case in this batch has an outcome, so there is nothing to pause, resume or cancel.")},
            status=409, session=session)
    flash(request, f"Batch {DONE[action]}: {done.count:,} {'case' if done.count == 1 else 'cases'}.")
    return RedirectResponse(f"/batches/{batch_id}", status_code=303)


CASE_DONE = {"resubmitted": "The corrected case was sent back to the bots.",
             "done_by_hand": "The case is marked done by hand.", "closed": "The case is closed.",
             "retry": "The case was sent back to the bots.", "cancel": "The case is cancelled.",
             "rerun": "The case will run again. The bot first checks whether the system already has it."}
"""The one-time message a case page shows after each action on the case."""


def _done(request: Request, tx_id: int, action: str) -> Response:
    flash(request, CASE_DONE[action])
    return RedirectResponse(f"/cases/{tx_id}", status_code=303)


@router.get("/cases/{tx_id}")
def case(request: Request, tx_id: int, session: PageSession = Depends(VIEWER)) -> Response:
    found = visible_case(request, session, tx_id)
    if found is None:
        return _not_found(request, session, "case")
    return _case_page(request, session, found)


def _case_page(request: Request, session: PageSession, found: dict[str, Any], *,
               errors: dict[str, str] | None = None, status: int = 200) -> Response:
    state, operator = found["state"], session.user.has("operator")
    erased = any(a["action"] == ERASED for a in found["actions"])  # its data is gone: it cannot run again
    return render(request, "case.html", {
        "title": f"Case {found['case_ref']}", "case": found, "screenshots": screenshots_of(found),
        "case_data": _case_data(service_of(request), found),
        "can_resolve": _can_resolve(session, found), "back": f"/batches/{found['batch_id']}",
        "can_retry": operator and state == "failed" and not erased, "can_cancel": operator and state in WAITING,
        "can_rerun": operator and state in TERMINAL and not erased,
        "errors": errors or {}, "error_links": {"form": "reason"}}, status=status, session=session)


def _case_data(service: Any, found: dict[str, Any]) -> list[tuple[str, Any]]:
    """A case's fields as a caseworker reads them: each field's label, and an enum's option label."""
    try:
        inputs = service.ledger.workflows.load(found["digest"]).definition.input
    except LedgerError:
        inputs = {}
    rows = []
    for name, value in found["payload"].items():
        spec = inputs.get(name)
        if spec is None:
            rows.append((label_of(name), value))
        elif isinstance(value, str) and spec.type == "enum":
            rows.append((spec.label_for(name), spec.option_label(value)))
        else:
            rows.append((spec.label_for(name), value))
    return rows


@router.get("/cases/{tx_id}/evidence/{index}")
def evidence(request: Request, tx_id: int, index: int, session: PageSession = Depends(VIEWER)) -> Response:
    """A screenshot of the case's evidence: only PNG files the ledger lists for it, inside the artifacts folder."""
    found = visible_case(request, session, tx_id)
    paths = evidence_paths(found) if found else []
    if found is None or not 0 <= index < len(paths) or not paths[index].endswith(".png"):
        return _not_found(request, session, "screenshot")
    root = service_of(request).settings.artifacts_dir.resolve()
    path = Path(paths[index]).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return _not_found(request, session, "screenshot")
    return FileResponse(path, media_type="image/png", headers={"cache-control": "private, max-age=3600"})


def _can_resolve(session: PageSession, case: dict[str, Any]) -> bool:
    return (case["state"] == "business_exception" and case["resolution"] is None and session.user.has("caseworker")
            and case["created_by"] == session.user.username)


@router.get("/exceptions")
def exceptions(request: Request, session: PageSession = Depends(signed_in("caseworker"))) -> Response:
    rows = service_of(request).exceptions(session.user, everyone=False)
    return render(request, "exceptions.html", {"title": "Exceptions", "cases": rows}, session=session)


def _resolvable(request: Request, session: PageSession, tx_id: int) -> dict[str, Any] | None:
    found = visible_case(request, session, tx_id)
    return found if found is not None and _can_resolve(session, found) else None


@router.get("/cases/{tx_id}/resolve")
def resolve_page(request: Request, tx_id: int, session: PageSession = Depends(signed_in("caseworker"))) -> Response:
    found = _resolvable(request, session, tx_id)
    if found is None:
        return _not_found(request, session, "open exception")
    return _resolve_form(request, session, found, found["payload"], {})


def _resolve_form(request: Request, session: PageSession, case: dict[str, Any], values: dict[str, Any],
                  errors: dict[str, str], status: int = 200) -> Response:
    definition = service_of(request).ledger.workflows.load(case["digest"]).definition
    errors = readable_errors(definition, errors)
    fields = form_fields(definition, values, errors, fixed_reference=True)
    return render(request, "resolve.html", {
        "title": f"Deal with case {case['case_ref']}", "case": case, "fields": fields, "errors": errors,
        "error_links": {**error_links(fields), "note": "note"}, "screenshots": screenshots_of(case),
        "back": f"/cases/{case['id']}"}, status=status, session=session)


@router.post("/cases/{tx_id}/operate/{action}")
async def operate_case(request: Request, tx_id: int, action: str,
                       session: PageSession = Depends(csrf_protected("operator"))) -> Response:
    """An operator retries a failed case, cancels a waiting one, or runs a finished one again (with a reason)."""
    found = await run_in_threadpool(visible_case, request, session, tx_id)
    if action not in CASE_ACTIONS or found is None:
        return _not_found(request, session, "case")
    reason = str((await request.form()).get("reason", "")).strip()
    if action == "rerun" and not reason:
        return _case_page(request, session, found, errors={"reason": "Say why this case must run again"}, status=422)
    service = service_of(request)
    try:
        await run_in_threadpool(lambda: act_on_case(service.ledger, tx_id, action, session.user.username,
                                                    reason=reason or None, publisher=service.publisher,
                                                    origin=origin_of(request)))
    except LedgerError as exc:  # someone else changed the case a moment ago
        return _case_page(request, session, found, errors={"form": str(exc)}, status=409)
    return _done(request, tx_id, action)


@router.post("/cases/{tx_id}/resubmit")
async def resubmit(request: Request, tx_id: int, session: PageSession = Depends(csrf_protected("caseworker"))
                   ) -> Response:
    found = await run_in_threadpool(_resolvable, request, session, tx_id)
    if found is None:
        return _not_found(request, session, "open exception")
    form = await request.form()
    definition = service_of(request).ledger.workflows.load(found["digest"]).definition
    row = row_from_form(definition, form)
    note = str(form.get("note", "")).strip() or None
    errors = await run_in_threadpool(lambda: service_of(request).resubmit(session.user, found, row, note,
                                                                          origin=origin_of(request)))
    if errors:
        return _resolve_form(request, session, found, row, errors, status=422)
    return _done(request, tx_id, "resubmitted")


@router.post("/cases/{tx_id}/{resolution}")
async def resolve(request: Request, tx_id: int, resolution: str,
                  session: PageSession = Depends(csrf_protected("caseworker"))) -> Response:
    kind = {"done-by-hand": "done_by_hand", "close": "closed"}.get(resolution)
    found = await run_in_threadpool(_resolvable, request, session, tx_id)
    if kind is None or found is None:
        return _not_found(request, session, "open exception")
    form = await request.form()
    note = str(form.get("note", "")).strip()
    if kind == "done_by_hand" and not note:
        return _resolve_form(request, session, found, found["payload"],
                             {"note": "Say what you did, so the next person can see how the case was done"}, status=422)
    changed = await run_in_threadpool(lambda: service_of(request).resolve(session.user, tx_id, kind, note or None,
                                                                          origin=origin_of(request)))
    if not changed:
        return _resolve_form(request, session, found, found["payload"],
                             {"form": "Someone else dealt with this case a moment ago"}, status=409)
    return _done(request, tx_id, kind)


def _deadline_figures(by_workflow: dict[str, dict[str, int]]) -> dict[str, int]:
    """A batch's unfinished cases at risk and past their deadline (one workflow per batch; summed all the same)."""
    return {key: sum(figures[key] for figures in by_workflow.values()) for key in ("at_risk", "breached")}
