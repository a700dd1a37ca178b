"""Figures read back from the ledger: counts by state, progress toward the target, the oldest waiting
transaction, throughput over time, refused rows and the exceptions waiting for a person.

Every query stays on an index however many millions of rows the ledger holds: counts from the counters kept
as the ledger changes (:mod:`.counters`), recent windows by a binary search on event ids (:func:`~.queries.first_event_since`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterator
from typing import Any

from sqlalchemy import Select, func, literal_column, select, text
from sqlalchemy.engine import Connection, Engine

from . import counters
from .queries import batch_counts, first_event_since, ledger_counts
from .schema import (BATCH_STATES, HELD, HELD_CASE, OPEN_EXCEPTION, STATES, UNFINISHED_DEADLINE, VERIFIED_EVENT,
                     batch_rejections, batches, events, pruned_cases, pruned_rejections, transactions, workflow_versions)

CASE_COLUMNS = (transactions.c.id, transactions.c.case_ref, transactions.c.state, transactions.c.attempts,
                transactions.c.result_ref, transactions.c.output, transactions.c.error_class,
                transactions.c.error_message, transactions.c.error_detail, transactions.c.evidence,
                transactions.c.resolution, transactions.c.updated_at, transactions.c.batch_id, transactions.c.workflow,
                transactions.c.deadline)
"""What a list of cases shows of each (decode a row with :func:`case_row`)."""


def case_row(row: Any) -> dict[str, Any]:
    """A row of :data:`CASE_COLUMNS` as a dict, its JSON columns decoded."""
    case = dict(row._mapping)
    case["output"] = json.loads(case["output"]) if case["output"] else None
    case["evidence"] = json.loads(case["evidence"]) if case["evidence"] else []
    return case


RESULT_COLUMNS = (transactions.c.id, transactions.c.case_ref, transactions.c.state, transactions.c.attempts,
                  transactions.c.result_ref, transactions.c.output, transactions.c.error_class,
                  transactions.c.error_message, transactions.c.error_detail, transactions.c.evidence,
                  transactions.c.payload, transactions.c.digest)
"""What a batch's results read of each case (the payload and digest only to mask the fields marked secret)."""


def open_exceptions(conn: Connection, batch_id: str) -> int:
    """How many of a batch's cases wait for a person (handed back, not yet dealt with), from the counts kept
    as the ledger changes."""
    return counters.read(conn, [batch_id])[batch_id].get(counters.OPEN_EXCEPTION, 0)


class Reports:
    """Read-only figures of one ledger."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def verification(self, batch_id: str | None = None, *, workflows: Collection[str] | None = None) -> dict[str, int]:
        """Progress toward the target, of one batch or of the whole ledger (of ``workflows`` only, when given):
        ``verified`` (done, and the record read back was right), ``unverified`` (done, submitted but not
        checked: not sampled, not yet due, or a workflow without ``verify``) and ``verify_failed`` (the record
        read back was wrong: handed to a person).

        The one place these are counted: every view (``status``, the operations page, the reconciliation
        report, the ``run`` and ``demo`` summaries, the metrics gauges) calls it. It reads the counts kept as
        the ledger changes (:data:`~.counters.VERIFIED`, :data:`~.counters.FAILED_VERIFICATION` and ``done``;
        per workflow when ``workflows`` is given), never the cases.
        """
        key = counters.WHOLE_LEDGER if batch_id is None else batch_id
        with self.engine.connect() as conn:
            kept = counters.read(conn, [key], workflows=workflows)[key]
            # Pruned cases are counted by state in pruned_cases, and toward the target under counters.PRUNED.
            p = pruned_cases.c
            pruned = select(func.sum(p.count)).where(p.state == "done")
            if batch_id is not None:
                pruned = pruned.where(p.batch_id == batch_id)
            if workflows is not None:
                pruned = pruned.where(p.workflow.in_(sorted(workflows)))
            archived = conn.execute(pruned).scalar() or 0
        verified, failed = ((kept.get(name, 0) + kept.get(counters.PRUNED[name], 0))
                            for name in (counters.VERIFIED, counters.FAILED_VERIFICATION))
        return {"verified": verified, "unverified": kept.get("done", 0) + int(archived) - verified,
                "verify_failed": failed}

    def counts(self, batch_id: str) -> dict[str, int]:
        """Transactions of a batch by state (every state present, zeros included)."""
        with self.engine.connect() as conn:
            return batch_counts(conn, batch_id)

    def progress(self, window_s: float = 600.0, now: float | None = None) -> dict[str, Any]:
        """The whole ledger's counts by state, and how many transactions reached ``done`` and how many were
        verified in the last ``window_s`` seconds (``done_recent`` and ``verified_recent`` over
        ``window_elapsed_s``: the recent rates). The elapsed time is the window, or the ledger's age when it is
        younger, but never under a minute.

        The counts are read from the counters kept as the ledger changes. The recent window is found by a
        binary search on the event ids (they grow with time), so the cost follows the window's events, not the
        ledger's size. A verification that passed is an event whose detail is ``verified``
        (:data:`~.schema.VERIFIED_EVENT`).
        """
        now = time.time() if now is None else now
        since = now - window_s
        with self.engine.connect() as conn:
            counts = ledger_counts(conn)
            first = conn.execute(select(func.min(events.c.id))).scalar()
            done_recent, verified_recent, elapsed = 0, 0, 0.0
            if first is not None:
                low = first_event_since(conn, since)
                done_recent, verified_recent = conn.execute(select(  # one pass over the window's events
                    func.count().filter(events.c.state == "done"),
                    func.count().filter(events.c.detail == VERIFIED_EVENT)).where(events.c.id >= low)).one()
                ledger_start = conn.execute(select(events.c.at).where(events.c.id == first)).scalar_one()
                # at least a minute: a young ledger's first seconds would project a wild rate
                elapsed = max(now - max(since, ledger_start), min(window_s, 60.0))
        return {"counts": counts, "done_recent": done_recent, "verified_recent": verified_recent,
                "window_elapsed_s": elapsed}

    def batch_states(self) -> dict[str, int]:
        """How many batches are in each state (every state present, zeros included)."""
        with self.engine.connect() as conn:
            found: dict[str, int] = dict(conn.execute(select(batches.c.state, func.count()).group_by(batches.c.state)).all())
        return {state: int(found.get(state, 0)) for state in BATCH_STATES}

    def oldest_waiting(self) -> float | None:
        """When the oldest transaction still waiting for a bot (queued or retry scheduled) was handed off.

        Ids grow with hand-off time, so it is the smallest waiting id: one lookup per batch and state on
        the batch/state index (its entries are kept in id order), never a scan of the ledger.
        """
        with self.engine.connect() as conn:
            firsts = []
            for batch_id in conn.execute(select(batches.c.id)).scalars():
                for state in ("queued", "retry_scheduled"):
                    first = conn.execute(select(func.min(transactions.c.id)).where(
                        transactions.c.batch_id == batch_id, transactions.c.state == state)).scalar()
                    if first is not None:
                        firsts.append(first)
            if not firsts:
                return None
            return conn.execute(select(transactions.c.created_at).where(transactions.c.id == min(firsts))).scalar()

    def throughput(self, window_s: float = 3600.0, bucket_s: float = 60.0, now: float | None = None
                   ) -> list[tuple[float, int]]:
        """Transactions done per ``bucket_s`` over the last ``window_s``: ``(bucket start, count)``, oldest first."""
        now = time.time() if now is None else now
        start = (now - window_s) // bucket_s * bucket_s
        bucket = func.floor((events.c.at - start) / bucket_s)
        with self.engine.connect() as conn:
            low = first_event_since(conn, start)
            found: dict[float, int] = dict(conn.execute(select(bucket, func.count()).where(
                events.c.id >= low, events.c.state == "done").group_by(bucket)).all())
        count = int((now - start) // bucket_s) + 1
        return [(start + i * bucket_s, int(found.get(i, found.get(float(i)) or 0))) for i in range(count)]

    def waiting(self) -> dict[str, int]:
        """The whole ledger by state (the queue depth is its waiting states)."""
        with self.engine.connect() as conn:
            return ledger_counts(conn)

    def rejections(self, batch_id: str, *, after_row: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Refused rows in file order, ``limit`` at a time after row number ``after_row`` (on the batch/row index)."""
        r = batch_rejections.c
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(
                select(r.row, r.field, r.reason).where(r.batch_id == batch_id, r.row > after_row)
                .order_by(r.row, r.id).limit(limit))]

    def open_exceptions(self, batch_id: str) -> int:
        """How many of a batch's cases wait for a person (handed back, not yet dealt with)."""
        with self.engine.connect() as conn:
            return open_exceptions(conn, batch_id)

    def exceptions(self, created_by: str | None, *, workflows: Collection[str] | None = None,
                   limit: int = 200) -> list[dict[str, Any]]:
        """Open exceptions (handed back, not yet resolved), of one user's batches or of all (of ``workflows``
        only, when given), oldest first, on the partial index of open exceptions."""
        with self.engine.connect() as conn:
            query = exceptions_query(conn.dialect.name, created_by, workflows)
            return [case_row(r) for r in conn.execute(query.limit(limit))]

    def results(self, batch_id: str, *, state: str | None = None, page: int = 1000) -> Iterator[dict[str, Any]]:
        """Every case of a batch in hand-off order (of one state, when given), read ``page`` at a time on the
        primary key, so a batch of millions streams in constant memory. ``output``, ``evidence`` and
        ``payload`` come back decoded."""
        t = transactions.c
        after = 0
        while True:
            query = select(*RESULT_COLUMNS).where(t.batch_id == batch_id, t.id > after)
            if state is not None:
                query = query.where(t.state == state)
            with self.engine.connect() as conn:
                rows = [dict(r._mapping) for r in conn.execute(query.order_by(t.id).limit(page))]
            for row in rows:
                row["output"] = json.loads(row["output"]) if row["output"] else None
                row["evidence"] = json.loads(row["evidence"]) if row["evidence"] else []
                row["payload"] = json.loads(row["payload"])
                yield row
            if len(rows) < page:
                return
            after = rows[-1]["id"]

    def count(self, batch_id: str, state: str | None = None) -> int:
        """How many cases a batch still has in the ledger (of one state, when given), from the counts kept as
        the ledger changes: the rows an export reads (cases pruned to an archive are not among them)."""
        with self.engine.connect() as conn:
            kept = counters.read(conn, [batch_id])[batch_id]
        return kept.get(state, 0) if state is not None else sum(kept[s] for s in kept if s in STATES)

    def reconciliation(self, batch_id: str) -> dict[str, Any] | None:
        """What a batch's reconciliation adds up: the batch as handed off (rows read, accepted, the file's
        SHA-256, who and when), its refused rows by kind, its cases by state (both with what a prune archived), how many of its handed-back
        cases are still open, the workflow's version, and its done cases verified, unverified and failing
        verification (``verification``, see :meth:`verification`). ``None`` when there is no such batch."""
        r = batch_rejections.c
        with self.engine.connect() as conn:
            batch = conn.execute(select(batches, workflow_versions.c.version)
                                 .join(workflow_versions, workflow_versions.c.digest == batches.c.digest, isouter=True)
                                 .where(batches.c.id == batch_id)).first()
            if batch is None:
                return None
            refused: dict[str, int] = {}
            pr = pruned_rejections.c
            for kind, n in [*conn.execute(select(r.kind, func.count()).where(r.batch_id == batch_id).group_by(r.kind)),
                            *conn.execute(select(pr.kind, pr.count).where(pr.batch_id == batch_id))]:
                refused[kind] = refused.get(kind, 0) + int(n)
            found = {"batch": dict(batch._mapping), "rejected": refused, "counts": batch_counts(conn, batch_id),
                     "open_exceptions": open_exceptions(conn, batch_id)}
        found["verification"] = self.verification(batch_id)
        return found

    def held(self, batch_id: str | None = None) -> dict[str, int]:
        """Cases held (paused) for a missing secret, env value or system URL, by workflow: of one batch, or
        of every batch (on the partial index of held cases: the cost follows how many are held)."""
        query = select(transactions.c.workflow, func.count()).where(text(HELD_CASE))
        if batch_id is not None:
            query = query.where(transactions.c.batch_id == batch_id)
        with self.engine.connect() as conn:
            return {workflow: int(count) for workflow, count in conn.execute(query.group_by(transactions.c.workflow))}

    def deadlines(self, margin_s: float, *, batch_id: str | None = None, now: float | None = None
                  ) -> dict[str, dict[str, int]]:
        """Unfinished cases past their deadline (``breached``) and with less than ``margin_s`` left (``at_risk``),
        by workflow: of one batch, or of the whole ledger. Read on the partial index of unfinished deadlines
        (finished cases leave it), so the figure costs what is due soon, not the ledger's size."""
        now = time.time() if now is None else now
        where = UNFINISHED_DEADLINE + (" AND batch_id = :batch" if batch_id is not None else "")
        found: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for workflow, breached, at_risk in conn.execute(text(
                    "SELECT workflow, SUM(CASE WHEN deadline <= :now THEN 1 ELSE 0 END), "
                    "SUM(CASE WHEN deadline > :now THEN 1 ELSE 0 END) "
                    f"FROM transactions WHERE {where} AND deadline < :soon GROUP BY workflow"),
                    {"now": now, "soon": now + margin_s, "batch": batch_id}):
                found[workflow] = {"at_risk": int(at_risk or 0), "breached": int(breached or 0)}
        return found


def exceptions_query(dialect: str, created_by: str | None, workflows: Collection[str] | None) -> Select[Any]:
    """Open exceptions, oldest change first, read on the partial index of open exceptions.

    With one person's batches asked for, SQLite would otherwise start from their batches and read every
    exception they ever had on the batch/state index, dealt with or not, then sort them: 300 ms at 10 million
    cases (and with workflows asked for, every case of them on the workflow/reference index). The unary ``+``
    on those columns tells SQLite not to use an index for them, so it walks the open exceptions in order and
    stops at the limit. PostgreSQL plans this well by its statistics."""
    t = transactions.c
    sqlite = dialect == "sqlite"
    batch_id = literal_column("+transactions.batch_id") if sqlite else t.batch_id
    workflow = literal_column("+transactions.workflow") if sqlite else t.workflow
    query = (select(*CASE_COLUMNS, batches.c.created_by).select_from(transactions).join(batches, batches.c.id == batch_id)
             .where(text(OPEN_EXCEPTION.replace("state", "transactions.state")
                         .replace("resolution", "transactions.resolution"))))  # the partial index's words
    if created_by is not None:
        query = query.where(batches.c.created_by == created_by)
    if workflows is not None:
        query = query.where(workflow.in_(sorted(workflows)))
    return query.order_by(t.updated_at)
