"""Cases as people see them: a batch's cases by state and reference, one case with its attempts, evidence
and the people's actions, and those actions on an exception (resubmit with corrected data, done by hand,
closed), each recorded with who and when.

Every change is one conditional statement: a resubmit or resolution applies only to a case that is still
an open exception, so two people acting at once cannot both succeed.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine

from ..errors import LedgerError
from . import counters
from .queries import reopen, settle
from .reports import CASE_COLUMNS, case_row
from .retention import ERASED
from .schema import RESOLUTIONS, TERMINAL, WAITING, batches, case_actions, events, transactions
from .transactions import Transactions


class Cases:
    """Finding cases, and the people's actions on exceptions."""

    def __init__(self, engine: Engine, transactions: Transactions) -> None:
        self.engine = engine
        self.transactions = transactions

    def list(self, batch_id: str, *, state: str | None = None, ref: str | None = None, after: int = 0,
              limit: int = 50) -> builtins.list[dict[str, Any]]:
        """A batch's cases in hand-off order, filtered by state and by a reference prefix, ``limit`` after id ``after``."""
        t = transactions.c
        query = select(*CASE_COLUMNS).where(t.batch_id == batch_id, t.id > after)
        if state == "open_exception":
            query = query.where(t.state == "business_exception", t.resolution.is_(None))
        elif state:
            query = query.where(t.state == state)
        if ref:
            query = query.where(t.case_ref.startswith(ref, autoescape=True))
        with self.engine.connect() as conn:
            return [case_row(r) for r in conn.execute(query.order_by(t.id).limit(limit))]

    def by_ref(self, workflow: str, case_ref: str) -> dict[str, Any] | None:
        """The case a workflow already has under this reference, or ``None``."""
        t = transactions.c
        with self.engine.connect() as conn:
            row = conn.execute(select(t.id, t.state, t.batch_id).where(t.workflow == workflow, t.case_ref == case_ref)).first()
        return dict(row._mapping) if row else None

    def get(self, tx_id: int) -> dict[str, Any] | None:
        """One case with its batch's owner, its state changes and the people's actions on it."""
        with self.engine.connect() as conn:
            row = conn.execute(select(transactions, batches.c.created_by)
                               .join(batches, batches.c.id == transactions.c.batch_id)
                               .where(transactions.c.id == tx_id)).first()
            if row is None:
                return None
            case = dict(row._mapping)
            case["payload"] = json.loads(case["payload"])
            case["history"] = json.loads(case["history"])
            case["evidence"] = json.loads(case["evidence"]) if case["evidence"] else []
            case["output"] = json.loads(case["output"]) if case["output"] else None
            case["actions"] = [dict(a._mapping) for a in conn.execute(
                select(case_actions).where(case_actions.c.transaction_id == tx_id).order_by(case_actions.c.id))]
        case["changes"] = self.transactions.state_changes(tx_id)
        return case

    def resubmit(self, tx_id: int, payload: dict[str, Any], by: str, *, attempts: int, note: str | None = None) -> bool:
        """Send an open exception back to the bots with corrected data and ``attempts`` more attempts.

        The earlier submit is forgotten (the person decided the case must be submitted again), so the
        bot does not stop at its uncertainty a second time. A finished batch is active again until the case
        ends. Returns whether the case was still open.
        """
        t = transactions.c
        now = time.time()
        with self.engine.begin() as conn:
            # The verification it leaves (a verify failure's count goes down); the update repeats it, so the
            # count cannot miss a change made in between.
            was = conn.execute(select(t.verification).where(t.id == tx_id)).scalar()
            found = conn.execute(update(transactions).where(
                t.id == tx_id, t.state == "business_exception", t.resolution.is_(None),
                t.verification.is_not_distinct_from(was)).values(
                state="queued", payload=json.dumps(payload, separators=(",", ":")), published=0, effect_attempt=None,
                verification=None, verify_due_at=None, max_attempts=t.attempts + attempts, next_attempt_at=None, updated_at=now)
                .returning(t.batch_id, t.workflow)).first()
            if found is not None:
                conn.execute(insert(case_actions).values(transaction_id=tx_id, at=now, username=by, action="resubmitted",
                                                         note=note))
                conn.execute(insert(events).values(transaction_id=tx_id, at=now, state="queued", attempt=0,
                                                   detail=f"resubmitted by {by}"))
                reopen(conn, found.batch_id)
                deltas = counters.moved([found], "business_exception", "queued")
                deltas.update(counters.moved([found], counters.OPEN_EXCEPTION, None))
                deltas.update(counters.reverified([found], ("business_exception", was), ("queued", None)))
                counters.bump_many(conn, deltas)
        return found is not None

    def resolve(self, tx_id: int, resolution: str, by: str, note: str | None) -> bool:
        """Mark an open exception done by hand or closed, with the person's note; whether it was still open."""
        if resolution not in RESOLUTIONS:
            raise ValueError(f"unknown resolution {resolution}")
        t = transactions.c
        now = time.time()
        with self.engine.begin() as conn:
            found = conn.execute(update(transactions).where(
                t.id == tx_id, t.state == "business_exception", t.resolution.is_(None)).values(
                resolution=resolution, updated_at=now).returning(t.batch_id, t.workflow)).first()
            if found is not None:
                conn.execute(insert(case_actions).values(transaction_id=tx_id, at=now, username=by, action=resolution,
                                                         note=note))
                counters.bump(conn, found.batch_id, found.workflow, counters.OPEN_EXCEPTION, -1)
        return found is not None

    # -- an operator's actions on one case ---------------------------------------------------------------
    def retry(self, tx_id: int, by: str, *, attempts: int, note: str | None = None) -> str:
        """Give one failed case ``attempts`` more attempts; its batch is active until it ends. Returns its batch.

        Raises:
            LedgerError: there is no such case, or it is not failed.
        """
        return self._act(tx_id, by, "retried", ("failed",), "only a failed case can be retried", note,
                         state="queued", max_attempts=transactions.c.attempts + attempts, next_attempt_at=None)

    def cancel(self, tx_id: int, by: str, note: str | None = None) -> str:
        """Cancel one case that waits (queued, retrying later or paused); a running one finishes. Returns its batch.

        Raises:
            LedgerError: there is no such case, or it does not wait.
        """
        return self._act(tx_id, by, "cancelled", WAITING, "only a waiting case can be cancelled", note,
                         state="cancelled", next_attempt_at=None)

    def rerun(self, tx_id: int, by: str, reason: str, *, attempts: int) -> str:
        """Run a finished case again, deliberately, on the same row (its history keeps the earlier attempts).

        The workflow's lookup runs first, as after an uncertain submit: a record it finds ends the case done
        without submitting again; without a lookup, a workflow that submits at most once hands the case to a
        person instead of risking a second submission. Its earlier verification is forgotten (the lookup's find
        is verified anew). Returns its batch.

        Raises:
            LedgerError: there is no such case, it has no outcome yet, or ``reason`` is empty.
        """
        if not reason.strip():
            raise LedgerError("running a finished case again needs a reason")
        t = transactions.c
        return self._act(tx_id, by, "rerun", TERMINAL, "only a case with an outcome can be run again", reason.strip(),
                         state="queued", max_attempts=t.attempts + attempts, next_attempt_at=None, resolution=None,
                         effect_attempt=func.coalesce(t.effect_attempt, t.attempts), verification=None,
                         verify_due_at=None)

    def _act(self, tx_id: int, by: str, action: str, from_states: Sequence[str], refusal: str, note: str | None,
             **values: Any) -> str:
        t = transactions.c
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(select(t.case_ref, t.state, t.batch_id, t.resolution, t.verification)
                               .where(t.id == tx_id)).first()
            if row is None:
                raise LedgerError(f"there is no case {tx_id}")
            if row.state not in from_states:
                raise LedgerError(f"case {row.case_ref} is {row.state.replace('_', ' ')}: {refusal}")
            if values["state"] == "queued" and conn.execute(select(case_actions.c.id).where(
                    case_actions.c.transaction_id == tx_id, case_actions.c.action == ERASED)).first() is not None:
                raise LedgerError(f"case {row.case_ref}'s data was erased, so it cannot run again")
            # the state read above, not any of ``from_states``: the counts must know which one the case left
            was_open = row.state == "business_exception" and row.resolution is None
            changed = conn.execute(update(transactions).where(
                t.id == tx_id, t.state == row.state, t.verification.is_not_distinct_from(row.verification),
                t.resolution.is_(None) if row.resolution is None else t.resolution.is_not(None)).values(
                published=0, updated_at=now, **values).returning(t.batch_id, t.workflow)).first()
            if changed is None:
                raise LedgerError(f"case {row.case_ref} changed a moment ago; look at it again")
            conn.execute(insert(case_actions).values(transaction_id=tx_id, at=now, username=by, action=action,
                                                     note=note))
            conn.execute(insert(events).values(transaction_id=tx_id, at=now, state=values["state"], attempt=0,
                                               detail=f"{action} by {by}"))
            if values["state"] == "queued":
                reopen(conn, row.batch_id)
            else:
                settle(conn, [row.batch_id], now)
            deltas = counters.moved([changed], row.state, values["state"])
            if was_open:
                deltas.update(counters.moved([changed], counters.OPEN_EXCEPTION, None))
            deltas.update(counters.reverified([changed], (row.state, row.verification),
                                              (values["state"], values.get("verification", row.verification))))
            counters.bump_many(conn, deltas)
        return str(row.batch_id)
