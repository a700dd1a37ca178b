"""What the hand-off service reads and changes in the ledger beyond the queue core: published workflows,
refused rows, batches and cases by owner and filter, the exceptions inbox, caseworkers' resolutions (each
recorded with who and when), worker heartbeats and throughput over time.

Every change is one conditional statement: a resubmit or resolution applies only to a case that is still
an open exception, so two people acting at once cannot both succeed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine

from .core import Ledger, _by_state, first_event_since
from .schema import (RESOLUTIONS, batch_rejections, batches, case_actions, events, transactions,
                     workers)

CASE_COLUMNS = (transactions.c.id, transactions.c.case_ref, transactions.c.state, transactions.c.attempts,
                transactions.c.result_ref, transactions.c.error_class, transactions.c.error_message,
                transactions.c.resolution, transactions.c.updated_at, transactions.c.batch_id, transactions.c.workflow)


class Casework:
    """The service's queries on a ledger's database."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.engine: Engine = ledger.engine

    # -- refused rows ----------------------------------------------------------------------------------
    def record_rejections(self, batch_id: str, rows: Sequence[tuple[int, str, str]]) -> None:
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(batch_rejections), [{"batch_id": batch_id, "row": r, "field": f, "reason": why}
                                                        for r, f, why in rows])

    def rejections(self, batch_id: str, *, after_row: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Refused rows in file order, ``limit`` at a time after row number ``after_row`` (on the batch/row index)."""
        r = batch_rejections.c
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(
                select(r.row, r.field, r.reason).where(r.batch_id == batch_id, r.row > after_row)
                .order_by(r.row, r.id).limit(limit))]

    # -- batches and cases -----------------------------------------------------------------------------
    def batches(self, created_by: str | None, *, limit: int = 50) -> list[dict[str, Any]]:
        """The newest batches (of one user, or all), each with its counts by state."""
        query = select(batches).order_by(batches.c.created_at.desc()).limit(limit)
        if created_by is not None:
            query = query.where(batches.c.created_by == created_by)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for row in rows:
            row["counts"] = self.ledger.counts(row["id"])
            row["open_exceptions"] = self.open_exceptions(row["id"])
        return rows

    def open_exceptions(self, batch_id: str) -> int:
        t = transactions.c
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).where(t.batch_id == batch_id, t.state == "business_exception",
                                                           t.resolution.is_(None))).scalar_one()

    def cases(self, batch_id: str, *, state: str | None = None, ref: str | None = None, after: int = 0,
              limit: int = 50) -> list[dict[str, Any]]:
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
            return [dict(r._mapping) for r in conn.execute(query.order_by(t.id).limit(limit))]

    def case_by_ref(self, workflow: str, case_ref: str) -> dict[str, Any] | None:
        """The case a workflow already has under this reference, or ``None``."""
        t = transactions.c
        with self.engine.connect() as conn:
            row = conn.execute(select(t.id, t.state, t.batch_id).where(t.workflow == workflow, t.case_ref == case_ref)).first()
        return dict(row._mapping) if row else None

    def exceptions(self, created_by: str | None, *, limit: int = 200) -> list[dict[str, Any]]:
        """Open exceptions (handed back, not yet resolved), of one user's batches or of all, oldest first."""
        t = transactions.c
        query = (select(*CASE_COLUMNS, batches.c.created_by).join(batches, batches.c.id == t.batch_id)
                 .where(t.state == "business_exception", t.resolution.is_(None)))
        if created_by is not None:
            query = query.where(batches.c.created_by == created_by)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query.order_by(t.updated_at).limit(limit))]

    def case(self, tx_id: int) -> dict[str, Any] | None:
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
            case["actions"] = [dict(a._mapping) for a in conn.execute(
                select(case_actions).where(case_actions.c.transaction_id == tx_id).order_by(case_actions.c.id))]
        case["changes"] = self.ledger.state_changes(tx_id)
        return case

    # -- people's actions on exceptions ----------------------------------------------------------------
    def resubmit(self, tx_id: int, payload: dict[str, Any], by: str, *, attempts: int, note: str | None = None) -> bool:
        """Send an open exception back to the bots with corrected data and ``attempts`` more attempts.

        The earlier submit is forgotten (the person decided the case must be submitted again), so the
        bot does not stop at its uncertainty a second time. Returns whether the case was still open.
        """
        t = transactions.c
        now = time.time()
        with self.engine.begin() as conn:
            changed = conn.execute(update(transactions).where(
                t.id == tx_id, t.state == "business_exception", t.resolution.is_(None)).values(
                state="queued", payload=json.dumps(payload, separators=(",", ":")), published=0, effect_attempt=None,
                max_attempts=t.attempts + attempts, next_attempt_at=None, updated_at=now)).rowcount == 1
            if changed:
                conn.execute(insert(case_actions).values(transaction_id=tx_id, at=now, username=by, action="resubmitted",
                                                         note=note))
                conn.execute(insert(events).values(transaction_id=tx_id, at=now, state="queued", attempt=0,
                                                   detail=f"resubmitted by {by}"))
        return changed

    def resolve(self, tx_id: int, resolution: str, by: str, note: str | None) -> bool:
        """Mark an open exception done by hand or closed, with the person's note; whether it was still open."""
        if resolution not in RESOLUTIONS:
            raise ValueError(f"unknown resolution {resolution}")
        t = transactions.c
        now = time.time()
        with self.engine.begin() as conn:
            changed = conn.execute(update(transactions).where(
                t.id == tx_id, t.state == "business_exception", t.resolution.is_(None)).values(
                resolution=resolution, updated_at=now)).rowcount == 1
            if changed:
                conn.execute(insert(case_actions).values(transaction_id=tx_id, at=now, username=by, action=resolution,
                                                         note=note))
        return changed

    # -- operations ------------------------------------------------------------------------------------
    def heartbeat(self, owner: str, kind: str, concurrency: int, started_at: float) -> None:
        """A worker (or the service's embedded one) says it is alive."""
        now = time.time()
        with self.engine.begin() as conn:
            if conn.execute(update(workers).where(workers.c.owner == owner).values(
                    last_seen=now, concurrency=concurrency)).rowcount == 0:
                conn.execute(insert(workers).values(owner=owner, kind=kind, concurrency=concurrency,
                                                    started_at=started_at, last_seen=now))

    def workers(self, seen_within_s: float = 60.0) -> list[dict[str, Any]]:
        """Workers heard from recently, each with how many transactions it holds now."""
        t = transactions.c
        with self.engine.connect() as conn:
            held = dict(conn.execute(select(t.lease_owner, func.count()).where(
                t.state == "in_progress", t.lease_until > time.time()).group_by(t.lease_owner)).all())
            rows = [dict(r._mapping) for r in conn.execute(select(workers).where(
                workers.c.last_seen > time.time() - seen_within_s).order_by(workers.c.owner))]
        for row in rows:
            row["busy"] = held.get(row["owner"], 0)
        return rows

    def throughput(self, window_s: float = 3600.0, bucket_s: float = 60.0, now: float | None = None
                   ) -> list[tuple[float, int]]:
        """Transactions done per ``bucket_s`` over the last ``window_s``: ``(bucket start, count)``, oldest first."""
        now = time.time() if now is None else now
        start = (now - window_s) // bucket_s * bucket_s
        bucket = func.floor((events.c.at - start) / bucket_s)
        with self.engine.connect() as conn:
            low = first_event_since(conn, start)
            found = dict(conn.execute(select(bucket, func.count()).where(
                events.c.id >= low, events.c.state == "done").group_by(bucket)).all())
        count = int((now - start) // bucket_s) + 1
        return [(start + i * bucket_s, int(found.get(i, found.get(float(i), 0)))) for i in range(count)]

    def waiting(self) -> dict[str, int]:
        """The whole ledger by state (the queue depth is its waiting states)."""
        with self.engine.connect() as conn:
            return _by_state(conn.execute(select(transactions.c.state, func.count()).group_by(transactions.c.state)))
