"""The brake on guessing passwords: failed sign-ins for one user, or from one address, first slow each
answer down, then lock password sign-in for a while.

The failures are counted from the audit trail (every one is recorded there as ``sign_in.failed``), so
every process of the service sees the same count, a restart forgets nothing, and no table of its own is
needed. A user's count starts again after they sign in; an address's count is what the window holds.
A lock lasts while the limit is reached within the last ``sign_in_lock_minutes``: it opens by itself as
the failures age out of the window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from ..ledger.schema import audit_log

FAILED, SIGNED_IN = "sign_in.failed", "sign_in"
MAX_DELAY_S = 8.0


@dataclass(frozen=True)
class Verdict:
    """What to do with a sign-in attempt before the password is checked."""

    failures: int
    locked: bool
    delay_s: float
    why: str = ""  # "user" or "address" when locked


class SignInGuard:
    """Counts recent failed sign-ins and says whether the next attempt is slowed or refused.

    Args:
        engine: the ledger's database (where the audit trail is).
        slow_after: failures after which each answer waits (1 s, then doubling, at most 8 s).
        lock_after: failures for one user within ``lock_minutes`` that lock them.
        lock_after_address: failures from one address within ``lock_minutes`` that lock it.
        lock_minutes: the window (and so the length of a lock).
    """

    def __init__(self, engine: Engine, *, slow_after: int, lock_after: int, lock_after_address: int,
                 lock_minutes: float) -> None:
        self.engine = engine
        self.slow_after, self.lock_after, self.lock_after_address = slow_after, lock_after, lock_after_address
        self.window_s = lock_minutes * 60

    def check(self, username: str, address: str, now: float | None = None) -> Verdict:
        """The verdict for an attempt to sign in as ``username`` from ``address``."""
        since = (time.time() if now is None else now) - self.window_s
        c = audit_log.c
        with self.engine.connect() as conn:
            last_sign_in = conn.execute(select(func.max(c.at)).where(
                c.action == SIGNED_IN, c.actor == username, c.at >= since)).scalar()
            by_user = conn.execute(select(func.count()).where(
                c.action == FAILED, c.actor == username, c.at >= max(since, last_sign_in or since))).scalar() or 0
            by_address = conn.execute(select(func.count()).where(
                c.action == FAILED, c.origin == address, c.at >= since)).scalar() or 0
        failures = max(by_user, by_address)
        if by_user >= self.lock_after or by_address >= self.lock_after_address:
            return Verdict(failures, True, 0.0, "user" if by_user >= self.lock_after else "address")
        delay = 0.0 if failures < self.slow_after else min(MAX_DELAY_S, 2.0 ** (failures - self.slow_after))
        return Verdict(failures, False, delay)
