"""Honouring each target system's budget (at most N sessions, at most M transactions a minute) across
every worker, around each bot run.

Limits come from settings, e.g. ``AUTOCLERK_SYSTEM_LIMITS='{"portal": {"sessions": 4, "per_minute": 120}}'``.
The budget lives in the ledger (:mod:`orchestrator.ledger.budgets`), so workers on several hosts share
it. A transaction that cannot get its budget in time is scheduled again without using up an attempt.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from ..errors import OrchestratorError
from ..ledger import SystemBudgets
from ..settings import SystemLimit

POLL_S = 0.2
"""How often, on average, a waiting bot asks again for a session slot (the slot is shared: no event can
tell). The ledger's ``WAITER_FRESH_S`` must stay above its longest pause, ``1.5 * POLL_S``."""


class BudgetUnavailable(OrchestratorError):
    """A target system's budget stayed spent for longer than the wait allowed."""


@contextmanager
def budget_held(budgets: SystemBudgets, limits: dict[str, SystemLimit], systems: Iterable[str], holder: str, *,
                lease_s: float, wait_s: float) -> Iterator[None]:
    """Hold a session slot and a rate token of every limited system in ``systems`` while the block runs.

    Systems are taken in name order, so two workers never wait on each other's half-held budgets.

    Args:
        lease_s: the longest the block runs; a slot's lease is this plus ``wait_s`` (the slot is held from
            the moment it is taken), after which a slot whose holder died frees itself.
        wait_s: the longest to wait for every budget.

    Raises:
        BudgetUnavailable: not every budget could be had within ``wait_s``.
    """
    deadline = time.monotonic() + wait_s
    held: list[tuple[str, int]] = []
    try:
        for system in sorted(set(systems)):
            limit = limits.get(system)
            if limit is None:
                continue
            if limit.sessions is not None:
                # The slot is held while this waits for the rate token too: its lease covers the wait, or
                # another worker could take the slot of a bot about to start (one session too many).
                waiting = False
                while (slot := budgets.take_session(system, limit.sessions, holder, lease_s + wait_s,
                                                    waiting=waiting)) is None:
                    if time.monotonic() + POLL_S > deadline:
                        raise BudgetUnavailable(f"all {limit.sessions} sessions of {system} stayed busy for {wait_s:g} s")
                    waiting = True  # from now on this bot comes before bots asking for the first time
                    time.sleep(random.uniform(0.5, 1.5) * POLL_S)  # jittered, so that waiters do not ask in step
                held.append((system, slot))
            if limit.per_minute is not None:
                while (wait := budgets.take_token(system, limit.per_minute)) > 0:
                    if time.monotonic() + wait > deadline:
                        raise BudgetUnavailable(f"{system} allows {limit.per_minute:g} transactions a minute; "
                                                f"none was free for {wait_s:g} s")
                    time.sleep(wait)
        yield
    finally:
        for system, slot in held:
            budgets.release_session(system, slot, holder)
