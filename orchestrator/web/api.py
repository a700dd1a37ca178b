"""The JSON API, for systems that hand off work (OpenAPI at ``/api/openapi.json``).

Machines authenticate with ``Authorization: Bearer TOKEN`` (``autoclerk users add NAME --role ROLE --token``
prints one); the API never reads a cookie. It offers what the pages offer: hand off a batch or one case,
follow a batch and its cases, deal with exceptions, operate batches, publish workflows (and list, compare
and roll back their versions), read the figures and the audit trail.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from workflows import WorkflowFileError

from ..accounts import User
from ..errors import ConfigurationError, LedgerError
from ..ledger import STATES, TERMINAL
from ..queue import (ACTIONS, REJECTION_KINDS, RESULT_KEYS, Receipt, act_on_case, operate_batch, reconcile,
                     version_diff)
from .auth import api_user, origin_of, service_of
from .downloads import audit_download, results_download
from .receive import receive_batch
from .service import OutsideLimit, screenshots_of
from .upload import workflow_upload

DESCRIPTION = """Hand work off to Autoclerk's bots and follow it.

Every route needs `Authorization: Bearer TOKEN`; a token belongs to a user and carries that user's roles
(`caseworker`, `operator`, `author`). Make one with `autoclerk users add NAME --role caseworker --token`.
"""

router = APIRouter(prefix="/api")
CASEWORKER, VIEWER, OPERATOR, AUTHOR, ANYONE = (api_user("caseworker"), api_user("caseworker", "operator"),
                                                api_user("operator"), api_user("author"), api_user())


class RejectedRow(BaseModel):
    row: int = Field(description="The row's number in the file (1 = the first data row).")
    field: str = Field(description="The field whose rule the row broke ('row' for a row that could not be read).")
    reason: str


class BatchReceipt(BaseModel):
    batch_id: str
    workflow: str
    accepted: int = Field(description="Cases queued by this hand-off.")
    rejected: list[RejectedRow] = Field(description="Rows not queued (at most the first 1,000; see rejected_total).")
    rejected_total: int = Field(description="How many rows were not queued, duplicates included.")
    duplicates: int = Field(description="Rows whose case reference repeated an earlier row or an earlier hand-off.")
    stopped_by: str | None = Field(description="Why reading stopped part-way, when the file became unreadable.")
    warnings: list[str] = Field(default=[], description="What to know: for example, no worker is running yet, "
                                                         "so the cases wait on the queue until one starts.")
    report: str = Field(description="Where every rejected row can be read, a page at a time.")


class BatchStatus(BaseModel):
    id: str
    workflow: str
    state: str = Field(description="active, paused, finished (every case has an outcome) or cancelled.")
    finished_at: float | None = Field(description="When the batch finished (Unix time), while it is finished.")
    intake: str = Field(description="receiving, complete, or stopped (the file became unreadable part-way).")
    created_at: float
    created_by: str | None
    source_name: str
    total: int
    finished: int
    open_exceptions: int = Field(description="Cases handed back to a person and not yet dealt with.")
    rows_rejected: int
    counts: dict[str, int] = Field(description="Cases by state: " + ", ".join(STATES) + ".")


class CaseSummary(BaseModel):
    id: int
    case_ref: str
    state: str
    resolution: str | None
    attempts: int
    result_ref: str | None = Field(description="The reference the target system gave the case, once done.")
    output: dict[str, Any] | None = Field(default=None, description="What the workflow's steps recorded as output.")
    error_class: str | None
    error_message: str | None = Field(description="What a caseworker reads: the target system's own message, "
                                                   "or a plain-English sentence.")
    error_detail: str | None = Field(default=None, description="For authors: the step, the locator, the exception.")
    evidence: list[str] = Field(default=[], description="Evidence files of the last attempt (on the worker's disk).")
    batch_id: str
    workflow: str
    updated_at: float


class Attempt(BaseModel):
    attempt: int
    started_at: float
    ended_at: float
    outcome: str
    error_class: str | None = None
    error: str | None = None
    error_detail: str | None = None
    evidence: list[str] = []
    forgiven: int = Field(0, description="Attempts given back with this one as the bots' own faults, up to 2 per "
                                         "case: this attempt, when its browser or page crashed, or an earlier one "
                                         "whose worker stopped without recording an outcome. Each raised "
                                         "max_attempts by one.")
    looked_in_place: bool = Field(False, description="The attempt's submit met a server error, and the attempt "
                                                     "then looked the case up in the target system itself (and, "
                                                     "finding nothing, ran its steps again), without ending the "
                                                     "case done. Its evidence begins with the submit's.")


class Action(BaseModel):
    at: float
    username: str
    action: str
    note: str | None


class Screenshot(BaseModel):
    path: str = Field(description="Its path on this service.")
    attempt: int | None = Field(description="The attempt whose evidence holds it (none for evidence outside any "
                                            "attempt's folder).")
    name: str = Field(description="Its file's name.")
    caption: str = Field(description="What it shows, in plain English, as the case page captions it.")


class CaseDetail(CaseSummary):
    max_attempts: int
    payload: dict[str, Any]
    created_by: str | None
    history: list[Attempt]
    actions: list[Action]
    screenshots: list[str] = Field(description="Paths (on this service) of the screenshots in the case's evidence, "
                                               "newest first: failed attempts' pages, a verification's record, a "
                                               "healed step's page, and the workflow's own screenshot steps.")
    captioned_screenshots: list[Screenshot] = Field(default_factory=list, description="The same screenshots, in the same order, each "
                                                                "with its attempt and what it shows.")


class Resolution(BaseModel):
    note: str | None = Field(default=None, max_length=4000)


class CaseActionRequest(BaseModel):
    reason: str | None = Field(default=None, max_length=4000,
                               description="Why: required to run a finished case again, kept as a note otherwise.")
    attempts: int = Field(default=3, ge=1, le=20, description="Attempts the case gets (retry and rerun).")


class Resubmission(BaseModel):
    data: dict[str, Any] = Field(description="The corrected case fields (the case reference cannot change).")
    note: str | None = Field(default=None, max_length=4000)


def _batch_or_404(request: Request, user: User, batch_id: str) -> dict[str, Any]:
    batch = service_of(request).visible_batch(user, batch_id)
    if batch is None:
        raise HTTPException(404, f"there is no batch {batch_id} that you can see")
    return batch


def _case_or_404(request: Request, user: User, tx_id: int) -> dict[str, Any]:
    case = service_of(request).visible_case(user, tx_id)
    if case is None:
        raise HTTPException(404, f"there is no case {tx_id} that you can see")
    return case


def _receipt(receipt: Receipt) -> BatchReceipt:
    return BatchReceipt(batch_id=receipt.batch_id, workflow=receipt.workflow, accepted=receipt.accepted,
                        rejected=[RejectedRow(row=r.row, field=r.field, reason=r.reason) for r in receipt.examples],
                        rejected_total=receipt.rejected + receipt.duplicates, duplicates=receipt.duplicates,
                        stopped_by=receipt.stopped_by, report=f"/api/batches/{receipt.batch_id}/rejections",
                        warnings=receipt.warnings)


def _published(request: Request, user: User, name: str) -> Any:
    loaded = service_of(request).workflow(name, user)
    if loaded is None:
        raise HTTPException(404, f"there is no published workflow '{name}'")
    return loaded


# -- hand-off -------------------------------------------------------------------------------------------
@router.post("/batches", status_code=201, response_model=BatchReceipt, openapi_extra={"requestBody": {
    "required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary",
                                "description": "CSV with a header row, JSON lines (file name ending .jsonl), or an "
                                               "Excel workbook (file name ending .xlsx) whose first row is the header."}}}}}}},
    responses={413: {"description": "Larger than the service takes"}, 422: {"description": "Not a usable cases file"},
               503: {"description": "The bots cannot run the workflow: a secret, env value or system URL it needs "
                                    "is missing (on every live worker, or where the service runs); nothing was queued"}})
async def hand_off_batch(request: Request, workflow: str = Query(description="The published workflow's name."),
                         deadline: str | None = Query(None, description=(
                             "The batch's deadline, ISO 8601 (2026-12-24T17:00; without an offset, in the service's "
                             "AUTOCLERK_TIMEZONE). A row's _deadline column overrides it.")),
                         within: str | None = Query(None, description=(
                             "The batch's deadline as a span from now: 30m, 4h, 3d or 2wd (working days).")),
                         sheet: str | None = Query(None, description=(
                             "The sheet of an .xlsx file that holds the cases (needed when the workbook has several).")),
                         user: User = Depends(CASEWORKER)) -> Any:
    """Hand off a batch: every row is checked against the workflow's input schema as the file arrives.

    Rows that break a rule, and case references already handed off, are reported and not queued; the rest
    run at once. The file is streamed: it may be of any size up to the service's limit (an .xlsx workbook
    is received whole before its rows are read).
    """
    loaded = await run_in_threadpool(_published, request, user, workflow)
    outcome = await receive_batch(request, service_of(request), user, loaded, deadline=deadline, within=within,
                                  sheet=sheet or None,
                                  sheet_hint="name the one that holds the cases with the parameter sheet")
    if isinstance(outcome, Receipt):
        return _receipt(outcome)
    return JSONResponse({"detail": outcome.message}, status_code=outcome.status)


@router.post("/cases", status_code=201, response_model=CaseDetail,
             responses={422: {"description": "The case breaks a rule of the input schema (errors by field)"},
                        503: {"description": "The bots cannot run the workflow (see POST /api/batches)"}})
def hand_off_case(request: Request, workflow: str = Query(description="The published workflow's name."),
                  data: dict[str, Any] = Body(description="The case's fields, as the workflow's input schema names them."),
                  deadline: str | None = Query(None, description=(
                      "The case's deadline, ISO 8601 (without an offset, in the service's AUTOCLERK_TIMEZONE).")),
                  user: User = Depends(CASEWORKER)) -> Any:
    """Hand off one case, checked by exactly the rules a batch row is checked by."""
    service = service_of(request)
    loaded = _published(request, user, workflow)
    try:
        result = service.hand_off_case(user, loaded, {k: v for k, v in data.items()}, deadline=deadline,
                                       origin=origin_of(request))
    except ConfigurationError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503)
    if not isinstance(result, Receipt):
        return JSONResponse({"detail": "the case breaks the input schema's rules", "errors": result}, status_code=422)
    ref = str(data.get(loaded.definition.reference_field, "")).strip()
    found = service.ledger.cases.by_ref(loaded.definition.name, ref)
    return _case_detail(request, user, found["id"] if found else 0)


# -- following work -------------------------------------------------------------------------------------
@router.get("/batches", response_model=list[BatchStatus])
def list_batches(request: Request, limit: int = Query(50, ge=1, le=500), user: User = Depends(VIEWER)) -> Any:
    """The newest batches: a caseworker's own, or every batch for an operator."""
    rows = service_of(request).batches(user, limit=limit)
    return [_status(row, row["counts"], row["open_exceptions"]) for row in rows]


def _status(batch: dict[str, Any], counts: dict[str, int], open_exceptions: int) -> BatchStatus:
    return BatchStatus(id=batch["id"], workflow=batch["workflow"], state=batch["state"], finished_at=batch["finished_at"],
                       intake=batch["intake"],
                       created_at=batch["created_at"], created_by=batch["created_by"], source_name=batch["source_name"],
                       total=sum(counts.values()), finished=sum(counts[s] for s in TERMINAL),
                       open_exceptions=open_exceptions, rows_rejected=batch["rows_rejected"], counts=counts)


@router.get("/batches/{batch_id}", response_model=BatchStatus)
def batch_status(request: Request, batch_id: str, user: User = Depends(VIEWER)) -> Any:
    """A batch's counts by state."""
    batch = _batch_or_404(request, user, batch_id)
    ledger = service_of(request).ledger
    return _status(batch, service_of(request).ledger.reports.counts(batch_id), ledger.reports.open_exceptions(batch_id))


@router.get("/batches/{batch_id}/cases", response_model=list[CaseSummary])
def batch_cases(request: Request, batch_id: str, state: str | None = Query(None, description=(
        "A state, or open_exception (handed back and not yet dealt with).")),
                ref: str | None = Query(None, description="Case references starting with this."),
                after: int = Query(0, ge=0, description="The last case id of the previous page."),
                limit: int = Query(100, ge=1, le=1000), user: User = Depends(VIEWER)) -> Any:
    """A batch's cases in hand-off order, a page at a time."""
    _batch_or_404(request, user, batch_id)
    if state is not None and state not in STATES and state != "open_exception":
        raise HTTPException(422, f"state must be one of {', '.join(STATES)} or open_exception")
    return service_of(request).ledger.cases.list(batch_id, state=state, ref=ref, after=after, limit=limit)


@router.get("/batches/{batch_id}/results", responses={200: {"description": (
    "One row per case with the keys " + ", ".join(RESULT_KEYS) + ", streamed"),
    "content": {"text/csv": {}, "application/x-ndjson": {}}}})
def batch_results(request: Request, batch_id: str,
                  fmt: str = Query("csv", alias="format", pattern="^(csv|jsonl)$", description="csv or jsonl."),
                  state: str | None = Query(None, description="Only the cases in this state."),
                  user: User = Depends(VIEWER)) -> Any:
    """Every case's result, streamed (CSV with a header row, or one JSON object per line). Fields the
    workflow marks secret are masked."""
    _batch_or_404(request, user, batch_id)
    if state is not None and state not in STATES:
        raise HTTPException(422, f"state must be one of {', '.join(STATES)}")
    return results_download(service_of(request).ledger, batch_id, fmt, state)


class Reconciliation(BaseModel):
    batch_id: str
    workflow: str
    workflow_version: int | None
    source_name: str
    input_sha256: str | None = Field(description="SHA-256 of the file as it was received (null before migration "
                                                  "0007, or when the file was not read to its end).")
    handed_off_by: str | None
    handed_off_at: float
    state: str
    intake: str
    rows_read: int = Field(description="rows_read = accepted + rejected")
    accepted: int = Field(description="accepted = the outcomes + in_progress + moved_to_later_batch")
    rejected: int
    rejected_by_kind: dict[str, int] = Field(description="By kind: " + ", ".join(REJECTION_KINDS) + ".")
    outcomes: dict[str, int] = Field(description="done, handed back to a person, failed, cancelled.")
    in_progress: int
    moved_to_later_batch: int = Field(description="Cases that a later hand-off of the same reference took over.")
    open_exceptions: int
    verified: int = Field(description="Done cases whose record was read back from the target system and found right.")
    unverified: int = Field(description="Done cases submitted but not read back (outside the sample, not yet due, "
                                        "or the workflow does not verify).")
    verify_failed: int = Field(description="Cases whose record was read back missing or wrong (handed back to a person).")
    balanced: bool = Field(description="Whether both sums hold.")


@router.get("/batches/{batch_id}/reconciliation", response_model=Reconciliation)
def batch_reconciliation(request: Request, batch_id: str, user: User = Depends(VIEWER)) -> Any:
    """Account for every row of the batch's file: rows read = accepted + rejected (by kind), and accepted =
    done + handed back + failed + cancelled + still in progress. Names the file's SHA-256, who handed it
    off and when, and the workflow's version."""
    _batch_or_404(request, user, batch_id)
    report = reconcile(service_of(request).ledger, batch_id)
    assert report is not None
    return report.as_json()


@router.get("/batches/{batch_id}/rejections", response_model=list[RejectedRow])
def batch_rejections(request: Request, batch_id: str, after: int = Query(0, ge=0), limit: int = Query(1000, ge=1, le=10000),
                     user: User = Depends(VIEWER)) -> Any:
    """Every row of the batch's file that was not queued, with its number and reason (``after``: the last row
    number of the previous page)."""
    _batch_or_404(request, user, batch_id)
    ledger = service_of(request).ledger
    return ledger.reports.rejections(batch_id, after_row=after, limit=limit)


@router.get("/cases/{tx_id}", response_model=CaseDetail)
def case_detail(request: Request, tx_id: int, user: User = Depends(VIEWER)) -> Any:
    """One case: its attempts, outcome, the reference the target system returned, and the people's actions."""
    return _case_detail(request, user, tx_id)


def _case_detail(request: Request, user: User, tx_id: int) -> dict[str, Any]:
    case = _case_or_404(request, user, tx_id)
    shots = [{"path": f"/cases/{tx_id}/evidence/{s['index']}", "attempt": int(s["attempt"]) if s["attempt"] else None,
              "name": s["name"], "caption": s["caption"]} for s in screenshots_of(case)]
    return {**case, "screenshots": [shot["path"] for shot in shots], "captioned_screenshots": shots}


@router.get("/exceptions", response_model=list[CaseSummary])
def open_exceptions(request: Request, user: User = Depends(VIEWER)) -> Any:
    """Cases handed back to a person and not yet dealt with: a caseworker's own, or all for an operator."""
    return service_of(request).exceptions(user)


def _own_open_exception(request: Request, user: User, tx_id: int) -> dict[str, Any]:
    case = _case_or_404(request, user, tx_id)
    if case["created_by"] != user.username:
        raise HTTPException(403, "only the caseworker who handed the case off may deal with it")
    if case["state"] != "business_exception" or case["resolution"] is not None:
        raise HTTPException(409, f"case {tx_id} is not waiting for a person")
    return case


@router.post("/cases/{tx_id}/resubmit", response_model=CaseDetail)
def resubmit(request: Request, tx_id: int, body: Resubmission, user: User = Depends(CASEWORKER)) -> Any:
    """Correct an exception's data and send it back to the bots (checked by the input schema's rules)."""
    case = _own_open_exception(request, user, tx_id)
    errors = service_of(request).resubmit(user, case, {**case["payload"], **body.data}, body.note,
                                          origin=origin_of(request))
    if errors:
        return JSONResponse({"detail": "the corrected case breaks the input schema's rules", "errors": errors},
                            status_code=409 if "form" in errors else 422)
    return _case_detail(request, user, tx_id)


@router.post("/cases/{tx_id}/done-by-hand", response_model=CaseDetail)
def done_by_hand(request: Request, tx_id: int, body: Resolution, user: User = Depends(CASEWORKER)) -> Any:
    """Record that a person did the case by hand (a note saying what they did is required)."""
    if not (body.note or "").strip():
        raise HTTPException(422, "a note saying what was done is required")
    return _resolve(request, user, tx_id, "done_by_hand", body.note)


@router.post("/cases/{tx_id}/close", response_model=CaseDetail)
def close(request: Request, tx_id: int, body: Resolution, user: User = Depends(CASEWORKER)) -> Any:
    """Close an exception without doing it."""
    return _resolve(request, user, tx_id, "closed", body.note)


def _resolve(request: Request, user: User, tx_id: int, resolution: str, note: str | None) -> Any:
    _own_open_exception(request, user, tx_id)
    if not service_of(request).resolve(user, tx_id, resolution, (note or "").strip() or None, origin=origin_of(request)):
        raise HTTPException(409, f"case {tx_id} was dealt with by someone else a moment ago")
    return _case_detail(request, user, tx_id)


# -- an operator's actions on one case --------------------------------------------------------------------
@router.post("/cases/{tx_id}/retry", response_model=CaseDetail)
def retry_case(request: Request, tx_id: int, body: CaseActionRequest, user: User = Depends(OPERATOR)) -> Any:
    """Give one failed case more attempts (409 when it is not failed)."""
    return _act_on_case(request, user, tx_id, "retry", body)


@router.post("/cases/{tx_id}/cancel", response_model=CaseDetail)
def cancel_case(request: Request, tx_id: int, body: CaseActionRequest, user: User = Depends(OPERATOR)) -> Any:
    """Cancel one waiting case; a running one finishes (409 when it does not wait)."""
    return _act_on_case(request, user, tx_id, "cancel", body)


@router.post("/cases/{tx_id}/rerun", response_model=CaseDetail)
def rerun_case(request: Request, tx_id: int, body: CaseActionRequest, user: User = Depends(OPERATOR)) -> Any:
    """Run a case that has an outcome again, deliberately (``reason`` required). The workflow's lookup runs
    first: a record the target system already holds ends the case done without submitting twice."""
    if not (body.reason or "").strip():
        raise HTTPException(422, "a reason is required to run a finished case again")
    return _act_on_case(request, user, tx_id, "rerun", body)


def _act_on_case(request: Request, user: User, tx_id: int, action: str, body: CaseActionRequest) -> Any:
    _case_or_404(request, user, tx_id)
    service = service_of(request)
    try:
        act_on_case(service.ledger, tx_id, action, user.username, reason=(body.reason or "").strip() or None,
                    attempts=body.attempts, publisher=service.publisher, origin=origin_of(request))
    except LedgerError as exc:
        raise HTTPException(409, str(exc)) from None
    return _case_detail(request, user, tx_id)


# -- operating ------------------------------------------------------------------------------------------
@router.post("/batches/{batch_id}/{action}", response_model=BatchStatus)
def operate(request: Request, batch_id: str, action: str, user: User = Depends(OPERATOR)) -> Any:
    """Pause, resume or cancel a batch, or retry its failed cases (``action``: pause, resume, cancel, retry-failed)."""
    if action not in ACTIONS:
        raise HTTPException(404, f"action must be one of {', '.join(ACTIONS)}")
    _batch_or_404(request, user, batch_id)
    service = service_of(request)
    try:
        operate_batch(service.ledger, batch_id, action, by=user.username, origin=origin_of(request),
                      publisher=service.publisher)
    except LedgerError as exc:  # a finished batch has nothing to pause, resume or cancel
        raise HTTPException(409, str(exc)) from None
    return batch_status(request, batch_id, user)


@router.get("/operations")
def operations(request: Request, user: User = Depends(OPERATOR)) -> Any:
    """Target progress, throughput per minute over the last hour, queue depth and bots."""
    figures = service_of(request).operations(user)
    figures["series"] = [{"start": start, "done": count} for start, count in figures["series"]]
    return figures


# -- authoring ------------------------------------------------------------------------------------------
@router.get("/workflows")
def published_workflows(request: Request, user: User = Depends(ANYONE)) -> Any:
    """The published workflows (the ones hand-offs use) that the user reaches."""
    return service_of(request).published(user)


@router.post("/workflows", status_code=201)
async def publish_workflow(request: Request, user: User = Depends(AUTHOR)) -> Any:
    """Publish a workflow version: multipart field ``files`` (the workflow and the parts it calls), and ``main``
    (the main file's name, when there are several). Problems come back one per line, located by line and column."""
    form, files = await workflow_upload(request)
    main = str(form.get("main", "")).strip() or next(iter(files), "")
    if main not in files:
        raise HTTPException(422, "send the workflow in the multipart field 'files' (and 'main' naming the main file)")
    try:
        loaded, number = await run_in_threadpool(lambda: service_of(request).publish(files, main, user,
                                                                                     origin=origin_of(request)))
    except WorkflowFileError as exc:
        return JSONResponse({"detail": "the workflow has problems; nothing was published",
                             "problems": [str(p) for p in exc.problems]}, status_code=422)
    except OutsideLimit as exc:
        raise HTTPException(403, str(exc)) from None
    warning = await run_in_threadpool(service_of(request).publish_warning, loaded)
    return {"name": loaded.definition.name, "version": loaded.definition.version, "digest": loaded.digest,
            "number": number, "warnings": [warning] if warning else []}


class Publish(BaseModel):
    number: int = Field(description="The publish number: 1, 2, 3… per workflow name.")
    digest: str
    version: int = Field(description="The author's 'version:' in the file.")
    published_by: str
    published_at: float
    file: str
    reason: str | None = Field(description="Why, for a rollback.")
    rolled_back_from: int | None = Field(description="For a rollback: the publish whose source it brought back.")


class Rollback(BaseModel):
    to: str = Field(description="The publish to go back to: its number, or a prefix of its digest.")
    reason: str = Field(min_length=1, max_length=4000, description="Why (kept with the publish and in the audit trail).")


class AuditRecord(BaseModel):
    seq: int
    at: float
    actor: str = Field(description="Who: a user of the service, or the operating-system user for the command line.")
    action: str
    object_type: str
    object_id: str
    origin: str = Field(description="The client's address, or 'cli'.")
    detail: dict[str, Any]
    prev_hash: str
    hash: str = Field(description="SHA-256 of the record's fields and the previous hash.")


VERSIONS = api_user("author", "operator")
AUDITOR = api_user("operator", whole_service=True)


def _versions_or_404(request: Request, user: User, name: str) -> list[dict[str, Any]]:
    publishes = service_of(request).ledger.workflows.versions(name) if user.may(name) else []
    if not publishes:
        raise HTTPException(404, f"workflow '{name}' has never been published")
    return publishes


@router.get("/workflows/{name}/versions", response_model=list[Publish])
def workflow_versions(request: Request, name: str, user: User = Depends(VERSIONS)) -> Any:
    """Every publish of a workflow, oldest first; the newest is the one hand-offs use."""
    return _versions_or_404(request, user, name)


@router.get("/workflows/{name}/diff", responses={200: {"content": {"text/plain": {}},
                                                     "description": "A unified diff of the two sources."}})
def workflow_diff(request: Request, name: str, a: str = Query(description="A publish number or digest prefix."),
                  b: str = Query(description="A publish number or digest prefix."), user: User = Depends(VERSIONS)) -> Any:
    """A unified diff of the sources of two publishes (empty when they are the same)."""
    _versions_or_404(request, user, name)
    try:
        return PlainTextResponse(version_diff(service_of(request).ledger, name, a, b))
    except LedgerError as exc:
        raise HTTPException(422, str(exc)) from None


@router.post("/workflows/{name}/rollback", status_code=201, response_model=Publish)
def rollback_workflow(request: Request, name: str, body: Rollback, user: User = Depends(VERSIONS)) -> Any:
    """Publish the source of an earlier publish again, as a new publish number (batches already handed off
    keep their version)."""
    _versions_or_404(request, user, name)
    try:
        number, _ = service_of(request).rollback(name, body.to, user, body.reason, origin=origin_of(request))
    except LedgerError as exc:
        raise HTTPException(422, str(exc)) from None
    return next(p for p in _versions_or_404(request, user, name) if p["number"] == number)


# -- the audit trail -------------------------------------------------------------------------------------
@router.get("/audit", response_model=list[AuditRecord])
def audit_trail(request: Request, since: float | None = Query(None, description="From this Unix time."),
                user_name: str | None = Query(None, alias="user", description="Only this user's actions."),
                action: str | None = Query(None, description="Only this action (or a kind of action ending in '.')."),
                after: int = Query(0, ge=0, description="Records after this sequence number (paging)."),
                limit: int = Query(1000, ge=1, le=10000), user: User = Depends(AUDITOR)) -> Any:
    """The audit trail, oldest first, a page at a time."""
    return service_of(request).ledger.audit.records(since=since, actor=user_name, action=action, after=after, limit=limit)


@router.get("/audit/export", responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}})
def audit_export(request: Request, format: str = Query("jsonl", pattern="^(csv|jsonl)$"),
                 since: float | None = Query(None), user_name: str | None = Query(None, alias="user"),
                 action: str | None = Query(None), user: User = Depends(AUDITOR)) -> Any:
    """The whole audit trail (filtered) as a CSV or JSON-lines download, streamed."""
    return audit_download(service_of(request).ledger, format, since=since, actor=user_name, action=action)


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, user: User = Depends(ANYONE)) -> Any:
    return request.app.openapi()
