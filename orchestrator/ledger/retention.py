"""Retention: finished cases pruned out of the ledger a chunk at a time, and one case's personal data erased.

A case may be pruned when it has an outcome it reached before the cut-off (done, failed, cancelled, or
handed back to a person who has dealt with it) and its batch is ``finished`` or ``cancelled`` with no case
still in work. An exception still waiting for a person is never pruned, nor is any case of an active or
paused batch. A batch's row stays (its page, its totals and its reconciliation still show it); once none of
its cases is left, its refused rows go too.

Each chunk is one short database transaction that deletes the cases with ``DELETE … RETURNING`` (the
condition is in the statement, so a case sent back to work a moment before is left alone), their state
changes and the people's actions on them, and adds them to ``pruned_cases``. The caller's ``keep`` runs
inside that transaction, before it commits: it writes the archive, so nothing leaves the ledger unarchived.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from ..errors import LedgerError
from . import counters
from .queries import placeholder
from .schema import (ACTIVE, STATES, TERMINAL, batch_rejections, batches, case_actions, events, pruned_cases,
                     pruned_rejections, transactions)

PRUNABLE_BATCH_STATES = ("finished", "cancelled")
ERASED = "erased"
"""The ``case_actions`` action that records an erasure (its note is the reason)."""


@dataclass
class PrunedChunk:
    """What one chunk took out of the ledger: rows as stored, each a dict of its columns."""

    batch_id: str
    cases: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)


class Retention:
    """Pruning finished cases and erasing one case's personal data."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- pruning ------------------------------------------------------------------------------------------
    def batches(self, cutoff: float) -> list[str]:
        """Batches that may hold cases to prune: finished or cancelled, handed off before ``cutoff``, none of
        their cases in work; oldest first."""
        b, t = batches.c, transactions.c
        working = select(t.id).where(t.batch_id == b.id, t.state.in_(ACTIVE)).correlate(batches).exists()
        with self.engine.connect() as conn:
            return list(conn.execute(select(b.id).where(b.state.in_(PRUNABLE_BATCH_STATES), b.created_at < cutoff,
                                                        ~working).order_by(b.created_at, b.id)).scalars())

    @staticmethod
    def _prunable(batch_id: str, cutoff: float) -> tuple[Any, ...]:
        t = transactions.c
        return (t.batch_id == batch_id, t.state.in_(TERMINAL), t.updated_at < cutoff,
                or_(t.state != "business_exception", t.resolution.is_not(None)))

    def prunable(self, batch_id: str, cutoff: float, *, page: int = 1000) -> Iterator[dict[str, Any]]:
        """The cases of a batch a prune would take (``id``, ``workflow``, ``case_ref``, ``state``,
        ``evidence``, ``history``, and how many ``events`` and ``actions`` each has), read ``page`` at a time."""
        t = transactions.c
        after = 0
        while True:
            with self.engine.connect() as conn:
                rows = [dict(r._mapping) for r in conn.execute(
                    select(t.id, t.workflow, t.case_ref, t.state, t.evidence, t.history)
                    .where(*self._prunable(batch_id, cutoff), t.id > after).order_by(t.id).limit(page))]
                ids = [r["id"] for r in rows]
                n_events: dict[int, int] = dict(conn.execute(select(events.c.transaction_id, func.count()).where(
                    events.c.transaction_id.in_(ids)).group_by(events.c.transaction_id)).all()) if ids else {}
                n_actions: dict[int, int] = dict(conn.execute(select(case_actions.c.transaction_id, func.count()).where(
                    case_actions.c.transaction_id.in_(ids)).group_by(case_actions.c.transaction_id)).all()) if ids else {}
            for row in rows:
                row["events"], row["actions"] = int(n_events.get(row["id"], 0)), int(n_actions.get(row["id"], 0))
                yield row
            if len(rows) < page:
                return
            after = rows[-1]["id"]

    def rejections_left(self, batch_id: str) -> int:
        """How many refused rows a batch still has in the ledger."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(batch_rejections.c.batch_id == batch_id)).scalar_one())

    def cases_left(self, batch_id: str) -> int:
        """How many cases a batch still has in the ledger."""
        with self.engine.connect() as conn:
            return sum(n for name, n in counters.read(conn, [batch_id])[batch_id].items() if name in STATES)

    def prune_cases(self, batch_id: str, cutoff: float, limit: int,
                    keep: Callable[[PrunedChunk], None]) -> PrunedChunk:
        """Take up to ``limit`` prunable cases of a batch out of the ledger, with their state changes and the
        people's actions on them, counting them in ``pruned_cases``. ``keep`` (the archive) runs before the
        transaction commits; if it raises, nothing is deleted."""
        t = transactions.c
        conditions = self._prunable(batch_id, cutoff)
        picked = select(t.id).where(*conditions).order_by(t.id).limit(limit)
        batch_open = select(batches.c.id).where(batches.c.id == batch_id, batches.c.state.in_(PRUNABLE_BATCH_STATES))
        chunk = PrunedChunk(batch_id)
        with self.engine.begin() as conn:
            chunk.cases = _rows(conn.execute(delete(transactions).where(
                t.id.in_(picked), *conditions, t.batch_id.in_(batch_open)).returning(*transactions.c)))
            if not chunk.cases:
                return chunk
            ids = [case["id"] for case in chunk.cases]
            chunk.events = _rows(conn.execute(delete(events).where(events.c.transaction_id.in_(ids))
                                              .returning(*events.c)))
            chunk.actions = _rows(conn.execute(delete(case_actions).where(case_actions.c.transaction_id.in_(ids))
                                               .returning(*case_actions.c)))
            tally = Counter((case["workflow"], case["state"]) for case in chunk.cases)
            _add(conn, "pruned_cases", ("batch_id", "workflow", "state"),
                 [(batch_id, workflow, state, n) for (workflow, state), n in sorted(tally.items())])
            keep(chunk)
            # last: the counter rows stay locked only for the commit, not while the archive is written
            deltas: Counter[counters.Key] = Counter({(batch_id, workflow, state): -n
                                                     for (workflow, state), n in tally.items()})
            for case in chunk.cases:  # their counts toward the target move to the pruned ones: the figures stay
                if (name := counters.verification_name(case["state"], case["verification"])) is not None:
                    deltas[(batch_id, case["workflow"], name)] -= 1
                    deltas[(batch_id, case["workflow"], counters.PRUNED[name])] += 1
            counters.bump_many(conn, deltas)
        return chunk

    def prune_rejections(self, batch_id: str, limit: int, keep: Callable[[PrunedChunk], None]) -> PrunedChunk:
        """Take up to ``limit`` refused rows of a batch none of whose cases is left out of the ledger, counting
        them in ``pruned_rejections`` by kind; ``keep`` runs before the transaction commits."""
        r, t = batch_rejections.c, transactions.c
        emptied = select(batches.c.id).where(
            batches.c.id == batch_id, batches.c.state.in_(PRUNABLE_BATCH_STATES),
            ~select(t.id).where(t.batch_id == batch_id).exists())
        chunk = PrunedChunk(batch_id)
        with self.engine.begin() as conn:
            chunk.rejections = _rows(conn.execute(delete(batch_rejections).where(
                r.id.in_(select(r.id).where(r.batch_id == batch_id).order_by(r.id).limit(limit)),
                r.batch_id.in_(emptied)).returning(*batch_rejections.c)))
            if chunk.rejections:
                tally = Counter(row["kind"] for row in chunk.rejections)
                _add(conn, "pruned_rejections", ("batch_id", "kind"),
                     [(batch_id, kind, n) for kind, n in sorted(tally.items())])
                keep(chunk)
        return chunk

    def pruned(self, batch_id: str) -> int:
        """How many of a batch's cases were pruned to an archive."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.sum(pruned_cases.c.count), 0)).where(
                pruned_cases.c.batch_id == batch_id)).scalar_one())

    # -- erasure ------------------------------------------------------------------------------------------
    def erase(self, tx_id: int, by: str, reason: str, forget: Callable[[dict[str, Any]], None]) -> bool:
        """Remove the personal data of one case that has an outcome: its data (payload), output, error texts
        (which may echo its data), the evidence its attempts list, and the notes of the people's actions.
        Kept: reference, workflow, batch, state, resolution, attempts, times, the class of each error, and the
        target system's reference. The erasure is recorded as a ``case_actions`` row with ``reason``.

        ``forget`` gets the case as it was (``workflow``, ``case_ref``, ``evidence`` paths) and deletes its
        evidence files, before the transaction commits. Returns ``False`` when the case was already erased
        (nothing changes, nothing is recorded).

        Raises:
            LedgerError: there is no such case, it is still in work, or ``reason`` is empty.
        """
        if not reason.strip():
            raise LedgerError("erasing a case's data needs a reason")
        t = transactions.c
        with self.engine.begin() as conn:
            row = conn.execute(select(t.workflow, t.case_ref, t.state, t.payload, t.output, t.error_message,
                                      t.error_detail, t.evidence, t.history).where(t.id == tx_id)).first()
            if row is None:
                raise LedgerError(f"there is no case {tx_id}")
            if row.state in ACTIVE:
                raise LedgerError(f"case {row.case_ref} is {row.state.replace('_', ' ')}: it is still in work, so its "
                                  "data cannot be erased yet; erase it once it has an outcome (or cancel it first)")
            history = json.loads(row.history)
            evidence = json.loads(row.evidence) if row.evidence else []
            for attempt in history:
                evidence += [p for p in attempt.get("evidence") or [] if p not in evidence]
            scrubbed = [{**attempt, "error": None, "error_detail": None, "evidence": []} for attempt in history]
            notes = select(case_actions.c.id).where(case_actions.c.transaction_id == tx_id,
                                                    case_actions.c.action != ERASED, case_actions.c.note.is_not(None))
            erased_before = conn.execute(select(case_actions.c.id).where(
                case_actions.c.transaction_id == tx_id, case_actions.c.action == ERASED)).first() is not None
            untouched = (row.payload == "{}" and row.output is None and row.error_message is None
                         and row.error_detail is None and not evidence and scrubbed == history
                         and conn.execute(notes).first() is None)
            if erased_before and untouched:
                return False
            forget({"workflow": row.workflow, "case_ref": row.case_ref, "evidence": evidence})
            conn.execute(update(transactions).where(t.id == tx_id).values(
                payload="{}", output=None, error_message=None, error_detail=None, evidence=None,
                history=json.dumps(scrubbed)))
            conn.execute(update(case_actions).where(case_actions.c.id.in_(notes)).values(note=None))
            conn.execute(insert(case_actions).values(transaction_id=tx_id, at=time.time(), username=by, action=ERASED,
                                                     note=reason.strip()))
        return True


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in result]


def _add(conn: Connection, table: str, key: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Add counts to a pruned-counts table (SQLite ≥ 3.24 and PostgreSQL say the upsert the same way)."""
    m = placeholder(conn)
    columns = (*key, "count")
    conn.exec_driver_sql(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([m] * len(columns))}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET count = {table}.count + excluded.count", rows)

