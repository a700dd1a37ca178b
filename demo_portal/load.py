"""What the portal sees of its visitors, as a legacy system's administrator would count it: the bot sessions
working on it at once, and how many start (and how many pages they ask for) in any minute.

A bot works in a fresh browser context per transaction, and a context has its own connections: a session
starts with the first page request of a new connection. A bot waits for each page before it asks for the
next, so the page requests in flight at once are the sessions working at once (a session between two pages,
filling a form, is not counted: the latency knob makes the pages slow enough that it seldom is).
``/api/*`` and ``/healthz`` are not visits and are not counted.

Example::

    meter = LoadMeter()
    meter.started(("127.0.0.1", 50000), now=0.0)
    meter.finished()
    meter.snapshot()["sessions_started_busiest_minute"]   # 1
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

MINUTE_S = 60.0


def busiest_window(times: list[float], window_s: float = MINUTE_S) -> int:
    """The most of ``times`` that fall within any ``window_s`` seconds (a sliding window, its end excluded)."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


def busiest_minute(times: list[float]) -> int:
    """The most of ``times`` (seconds since the epoch) within one minute of the clock (``hh:mm:00`` to ``hh:mm:59``)."""
    return max(Counter(int(at // MINUTE_S) for at in times).values(), default=0)


@dataclass
class LoadMeter:
    """The page requests and sessions the portal has seen since it started (or since :meth:`reset`)."""

    in_flight: int = 0
    peak_in_flight: int = 0
    requests: list[float] = field(default_factory=list)
    sessions: list[float] = field(default_factory=list)
    _connections: set[tuple[str, int]] = field(default_factory=set)

    def started(self, client: tuple[str, int] | None, *, now: float) -> None:
        """A page request arrived from ``client`` (its address and port: one connection) at ``now`` (epoch seconds)."""
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self.requests.append(now)
        if client is not None and client not in self._connections:
            self._connections.add(client)
            self.sessions.append(now)

    def finished(self) -> None:
        """A page request was answered (or its client went away)."""
        self.in_flight -= 1

    def reset(self) -> None:
        """Start counting afresh; requests in flight stay in flight, and their connections stay known."""
        self.peak_in_flight = self.in_flight
        self.requests, self.sessions = [], []

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /api/load`` answers."""
        return {"sessions_now": self.in_flight, "sessions_peak": self.peak_in_flight,
                "sessions_started": len(self.sessions),
                "sessions_started_busiest_minute": busiest_minute(self.sessions),
                "sessions_started_busiest_60s": busiest_window(self.sessions),
                "requests": len(self.requests), "requests_busiest_minute": busiest_minute(self.requests),
                "requests_busiest_60s": busiest_window(self.requests)}


class LoadMiddleware:
    """Counts the page requests that reach the portal in ``meter`` (outermost: a slow or hanging page counts
    as long as the client waits for it)."""

    def __init__(self, app: ASGIApp, meter: LoadMeter) -> None:
        self.app, self.meter = app, meter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/api/") or path == "/healthz":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        self.meter.started((client[0], client[1]) if client else None, now=time.time())
        try:
            await self.app(scope, receive, send)
        finally:
            self.meter.finished()
