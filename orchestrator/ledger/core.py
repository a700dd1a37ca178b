"""The durable ledger: one row per case, the source of truth for every transaction's state.

The broker only carries transaction ids. :class:`Ledger` opens the database (migrating it to the current
schema) and holds its parts, one per concept, each on the same engine:

- :attr:`Ledger.transactions` (:mod:`.transactions`): claim, fence, effect started, finish;
- :attr:`Ledger.verifications` (:mod:`.verifications`): delayed verifications, due, taken, finished;
- :attr:`Ledger.outbox` (:mod:`.outbox`): what must be published, what the broker confirmed;
- :attr:`Ledger.batches` (:mod:`.batches`): create, fill, list, pause, resume, cancel, re-queue;
- :attr:`Ledger.cases` (:mod:`.cases`): find cases, resubmit or resolve an exception;
- :attr:`Ledger.reports` (:mod:`.reports`): counts, progress, throughput, refused rows, exceptions;
- :attr:`Ledger.counters` (:mod:`.counters`): the counts by state kept as the ledger changes;
- :attr:`Ledger.workflows` (:mod:`.workflows`): versions, publishing, the one parsed-workflow cache;
- :attr:`Ledger.retention` (:mod:`.retention`): pruning finished cases, erasing one case's personal data;
- :attr:`Ledger.heartbeats` (:mod:`.heartbeats`) and :attr:`Ledger.budgets` (:mod:`.budgets`);
- :attr:`Ledger.breakers` (:mod:`.breakers`): the target systems' circuit breakers;
- :attr:`Ledger.audit` (:mod:`.audit`): the hash-chained audit trail of what people did.
- :attr:`Ledger.schedules` (:mod:`.schedules`) and :attr:`Ledger.dropped_files` (:mod:`.dropped`): recurring work.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError

from ..errors import LedgerError
from . import migrate
from .audit import AuditTrail
from .batches import Batches
from .breakers import Breakers
from .budgets import SystemBudgets
from .counters import Counters
from .cases import Cases
from .dropped import DroppedFiles
from .heals import Heals
from .heartbeats import Heartbeats
from .outbox import Outbox
from .reports import Reports
from .schedules import Schedules
from .retention import Retention
from .schema import ledger_info
from .transactions import Transactions
from .verifications import Verifications
from .workflows import WorkflowStore


LEDGER_UNREACHABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
"""What a ledger call raises while its database cannot answer (PostgreSQL restarting, a connection cut, SQLite
busy past its timeout): the call did not happen, or its transaction was rolled back, so trying it again
later is safe. The engine's pool pings each connection before use, so the next call reconnects."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


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
        self.transactions = Transactions(self.engine)
        """Claiming, fencing and finishing attempts (the workers' side)."""
        self.verifications = Verifications(self.engine)
        """Delayed verifications: the due ones, taking one, recording how it ended."""
        self.outbox = Outbox(self.engine)
        """What must be published, and what the broker confirmed."""
        self.batches = Batches(self.engine)
        """Creating, filling, listing and operating batches; refused rows."""
        self.cases = Cases(self.engine, self.transactions)
        """Finding cases, and the people's actions on exceptions."""
        self.reports = Reports(self.engine)
        """Counts, progress, throughput, refused rows and open exceptions (read-only)."""
        self.counters = Counters(self.engine)
        """The counts by batch and state kept as the ledger changes, and their check against a real count."""
        self.workflows = WorkflowStore(self.engine)
        """Workflow versions by digest, the published ones, and this process's cache of parsed versions."""
        self.retention = Retention(self.engine)
        """Pruning finished cases to an archive, and erasing one case's personal data."""
        self.heartbeats = Heartbeats(self.engine)
        """The workers heard from recently."""
        self.budgets = SystemBudgets(self.engine)
        """The target systems' rate tokens and session slots, shared by every worker."""
        self.breakers = Breakers(self.engine)
        """The target systems' circuit breakers (closed, open, half-open), shared by every worker."""
        self.audit = AuditTrail(self.engine)
        """The audit trail: every action a person takes, append-only and hash-chained."""
        self.schedules = Schedules(self.engine)
        """What Celery beat fires and when, and the lease of the one beat that runs."""
        self.dropped_files = DroppedFiles(self.engine)
        """The files watched folders took (by SHA-256), and their batches' results."""
        self.heals = Heals(self.engine)
        """Step fingerprints and every heal of a drifted locator (the bots' healing store)."""

    def close(self) -> None:
        """Close the ledger's connections."""
        self.engine.dispose()


def _safe_url(url: str) -> str:
    """The URL without its password (it may appear in an error message)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]
