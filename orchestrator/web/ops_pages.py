"""The operator's operations page (target progress, throughput over time, queue depth, bots, failed
cases to retry), the author's workflows page (publish a workflow version) and each workflow's versions
(every publish, a diff between two, a rollback with a reason: for authors and operators)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from workflows import WorkflowFileError

from ..errors import LedgerError
from ..queue import version_diff
from .auth import PageSession, check_csrf, csrf_protected, flash, origin_of, service_of, signed_in
from .render import render
from .service import OutsideLimit
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
    figures = service_of(request).operations(session.user)
    return render(request, "operations.html", {"title": "Operations", **figures, "chart": chart(figures["series"])},
                  session=session)


@router.get("/workflows")
def workflows(request: Request, session: PageSession = Depends(signed_in("author"))) -> Response:
    return _workflows_page(request, session, {})


def _workflows_page(request: Request, session: PageSession, errors: dict[str, str], *, problems: list[str] | None = None,
                    flash: str | None = None, warning: str | None = None, status: int = 200) -> Response:
    return render(request, "workflows.html", {"title": "Workflows", "published": service_of(request).published(session.user),
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
        loaded, number = await run_in_threadpool(lambda: service_of(request).publish(files, main, session.user,
                                                                                     origin=origin_of(request)))
    except WorkflowFileError as exc:
        return _workflows_page(request, session, {"files": "The workflow has problems; nothing was published"},
                               problems=[str(p) for p in exc.problems], status=422)
    except OutsideLimit:
        return _workflows_page(request, session, {"files": "You may publish only the workflows of your team, and this "
                                                           "is not one of them. Nothing was published."}, status=403)
    definition = loaded.definition
    warning = await run_in_threadpool(service_of(request).publish_warning, loaded)
    return _workflows_page(request, session, {}, flash=f"Published {definition.name} version {definition.version} as publish {number}.",
                           warning=warning)


VERSIONS_ROLES = ("author", "operator")


@router.get("/workflows/{name}")
def versions(request: Request, name: str, a: str = "", b: str = "",
             session: PageSession = Depends(signed_in(*VERSIONS_ROLES))) -> Response:
    """Every publish of a workflow, a diff between two (``?a=1&b=2``), and the rollback form."""
    return _versions_page(request, session, name, a, b)


def _versions_page(request: Request, session: PageSession, name: str, a: str = "", b: str = "", *,
                   errors: dict[str, str] | None = None, status: int = 200) -> Response:
    ledger = service_of(request).ledger
    publishes = ledger.workflows.versions(name) if session.user.may(name) else []
    if not publishes:
        return render(request, "not_found.html", {"title": "Page not found", "message": f"No workflow named {name} has been published."},
                      status=404, session=session)
    diff, diff_error = None, None
    if a and b:
        try:
            diff = version_diff(ledger, name, a, b)
        except LedgerError as exc:
            diff_error = str(exc)
    lines = [{"text": line, "kind": "hunk" if line[:3] in ("---", "+++", "@@ ") else
              {"+": "added", "-": "removed"}.get(line[:1], "same")} for line in (diff or "").splitlines()]
    return render(request, "workflow_versions.html", {
        "title": f"Versions of {name}", "name": name, "publishes": list(reversed(publishes)), "a": a, "b": b,
        "diff": lines, "diffed": diff is not None, "diff_error": diff_error, "errors": errors or {},
        "back": "/workflows" if session.user.has("author") else "/operations",
        "error_links": {"reason": "reason", "number": "number"}}, status=status, session=session)


@router.post("/workflows/{name}/rollback")
async def rollback(request: Request, name: str, session: PageSession = Depends(csrf_protected(*VERSIONS_ROLES))
                   ) -> Response:
    if not session.user.may(name):  # one outside the user's limit looks like one never published
        return _versions_page(request, session, name)
    form = await request.form()
    number, reason = str(form.get("number", "")).strip(), str(form.get("reason", "")).strip()
    errors = {**({"number": "Choose the publish to go back to"} if not number else {}),
              **({"reason": "Say why you are rolling back"} if not reason else {})}
    if not errors:
        try:
            new, _ = await run_in_threadpool(lambda: service_of(request).rollback(
                name, number, session.user, reason, origin=origin_of(request)))
        except LedgerError as exc:
            errors = {"number": str(exc)}
        else:
            flash(request, f"Rolled back: publish {new} is in use now.")
            return RedirectResponse(f"/workflows/{name}", status_code=303)
    return _versions_page(request, session, name, errors=errors, status=422)
