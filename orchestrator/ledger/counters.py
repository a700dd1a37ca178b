"""Counts kept as the ledger changes: how many cases each batch (and the whole ledger) holds under each
``name``, written in the same database transaction as the change, so a page reads a few counter rows instead
of counting millions of cases. The names are the states, :data:`OPEN_EXCEPTION`, and the two counts toward the
target: :data:`VERIFIED` and :data:`FAILED_VERIFICATION` (see :func:`verification_name`).

Every statement that inserts a case, changes its ``state``, its ``verification`` (or an exception's
``resolution``) or deletes it adds its change here with :func:`bump` before its transaction commits. A count is spread over *shards* (on PostgreSQL, one per
process and thread, up to :data:`SHARDS`): two workers finishing cases of the same batch at once write
different rows, so no counter becomes one hot row that every writer waits for. A read sums the shards.
SQLite has one writer at a time, so it keeps one shard.

The batch ``""`` holds the whole ledger's counts (so the overall figure is a read of a few rows too).
Cases pruned to an archive leave the counts (they are no longer in the ledger); ``pruned_cases`` keeps
them, and the counts by state add both (:func:`~.queries.batch_counts`). Their counts toward the target move to
the names of :data:`PRUNED`, so verified and failed verifications stay counted after a prune.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from .schema import STATES, ledger_counters, transactions

SHARDS = 16
"""How many rows a count is spread over on PostgreSQL."""
WHOLE_LEDGER = ""
"""The ``batch_id`` of the whole ledger's counts."""
OPEN_EXCEPTION = "open_exception"
"""The name that counts open exceptions: cases handed back to a person (``business_exception``) and not yet
dealt with (no ``resolution``); they count in their state too."""
VERIFIED = "verified"
"""The name that counts done cases whose record was read back and found right (``verification`` ``verified``):
what the target counts. A done case counted under no such name is ``unverified``."""
FAILED_VERIFICATION = "verify_failed"
"""The name that counts cases handed to a person because their record read back was wrong (``business_exception``
with ``verification`` ``verify_failed``), dealt with or not."""

PRUNED = {VERIFIED: "pruned_verified", FAILED_VERIFICATION: "pruned_verify_failed"}
"""The names that keep the counts toward the target of cases pruned to an archive: a prune moves a case's
:data:`VERIFIED` or :data:`FAILED_VERIFICATION` count here, so the figures stay (``pruned_cases`` keeps their
states)."""

Key = tuple[str, str, str]
"""``(batch_id, workflow, name)``."""


def shard(conn: Connection) -> int:
    """This writer's shard: 0 on SQLite (one writer at a time), else chosen by process and thread."""
    if conn.dialect.name == "sqlite":
        return 0
    return hash((os.getpid(), threading.get_ident())) % SHARDS


def bump(conn: Connection, batch_id: str, workflow: str, name: str, delta: int) -> None:
    """Add ``delta`` to the count of ``name`` in a batch (and in the whole ledger), inside the caller's
    database transaction (call it after the change, last in the transaction: counter rows are locked in
    one order, so two writers cannot deadlock on them)."""
    bump_many(conn, {(batch_id, workflow, name): delta})


def bump_many(conn: Connection, deltas: Mapping[Key, int]) -> None:
    """:func:`bump` for several counts at once (one statement); zero changes are skipped."""
    whole: Counter[Key] = Counter()
    for (batch_id, workflow, name), delta in deltas.items():
        whole[(WHOLE_LEDGER, workflow, name)] += delta
    rows = [(batch_id, workflow, name, delta) for (batch_id, workflow, name), delta in
            sorted([*deltas.items(), *whole.items()]) if delta]
    if not rows:
        return
    m = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    mine = shard(conn)
    conn.exec_driver_sql(
        f"INSERT INTO ledger_counters (batch_id, workflow, name, shard, count) VALUES ({m}, {m}, {m}, {mine}, {m}) "
        "ON CONFLICT (batch_id, workflow, name, shard) DO UPDATE SET count = ledger_counters.count + excluded.count",
        rows)


def moved(rows: Iterable[Any], from_name: str | None, to_name: str | None) -> Counter[Key]:
    """The changes for cases (rows with ``batch_id`` and ``workflow``) leaving ``from_name`` for ``to_name``
    (``None``: created, or deleted)."""
    deltas: Counter[Key] = Counter()
    for row in rows:
        if from_name is not None:
            deltas[(row.batch_id, row.workflow, from_name)] -= 1
        if to_name is not None:
            deltas[(row.batch_id, row.workflow, to_name)] += 1
    return deltas


def verification_name(state: str, verification: str | None) -> str | None:
    """The count toward the target a case in ``state`` with ``verification`` is in: :data:`VERIFIED`,
    :data:`FAILED_VERIFICATION`, or ``None`` (a case not done, or done and unverified)."""
    if state == "done" and verification == "verified":
        return VERIFIED
    if state == "business_exception" and verification == "verify_failed":
        return FAILED_VERIFICATION
    return None


def reverified(rows: Iterable[Any], before: tuple[str, str | None] | None,
               after: tuple[str, str | None] | None) -> Counter[Key]:
    """The changes to the counts toward the target for cases (rows with ``batch_id`` and ``workflow``) going
    from ``(state, verification)`` ``before`` to ``after`` (``None``: created, or deleted)."""
    from_name = verification_name(*before) if before is not None else None
    to_name = verification_name(*after) if after is not None else None
    return moved(rows, from_name, to_name) if from_name != to_name else Counter()


def read(conn: Connection, batch_ids: Iterable[str], *,
         workflows: Collection[str] | None = None) -> dict[str, dict[str, int]]:
    """The counts of several batches (``WHOLE_LEDGER`` for the whole ledger), of ``workflows`` only when
    given: ``{batch: {name: count}}``, shards summed; a name never counted is absent."""
    wanted = sorted(set(batch_ids))
    found: dict[str, dict[str, int]] = {batch_id: {} for batch_id in wanted}
    if not wanted:
        return found
    c = ledger_counters.c
    query = select(c.batch_id, c.name, func.sum(c.count)).where(c.batch_id.in_(wanted))
    if workflows is not None:  # the rows are keyed by workflow: still a read of a few rows on the primary key
        query = query.where(c.workflow.in_(sorted(workflows)))
    for batch_id, name, count in conn.execute(query.group_by(c.batch_id, c.name)):
        found[batch_id][name] = int(count)
    return found


def mismatches(conn: Connection) -> dict[Key, tuple[int, int]]:
    """Where the counts of states (and of open exceptions, verified cases and failed verifications) differ
    from a real count of the cases: ``{(batch, workflow, name): (counted, real)}``; empty when they agree. It
    reads the whole table: for tests and checks, never a page."""
    t, c = transactions.c, ledger_counters.c
    real: Counter[Key] = Counter()
    for batch_id, workflow, state, open_, verification, count in conn.execute(
            select(t.batch_id, t.workflow, t.state, t.resolution.is_(None), t.verification, func.count())
            .group_by(t.batch_id, t.workflow, t.state, t.resolution.is_(None), t.verification)):
        names = [state, *([OPEN_EXCEPTION] if state == "business_exception" and open_ else []),
                 *filter(None, [verification_name(state, verification)])]
        for name in names:
            real[(batch_id, workflow, name)] += int(count)
            real[(WHOLE_LEDGER, workflow, name)] += int(count)
    counted: Counter[Key] = Counter()
    for batch_id, workflow, name, count in conn.execute(
            select(c.batch_id, c.workflow, c.name, func.sum(c.count)).group_by(c.batch_id, c.workflow, c.name)):
        counted[(batch_id, workflow, name)] += int(count)
    return {key: (counted[key], real[key]) for key in sorted(set(real) | set(counted))
            if key[2] in (*STATES, OPEN_EXCEPTION, VERIFIED, FAILED_VERIFICATION) and counted[key] != real[key]}


class Counters:
    """The ledger's counts by batch and name (see the module), for readers and checks."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def batches(self, batch_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """The counts of several batches: ``{batch: {name: count}}`` (a name never counted is absent)."""
        with self.engine.connect() as conn:
            return read(conn, batch_ids)

    def whole(self) -> dict[str, int]:
        """The whole ledger's counts: ``{name: count}``."""
        with self.engine.connect() as conn:
            return read(conn, [WHOLE_LEDGER])[WHOLE_LEDGER]

    def mismatches(self) -> dict[Key, tuple[int, int]]:
        """See :func:`mismatches`: empty when every count agrees with the cases in the ledger."""
        with self.engine.connect() as conn:
            return mismatches(conn)
