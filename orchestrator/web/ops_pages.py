"""The operator's operations page (target progress, throughput over time, queue depth, bots, failed
cases to retry) and the author's workflows page (publish a workflow version)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData, UploadFile
from starlette.concurrency import run_in_threadpool

from workflows import WorkflowFileError

from ..metrics import BrokerCollector
from ..status import progress_report
from .app import render
from .auth import PageSession, check_csrf, service_of, signed_in
from .service import HandoffService
from .upload import safe_name

router = APIRouter(include_in_schema=False)
MAX_WORKFLOW_FILES = 20
MAX_WORKFLOW_BYTES = 256 * 1024


def operations_figures(service: HandoffService) -> dict[str, Any]:
    """Everything the operations page shows (the API returns the same figures)."""
    settings = service.settings
    report = progress_report(service.ledger, settings.target_transactions, settings.rate_window_s, limit=20)
    counts = report["ledger_counts"]
    broker = None
    if not settings.embedded:
        broker = service.broker_depths()
    series = service.casework.throughput(window_s=3600, bucket_s=60)
    return {"target": report, "series": series, "waiting": counts["queued"] + counts["retry_scheduled"],
            "paused": counts["paused"], "in_progress": counts["in_progress"], "failed": counts["failed"],
            "broker": broker, "workers": service.casework.workers(), "batches": report["batches"]}


def chart(series: list[tuple[float, int]], width: int = 720, height: int = 160) -> dict[str, Any]:
    """Bars for an SVG chart of ``(bucket start, count)``, scaled to the busiest bucket."""
    top = max([count for _, count in series] + [1])
    step = width / max(len(series), 1)
    bars = [{"x": round(i * step, 1), "width": round(max(step - 1, 1), 1), "height": round(height * count / top, 1),
             "y": round(height - height * count / top, 1), "count": count,
             "label": dt.datetime.fromtimestamp(start, dt.timezone.utc).strftime("%H:%M")}
            for i, (start, count) in enumerate(series)]
    return {"bars": bars, "top": top, "width": width, "height": height}


@router.get("/operations")
def operations(request: Request, session: PageSession = Depends(signed_in("operator"))) -> Response:
    figures = operations_figures(service_of(request))
    return render(request, "operations.html", {"title": "Operations", **figures, "chart": chart(figures["series"])},
                  session=session)


@router.get("/workflows")
def workflows(request: Request, session: PageSession = Depends(signed_in("author"))) -> Response:
    return _workflows_page(request, session, {})


def _workflows_page(request: Request, session: PageSession, errors: dict[str, str], *, problems: list[str] | None = None,
                    flash: str | None = None, status: int = 200) -> Response:
    return render(request, "workflows.html", {"title": "Workflows", "published": service_of(request).casework.published(),
                                              "errors": errors, "problems": problems or [], "flash": flash,
                                              "error_links": {"files": "files"}}, status=status, session=session)


async def workflow_upload(request: Request) -> tuple[FormData, dict[str, bytes]]:
    """The form of a workflow upload (page or API) and its files by safe name, within the size limits."""
    form = await request.form(max_files=MAX_WORKFLOW_FILES, max_fields=10, max_part_size=MAX_WORKFLOW_BYTES)
    files = {safe_name(u.filename): await u.read(MAX_WORKFLOW_BYTES + 1)
             for u in form.getlist("files") if isinstance(u, UploadFile) and u.filename}
    return form, files


@router.post("/workflows")
async def publish(request: Request, session: PageSession = Depends(signed_in("author"))) -> Response:
    form, files = await workflow_upload(request)
    check_csrf(str(form.get("csrf_token", "")), session.csrf_token)
    main = str(form.get("main", "")).strip()
    if not files:
        return _workflows_page(request, session, {"files": "Choose the workflow file (and the parts it calls)"}, status=422)
    if not main:
        main = next(iter(files))
    if main not in files:
        return _workflows_page(request, session, {"files": f"The main workflow {main} is not among the files chosen"},
                               status=422)
    try:
        loaded = await run_in_threadpool(service_of(request).publish, files, main, session.user.username)
    except WorkflowFileError as exc:
        return _workflows_page(request, session, {"files": "The workflow has problems; nothing was published"},
                               problems=[str(p) for p in exc.problems], status=422)
    definition = loaded.definition
    return _workflows_page(request, session, {}, flash=f"Published {definition.name} version {definition.version}.")
