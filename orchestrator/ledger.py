"""The durable ledger: one row per case, the source of truth for every transaction's state.

The broker only carries transaction ids. A worker *claims* a row before working on it: the claim
increments a fencing token and sets a lease; every later write names the token, so a stale worker's late
write is refused. ``published`` is the outbox flag: a row is handed to the broker after it is committed
and marked published after the broker confirmed it, so a crash in between is repaired by
:meth:`Ledger.unpublished` (the sweep) and duplicates are absorbed by the claim.

States::

    queued ─► in_progress ─► done
                 │   ├────► business_exception            (handed back to a person)
                 │   └────► retry_scheduled ─► in_progress … ─► failed   (attempts exhausted)
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError

from .errors import LedgerError, StaleAttempt

TERMINAL = ("done", "business_exception", "failed", "cancelled")
ACTIVE = ("queued", "in_progress", "retry_scheduled")
STATES = ACTIVE + TERMINAL

metadata = MetaData()

workflow_versions = Table(
    "workflow_versions",
    metadata,
    Column("digest", String(32), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("workflow", String(64), nullable=False),
    Column("digest", String(32), nullable=False),
    Column("source_name", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow", String(64), nullable=False),
    Column("digest", String(32), nullable=False),
    Column("batch_id", String(32), nullable=False),
    Column("case_ref", String(128), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(24), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("fence", Integer, nullable=False, default=0),
    Column("lease_owner", String(128)),
    Column("lease_until", Float),
    Column("effect_attempt", Integer),
    Column("next_attempt_at", Float),
    Column("published", Integer, nullable=False, default=0),
    Column("result_ref", String(256)),
    Column("output", Text),
    Column("error_class", String(64)),
    Column("error_message", Text),
    Column("evidence", Text),
    Column("history", Text, nullable=False, default="[]"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("workflow", "case_ref", name="uq_transactions_workflow_case_ref"),
    Index("ix_transactions_batch_state", "batch_id", "state"),
)

events = Table(
    "transaction_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("transaction_id", Integer, nullable=False, index=True),
    Column("at", Float, nullable=False),
    Column("state", String(24), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("detail", Text),
)


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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Ledger:
    """The ledger at one SQLAlchemy URL (``sqlite:///file.db`` by default; PostgreSQL for scale).

    Raises:
        LedgerError: the URL is malformed or the database cannot be opened.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
        except (ArgumentError, ImportError, ValueError) as exc:
            raise LedgerError(f"the ledger URL '{url}' is not usable ({type(exc).__name__}: {exc})") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            metadata.create_all(self.engine)
        except OperationalError as exc:
            raise LedgerError(f"the ledger at '{url}' cannot be opened ({exc.orig})") from None

    def close(self) -> None:
        self.engine.dispose()

    # -- workflows and batches -------------------------------------------------------------------------
    def save_workflow(self, digest: str, name: str, version: int, source: str) -> None:
        """Store a workflow's exact source under its digest (once)."""
        with self.engine.begin() as conn:
            exists = conn.execute(select(workflow_versions.c.digest).where(workflow_versions.c.digest == digest)).first()
            if not exists:
                conn.execute(insert(workflow_versions).values(
                    digest=digest, name=name, version=version, source=source, created_at=time.time()))

    def workflow_source(self, digest: str) -> str:
        with self.engine.connect() as conn:
            row = conn.execute(select(workflow_versions.c.source).where(workflow_versions.c.digest == digest)).first()
        if row is None:
            raise LedgerError(f"workflow version {digest} is not in the ledger")
        return str(row.source)

    def create_batch(self, workflow: str, digest: str, source_name: str) -> str:
        batch_id = uuid.uuid4().hex[:12]
        with self.engine.begin() as conn:
            conn.execute(insert(batches).values(
                id=batch_id, workflow=workflow, digest=digest, source_name=source_name, created_at=time.time()))
        return batch_id

    # -- intake ----------------------------------------------------------------------------------------
    def add_cases(self, batch_id: str, workflow: str, digest: str, max_attempts: int,
                  cases: Sequence[tuple[str, dict[str, Any]]]) -> tuple[list[int], dict[str, tuple[int, str]]]:
        """Record new cases in one transaction; cases whose reference the workflow already has are not added.

        Returns:
            ``(new_ids, existing)`` where ``existing`` maps each already-known reference to its
            ``(transaction id, state)``.
        """
        if not cases:
            return [], {}
        now = time.time()
        refs = [ref for ref, _ in cases]
        with self.engine.begin() as conn:
            existing = {
                row.case_ref: (row.id, row.state)
                for row in conn.execute(
                    select(transactions.c.case_ref, transactions.c.id, transactions.c.state).where(
                        transactions.c.workflow == workflow, transactions.c.case_ref.in_(refs)))
            }
            fresh = [
                {"workflow": workflow, "digest": digest, "batch_id": batch_id, "case_ref": ref,
                 "payload": json.dumps(payload, separators=(",", ":")), "state": "queued", "attempts": 0,
                 "max_attempts": max_attempts, "fence": 0, "published": 0, "history": "[]",
                 "created_at": now, "updated_at": now}
                for ref, payload in cases if ref not in existing
            ]
            if fresh:
                conn.execute(insert(transactions), fresh)
            new_ids = [
                row.id for row in conn.execute(
                    select(transactions.c.id).where(transactions.c.batch_id == batch_id,
                                                    transactions.c.case_ref.in_([f["case_ref"] for f in fresh])))
            ] if fresh else []
        return new_ids, existing

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

    def mark_published(self, ids: Sequence[int]) -> None:
        """The broker confirmed these messages: take them out of the outbox."""
        if ids:
            with self.engine.begin() as conn:
                conn.execute(update(transactions).where(transactions.c.id.in_(list(ids))).values(published=1))

    def unpublished(self, batch_id: str, *, stale_lease_before: float | None = None) -> list[int]:
        """Transactions of the batch that must be (re)published: never confirmed to the broker, or held by
        a lease that ran out (its worker is gone)."""
        now = stale_lease_before if stale_lease_before is not None else time.time()
        with self.engine.connect() as conn:
            rows = conn.execute(select(transactions.c.id).where(
                transactions.c.batch_id == batch_id,
                ((transactions.c.published == 0) & transactions.c.state.in_(("queued", "retry_scheduled")))
                | ((transactions.c.state == "in_progress") & (transactions.c.lease_until < now)),
            ))
            return [r.id for r in rows]

    # -- execution -------------------------------------------------------------------------------------
    def claim(self, tx_id: int, owner: str, lease_s: float) -> Claim | None:
        """Take a transaction for one attempt, or ``None`` when it is finished or another worker holds it."""
        now = time.time()
        with self.engine.begin() as conn:
            result = conn.execute(
                update(transactions)
                .where(
                    transactions.c.id == tx_id,
                    transactions.c.state.in_(("queued", "retry_scheduled"))
                    | ((transactions.c.state == "in_progress") & (transactions.c.lease_until < now)),
                )
                .values(state="in_progress", attempts=transactions.c.attempts + 1, fence=transactions.c.fence + 1,
                        lease_owner=owner, lease_until=now + lease_s, updated_at=now)
            )
            if result.rowcount != 1:
                return None
            row = conn.execute(select(transactions).where(transactions.c.id == tx_id)).one()
            conn.execute(insert(events).values(transaction_id=tx_id, at=now, state="in_progress",
                                               attempt=row.attempts, detail=owner))
        return Claim(row.id, row.workflow, row.digest, row.batch_id, row.case_ref, json.loads(row.payload),
                     row.attempts, row.max_attempts, row.fence, row.effect_attempt, json.loads(row.history), now)

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

    def finish(self, claim: Claim, state: str, *, result_ref: str | None = None, output: dict[str, Any] | None = None,
               error_class: str | None = None, error_message: str | None = None, evidence: list[str] | None = None,
               next_attempt_at: float | None = None) -> None:
        """Record how the attempt ended (fenced).

        Raises:
            StaleAttempt: another attempt took the case over; this write was refused.
        """
        if state not in STATES:
            raise ValueError(f"unknown state {state}")
        now = time.time()
        history = claim.history + [{
            "attempt": claim.attempt, "started_at": claim.started_at, "ended_at": now, "outcome": state,
            "error_class": error_class, "error": error_message, "evidence": evidence or [],
        }]
        values: dict[str, Any] = {
            "state": state, "updated_at": now, "history": json.dumps(history), "lease_until": None,
            "error_class": error_class, "error_message": error_message, "next_attempt_at": next_attempt_at,
        }
        if result_ref is not None:
            values["result_ref"] = result_ref
        if output is not None:
            values["output"] = json.dumps(output)
        if evidence:
            values["evidence"] = json.dumps(evidence)
        if state == "retry_scheduled":
            values["published"] = 0
        with self.engine.begin() as conn:
            result = conn.execute(update(transactions).where(
                transactions.c.id == claim.id, transactions.c.fence == claim.fence,
                transactions.c.state == "in_progress").values(**values))
            if result.rowcount != 1:
                raise StaleAttempt(f"transaction {claim.id} ({claim.case_ref}): the write of attempt {claim.attempt} "
                                   "was refused because another attempt took the case over")
            conn.execute(insert(events).values(transaction_id=claim.id, at=now, state=state, attempt=claim.attempt,
                                               detail=error_class))

    # -- reading ---------------------------------------------------------------------------------------
    def counts(self, batch_id: str) -> dict[str, int]:
        """Transactions of a batch by state (every state present, zeros included)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(transactions.c.state, func.count()).where(
                transactions.c.batch_id == batch_id).group_by(transactions.c.state))
            found = {state: count for state, count in rows}
        return {state: found.get(state, 0) for state in STATES}

    def transaction(self, tx_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(transactions).where(transactions.c.id == tx_id)).first()
        return dict(row._mapping) if row else None
