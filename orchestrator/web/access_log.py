"""The access log of ``autoclerk serve``: one structured line per request, written whatever the log level.

Each line has the method, the path, the status, the duration, the signed-in user (when there is one)
and the client's address. It never has a token, a cookie or a header, and of the query string only the
parameter names that cannot hold a secret keep their values: every other value (``code``, ``state``,
``token``, a search term, …) is written as ``[redacted]``. Lines are JSON with ``log_json``, ``key=value``
otherwise.
"""

from __future__ import annotations

import sys
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitoring import redactor

KEPT_QUERY = frozenset({"next", "page", "state_filter", "workflow", "batch", "before", "after", "format", "sort",
                        "status", "action", "actor", "limit"})
"""Query parameters whose values are written as they are: ones that only choose what a page shows."""
REDACTED = "[redacted]"


def safe_query(query: str) -> str:
    """The query string with every value outside :data:`KEPT_QUERY` replaced by ``[redacted]``."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, v if k in KEPT_QUERY else REDACTED) for k, v in pairs], safe="[]/")


def access_logger(*, json: bool, stream: Any = None) -> Any:
    """A structlog logger of its own, so the access log is written whatever ``log_level`` says."""
    renderer: Any = (structlog.processors.JSONRenderer() if json else
                     structlog.processors.KeyValueRenderer(key_order=["event", "method", "path", "status"]))
    return structlog.wrap_logger(structlog.PrintLogger(stream or sys.stderr), wrapper_class=structlog.BoundLogger,
                                 processors=[
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="at"), redactor, renderer])


class AccessLog:
    """ASGI middleware writing one line per HTTP request when the response ends (or the app fails)."""

    def __init__(self, app: ASGIApp, logger: Any) -> None:
        self.app, self.logger = app, logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500
        state = scope.setdefault("state", {})

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            client = scope.get("client")
            self.logger.info("request", method=scope["method"],
                             path=scope["path"] + (f"?{safe_query(query)}" if query else ""), status=status,
                             duration_ms=round((time.perf_counter() - started) * 1000, 1),
                             user=state.get("user"), client=client[0] if client else None)
