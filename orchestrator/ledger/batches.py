"""Batches: created by a hand-off, filled with its cases (a reference the workflow already has is not added
twice), and operated by people: paused, resumed, cancelled, failed cases re-queued. Every refused row of a
hand-off is recorded with its batch.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from ..errors import LedgerError
from . import counters
from .queries import many_batch_counts, placeholder, settle
from .schema import HELD, ACTIVE, WAITING, batch_rejections, batches, events, transactions

_COLUMNS = ("workflow", "version", "digest", "batch_id", "case_ref", "payload", "state", "attempts", "max_attempts",
            "fence", "published", "history", "priority", "deadline", "created_at", "updated_at")


def _insert_new(conn: Connection) -> str:
    """Insert a case unless its workflow has the reference (SQLite ≥ 3.24 and PostgreSQL say it the same way)."""
    return (f"INSERT INTO transactions ({', '.join(_COLUMNS)}) VALUES ({', '.join([placeholder(conn)] * len(_COLUMNS))}) "
            "ON CONFLICT (workflow, case_ref) DO NOTHING")


class Batches:
    """Creating, filling, listing and operating batches."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, workflow: str, digest: str, source_name: str, *, priority: int = 0,
               deadline: float | None = None, created_by: str | None = None) -> str:
        """A new batch; ``created_by`` is the user who handed it off (the service), ``None`` from the CLI."""
        batch_id = uuid.uuid4().hex[:12]
        with self.engine.begin() as conn:
            conn.execute(insert(batches).values(id=batch_id, workflow=workflow, digest=digest, source_name=source_name,
                                                created_at=time.time(), state="active", priority=priority,
                                                deadline=deadline, created_by=created_by, intake="receiving"))
        return batch_id

    def finish_intake(self, batch_id: str, *, rejected: int, stopped: bool, rows_read: int | None = None,
                      accepted: int | None = None, input_sha256: str | None = None) -> None:
        """Record that a batch's hand-off ended: ``complete``, or ``stopped`` by an unreadable stretch of the
        file; with what it read and queued and the file's SHA-256, for its reconciliation."""
        with self.engine.begin() as conn:
            conn.execute(update(batches).where(batches.c.id == batch_id).values(
                intake="stopped" if stopped else "complete", rows_rejected=rejected, rows_read=rows_read,
                accepted=accepted, input_sha256=input_sha256))
            settle(conn, [batch_id], time.time())

    def settle(self, batch_id: str | None = None) -> int:
        """Mark finished the active batch (or every active batch) whose cases are all terminal; how many.

        Finishing a case does this for its own batch; the sweep calls it for all, which also settles a batch
        whose last two cases two workers finished at the same moment.
        """
        with self.engine.begin() as conn:
            return settle(conn, None if batch_id is None else [batch_id], time.time())

    def get(self, batch_id: str) -> dict[str, Any] | None:
        """The batch's row, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(batches).where(batches.c.id == batch_id)).first()
        return dict(row._mapping) if row else None

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest batches first, each with its counts by state."""
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                select(batches).order_by(batches.c.created_at.desc()).limit(limit))]
            counts = many_batch_counts(conn, [row["id"] for row in rows])
            for row in rows:
                row["counts"] = counts[row["id"]]
        return rows

    def newest(self, created_by: str | None, *, workflows: Collection[str] | None = None,
               limit: int = 50) -> list[dict[str, Any]]:
        """The newest batches (of one user, or all; of ``workflows`` only, when given), each with its counts by state."""
        query = select(batches).order_by(batches.c.created_at.desc()).limit(limit)
        if created_by is not None:
            query = query.where(batches.c.created_by == created_by)
        if workflows is not None:
            query = query.where(batches.c.workflow.in_(sorted(workflows)))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
            counts = many_batch_counts(conn, [row["id"] for row in rows])
            kept = counters.read(conn, [row["id"] for row in rows])
            for row in rows:
                row["counts"] = counts[row["id"]]
                row["open_exceptions"] = kept[row["id"]].get(counters.OPEN_EXCEPTION, 0)
        return rows

    def add_cases(self, batch_id: str, workflow: str, version: int, digest: str, max_attempts: int,
                  cases: Sequence[tuple[str, dict[str, Any]]], *, priority: int = 0,
                  deadline: float | None = None, deadlines: Mapping[str, float] | None = None
                  ) -> tuple[list[int], dict[str, tuple[int, str, str, bool]]]:
        """Record new cases in one database transaction; references the workflow already has are not added.

        Every case gets ``deadline`` (the batch's), unless ``deadlines`` gives its reference one of its own.

        Returns:
            ``(new_ids, existing)`` where ``existing`` maps each already-known reference to its
            ``(transaction id, state, batch id, same payload)``.
        """
        if not cases:
            return [], {}
        now = time.time()
        rows = [(workflow, version, digest, batch_id, ref, json.dumps(payload, separators=(",", ":")), "queued", 0,
                 max_attempts, 0, 0, "[]", priority, deadlines.get(ref, deadline) if deadlines else deadline, now, now)
                for ref, payload in cases]
        t = transactions.c
        with self.engine.begin() as conn:
            # New references are inserted; one the workflow already has is left alone (the unique constraint
            # decides, so two hand-offs racing cannot both add it). The rows this call inserted are the
            # batch's rows stamped with this call's time.
            before = conn.execute(select(func.max(t.id))).scalar() or 0
            conn.exec_driver_sql(_insert_new(conn), rows)  # the driver's executemany: no per-row SQLAlchemy work
            # Only the ids above the highest one before this insert are read (a key range, however large
            # the ledger has grown).
            m = placeholder(conn)
            inserted = {r[1]: r[0] for r in conn.exec_driver_sql(
                f"SELECT id, case_ref, batch_id, created_at FROM transactions WHERE id > {m} ORDER BY id", (before,))
                if r[2] == batch_id and r[3] == now}
            counters.bump(conn, batch_id, workflow, "queued", len(inserted))
            known = [ref for ref, _ in cases if ref not in inserted]
            sent = {ref: row[5] for ref, row in zip((ref for ref, _ in cases), rows)}
            existing = {
                row.case_ref: (row.id, row.state, row.batch_id, row.payload == sent[row.case_ref])
                for start in range(0, len(known), 1000)
                for row in conn.execute(select(t.case_ref, t.id, t.state, t.batch_id, t.payload).where(
                    t.workflow == workflow, t.case_ref.in_(known[start:start + 1000])))
            }
        return list(inserted.values()), existing

    def adopt(self, batch_id: str, ids: Iterable[int]) -> list[int]:
        """Move unfinished transactions of earlier batches into this batch (a resumed hand-off); an earlier
        batch left with only finished cases is finished."""
        ids = list(ids)
        if not ids:
            return []
        t = transactions.c
        deltas: Counter[counters.Key] = Counter()
        with self.engine.begin() as conn:
            earlier = {r.batch_id for r in conn.execute(select(t.batch_id).where(t.id.in_(ids), t.state.in_(ACTIVE)))}
            # One statement per earlier batch, so the counts know where each case came from.
            for before in sorted(earlier - {batch_id}):
                for row in conn.execute(update(transactions).where(t.id.in_(ids), t.batch_id == before, t.state.in_(ACTIVE))
                                        .values(batch_id=batch_id, published=0, updated_at=time.time())
                                        .returning(t.workflow, t.state)):
                    deltas[(before, row.workflow, row.state)] -= 1
                    deltas[(batch_id, row.workflow, row.state)] += 1
            conn.execute(update(transactions).where(t.id.in_(ids), t.batch_id == batch_id, t.state.in_(ACTIVE))
                         .values(published=0, updated_at=time.time()))
            # cases a worker held for a missing setting go back to work: handing the file off again releases them
            deltas.update(counters.moved(conn.execute(update(transactions).where(
                t.id.in_(ids), t.state == "paused", t.error_class == HELD).values(state="queued")
                .returning(t.batch_id, t.workflow)), "paused", "queued"))
            settle(conn, earlier - {batch_id}, time.time())
            counters.bump_many(conn, deltas)
            return [r.id for r in conn.execute(select(transactions.c.id).where(
                transactions.c.id.in_(ids), transactions.c.batch_id == batch_id))]

    def record_rejections(self, batch_id: str, rows: Sequence[tuple[int, str, str, str]]) -> None:
        """Record refused rows of a hand-off: ``(row number, field, reason, kind)``."""
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(batch_rejections), [
                    {"batch_id": batch_id, "row": r, "field": f, "reason": why, "kind": kind} for r, f, why, kind in rows])

    def pause(self, batch_id: str) -> int:
        """Hold a batch's waiting transactions (running ones finish); return how many were held.

        Raises:
            LedgerError: there is no such batch, or it is finished (nothing waits to be held).
        """
        return self._move(batch_id, ("queued", "retry_scheduled"), "paused", batch_state="paused",
                          refused_when_finished="nothing waits to be paused")

    def resume(self, batch_id: str) -> int:
        """Release a paused batch: its held transactions wait to be published again.

        Raises:
            LedgerError: there is no such batch, or it is finished (nothing is held).
        """
        return self._move(batch_id, ("paused",), "queued", batch_state="active",
                          refused_when_finished="nothing is paused")

    def cancel(self, batch_id: str) -> int:
        """Cancel a batch's waiting transactions (terminal; running ones finish).

        Raises:
            LedgerError: there is no such batch, or it is finished (nothing waits to be cancelled).
        """
        return self._move(batch_id, WAITING, "cancelled", batch_state="cancelled",
                          refused_when_finished="nothing waits to be cancelled")

    def requeue(self, batch_id: str, states: Sequence[str] = ("failed",), *, extra_attempts: int = 3) -> int:
        """Give failed (or cancelled) transactions of a batch ``extra_attempts`` more attempts; a finished
        batch is active again while they run.

        Raises:
            LedgerError: there is no such batch.
        """
        if not set(states) <= {"failed", "cancelled"}:
            raise ValueError("only failed and cancelled transactions can be re-queued")
        return self._move(batch_id, tuple(states), "queued", batch_state="active", extra_attempts=extra_attempts)

    def _move(self, batch_id: str, from_states: Sequence[str], to_state: str, *, batch_state: str,
              extra_attempts: int = 0, refused_when_finished: str | None = None) -> int:
        now = time.time()
        with self.engine.begin() as conn:
            state = conn.execute(select(batches.c.state).where(batches.c.id == batch_id)).scalar()
            if state is None:
                raise LedgerError(f"there is no batch {batch_id}")
            if state == "finished" and refused_when_finished:
                raise LedgerError(f"batch {batch_id} is finished: every case has an outcome, so {refused_when_finished}")
            reopened: dict[str, Any] = {"finished_at": None} if batch_state == "active" else {}
            conn.execute(update(batches).where(batches.c.id == batch_id).values(state=batch_state, **reopened))
            t = transactions.c
            values: dict[str, Any] = {"state": to_state, "published": 0, "updated_at": now}
            if extra_attempts:
                values.update(max_attempts=t.attempts + extra_attempts, next_attempt_at=None)
            ids: list[int] = []
            deltas: Counter[counters.Key] = Counter()
            # One statement per state left, so the counts know what each case was.
            for from_state in from_states:
                moved = conn.execute(update(transactions).where(t.batch_id == batch_id, t.state == from_state)
                                     .values(**values).returning(t.id, t.batch_id, t.workflow)).all()
                ids += [r.id for r in moved]
                deltas.update(counters.moved(moved, from_state, to_state))
            for start in range(0, len(ids), 1000):
                conn.execute(insert(events), [{"transaction_id": i, "at": now, "state": to_state, "attempt": 0,
                                               "detail": f"operator: {batch_state}"} for i in ids[start:start + 1000]])
            if batch_state == "active":
                settle(conn, [batch_id], now)  # nothing went back to work: still finished
            counters.bump_many(conn, deltas)
        return len(ids)
