"""Workflow versions in the ledger: each exact source stored once under its digest, the version of each
name that hand-offs use (published), and the one cache of parsed versions a process keeps.

A transaction names the digest it was handed off with, so a worker runs exactly that version, calls
included, whatever was published since.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from workflows import LoadedWorkflow, Problem, WorkflowFileError, load_stored

from ..errors import LedgerError
from .schema import published_workflows, workflow_versions

log = structlog.get_logger(__name__)


class WorkflowStore:
    """The workflow versions of one ledger, and the parsed ones this process has read (thread-safe)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._parsed: dict[str, LoadedWorkflow] = {}
        self._lock = threading.Lock()

    def save(self, loaded: LoadedWorkflow) -> None:
        """Store a workflow's exact source under its digest (once)."""
        definition = loaded.definition
        with self.engine.begin() as conn:
            exists = conn.execute(select(workflow_versions.c.digest)
                                  .where(workflow_versions.c.digest == loaded.digest)).first()
            if not exists:
                conn.execute(insert(workflow_versions).values(
                    digest=loaded.digest, name=definition.name, version=definition.version,
                    source=loaded.stored_text, created_at=time.time()))

    def source(self, digest: str) -> str:
        """The stored source of a version.

        Raises:
            LedgerError: no version has that digest.
        """
        with self.engine.connect() as conn:
            row = conn.execute(select(workflow_versions.c.source).where(workflow_versions.c.digest == digest)).first()
        if row is None:
            raise LedgerError(f"workflow version {digest} is not in the ledger")
        return str(row.source)

    def load(self, digest: str) -> LoadedWorkflow:
        """The exact version with that digest, calls included, parsed once per process."""
        with self._lock:
            found = self._parsed.get(digest)
        if found is None:
            found = load_stored(self.source(digest), f"<ledger:{digest}>")
            with self._lock:
                self._parsed[digest] = found
        return found

    # -- published versions ----------------------------------------------------------------------------
    def publish(self, loaded: LoadedWorkflow, by: str, file: str) -> LoadedWorkflow:
        """Store a validated workflow and make it the version hand-offs of its name use from now on.

        Raises:
            WorkflowFileError: it is a part (``part: true``), which only ever runs through ``call``.
        """
        definition = loaded.definition
        if definition.part:
            raise WorkflowFileError([Problem(file, 1, 1, "part", "a part (part: true) runs only through 'call' from "
                                             "another workflow, so it cannot be published for hand-off")])
        self.save(loaded)
        values = {"digest": loaded.digest, "version": definition.version, "published_by": by,
                  "published_at": time.time()}
        with self.engine.begin() as conn:
            if conn.execute(update(published_workflows).where(published_workflows.c.name == definition.name)
                            .values(**values)).rowcount == 0:
                conn.execute(insert(published_workflows).values(name=definition.name, **values))
        log.info("workflow published", workflow=definition.name, version=definition.version, by=by)
        return loaded

    def published(self) -> list[dict[str, Any]]:
        """Every published workflow: name, version, digest, who published it and when."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(published_workflows).order_by(published_workflows.c.name))]

    def published_digest(self, name: str) -> str | None:
        """The digest hand-offs of ``name`` use, or ``None`` when it is not published."""
        with self.engine.connect() as conn:
            return conn.execute(select(published_workflows.c.digest).where(published_workflows.c.name == name)).scalar()

    def load_published(self, name: str) -> LoadedWorkflow | None:
        """The published version of ``name``, parsed (``None`` when it is not published)."""
        digest = self.published_digest(name)
        return None if digest is None else self.load(digest)
