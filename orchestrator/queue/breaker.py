"""A circuit breaker per target system: a system that is down gets no cases, and no browser opens for it.

When an attempt fails for a technical reason, the worker asks the system's health page (``AUTOCLERK_SYSTEM_HEALTH``;
its base URL when it has none) whether the application answers. A refused connection, a timeout or a 5xx
answer shows the system down: the case waits without spending an attempt, and the failure counts on the
system's breaker in the ledger (:mod:`orchestrator.ledger.breakers`). After ``AUTOCLERK_BREAKER_THRESHOLD``
such failures in a row the breaker opens, and every worker, before it claims cases, defers those for an
open system until the breaker's next probe: unclaimed, no attempt spent, no browser. An answer means the
failure was the case's own, and the count starts again.

Once the open period (``AUTOCLERK_BREAKER_OPEN_S``) is over, one worker (a lease on the breaker's row) probes
the health page again: an answer closes the breaker and the cases go on; a failure opens it for another
period. The probe is the health request, not a real case: it opens no browser, cannot submit anything while
the system is half up, takes at most :data:`PROBE_TIMEOUT_S`, and asks the very question that opened the
breaker. A health page that answers while cases still fail lets a few cases fail again: they count and
open the breaker anew.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterable

import httpx
import structlog

from ..ledger import Breaker, Ledger
from ..settings import Settings

log = structlog.get_logger(__name__)

PROBE_TIMEOUT_S = 5.0
PROBE_LEASE_S = 3 * PROBE_TIMEOUT_S
"""How long the one prober of a half-open breaker holds it; another worker probes once it runs out."""


def probe(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Ask ``url`` whether the application answers: ``None`` when it does, else what showed it down
    (``answered 503``, ``did not answer (ConnectTimeout)``)."""
    try:
        status = httpx.get(url, timeout=timeout_s, follow_redirects=False).status_code
    except httpx.HTTPError as exc:
        return f"did not answer ({type(exc).__name__})"
    return f"answered {status}" if status >= 500 else None


class SystemBreakers:
    """The breakers as one worker process uses them: the gate before claiming, and the count after a failure."""

    def __init__(self, ledger: Ledger, settings: Settings, owner: str) -> None:
        self.breakers, self.settings, self.owner = ledger.breakers, settings, owner

    def closed_to(self, systems: Iterable[str], tripped: dict[str, Breaker] | None = None) -> dict[str, Breaker]:
        """Those of ``systems`` whose cases must wait now, each with its breaker (``probe_at``: when to try
        again). When a breaker's open period is over, this process may win its one probe and run it here.
        ``tripped``: the open and half-open breakers, when the caller just read them."""
        tripped = self.breakers.tripped() if tripped is None else tripped
        waiting: dict[str, Breaker] = {}
        for system in sorted(set(systems) & tripped.keys()):
            breaker = tripped[system]
            now = time.time()
            if breaker.state == "open" and (breaker.probe_at or 0) > now:
                waiting[system] = breaker
            elif self.breakers.take_probe(system, self.owner, PROBE_LEASE_S, now=now):
                breaker = self._probe(system)
                if breaker.state != "closed":
                    waiting[system] = breaker
            else:  # another worker probes it: look again once its lease would have run out
                waiting[system] = dataclasses.replace(breaker, probe_at=breaker.probe_until or now + PROBE_LEASE_S)
        return waiting

    def _probe(self, system: str) -> Breaker:
        url = self.settings.health_url(system)
        seen = probe(url) if url else None
        breaker = self.breakers.probed(system, self.owner, up=seen is None, open_s=self.settings.breaker_open_s,
                                       reason=seen)
        if breaker.state == "closed":
            log.warning("circuit breaker closed", system=system)
        else:
            log.warning("circuit breaker probe failed; open again", system=system, seen=seen,
                        open_s=self.settings.breaker_open_s)
        return breaker

    def after_failure(self, systems: Iterable[str]) -> Breaker | None:
        """After a failed attempt: the breaker of the first of ``systems`` that does not answer, with this
        failure counted on it (``None`` when every one answers; their counts start again). Systems without a
        known URL are not asked."""
        for system in sorted(systems):
            url = self.settings.health_url(system)
            if url is None:
                continue
            seen = probe(url)
            if seen is None:
                self.breakers.answered(system)
                continue
            now = time.time()
            breaker = self.breakers.failed(system, threshold=self.settings.breaker_threshold,
                                           open_s=self.settings.breaker_open_s, reason=seen, now=now)
            if breaker.opened_at == now:  # this failure opened it
                log.warning("circuit breaker opened", system=system, seen=seen, failures=breaker.failures)
            return breaker
        return None


def waiting_message(system: str, breaker: Breaker, settings: Settings) -> str:
    """What a caseworker reads on a case held back by an open breaker."""
    until = dt.datetime.fromtimestamp(breaker.probe_at or time.time(), settings.tz).strftime("%H:%M:%S")
    return (f"The target system {system} is not answering, so no case for it is started; the case waits "
            f"(it will be tried again after {until}), with no attempt spent.")
