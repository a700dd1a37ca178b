"""A circuit breaker per target system, held in the ledger so every worker on every host shares it.

States::

    closed ──(N consecutive failures that showed the system down)──► open
      ▲                                                               │ (open period over)
      │                                                               ▼
      └──────────────(the probe found it up)──────────────────── half_open ──(probe found it down)──► open

While a breaker is open no case of its system is claimed. Once its open period is over, exactly one worker
takes the probe: a lease on the breaker's row, taken with one conditional UPDATE, so the database, not a
process, decides who probes (a prober that dies leaves a lease that runs out, and another worker probes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import case, select, update
from sqlalchemy.engine import Engine

from .queries import placeholder
from .schema import breakers

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class Breaker:
    """One target system's breaker as the ledger holds it."""

    system: str
    state: str
    """``closed``, ``open`` or ``half_open``."""
    failures: int
    """Consecutive failures that showed the system down (reset by an answer)."""
    opened_at: float | None
    """When it opened (Unix time; ``None`` while closed)."""
    probe_at: float | None
    """When its open period ends and a probe may run (Unix time; ``None`` while closed)."""
    probe_until: float | None
    """While half-open: when the prober's lease runs out."""
    reason: str | None
    """What the last failure showed (``answered 503``, ``refused the connection``…)."""


class Breakers:
    """The target systems' circuit breakers, on the ledger's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def all(self) -> dict[str, Breaker]:
        """Every system's breaker that has ever counted a failure, by system."""
        with self.engine.connect() as conn:
            return {row.system: _breaker(row) for row in conn.execute(select(breakers))}

    def tripped(self) -> dict[str, Breaker]:
        """The breakers that are open or half-open (one small read; empty when every system is well)."""
        with self.engine.connect() as conn:
            return {row.system: _breaker(row) for row in conn.execute(
                select(breakers).where(breakers.c.state != CLOSED))}

    def failed(self, system: str, *, threshold: int, open_s: float, reason: str, now: float | None = None) -> Breaker:
        """Count one failure that showed ``system`` down; the ``threshold``-th in a row opens the breaker for
        ``open_s`` seconds. An open or half-open breaker is left as it is. Returns the breaker after it."""
        now = time.time() if now is None else now
        b = breakers.c
        trips = b.failures + 1 >= threshold
        with self.engine.begin() as conn:
            m = placeholder(conn)
            conn.exec_driver_sql(
                f"INSERT INTO breakers (system, state, failures, updated_at) VALUES ({m}, 'closed', 0, {m}) "
                "ON CONFLICT (system) DO NOTHING", (system, now))
            conn.execute(update(breakers).where(b.system == system, b.state == CLOSED).values(
                failures=b.failures + 1, reason=reason, updated_at=now,
                state=case((trips, OPEN), else_=CLOSED),
                opened_at=case((trips, now), else_=None),
                probe_at=case((trips, now + open_s), else_=None)))
            return _breaker(conn.execute(select(breakers).where(b.system == system)).one())

    def answered(self, system: str, *, now: float | None = None) -> None:
        """``system`` answered: a closed breaker's count of consecutive failures starts again (no write when
        it is already zero or the system has no breaker)."""
        b = breakers.c
        with self.engine.begin() as conn:
            conn.execute(update(breakers).where(b.system == system, b.state == CLOSED, b.failures > 0).values(
                failures=0, reason=None, updated_at=time.time() if now is None else now))

    def take_probe(self, system: str, holder: str, lease_s: float, *, now: float | None = None) -> bool:
        """Take the one probe of ``system``: true for exactly one caller once its open period is over (or once
        the last prober's lease ran out); the breaker is half-open meanwhile."""
        now = time.time() if now is None else now
        b = breakers.c
        with self.engine.begin() as conn:
            # One conditional UPDATE: on PostgreSQL a concurrent one waits for this row, then finds the
            # condition false (state half_open, lease running); on SQLite writers are serialised.
            taken = conn.execute(update(breakers).where(
                b.system == system,
                ((b.state == OPEN) & (b.probe_at <= now)) | ((b.state == HALF_OPEN) & (b.probe_until < now)),
            ).values(state=HALF_OPEN, prober=holder, probe_until=now + lease_s, updated_at=now)).rowcount
        return bool(taken == 1)

    def probed(self, system: str, holder: str, *, up: bool, open_s: float, reason: str | None = None,
               now: float | None = None) -> Breaker:
        """The probe ``holder`` took found ``system`` up (the breaker closes) or down (it opens again for
        ``open_s`` seconds). A holder whose lease was taken over changes nothing. Returns the breaker after it."""
        now = time.time() if now is None else now
        b = breakers.c
        after = ({"state": CLOSED, "failures": 0, "opened_at": None, "probe_at": None, "reason": None} if up
                 else {"state": OPEN, "probe_at": now + open_s, "reason": reason})
        with self.engine.begin() as conn:
            conn.execute(update(breakers).where(b.system == system, b.state == HALF_OPEN, b.prober == holder).values(
                prober=None, probe_until=None, updated_at=now, **after))
            return _breaker(conn.execute(select(breakers).where(b.system == system)).one())


def _breaker(row: object) -> Breaker:
    return Breaker(row.system, row.state, row.failures, row.opened_at, row.probe_at,  # type: ignore[attr-defined]
                   row.probe_until, row.reason)  # type: ignore[attr-defined]
