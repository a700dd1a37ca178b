"""Budgets per target system, held in the ledger so every worker on every host honours them.

A legacy system takes at most N sessions at once and at most M transactions a minute. The rate is a
token bucket with one second's worth of burst, refilled just slowly enough that no 60 seconds ever see
more than M starts (a full bucket's burst plus a minute's refill at M a minute would be M + burst - 1);
sessions are numbered slots with a lease, so a slot held by a worker that died frees itself, and bots already
waiting for a slot come before a bot asking for the first time (the bot that has just freed one among them).
Each acquisition is one conditional UPDATE: the database, not a process, decides who gets it.
"""

from __future__ import annotations

import time

from sqlalchemy.engine import Engine

from .queries import placeholder

WAITER_FRESH_S = 0.6
"""How long a waiting bot's mark holds back bots asking for the first time: longer than a waiting bot's
longest pause between two asks (:data:`orchestrator.queue.budgets.POLL_S` with its jitter)."""


class SystemBudgets:
    """Rate tokens and session slots per system, on the ledger's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def take_token(self, system: str, per_minute: float) -> float:
        """Take one transaction's worth of rate; return 0, or the seconds until a token will be there."""
        burst = max(1.0, per_minute / 60.0)
        # Any 60 s see at most a full bucket plus less than 60 s of refill: fewer than burst + 60 * rate =
        # per_minute + 1 whole tokens. Refilled at per_minute / 60, a full burst would make it per_minute + burst - 1.
        rate = (per_minute - (burst - 1.0)) / 60.0
        now = time.time()
        with self.engine.begin() as conn:
            m = placeholder(conn)
            refill = f"(CASE WHEN tokens + ({m} - updated_at) * {m} > {m} THEN {m} ELSE tokens + ({m} - updated_at) * {m} END)"
            taken = conn.exec_driver_sql(
                f"UPDATE system_rate SET tokens = {refill} - 1, updated_at = {m} WHERE system = {m} AND {refill} >= 1",
                (now, rate, burst, burst, now, rate, now, system, now, rate, burst, burst, now, rate)).rowcount
            if taken:
                return 0.0
            row = conn.exec_driver_sql(f"SELECT tokens, updated_at FROM system_rate WHERE system = {m}",
                                       (system,)).first()
            if row is None:
                created = conn.exec_driver_sql(
                    f"INSERT INTO system_rate (system, tokens, updated_at) VALUES ({m}, {m}, {m}) "
                    "ON CONFLICT (system) DO NOTHING", (system, burst - 1, now)).rowcount
                return 0.0 if created else 0.01  # 0.01: another worker made the bucket just now; ask again
            available = min(burst, row[0] + (now - row[1]) * rate)
            return max(0.001, (1 - available) / rate)

    def take_session(self, system: str, sessions: int, holder: str, lease_s: float, *,
                     waiting: bool = False) -> int | None:
        """Take a free session slot (or one whose holder's lease ran out); ``None`` when all are busy.

        First come, first served between bots: a bot asking for the first time (``waiting`` false) takes
        no slot while another bot has been waiting for one within :data:`WAITER_FRESH_S`, so the bot that
        has just freed a slot cannot take it straight back ahead of them. A waiting bot that finds every
        slot busy says so on the system's slots.
        """
        now = time.time()
        with self.engine.begin() as conn:
            m = placeholder(conn)
            if not waiting and conn.exec_driver_sql(
                    f"SELECT 1 FROM system_sessions WHERE system = {m} AND waited_at > {m}",
                    (system, now - WAITER_FRESH_S)).first() is not None:
                return None
            for slot in range(sessions):
                taken = conn.exec_driver_sql(
                    f"UPDATE system_sessions SET holder = {m}, until = {m} "
                    f"WHERE system = {m} AND slot = {m} AND (holder IS NULL OR until < {m})",
                    (holder, now + lease_s, system, slot, now)).rowcount
                if taken:
                    return slot
                exists = conn.exec_driver_sql(f"SELECT 1 FROM system_sessions WHERE system = {m} AND slot = {m}",
                                              (system, slot)).first()
                if exists is None and conn.exec_driver_sql(
                        f"INSERT INTO system_sessions (system, slot, holder, until) VALUES ({m}, {m}, {m}, {m}) "
                        "ON CONFLICT (system, slot) DO NOTHING", (system, slot, holder, now + lease_s)).rowcount:
                    return slot
            if waiting:
                conn.exec_driver_sql(f"UPDATE system_sessions SET waited_at = {m} WHERE system = {m}", (now, system))
        return None

    def release_session(self, system: str, slot: int, holder: str) -> None:
        with self.engine.begin() as conn:
            m = placeholder(conn)
            conn.exec_driver_sql(f"UPDATE system_sessions SET holder = NULL, until = NULL "
                                 f"WHERE system = {m} AND slot = {m} AND holder = {m}", (system, slot, holder))
