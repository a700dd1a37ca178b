"""The outbox: ``published`` is the flag of a row the broker has confirmed. A row is handed to the broker after
it is committed and marked published after the broker confirmed it, so a crash in between is repaired by
the sweep (:meth:`Outbox.due`) and duplicates are absorbed by the claim. A retry is scheduled here, not on
the broker: the row waits in ``retry_scheduled`` until its time, then the sweep publishes it again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from .queries import placeholder
from .schema import transactions


class Outbox:
    """What must be published, and what the broker confirmed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def mark_published(self, ids: Sequence[int]) -> None:
        """The broker confirmed these messages: take them out of the outbox.

        A row a worker has meanwhile scheduled for later (a retry, or a maintenance window that deferred it the
        moment its message arrived, before this confirmation) stays in the outbox: its message is spent, and
        only the sweep publishes it again when its time comes.
        """
        if ids:
            now = time.time()
            with self.engine.begin() as conn:
                m = placeholder(conn)
                conn.exec_driver_sql(
                    f"UPDATE transactions SET published = 1 WHERE id = {m} "
                    f"AND NOT (state = 'retry_scheduled' AND next_attempt_at IS NOT NULL AND next_attempt_at > {m})",
                    [(tx_id, now) for tx_id in ids])

    def put_back(self, ids: Sequence[int]) -> None:
        """Put waiting transactions back in the outbox (their message was acknowledged unprocessed)."""
        if ids:
            with self.engine.begin() as conn:
                conn.execute(update(transactions).where(transactions.c.id.in_(list(ids)),
                                                        transactions.c.state.in_(("queued", "retry_scheduled")))
                             .values(published=0))

    def republish_waiting(self) -> int:
        """Put every waiting case back in the outbox (after a restore from a backup: the messages the broker
        held belong to the time after the backup, so the next sweep publishes every waiting case again and
        the claim absorbs any duplicate); returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(update(transactions).where(transactions.c.state.in_(("queued", "retry_scheduled")),
                                                           transactions.c.published == 1).values(published=0)).rowcount

    def due(self, batch_id: str | None = None, *, limit: int = 10_000) -> list[int]:
        """What must be (re)published now, highest priority and earliest deadline first: rows never
        confirmed to the broker, retries whose time has come, rows held by a lease that ran out
        (their worker is gone), and done cases whose delayed verification is due."""
        now = time.time()
        t = transactions.c
        order = (t.priority.desc(), t.deadline.is_(None), t.deadline, t.id)
        # Two queries, each on its own index (an OR across them would scan the whole table).
        outbox = (select(t.id, t.priority, t.deadline)
                  .where(t.published == 0, t.state.in_(("queued", "retry_scheduled")),
                         (t.next_attempt_at == None) | (t.next_attempt_at <= now)))  # noqa: E711
        abandoned = select(t.id, t.priority, t.deadline).where(t.state == "in_progress", t.lease_until < now)
        # Done cases whose delayed verification is due (on its partial index); a worker's claim of one moves its
        # due time on by a lease, so it is published again only if that worker is gone.
        verify = select(t.id, t.priority, t.deadline).where(t.verify_due_at.isnot(None), t.verify_due_at <= now,
                                                            t.state == "done")
        if batch_id is not None:
            outbox, abandoned = outbox.where(t.batch_id == batch_id), abandoned.where(t.batch_id == batch_id)
            verify = verify.where(t.batch_id == batch_id)
        with self.engine.connect() as conn:
            rows = [*conn.execute(outbox.order_by(*order).limit(limit)),
                    *conn.execute(abandoned.order_by(*order).limit(limit)),
                    *conn.execute(verify.limit(limit))]
        rows.sort(key=lambda r: (-r.priority, r.deadline is None, r.deadline or 0, r.id))
        return [r.id for r in rows[:limit]]
