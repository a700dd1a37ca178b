"""Delayed verifications: a workflow whose ``verify`` has ``delay_s`` above 0 ends its cases ``done`` and
``unverified`` with a due time (``verify_due_at``); the sweep publishes the due ones and a worker verifies them.

A worker takes a due verification by moving its due time forward by a lease (one conditional statement, so
two workers cannot both take it, and a worker that dies leaves it due again when the lease runs out); every
later write names that lease. The case stays ``done`` meanwhile: it was counted when it finished, and a
verification that finds the record wrong hands it to a person (``business_exception``, ``verify_failed``),
never submitting again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from . import counters
from .queries import placeholder
from .schema import VERIFIED_EVENT, VERIFY_FAILED, events, transactions
from .transactions import Claim

DUE = "verify_due_at IS NOT NULL"
"""The predicate of the partial index on due verifications; a query repeats it word for word (SQLite)."""


class Verifications:
    """Taking due delayed verifications, and recording how they ended."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim_many(self, ids: Sequence[int], owner: str, lease_s: float) -> list[Claim]:
        """Take the due verifications among ``ids`` for ``lease_s`` seconds; the others are skipped."""
        if not ids:
            return []
        now = time.time()
        lease = now + lease_s
        with self.engine.begin() as conn:
            m = placeholder(conn)
            rows = conn.exec_driver_sql(
                f"UPDATE transactions SET verify_due_at = {m}, lease_owner = {m} "
                f"WHERE id IN ({', '.join([m] * len(ids))}) AND {DUE} AND verify_due_at <= {m} AND state = 'done' "
                "RETURNING id, workflow, digest, batch_id, case_ref, payload, attempts, max_attempts, fence, "
                "effect_attempt, history, verification, result_ref, output",
                (lease, owner, *ids, now)).fetchall()
        return [Claim(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8], r[9], json.loads(r[10]), now,
                      r[11], r[12], json.loads(r[13]) if r[13] else None, verify_lease=lease) for r in rows]

    def postpone(self, until: dict[int, float]) -> list[int]:
        """Move the due verifications among ``until``'s transactions to their time, untaken (their target system
        is in a maintenance window or its circuit breaker is open); return those moved. The sweep publishes
        them again when their time comes, not on every sweep meanwhile."""
        if not until:
            return []
        now = time.time()
        moved = []
        with self.engine.begin() as conn:
            m = placeholder(conn)
            for tx_id, at in until.items():
                if conn.exec_driver_sql(
                        f"UPDATE transactions SET verify_due_at = {m} "
                        f"WHERE id = {m} AND {DUE} AND verify_due_at <= {m} AND state = 'done'",
                        (at, tx_id, now)).rowcount:
                    moved.append(tx_id)
        return moved

    def finish(self, claim: Claim, result: str, *, evidence: list[str] | None = None, error_message: str | None = None,
               error_detail: str | None = None, due_again_at: float | None = None) -> bool:
        """Record how a delayed verification ended; whether this worker still held it.

        Args:
            result: ``verified`` (the case stays done), ``verify_failed`` (handed to a person, a business
                exception with ``evidence``), or ``error`` (it could not run: due again at ``due_again_at``, or,
                when that is ``None``, given up and left ``unverified``).
        """
        now = time.time()
        entry = {"attempt": claim.attempt, "started_at": claim.started_at, "ended_at": now,
                 "outcome": "verify_error" if result == "error" else result, "error_class": None,
                 "error": error_message, "error_detail": error_detail, "evidence": evidence or []}
        values: dict[str, Any] = {"history": json.dumps(claim.history + [entry]), "updated_at": now,
                                  "lease_owner": None}
        if result == "verified":
            values |= {"verification": "verified", "verify_due_at": None}
            if evidence:
                values["evidence"] = json.dumps(evidence)
        elif result == "verify_failed":
            values |= {"verification": "verify_failed", "verify_due_at": None, "state": "business_exception",
                       "error_class": VERIFY_FAILED, "error_message": error_message, "error_detail": error_detail,
                       "evidence": json.dumps(evidence) if evidence else None}
        else:
            values |= {"verify_due_at": due_again_at}
        t = transactions.c
        with self.engine.begin() as conn:
            changed = conn.execute(transactions.update().where(
                t.id == claim.id, t.state == "done", t.verify_due_at == claim.verify_lease).values(**values)).rowcount
            if changed and result == "verify_failed":
                conn.execute(insert(events).values(transaction_id=claim.id, at=now, state="business_exception",
                                                   attempt=claim.attempt, detail=VERIFY_FAILED))
                deltas = counters.moved([claim], "done", "business_exception")
                deltas.update(counters.moved([claim], None, counters.OPEN_EXCEPTION))
                deltas.update(counters.reverified([claim], ("done", claim.verification),
                                                  ("business_exception", "verify_failed")))
                counters.bump_many(conn, deltas)
            elif changed and result == "verified":  # the case stays done: this event only marks when it was verified
                conn.execute(insert(events).values(transaction_id=claim.id, at=now, state=VERIFIED_EVENT,
                                                   attempt=claim.attempt, detail=VERIFIED_EVENT))
                # the claim's verification is the row's: under the lease nothing else changes it
                counters.bump_many(conn, counters.reverified([claim], ("done", claim.verification), ("done", "verified")))
        return changed == 1

    def errors(self, claim: Claim) -> int:
        """How many delayed verifications of this case could not run."""
        return sum(1 for past in claim.history if past.get("outcome") == "verify_error")
