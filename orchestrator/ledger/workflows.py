"""Workflow versions in the ledger: each exact source stored once under its digest, every publish of a
name numbered 1, 2, 3… (a rollback publishes an earlier number's source again, as a new number), the
version of each name that hand-offs use (the newest publish), and the one cache of parsed versions a
process keeps.

A transaction names the digest it was handed off with, so a worker runs exactly that version, calls
included, whatever was published since.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from workflows import Problem, WorkflowFileError

from ..errors import LedgerError
from .schema import published_workflows, workflow_publishes, workflow_versions

if TYPE_CHECKING:
    from workflows import LoadedWorkflow


MIN_DIGEST_PREFIX = 4
"""The fewest characters of a digest that name a version (a publish number is one or two digits)."""


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
            from workflows import load_stored  # the language's parser, only for a reader that runs workflows

            found = load_stored(self.source(digest), f"<ledger:{digest}>")
            with self._lock:
                self._parsed[digest] = found
        return found

    # -- published versions ----------------------------------------------------------------------------
    def publish(self, loaded: LoadedWorkflow, by: str, file: str, *, reason: str | None = None,
                rolled_back_from: int | None = None) -> int:
        """Store a validated workflow and make it the version hand-offs of its name use from now on.

        Returns:
            Its publish number (1 for a name's first publish, then 2, 3…).

        Raises:
            WorkflowFileError: it is a part (``part: true``), which only ever runs through ``call``.
        """
        definition = loaded.definition
        if definition.part:
            raise WorkflowFileError([Problem(file, 1, 1, "part", "a part (part: true) runs only through 'call' from "
                                             "another workflow, so it cannot be published for hand-off")])
        self.save(loaded)
        for _ in range(20):  # two publishes of one name at once: the loser takes the next number
            values = {"digest": loaded.digest, "version": definition.version, "published_by": by,
                      "published_at": time.time()}
            try:
                with self.engine.begin() as conn:
                    number = 1 + (conn.execute(select(func.max(workflow_publishes.c.number))
                                               .where(workflow_publishes.c.name == definition.name)).scalar() or 0)
                    conn.execute(insert(workflow_publishes).values(name=definition.name, number=number, file=file,
                                                                   reason=reason, rolled_back_from=rolled_back_from,
                                                                   **values))
                    if conn.execute(update(published_workflows).where(published_workflows.c.name == definition.name)
                                    .values(**values)).rowcount == 0:
                        conn.execute(insert(published_workflows).values(name=definition.name, **values))
            except IntegrityError:
                continue
            import structlog  # here, not at the top: a reader of the ledger (``autoclerk status``) never logs

            structlog.get_logger(__name__).info("workflow published", workflow=definition.name,
                                                version=definition.version, number=number, by=by)
            return number
        raise LedgerError(f"workflow {definition.name} could not be given a publish number; publish it again")

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every publish of ``name``, oldest first: number, digest, version, who, when, file, reason, rolled_back_from."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(workflow_publishes).where(workflow_publishes.c.name == name).order_by(workflow_publishes.c.number))]

    def find_publish(self, name: str, ref: str) -> dict[str, Any]:
        """One publish of ``name``, by its number or a prefix of its digest.

        Raises:
            LedgerError: ``name`` was never published, or ``ref`` names no publish, or a digest prefix fits
                several different versions (the message lists them).
        """
        publishes = self.versions(name)
        if not publishes:
            raise LedgerError(f"workflow {name} has never been published")
        ref = ref.strip()
        if ref.isdigit() and len(ref) < 8:
            found = [p for p in publishes if p["number"] == int(ref)]
        elif len(ref) < MIN_DIGEST_PREFIX:  # a slip of one or two characters must not name a version
            raise LedgerError(f"'{ref}' is neither a publish number of workflow {name} (1 to "
                              f"{publishes[-1]['number']}) nor a digest prefix of at least {MIN_DIGEST_PREFIX} characters")
        else:
            found = [p for p in publishes if p["digest"].startswith(ref.lower())]
        digests = {p["digest"] for p in found}
        if not found:
            raise LedgerError(f"workflow {name} has no publish {ref} (publish numbers 1 to {publishes[-1]['number']}, "
                              "or a digest prefix)")
        if len(digests) > 1:
            raise LedgerError(f"digest prefix {ref} of workflow {name} fits {len(digests)} versions "
                              f"({', '.join(sorted(d[:12] for d in digests))}); give more of the digest or a publish number")
        return found[-1]

    def rollback(self, name: str, ref: str, by: str, reason: str) -> tuple[int, dict[str, Any]]:
        """Publish the source of an earlier publish of ``name`` again, as a new publish number.

        Returns:
            The new publish number, and the publish rolled back to.

        Raises:
            LedgerError: no reason was given, or ``ref`` names no single publish (see :meth:`find_publish`).
        """
        if not reason.strip():
            raise LedgerError("a rollback needs a reason")
        target = self.find_publish(name, ref)
        if target["digest"] == self.published_digest(name):
            raise LedgerError(f"publish {target['number']} of workflow {name} has the source in use now; nothing to "
                              "roll back to (see 'autoclerk workflows versions')")
        number = self.publish(self.load(target["digest"]), by, target["file"] or f"<publish {target['number']}>",
                              reason=reason.strip(), rolled_back_from=target["number"])
        return number, target

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
