"""An online backup of a SQLite ledger, taken while workers run (SQLite's backup API, page by page).

A PostgreSQL ledger is backed up with ``pg_dump`` (see ``docs/operations.md``): the server's own tool takes a
consistent snapshot without stopping anyone, so Autoclerk does not wrap it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import Engine

from ..errors import LedgerError


_REPUBLISH = "UPDATE transactions SET published = 0 WHERE state IN ('queued', 'retry_scheduled') AND published = 1"


def backup_sqlite(engine: Engine, target: Path, *, pages_per_step: int = 1024) -> int:
    """Copy the SQLite ledger behind ``engine`` into a new file ``target``, ``pages_per_step`` pages at a time
    (writers wait only for one step, never for the whole copy); returns the copy's size in bytes.

    The copy is a consistent snapshot: a page written during the backup makes SQLite copy it again. In the
    copy, every waiting case is back in the outbox (:meth:`Outbox.republish_waiting <.outbox.Outbox.republish_waiting>`),
    so after a restore the sweep publishes them again; a case in progress comes back when its lease runs out.

    Raises:
        LedgerError: the ledger is not SQLite, or ``target`` exists or cannot be written.
    """
    if engine.dialect.name != "sqlite":
        raise LedgerError(f"'ledger backup' copies a SQLite ledger; back up a {engine.dialect.name} ledger with "
                          "pg_dump -Fc (see docs/operations.md)")
    if target.exists():
        raise LedgerError(f"the backup file {target} already exists; name a new file")
    partial = target.with_name(target.name + ".part")
    raw = engine.raw_connection()
    try:
        source = raw.driver_connection
        assert isinstance(source, sqlite3.Connection)
        try:
            copy = sqlite3.connect(partial)
            try:
                source.backup(copy, pages=pages_per_step)
                with copy:
                    copy.execute(_REPUBLISH)
            finally:
                copy.close()
        except (sqlite3.Error, OSError) as exc:
            partial.unlink(missing_ok=True)
            if not target.parent.is_dir():
                raise LedgerError(f"the backup file {target} cannot be written: its folder {target.parent} does not "
                                  "exist (create it first)") from None
            raise LedgerError(f"the backup file {target} cannot be written ({exc})") from None
    finally:
        raw.close()
    partial.rename(target)  # a backup file that exists is whole
    return target.stat().st_size
