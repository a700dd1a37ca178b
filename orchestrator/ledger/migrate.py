"""Bringing a ledger database to the current schema with Alembic (run when a ledger is opened)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
FOUNDATION = "0001"


def _config() -> Config:
    from alembic.config import Config  # Alembic is imported only when a ledger is migrated or asked its revision

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    """The newest revision the code knows."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_config()).get_current_head())


@functools.cache
def newest_file() -> str:
    """The newest revision by its file's name (``00NN_what.py`` holds revision ``00NN``): :func:`head` without
    importing Alembic, for the check made on every open. The chain is linear and a test holds the two equal.
    The files do not change while a process runs: they are listed once."""
    return max(path.name.partition("_")[0] for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def current(engine: Engine) -> str | None:
    """The revision the database is at (``None``: not under migration control)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _at_newest(engine: Engine) -> bool:
    """Whether the database is already at :func:`newest_file` (its ``alembic_version`` read with one query)."""
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == newest_file())
    except (OperationalError, ProgrammingError):  # a new database: no version table yet
        return False


def upgrade(engine: Engine) -> None:
    """Migrate the database to the newest revision (idempotent; safe when several processes race).

    A ledger created before migrations existed (it has the tables but no version) is first stamped
    with the foundation revision it matches. A database already at the newest revision (every open but the
    first) is only read: no lock is taken and Alembic's environment is not run.
    """
    if _at_newest(engine):
        return
    try:
        _upgrade(engine)
    except (OperationalError, ProgrammingError):
        if current(engine) == head():
            return  # another process migrated at the same moment
        _upgrade(engine)  # once more, now that the other process is done


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Processes opening one new SQLite ledger at once migrate it one after the other (a lock file beside it)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    from filelock import FileLock  # an OS lock on every platform (fcntl on POSIX, msvcrt on Windows)

    with FileLock(f"{database}.migrate-lock"):
        yield


def _upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    config = _config()
    with _sqlite_file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Workers on several hosts may open a new ledger at once: one migrates, the others wait here,
            # before anyone reads the revision.
            conn.execute(text("SELECT pg_advisory_xact_lock(72619)"))
        config.attributes["connection"] = conn
        revision = MigrationContext.configure(conn).get_current_revision()
        if revision is None and inspect(conn).has_table("transactions"):
            command.stamp(config, FOUNDATION)
        command.upgrade(config, "head")
