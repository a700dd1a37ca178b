"""What several parts of the ledger write the same way: the driver's placeholder, counts by state, and
the binary search that finds a time in the event log."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from .schema import STATES, events, transactions


def placeholder(conn: Connection) -> str:
    """The driver's placeholder (sqlite3: ``?``; psycopg: ``%s``)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def batch_counts(conn: Connection, batch_id: str) -> dict[str, int]:
    """Transactions of a batch by state (every state present, zeros included), on the batch/state index."""
    return by_state(conn.execute(select(transactions.c.state, func.count()).where(
        transactions.c.batch_id == batch_id).group_by(transactions.c.state)))


def ledger_counts(conn: Connection) -> dict[str, int]:
    """The whole ledger's transactions by state."""
    return by_state(conn.execute(select(transactions.c.state, func.count()).group_by(transactions.c.state)))


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
    """``(state, count)`` rows as a count for every state, zeros included."""
    found = {state: count for state, count in rows}
    return {state: found.get(state, 0) for state in STATES}
