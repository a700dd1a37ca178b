"""The operators' audit page: the audit trail, newest first, a page at a time, filtered by user and action,
with its CSV and JSON-lines downloads. It is the whole service's record (sign-ins and account changes
belong to no workflow, and only the whole chain can be verified), so operators limited to some workflows
are refused it."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..ledger.audit import ACTION_TEXT, describe
from .auth import PageSession, service_of, signed_in
from .downloads import audit_download
from .render import render

router = APIRouter(include_in_schema=False)
OPERATOR = signed_in("operator", whole_service=True)
PAGE = 50
SINCE = {"": None, "1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400}


def _filters(user: str, action: str, since: str) -> dict[str, Any]:
    window = SINCE.get(since)
    return {"actor": user.strip() or None, "action": action.strip() or None,
            "since": time.time() - window if window else None}


@router.get("/audit")
def audit(request: Request, user: str = "", action: str = "", since: str = "", before: int | None = None,
          session: PageSession = Depends(OPERATOR)) -> Response:
    trail = service_of(request).ledger.audit
    records = trail.records(**_filters(user, action, since), before=before, limit=PAGE + 1, newest_first=True)
    more = len(records) > PAGE
    rows = [{**r, "text": describe(r)} for r in records[:PAGE]]
    query = "&".join(f"{k}={v}" for k, v in (("user", user), ("action", action), ("since", since)) if v)
    return render(request, "audit.html", {
        "title": "Audit trail", "records": rows, "user": user, "action": action, "since": since,
        "actions": sorted(ACTION_TEXT), "head": trail.head(), "query": query,
        "older": f"/audit?{query + '&' if query else ''}before={rows[-1]['seq']}" if more else None,
        "newest": f"/audit?{query}" if before is not None else None}, session=session)


@router.get("/audit.{fmt}")
def audit_export(request: Request, fmt: str, user: str = "", action: str = "", since: str = "",
                 session: PageSession = Depends(OPERATOR)) -> Response:
    if fmt not in ("csv", "jsonl"):
        return render(request, "not_found.html", {"title": "Page not found"}, status=404, session=session)
    return audit_download(service_of(request).ledger, fmt, **_filters(user, action, since))


