"""Transactions as workers see them: a worker *claims* a row before working on it, the claim increments a
fencing token and sets a lease, and every later write names the token, so a stale worker's late write is
refused (:class:`~orchestrator.errors.StaleAttempt`). Before a submitting step the attempt records that it
may change the target system (``effect_started``), so a retry after an uncertain submit is handed to a
person instead of submitting twice.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from ..errors import StaleAttempt
from . import counters
from .queries import placeholder, settle
from .schema import STATES, TERMINAL, VERIFIED_EVENT, events, transactions


@dataclass(frozen=True)
class Claim:
    """A worker's hold on one transaction for one attempt; ``fence`` guards every write it makes."""

    id: int
    workflow: str
    digest: str
    batch_id: str
    case_ref: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    fence: int
    effect_attempt: int | None
    history: list[dict[str, Any]]
    started_at: float
    verification: str | None = None
    """``pending``: the submit of an earlier attempt succeeded and only its verification is left to run."""
    result_ref: str | None = None
    output: dict[str, Any] | None = None
    verify_lease: float | None = None
    """Set on a claim of a delayed verification (:class:`~.verifications.Verifications`): the lease it holds."""


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended, for :meth:`Transactions.finish_many`."""

    claim: Claim
    state: str
    result_ref: str | None = None
    output: dict[str, Any] | None = None
    error_class: str | None = None
    error_message: str | None = None
    """What a caseworker reads: the target system's own message, or a plain-English sentence."""
    error_detail: str | None = None
    """For authors: the step, the locator, the exception."""
    evidence: list[str] | None = None
    next_attempt_at: float | None = None
    give_back_attempt: bool = False
    """The attempt did not reach the target system (its budget was spent): it does not count."""
    forgiven: int = 0
    """Attempts our own machinery cut short (this one: its browser crashed; earlier ones: their worker died) that
    do not count: added to ``max_attempts``, and noted on the attempt's history entry (so each is given once)."""
    looked_in_place: bool = False
    """The attempt's submit met a server error, and the attempt then looked the case up itself (and may have run
    its steps again): its evidence begins with the submit's. Noted on the attempt's history entry."""
    verification: str | None = None
    """``verified``, ``unverified``, ``verify_failed``, or ``pending`` (the submit succeeded, the verification could
    not run: the next attempt verifies only); ``None`` leaves the column as it is."""
    verify_due_at: float | None = None
    """When a delayed verification of a case that ends ``unverified`` is due."""


def _ended_verification(o: Outcome) -> str | None:
    """The verification a case ends its attempt with: the outcome's, else the one it had when claimed (under the
    fence nothing else changes it)."""
    return o.verification if o.verification is not None else o.claim.verification


def _event_detail(o: Outcome) -> str | None:
    """An outcome's event detail: its error class, or :data:`~.schema.VERIFIED_EVENT` for a case that ends done
    and verified."""
    if o.state == "done" and _ended_verification(o) == "verified":
        return VERIFIED_EVENT
    return o.error_class


def _write_held(conn: Connection, claim: Claim, now: float, **values: Any) -> None:
    """Write ``values`` to the case's row, fenced: only while ``claim``'s attempt still holds it (the same fence,
    the case in progress, the lease not run out).

    Raises:
        StaleAttempt: the lease ran out or another attempt holds the case.
    """
    result = conn.execute(
        update(transactions)
        .where(transactions.c.id == claim.id, transactions.c.fence == claim.fence,
               transactions.c.state == "in_progress", transactions.c.lease_until > now)
        .values(**values))
    if result.rowcount != 1:
        raise StaleAttempt(f"transaction {claim.id} ({claim.case_ref}) is no longer held by attempt {claim.attempt}")


class Transactions:
    """Claiming, fencing and finishing attempts; reading one transaction back."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim_many(self, ids: Sequence[int], owner: str, lease_s: float) -> list[Claim]:
        """Take the claimable ones of ``ids`` for one attempt each, in one database transaction.

        A transaction is claimable when it waits (``queued``, or ``retry_scheduled`` whose time has come)
        or when the lease of the attempt holding it ran out. Finished, paused and held ones are skipped.
        """
        ids = list(dict.fromkeys(ids))  # a message may repeat an id
        if not ids:
            return []
        now = time.time()
        with self.engine.begin() as conn:
            m = placeholder(conn)
            # One statement per state a claim takes a case from takes the rows and returns them (SQLite ≥ 3.35
            # and PostgreSQL): the hot path of the queue core, written for the driver directly. Most messages
            # find their cases queued, so the usual claim is the first statement alone; knowing the state each
            # case left keeps the counts by state exact.
            rows: list[Any] = []
            deltas: Counter[counters.Key] = Counter()
            left = ids
            for from_state, condition, args in (
                    ("queued", "state = 'queued'", ()),
                    ("retry_scheduled", f"state = 'retry_scheduled' AND (next_attempt_at IS NULL OR next_attempt_at <= {m})",
                     (now,)),
                    ("in_progress", f"state = 'in_progress' AND lease_until < {m}", (now,))):
                taken = conn.exec_driver_sql(
                    f"UPDATE transactions SET state = 'in_progress', attempts = attempts + 1, fence = fence + 1, "
                    f"lease_owner = {m}, lease_until = {m}, updated_at = {m} "
                    f"WHERE id IN ({', '.join([m] * len(left))}) AND {condition} "
                    "RETURNING id, workflow, digest, batch_id, case_ref, payload, attempts, max_attempts, fence, "
                    "effect_attempt, history, verification, result_ref, output",
                    (owner, now + lease_s, now, *left, *args)).fetchall()
                rows += taken
                if from_state != "in_progress":  # a lease that ran out is taken over: still in progress
                    deltas.update(counters.moved(taken, from_state, "in_progress"))
                if len(rows) == len(ids):
                    break
                claimed = {r[0] for r in taken}
                left = [tx_id for tx_id in left if tx_id not in claimed]
            if rows:
                conn.exec_driver_sql(
                    f"INSERT INTO transaction_events (transaction_id, at, state, attempt, detail) "
                    f"VALUES ({m}, {m}, 'in_progress', {m}, {m})", [(r[0], now, r[6], owner) for r in rows])
                counters.bump_many(conn, deltas)
        order = {tx_id: index for index, tx_id in enumerate(ids)}
        return [Claim(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8], r[9], json.loads(r[10]), now,
                      r[11], r[12], json.loads(r[13]) if r[13] else None)
                for r in sorted(rows, key=lambda r: order[r[0]])]

    def claim(self, tx_id: int, owner: str, lease_s: float) -> Claim | None:
        """Take one transaction (see :meth:`claim_many`), or ``None``."""
        claims = self.claim_many([tx_id], owner, lease_s)
        return claims[0] if claims else None

    def digests(self, ids: Sequence[int]) -> dict[int, str]:
        """The workflow version (digest) of each transaction of ``ids`` that exists."""
        if not ids:
            return {}
        with self.engine.connect() as conn:
            return {row.id: row.digest for row in conn.execute(
                select(transactions.c.id, transactions.c.digest).where(transactions.c.id.in_(list(ids))))}

    def defer(self, until: dict[int, float], reason: str, *, error_class: str = "MaintenanceWindow") -> list[int]:
        """Keep the claimable ones of ``until``'s transactions waiting until their time, without claiming them
        and without spending an attempt (a target system's maintenance window, its open circuit breaker);
        return those deferred.

        A deferred transaction is ``retry_scheduled`` with its ``next_attempt_at``, back in the outbox: the sweep
        publishes it when its time comes. ``reason`` becomes its message meanwhile, ``error_class`` its class.
        """
        if not until:
            return []
        now = time.time()
        deferred = []
        with self.engine.begin() as conn:
            m = placeholder(conn)
            deltas: Counter[counters.Key] = Counter()
            for tx_id, at in until.items():
                for from_state, condition, args in (
                        ("queued", "state = 'queued'", ()),
                        ("retry_scheduled", f"state = 'retry_scheduled' AND (next_attempt_at IS NULL OR next_attempt_at <= {m})",
                         (now,))):
                    found = conn.exec_driver_sql(
                        f"UPDATE transactions SET state = 'retry_scheduled', next_attempt_at = {m}, published = 0, "
                        f"error_class = {m}, error_message = {m}, updated_at = {m} "
                        f"WHERE id = {m} AND {condition} RETURNING attempts, batch_id, workflow",
                        (at, error_class, reason, now, tx_id, *args)).fetchone()
                    if found is not None:
                        deferred.append(tx_id)
                        conn.execute(insert(events).values(transaction_id=tx_id, at=now, state="retry_scheduled",
                                                           attempt=found[0], detail=reason))
                        deltas.update(counters.moved([found], from_state, "retry_scheduled"))
                        break
            counters.bump_many(conn, deltas)
        return deferred

    def mark_effect_started(self, claim: Claim) -> None:
        """Record, before a submitting step, that this attempt may change the target system.

        Raises:
            StaleAttempt: the lease ran out or another attempt holds the case: do not submit.
        """
        now = time.time()
        with self.engine.begin() as conn:
            _write_held(conn, claim, now, effect_attempt=claim.attempt, updated_at=now)
            conn.execute(insert(events).values(transaction_id=claim.id, at=now, state="effect_started",
                                               attempt=claim.attempt))

    def renew(self, claim: Claim, lease_s: float) -> None:
        """Hold the case for ``lease_s`` more seconds from now (fenced): an attempt that works on in place.

        Raises:
            StaleAttempt: the lease ran out or another attempt holds the case: stop working on it.
        """
        now = time.time()
        with self.engine.begin() as conn:
            _write_held(conn, claim, now, lease_until=now + lease_s)

    def finish(self, claim: Claim, state: str, **fields: Any) -> None:
        """Record how one attempt ended (fenced).

        Raises:
            StaleAttempt: another attempt took the case over; this write was refused.
        """
        stale = self.finish_many([Outcome(claim, state, **fields)])
        if stale:
            raise StaleAttempt(f"transaction {claim.id} ({claim.case_ref}): the write of attempt {claim.attempt} "
                               "was refused because another attempt took the case over")

    def finish_many(self, outcomes: Sequence[Outcome]) -> list[Claim]:
        """Record how several attempts ended, in one database transaction; return the stale ones
        (another attempt took them over, so their writes were refused)."""
        if not outcomes:
            return []
        now = time.time()
        rows = []
        for o in outcomes:
            if o.state not in STATES:
                raise ValueError(f"unknown state {o.state}")
            history = o.claim.history + [{
                "attempt": o.claim.attempt, "started_at": o.claim.started_at, "ended_at": now, "outcome": o.state,
                "error_class": o.error_class, "error": o.error_message, "error_detail": o.error_detail,
                "evidence": o.evidence or [],
                **({"forgiven": o.forgiven} if o.forgiven else {}),
                **({"looked_in_place": True} if o.looked_in_place else {}),
            }]
            rows.append((o.state, now, json.dumps(history), o.error_class, o.error_message, o.error_detail,
                         o.next_attempt_at,
                         o.result_ref, json.dumps(o.output) if o.output is not None else None,
                         json.dumps(o.evidence) if o.evidence else None, 0 if o.state == "retry_scheduled" else 1,
                         (1 if o.give_back_attempt else 0) + o.forgiven, o.verification, o.verify_due_at, o.claim.id, o.claim.fence))
        with self.engine.begin() as conn:
            m = placeholder(conn)
            stale = self._stale(conn, outcomes) if len(outcomes) > 1 else []
            fresh = [row for row, o in zip(rows, outcomes) if o.claim not in stale]
            if fresh:
                updated = conn.exec_driver_sql(
                    f"UPDATE transactions SET state = {m}, updated_at = {m}, history = {m}, lease_until = NULL, "
                    f"error_class = {m}, error_message = {m}, error_detail = {m}, next_attempt_at = {m}, "
                    f"result_ref = COALESCE({m}, result_ref), output = COALESCE({m}, output), "
                    f"evidence = COALESCE({m}, evidence), published = {m}, max_attempts = max_attempts + {m}, "
                    f"verification = COALESCE({m}, verification), verify_due_at = {m} "
                    f"WHERE id = {m} AND fence = {m} AND state = 'in_progress'", fresh).rowcount
                if len(outcomes) == 1 and updated != 1:
                    return [outcomes[0].claim]
                done = [o for o in outcomes if o.claim not in stale]
                if updated != len(fresh):
                    # A lease ran out and another attempt took a case over between the read and the write
                    # (fence + 1): its row was left alone. The fences only grow, so a case that carries this
                    # attempt's fence and its outcome was written by this statement.
                    now_at = {r[0]: (r[1], r[2]) for r in conn.exec_driver_sql(
                        f"SELECT id, fence, state FROM transactions WHERE id IN ({', '.join([m] * len(done))})",
                        tuple(o.claim.id for o in done))}
                    stale += [o.claim for o in done if now_at.get(o.claim.id) != (o.claim.fence, o.state)]
                    done = [o for o in done if o.claim not in stale]
                # A case that ends done and verified says so on its event (VERIFIED_EVENT): the target's recent rate
                conn.exec_driver_sql(
                    f"INSERT INTO transaction_events (transaction_id, at, state, attempt, detail) "
                    f"VALUES ({m}, {m}, {m}, {m}, {m})",
                    [(o.claim.id, now, o.state, o.claim.attempt, _event_detail(o)) for o in done])
                deltas: Counter[counters.Key] = Counter()
                for o in done:
                    deltas[(o.claim.batch_id, o.claim.workflow, "in_progress")] -= 1
                    deltas[(o.claim.batch_id, o.claim.workflow, o.state)] += 1
                    if o.state == "business_exception":  # a case in progress has no resolution
                        deltas[(o.claim.batch_id, o.claim.workflow, counters.OPEN_EXCEPTION)] += 1
                    # A case in progress counts toward no target (the same rule as its event's detail).
                    deltas.update(counters.reverified([o.claim], None, (o.state, _ended_verification(o))))
                # A batch whose last case this was is finished. Two workers finishing a batch's last two
                # cases at once may each still see the other's (PostgreSQL): the sweep settles it then.
                settle(conn, {o.claim.batch_id for o in done if o.state in TERMINAL}, now)
                counters.bump_many(conn, deltas)
        return stale

    @staticmethod
    def _stale(conn: Connection, outcomes: Sequence[Outcome]) -> list[Claim]:
        """The attempts that no longer hold their transaction (read under the same database transaction)."""
        m = placeholder(conn)
        ids = [o.claim.id for o in outcomes]
        current = {r[0]: (r[1], r[2]) for r in conn.exec_driver_sql(
            f"SELECT id, fence, state FROM transactions WHERE id IN ({', '.join([m] * len(ids))})", tuple(ids))}
        return [o.claim for o in outcomes if current.get(o.claim.id) != (o.claim.fence, "in_progress")]

    def get(self, tx_id: int) -> dict[str, Any] | None:
        """The transaction's row as it is now, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(transactions).where(transactions.c.id == tx_id)).first()
        return dict(row._mapping) if row else None

    def state_changes(self, tx_id: int) -> list[tuple[str, float, int]]:
        """Every state change of a transaction: ``(state, time, attempt)`` in order, from ``queued`` (the
        row's creation time) on; a delayed verification that passed shows as ``verified``."""
        with self.engine.connect() as conn:
            created = conn.execute(select(transactions.c.created_at).where(transactions.c.id == tx_id)).scalar()
            if created is None:
                return []
            return [("queued", created, 0)] + [(r.state, r.at, r.attempt) for r in conn.execute(
                select(events).where(events.c.transaction_id == tx_id).order_by(events.c.id))]
