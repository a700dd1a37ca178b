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
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

MINUTE_S = 60.0
IDLE_S = 120.0
"""Longer than the portal keeps an idle connection open (``timeout_keep_alive``, 30 s)."""
FORGET_AFTER = 1000
"""Connections remembered before the idle ones are forgotten (the memory of a long-running portal stays bounded)."""


@dataclass
class EventCounter:
    """Events (page requests, session starts) counted as they come, in bounded memory: the total, the most in
    one minute of the clock (``hh:mm:00`` to ``hh:mm:59``) and the most in any 60 s (a sliding window)."""

    total: int = 0
    busiest_minute: int = 0
    busiest_60s: int = 0
    _minute: int = -1
    _in_minute: int = 0
    _recent: deque[float] = field(default_factory=deque)

    def add(self, at: float) -> None:
        """One event at ``at`` (epoch seconds; events come in the order of their times)."""
        self.total += 1
        minute = int(at // MINUTE_S)
        self._in_minute = self._in_minute + 1 if minute == self._minute else 1
        self._minute = minute
        self.busiest_minute = max(self.busiest_minute, self._in_minute)
        self._recent.append(at)
        while at - self._recent[0] >= MINUTE_S:
            self._recent.popleft()
        self.busiest_60s = max(self.busiest_60s, len(self._recent))


@dataclass
class LoadMeter:
    """The page requests and sessions the portal has seen since it started (or since :meth:`reset`)."""

    in_flight: int = 0
    peak_in_flight: int = 0
    requests: EventCounter = field(default_factory=EventCounter)
    sessions: EventCounter = field(default_factory=EventCounter)
    _connections: dict[tuple[str, int], float] = field(default_factory=dict)
    """Each connection seen, with when it was last used."""

    def started(self, client: tuple[str, int] | None, *, now: float) -> None:
        """A page request arrived from ``client`` (its address and port: one connection) at ``now`` (epoch seconds)."""
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self.requests.add(now)
        if client is None:
            return
        if client not in self._connections:
            self.sessions.add(now)
            if len(self._connections) >= FORGET_AFTER:
                self._forget_idle(now)
        self._connections[client] = now

    def _forget_idle(self, now: float) -> None:
        # A connection idle longer than the server keeps one open is closed: its port may come back as another.
        self._connections = {c: seen for c, seen in self._connections.items() if now - seen < IDLE_S}

    def finished(self, client: tuple[str, int] | None = None, *, now: float | None = None) -> None:
        """A page request was answered (or its client went away)."""
        self.in_flight -= 1
        if client is not None and now is not None and client in self._connections:
            self._connections[client] = now

    def reset(self) -> None:
        """Start counting afresh; requests in flight stay in flight, and their connections stay known."""
        self.peak_in_flight = self.in_flight
        self.requests, self.sessions = EventCounter(), EventCounter()

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /api/load`` answers."""
        return {"sessions_now": self.in_flight, "sessions_peak": self.peak_in_flight,
                "sessions_started": self.sessions.total,
                "sessions_started_busiest_minute": self.sessions.busiest_minute,
                "sessions_started_busiest_60s": self.sessions.busiest_60s,
                "requests": self.requests.total, "requests_busiest_minute": self.requests.busiest_minute,
                "requests_busiest_60s": self.requests.busiest_60s}


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
        address = scope.get("client")
        client = (address[0], address[1]) if address else None
        self.meter.started(client, now=time.time())
        try:
            await self.app(scope, receive, send)
        finally:
            self.meter.finished(client, now=time.time())
