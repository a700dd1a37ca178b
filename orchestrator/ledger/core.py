"""The durable ledger: one row per case, the source of truth for every transaction's state.

The broker only carries transaction ids. A worker *claims* a row before working on it: the claim
increments a fencing token and sets a lease; every later write names the token, so a stale worker's late
write is refused. ``published`` is the outbox flag: a row is handed to the broker after it is committed
and marked published after the broker confirmed it, so a crash in between is repaired by the sweep
(:meth:`Ledger.to_publish`) and duplicates are absorbed by the claim. A retry is scheduled here, not on
the broker: the row waits in ``retry_scheduled`` until its time, then the sweep publishes it again.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, event, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, OperationalError

from ..errors import LedgerError, StaleAttempt
from . import migrate
from .schema import ACTIVE, STATES, WAITING, batches, events, ledger_info, transactions
from .workflows import WorkflowStore


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


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended, for :meth:`Ledger.finish_many`."""

    claim: Claim
    state: str
    result_ref: str | None = None
    output: dict[str, Any] | None = None
    error_class: str | None = None
    error_message: str | None = None
    evidence: list[str] | None = None
    next_attempt_at: float | None = None
    give_back_attempt: bool = False
    """The attempt did not reach the target system (its budget was spent): it does not count."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


_COLUMNS = ("workflow", "version", "digest", "batch_id", "case_ref", "payload", "state", "attempts", "max_attempts",
            "fence", "published", "history", "priority", "deadline", "created_at", "updated_at")


def _insert_new(conn: Connection) -> str:
    """Insert a case unless its workflow has the reference (SQLite ≥ 3.24 and PostgreSQL say it the same way)."""
    return (f"INSERT INTO transactions ({', '.join(_COLUMNS)}) VALUES ({', '.join([_mark(conn)] * len(_COLUMNS))}) "
            "ON CONFLICT (workflow, case_ref) DO NOTHING")


def _mark(conn: Connection) -> str:
    """The driver's placeholder (sqlite3: ``?``; psycopg: ``%s``)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


class Ledger:
    """The ledger at one SQLAlchemy URL: ``sqlite:///file.db`` (embedded default) or
    ``postgresql+psycopg://…`` (the scale path, shared by workers on several hosts).

    Opening it migrates the database to the current schema.

    Raises:
        LedgerError: the URL is malformed or the database cannot be opened.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
        except (ArgumentError, ImportError, ValueError) as exc:
            raise LedgerError(f"the ledger URL '{_safe_url(url)}' is not usable ({type(exc).__name__}: {exc})") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            migrate.upgrade(self.engine)
        except OperationalError as exc:
            raise LedgerError(f"the ledger at '{_safe_url(url)}' cannot be opened ({str(exc.orig).strip()})") from None

        with self.engine.connect() as conn:
            self.ledger_id: str = conn.execute(select(ledger_info.c.value).where(ledger_info.c.key == "ledger_id")).scalar_one()
        """This ledger's identity; every message names it, and a worker of another ledger refuses it."""
        self.workflows = WorkflowStore(self.engine)
        """Workflow versions by digest, the published ones, and this process's cache of parsed versions."""

    def close(self) -> None:
        self.engine.dispose()

    # -- batches -------------------------------------------------------------------------------------
    def create_batch(self, workflow: str, digest: str, source_name: str, *, priority: int = 0,
                     deadline: float | None = None, created_by: str | None = None) -> str:
        """A new batch; ``created_by`` is the user who handed it off (the service), ``None`` from the CLI."""
        batch_id = uuid.uuid4().hex[:12]
        with self.engine.begin() as conn:
            conn.execute(insert(batches).values(id=batch_id, workflow=workflow, digest=digest, source_name=source_name,
                                                created_at=time.time(), state="active", priority=priority,
                                                deadline=deadline, created_by=created_by, intake="receiving"))
        return batch_id

    def finish_intake(self, batch_id: str, *, rejected: int, stopped: bool) -> None:
        """Record that a batch's hand-off ended: ``complete``, or ``stopped`` by an unreadable stretch of the file."""
        with self.engine.begin() as conn:
            conn.execute(update(batches).where(batches.c.id == batch_id).values(
                intake="stopped" if stopped else "complete", rows_rejected=rejected))

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(batches).where(batches.c.id == batch_id)).first()
        return dict(row._mapping) if row else None

    def recent_batches(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest batches first, each with its counts by state."""
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                select(batches).order_by(batches.c.created_at.desc()).limit(limit))]
            for row in rows:
                row["counts"] = self._counts(conn, row["id"])
        return rows

    # -- intake ----------------------------------------------------------------------------------------
    def add_cases(self, batch_id: str, workflow: str, version: int, digest: str, max_attempts: int,
                  cases: Sequence[tuple[str, dict[str, Any]]], *, priority: int = 0,
                  deadline: float | None = None) -> tuple[list[int], dict[str, tuple[int, str, str]]]:
        """Record new cases in one database transaction; references the workflow already has are not added.

        Returns:
            ``(new_ids, existing)`` where ``existing`` maps each already-known reference to its
            ``(transaction id, state, batch id, same payload)``.
        """
        if not cases:
            return [], {}
        now = time.time()
        rows = [(workflow, version, digest, batch_id, ref, json.dumps(payload, separators=(",", ":")), "queued", 0,
                 max_attempts, 0, 0, "[]", priority, deadline, now, now) for ref, payload in cases]
        t = transactions.c
        with self.engine.begin() as conn:
            # New references are inserted; one the workflow already has is left alone (the unique constraint
            # decides, so two hand-offs racing cannot both add it). The rows this call inserted are the
            # batch's rows stamped with this call's time.
            before = conn.execute(select(func.max(t.id))).scalar() or 0
            conn.exec_driver_sql(_insert_new(conn), rows)  # the driver's executemany: no per-row SQLAlchemy work
            # Only the ids above the highest one before this insert are read (a key range, however large
            # the ledger has grown).
            m = _mark(conn)
            inserted = {r[1]: r[0] for r in conn.exec_driver_sql(
                f"SELECT id, case_ref, batch_id, created_at FROM transactions WHERE id > {m} ORDER BY id", (before,))
                if r[2] == batch_id and r[3] == now}
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
        """Move unfinished transactions of earlier batches into this batch (a resumed hand-off)."""
        ids = list(ids)
        if not ids:
            return []
        with self.engine.begin() as conn:
            conn.execute(update(transactions).where(transactions.c.id.in_(ids), transactions.c.state.in_(ACTIVE))
                         .values(batch_id=batch_id, published=0, updated_at=time.time()))
            return [r.id for r in conn.execute(select(transactions.c.id).where(
                transactions.c.id.in_(ids), transactions.c.batch_id == batch_id))]

    # -- the outbox ------------------------------------------------------------------------------------
    def mark_published(self, ids: Sequence[int]) -> None:
        """The broker confirmed these messages: take them out of the outbox."""
        if ids:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"UPDATE transactions SET published = 1 WHERE id = {_mark(conn)}",
                                     [(tx_id,) for tx_id in ids])

    def return_to_outbox(self, ids: Sequence[int]) -> None:
        """Put waiting transactions back in the outbox (their message was acknowledged unprocessed)."""
        if ids:
            with self.engine.begin() as conn:
                conn.execute(update(transactions).where(transactions.c.id.in_(list(ids)),
                                                        transactions.c.state.in_(("queued", "retry_scheduled")))
                             .values(published=0))

    def to_publish(self, batch_id: str | None = None, *, limit: int = 10_000) -> list[int]:
        """What must be (re)published now, highest priority and earliest deadline first: rows never
        confirmed to the broker, retries whose time has come, and rows held by a lease that ran out
        (their worker is gone)."""
        now = time.time()
        t = transactions.c
        order = (t.priority.desc(), t.deadline.is_(None), t.deadline, t.id)
        # Two queries, each on its own index (an OR across them would scan the whole table).
        outbox = (select(t.id, t.priority, t.deadline)
                  .where(t.published == 0, t.state.in_(("queued", "retry_scheduled")),
                         (t.next_attempt_at == None) | (t.next_attempt_at <= now)))  # noqa: E711
        abandoned = select(t.id, t.priority, t.deadline).where(t.state == "in_progress", t.lease_until < now)
        if batch_id is not None:
            outbox, abandoned = outbox.where(t.batch_id == batch_id), abandoned.where(t.batch_id == batch_id)
        with self.engine.connect() as conn:
            rows = [*conn.execute(outbox.order_by(*order).limit(limit)),
                    *conn.execute(abandoned.order_by(*order).limit(limit))]
        rows.sort(key=lambda r: (-r.priority, r.deadline is None, r.deadline or 0, r.id))
        return [r.id for r in rows[:limit]]

    # -- operator actions ------------------------------------------------------------------------------
    def pause_batch(self, batch_id: str) -> int:
        """Hold a batch's waiting transactions (running ones finish); return how many were held."""
        return self._move(batch_id, ("queued", "retry_scheduled"), "paused", batch_state="paused")

    def resume_batch(self, batch_id: str) -> int:
        """Release a paused batch: its held transactions wait to be published again."""
        return self._move(batch_id, ("paused",), "queued", batch_state="active")

    def cancel_batch(self, batch_id: str) -> int:
        """Cancel a batch's waiting transactions (terminal; running ones finish)."""
        return self._move(batch_id, WAITING, "cancelled", batch_state="cancelled")

    def requeue(self, batch_id: str, states: Sequence[str] = ("failed",), *, extra_attempts: int = 3) -> int:
        """Give failed (or cancelled) transactions of a batch ``extra_attempts`` more attempts."""
        if not set(states) <= {"failed", "cancelled"}:
            raise ValueError("only failed and cancelled transactions can be re-queued")
        return self._move(batch_id, tuple(states), "queued", batch_state="active", extra_attempts=extra_attempts)

    def _move(self, batch_id: str, from_states: Sequence[str], to_state: str, *, batch_state: str,
              extra_attempts: int = 0) -> int:
        now = time.time()
        with self.engine.begin() as conn:
            if conn.execute(update(batches).where(batches.c.id == batch_id).values(state=batch_state)).rowcount != 1:
                raise LedgerError(f"there is no batch {batch_id}")
            t = transactions.c
            ids = [r.id for r in conn.execute(select(t.id).where(t.batch_id == batch_id, t.state.in_(from_states)))]
            for start in range(0, len(ids), 1000):
                chunk = ids[start:start + 1000]
                values: dict[str, Any] = {"state": to_state, "published": 0, "updated_at": now}
                if extra_attempts:
                    values.update(max_attempts=t.attempts + extra_attempts, next_attempt_at=None)
                conn.execute(update(transactions).where(t.id.in_(chunk), t.state.in_(from_states)).values(**values))
                conn.execute(insert(events), [{"transaction_id": i, "at": now, "state": to_state, "attempt": 0,
                                               "detail": f"operator: {batch_state}"} for i in chunk])
        return len(ids)

    # -- execution -------------------------------------------------------------------------------------
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
            m = _mark(conn)
            # One statement takes the rows and returns them (SQLite ≥ 3.35 and PostgreSQL): the hot path
            # of the queue core, written for the driver directly.
            rows = conn.exec_driver_sql(
                f"UPDATE transactions SET state = 'in_progress', attempts = attempts + 1, fence = fence + 1, "
                f"lease_owner = {m}, lease_until = {m}, updated_at = {m} "
                f"WHERE id IN ({', '.join([m] * len(ids))}) AND (state = 'queued' "
                f"OR (state = 'retry_scheduled' AND (next_attempt_at IS NULL OR next_attempt_at <= {m})) "
                f"OR (state = 'in_progress' AND lease_until < {m})) "
                "RETURNING id, workflow, digest, batch_id, case_ref, payload, attempts, max_attempts, fence, "
                "effect_attempt, history",
                (owner, now + lease_s, now, *ids, now, now)).fetchall()
            if rows:
                conn.exec_driver_sql(
                    f"INSERT INTO transaction_events (transaction_id, at, state, attempt, detail) "
                    f"VALUES ({m}, {m}, 'in_progress', {m}, {m})", [(r[0], now, r[6], owner) for r in rows])
        order = {tx_id: index for index, tx_id in enumerate(ids)}
        rows.sort(key=lambda r: order[r[0]])
        return [Claim(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8], r[9], json.loads(r[10]), now)
                for r in rows]

    def claim(self, tx_id: int, owner: str, lease_s: float) -> Claim | None:
        """Take one transaction (see :meth:`claim_many`), or ``None``."""
        claims = self.claim_many([tx_id], owner, lease_s)
        return claims[0] if claims else None

    def mark_effect_started(self, claim: Claim) -> None:
        """Record, before a submitting step, that this attempt may change the target system.

        Raises:
            StaleAttempt: the lease ran out or another attempt holds the case: do not submit.
        """
        now = time.time()
        with self.engine.begin() as conn:
            result = conn.execute(
                update(transactions)
                .where(transactions.c.id == claim.id, transactions.c.fence == claim.fence,
                       transactions.c.lease_until > now)
                .values(effect_attempt=claim.attempt, updated_at=now))
            if result.rowcount != 1:
                raise StaleAttempt(f"transaction {claim.id} ({claim.case_ref}) is no longer held by attempt {claim.attempt}")
            conn.execute(insert(events).values(transaction_id=claim.id, at=now, state="effect_started",
                                               attempt=claim.attempt))

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
                "error_class": o.error_class, "error": o.error_message, "evidence": o.evidence or [],
            }]
            rows.append((o.state, now, json.dumps(history), o.error_class, o.error_message, o.next_attempt_at,
                         o.result_ref, json.dumps(o.output) if o.output is not None else None,
                         json.dumps(o.evidence) if o.evidence else None, 0 if o.state == "retry_scheduled" else 1,
                         1 if o.give_back_attempt else 0, o.claim.id, o.claim.fence))
        with self.engine.begin() as conn:
            m = _mark(conn)
            stale = self._stale(conn, outcomes) if len(outcomes) > 1 else []
            fresh = [row for row, o in zip(rows, outcomes) if o.claim not in stale]
            if fresh:
                updated = conn.exec_driver_sql(
                    f"UPDATE transactions SET state = {m}, updated_at = {m}, history = {m}, lease_until = NULL, "
                    f"error_class = {m}, error_message = {m}, next_attempt_at = {m}, "
                    f"result_ref = COALESCE({m}, result_ref), output = COALESCE({m}, output), "
                    f"evidence = COALESCE({m}, evidence), published = {m}, max_attempts = max_attempts + {m} "
                    f"WHERE id = {m} AND fence = {m} AND state = 'in_progress'", fresh).rowcount
                if len(outcomes) == 1 and updated != 1:
                    return [outcomes[0].claim]
                conn.exec_driver_sql(
                    f"INSERT INTO transaction_events (transaction_id, at, state, attempt, detail) "
                    f"VALUES ({m}, {m}, {m}, {m}, {m})",
                    [(o.claim.id, now, o.state, o.claim.attempt, o.error_class) for o in outcomes if o.claim not in stale])
        return stale

    @staticmethod
    def _stale(conn: Connection, outcomes: Sequence[Outcome]) -> list[Claim]:
        """The attempts that no longer hold their transaction (read under the same database transaction)."""
        m = _mark(conn)
        ids = [o.claim.id for o in outcomes]
        current = {r[0]: (r[1], r[2]) for r in conn.exec_driver_sql(
            f"SELECT id, fence, state FROM transactions WHERE id IN ({', '.join([m] * len(ids))})", tuple(ids))}
        return [o.claim for o in outcomes if current.get(o.claim.id) != (o.claim.fence, "in_progress")]

    # -- reading ---------------------------------------------------------------------------------------
    def counts(self, batch_id: str) -> dict[str, int]:
        """Transactions of a batch by state (every state present, zeros included)."""
        with self.engine.connect() as conn:
            return self._counts(conn, batch_id)

    @staticmethod
    def _counts(conn: Connection, batch_id: str) -> dict[str, int]:
        return _by_state(conn.execute(select(transactions.c.state, func.count()).where(
            transactions.c.batch_id == batch_id).group_by(transactions.c.state)))

    def progress(self, window_s: float = 600.0, now: float | None = None) -> dict[str, Any]:
        """The whole ledger's counts by state, and how many transactions reached ``done`` in the last
        ``window_s`` seconds (``done_recent`` over ``window_elapsed_s``: the recent rate). The elapsed time is
        the window, or the ledger's age when it is younger, but never under a minute.

        The counts scan the batch/state index once. The recent window is found by a binary search on the
        event ids (they grow with time), so the cost follows the window's events, not the ledger's size.
        """
        now = time.time() if now is None else now
        since = now - window_s
        with self.engine.connect() as conn:
            counts = _by_state(conn.execute(select(transactions.c.state, func.count()).group_by(transactions.c.state)))
            first = conn.execute(select(func.min(events.c.id))).scalar()
            done_recent, elapsed = 0, 0.0
            if first is not None:
                low = first_event_since(conn, since)
                done_recent = conn.execute(select(func.count()).where(events.c.id >= low, events.c.state == "done")).scalar_one()
                ledger_start = conn.execute(select(events.c.at).where(events.c.id == first)).scalar_one()
                # at least a minute: a young ledger's first seconds would project a wild rate
                elapsed = max(now - max(since, ledger_start), min(window_s, 60.0))
        return {"counts": counts, "done_recent": done_recent, "window_elapsed_s": elapsed}

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

    def transaction(self, tx_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(transactions).where(transactions.c.id == tx_id)).first()
        return dict(row._mapping) if row else None

    def state_changes(self, tx_id: int) -> list[tuple[str, float, int]]:
        """Every state change of a transaction: ``(state, time, attempt)`` in order, from ``queued`` (the
        row's creation time) on."""
        with self.engine.connect() as conn:
            created = conn.execute(select(transactions.c.created_at).where(transactions.c.id == tx_id)).scalar()
            if created is None:
                return []
            return [("queued", created, 0)] + [(r.state, r.at, r.attempt) for r in conn.execute(
                select(events).where(events.c.transaction_id == tx_id).order_by(events.c.id))]


def first_event_since(conn: Connection, since: float) -> int:
    """The id of the first event at or after ``since`` (past the last id when there is none).

    Event ids grow with time, so this is a binary search on the primary key: a few dozen lookups however
    many events the ledger holds, and no index on the time is needed.
    """
    first, last = conn.execute(select(func.min(events.c.id), func.max(events.c.id))).one()
    if first is None:
        return 0
    low, high = first, last + 1  # the first id at or after ``since`` lies in [low, high]
    while low < high:
        mid = (low + high) // 2
        at = conn.execute(select(events.c.at).where(events.c.id >= mid).order_by(events.c.id).limit(1)).scalar()
        low, high = (mid + 1, high) if at is not None and at < since else (low, mid)
    return low


def _by_state(rows: Iterable[Any]) -> dict[str, int]:
    """``(state, count)`` rows as a count for every state, zeros included."""
    found = {state: count for state, count in rows}
    return {state: found.get(state, 0) for state in STATES}


def _safe_url(url: str) -> str:
    """The URL without its password (it may appear in an error message)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]

