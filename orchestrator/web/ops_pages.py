"""The operator's operations page (target progress, throughput over time, queue depth, bots, failed
cases to retry) and the author's workflows page (publish a workflow version)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from workflows import WorkflowFileError

from .auth import PageSession, check_csrf, service_of, signed_in
from .render import render
from .upload import workflow_upload

router = APIRouter(include_in_schema=False)


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
    figures = service_of(request).operations()
    return render(request, "operations.html", {"title": "Operations", **figures, "chart": chart(figures["series"])},
                  session=session)


@router.get("/workflows")
def workflows(request: Request, session: PageSession = Depends(signed_in("author"))) -> Response:
    return _workflows_page(request, session, {})


def _workflows_page(request: Request, session: PageSession, errors: dict[str, str], *, problems: list[str] | None = None,
                    flash: str | None = None, warning: str | None = None, status: int = 200) -> Response:
    return render(request, "workflows.html", {"title": "Workflows", "published": service_of(request).ledger.workflows.published(),
                                              "errors": errors, "problems": problems or [], "flash": flash,
                                              "warning": warning,
                                              "error_links": {"files": "files"}}, status=status, session=session)


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
    warning = await run_in_threadpool(service_of(request).publish_warning, loaded)
    return _workflows_page(request, session, {}, flash=f"Published {definition.name} version {definition.version}.",
                           warning=warning)
