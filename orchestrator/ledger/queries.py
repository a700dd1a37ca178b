"""What several parts of the ledger write the same way: the driver's placeholder, counts by state, and
the binary search that finds a time in the event log."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from . import counters
from .schema import ACTIVE, STATES, batches, events, pruned_cases, transactions


def placeholder(conn: Connection) -> str:
    """The driver's placeholder (sqlite3: ``?``; psycopg: ``%s``)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def batch_counts(conn: Connection, batch_id: str) -> dict[str, int]:
    """Transactions of a batch by state (every state present, zeros included), read from the counts kept as
    the ledger changes (:mod:`.counters`); cases pruned to an archive count in their state."""
    return many_batch_counts(conn, [batch_id])[batch_id]


def many_batch_counts(conn: Connection, batch_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """:func:`batch_counts` of several batches, in two queries however many there are."""
    wanted = sorted(set(batch_ids))
    kept = counters.read(conn, wanted)
    pruned: dict[str, list[tuple[str, int]]] = {batch_id: [] for batch_id in wanted}
    if wanted:
        p = pruned_cases.c
        for batch_id, state, count in conn.execute(select(p.batch_id, p.state, func.sum(p.count)).where(
                p.batch_id.in_(wanted)).group_by(p.batch_id, p.state)):
            pruned[batch_id].append((state, count))
    return {batch_id: by_state(chain(kept[batch_id].items(), pruned[batch_id])) for batch_id in wanted}


def ledger_counts(conn: Connection) -> dict[str, int]:
    """The whole ledger's transactions by state (from the counts kept as it changes), cases pruned to an
    archive included."""
    p = pruned_cases.c
    return by_state(chain(
        counters.read(conn, [counters.WHOLE_LEDGER])[counters.WHOLE_LEDGER].items(),
        conn.execute(select(p.state, func.sum(p.count)).group_by(p.state))))


def settle(conn: Connection, batch_ids: Iterable[str] | None, now: float) -> int:
    """Mark ``finished`` every active batch (of ``batch_ids``, or all) whose file is wholly received and whose
    every case is terminal; return how many.

    It reads first and writes only when a batch is due, so the sweep's call takes no write lock (SQLite)
    on the rounds that find nothing; the UPDATE repeats the condition, so a case sent back to work in
    between keeps its batch active.
    """
    t = transactions.c
    pending = select(t.id).where(t.batch_id == batches.c.id, t.state.in_(ACTIVE)).correlate(batches).exists()
    due = (batches.c.state == "active", batches.c.intake != "receiving", ~pending)
    query = select(batches.c.id).where(*due)
    if batch_ids is not None:
        wanted = sorted(set(batch_ids))
        if not wanted:
            return 0
        query = query.where(batches.c.id.in_(wanted))
    ids = list(conn.execute(query).scalars())
    if not ids:
        return 0
    return conn.execute(update(batches).where(batches.c.id.in_(ids), *due)
                        .values(state="finished", finished_at=now)).rowcount


def reopen(conn: Connection, batch_id: str) -> None:
    """A finished batch whose case goes back to work is active again (until it finishes anew)."""
    conn.execute(update(batches).where(batches.c.id == batch_id, batches.c.state == "finished")
                 .values(state="active", finished_at=None))


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


def by_state(rows: Iterable[Any]) -> dict[str, int]:
    """``(state, count)`` rows as a count for every state, zeros included (a state given twice adds up;
    a name that is not a state is left out)."""
    found: dict[str, int] = {}
    for state, count in rows:
        found[state] = found.get(state, 0) + int(count)
    return {state: found.get(state, 0) for state in STATES}
