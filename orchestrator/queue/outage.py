"""Telling a target system's outage from a case's own failure.

When an attempt fails for a technical reason, the worker asks the target system's base URL whether it
answers at all. A refused connection, a timeout or a 5xx answer means the system is down: the case waits
and is tried again later *without spending an attempt*, however long the outage lasts, so an outage
never turns a batch into failed cases. An answer means the failure was the case's: it is retried with
backoff and spends an attempt as usual. Answers are cached for a couple of seconds per system, so an
outage costs one probe per system and period, not one per case.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping

import httpx

PROBE_TIMEOUT_S = 5.0
CACHE_S = 2.0


class TargetHealth:
    """Probes of the target systems' base URLs (thread-safe)."""

    def __init__(self, urls: Mapping[str, str], *, cache_s: float = CACHE_S, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.urls, self.cache_s, self.timeout_s = dict(urls), cache_s, timeout_s
        self._seen: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def down(self, systems: Iterable[str]) -> str | None:
        """The first of ``systems`` that does not answer, or ``None`` (systems without a known URL are not probed)."""
        for system in sorted(systems):
            if system in self.urls and not self._answers(system):
                return system
        return None

    def _answers(self, system: str) -> bool:
        now = time.monotonic()
        with self._lock:
            seen = self._seen.get(system)
        if seen is not None and now - seen[0] < self.cache_s:
            return seen[1]
        try:
            answered = httpx.get(self.urls[system], timeout=self.timeout_s, follow_redirects=False).status_code < 500
        except httpx.HTTPError:
            answered = False
        with self._lock:
            self._seen[system] = (time.monotonic(), answered)
        return answered
