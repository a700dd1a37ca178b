"""Handing a batch off: intake into the ledger, publishing through Celery, waiting for every outcome.

Nothing is published before it is committed to the ledger, and a row leaves the outbox only after the
publish returned (with publisher confirms on RabbitMQ). Handing off the same file again adds nothing
that the ledger already has: finished cases are reported, unfinished ones are resumed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import structlog

from workflows import CasesFileError, LoadedWorkflow

from ..errors import BrokerError
from ..ledger import LEDGER_UNREACHABLE, TERMINAL, Ledger
from .intake import CHUNK_ROWS, AcceptedCase, Rejection, read_cases
from .publisher import Publisher
from .spreadsheet import SHEET_HINT

log = structlog.get_logger(__name__)


@dataclass
class Receipt:
    """What a hand-off accepted.

    Attributes:
        batch_id: the new batch.
        accepted: new cases queued by this hand-off.
        resumed: unfinished cases of earlier hand-offs taken into this batch.
        already_finished: cases the ledger had already finished, by state (not processed again).
        rejected: how many rows failed the input schema (each was passed to ``on_rejection``).
        duplicates: how many rows repeated a case reference of an earlier row of the same file.
        examples: the first rejected or duplicate rows (at most :data:`EXAMPLES`), for reports.
        stopped_by: why reading stopped part-way (the file became unreadable), or ``None``.
        publish_deferred: cases recorded while the broker refused messages (a sweep publishes them).
        warnings: sentences the person who handed off should read (no worker is running yet).

    A receipt stays the same size however large the file: rows are counted, not kept.
    """

    batch_id: str
    workflow: str
    accepted: int = 0
    resumed: int = 0
    already_finished: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    duplicates: int = 0
    examples: list[Rejection] = field(default_factory=list)
    stopped_by: str | None = None
    publish_deferred: int = 0
    warnings: list[str] = field(default_factory=list)

    def refuse(self, rejection: Rejection, *, duplicate: bool) -> None:
        if duplicate:
            self.duplicates += 1
        else:
            self.rejected += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(rejection)

    @property
    def waiting(self) -> int:
        return self.accepted + self.resumed

    @property
    def rows_read(self) -> int:
        """Every row read from the file: queued, refused, or already finished earlier."""
        return self.waiting + self.rejected + self.duplicates + sum(self.already_finished.values())


EXAMPLES = 1000
"""How many rejected rows a receipt keeps as examples."""
REJECTIONS_PER_WRITE = 1000

def audit_hand_off(ledger: Ledger, receipt: Receipt, loaded: LoadedWorkflow, by: str, *, origin: str,
                   file: str | None) -> None:
    """Record a person's hand-off in the audit trail: the batch, its workflow version and its counts (never
    the cases' data). ``file`` is the name the cases came from (``None`` for one case from a form or the API)."""
    ledger.audit.record(by, "batch.hand_off", "batch", receipt.batch_id, origin=origin, detail={
        "workflow": loaded.definition.name, "digest": loaded.digest, "file": file, "accepted": receipt.accepted,
        "resumed": receipt.resumed, "rejected": receipt.rejected + receipt.duplicates})


def hand_off(ledger: Ledger, publisher: Publisher, workflow: LoadedWorkflow, cases: Path, *, priority: int = 0,
             deadline: float | None = None, on_rejection: Callable[[Rejection], None] | None = None,
             tz: dt.tzinfo | None = None, sheet: str | None = None, name: str | None = None, created_by: str | None = None,
             existing: Existing = "resume", sheet_hint: str = SHEET_HINT, raise_when_stopped: bool = True) -> Receipt:
    """Validate, record and publish a batch of cases from a file; return what was accepted and rejected.

    This is the one way a cases file on disk is handed off, whatever its format (CSV, JSON lines or an
    ``.xlsx`` workbook, by the suffix of ``name``; see :func:`read_cases`): the command line, an upload
    once it is on disk and a watched folder all come through here. The file's SHA-256 is recorded on the
    batch. A reference that an earlier hand-off left unfinished is resumed in this batch, and one it
    finished is reported and not processed again (running the same file twice is safe). ``deadline`` is the
    batch's; a row's ``_deadline`` column (read in ``tz``) overrides it for that case.

    Args:
        sheet: the sheet of a workbook that holds the cases (needed when it has several).
        name: how the batch and every message name the file (default: its path).
        created_by: the user handing it off (``None`` for the command line).
        existing: see :func:`hand_off_rows`.
        sheet_hint: how to tell a person to name the sheet when a workbook has several.
        raise_when_stopped: ``False`` returns a file that stops being readable part-way as a receipt with
            ``stopped_by`` set (the service shows it on the batch), instead of raising.

    Raises:
        CasesFileError: the file cannot be read (nothing is recorded), or stops being readable part-way
            (the rows before that point are recorded and published).
    """
    source = name or str(cases)
    digest = file_sha256(cases)
    rows = read_cases(cases, workflow.definition, sheet=sheet, name=source, sheet_hint=sheet_hint, tz=tz)
    receipt = hand_off_rows(ledger, publisher, workflow, rows, source, priority=priority, deadline=deadline,
                            on_rejection=on_rejection, created_by=created_by, existing=existing,
                            source_sha256=lambda: digest)
    if receipt.stopped_by and raise_when_stopped:
        raise CasesFileError(receipt.stopped_by)
    return receipt


def file_sha256(path: Path) -> str | None:
    """The SHA-256 of a cases file (``None`` when it cannot be read: reading the cases says why)."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


Existing = Literal["resume", "refuse"]


def hand_off_rows(ledger: Ledger, publisher: Publisher, workflow: LoadedWorkflow,
                  rows: Iterator[AcceptedCase | Rejection], source_name: str, *, priority: int = 0,
                  deadline: float | None = None, created_by: str | None = None, existing: Existing = "resume",
                  on_rejection: Callable[[Rejection], None] | None = None,
                  source_sha256: Callable[[], str | None] | None = None) -> Receipt:
    """Validate, record and publish checked rows (from :func:`read_cases` or :func:`read_case_stream`).

    Rows are streamed: memory does not grow with them. Every refused row is recorded in the ledger
    (``batch_rejections``) with its number, field and reason, for the batch's report. Cases are recorded in large database
    transactions and published after each one commits; a reference repeated within the rows is found
    through the ledger (its row already belongs to this batch), not through a set held in memory.
    Higher ``priority`` batches (and earlier deadlines) go first wherever the ledger orders work.

    Args:
        existing: what to do with a reference the ledger already has from another hand-off: ``resume``
            (the command line: an unfinished one moves into this batch, a finished one is counted in
            ``already_finished``) or ``refuse`` (the hand-off service: it is reported as a rejected row,
            as a conflict when its data differs, and left where it is).
        source_sha256: asked once the rows are read: the SHA-256 of the file they came from, for the
            batch's reconciliation (``None`` when it is not known, e.g. the file was not read to its end).

    Returns:
        The receipt; ``stopped_by`` is set when the rows stopped being readable part-way (everything
        accepted before that point is recorded and published).

    Raises:
        CasesFileError: the very first row cannot be read (no batch is created).

    A broker that refuses the messages (down, or blocking publishers on a resource alarm) does not stop
    the hand-off: the cases are recorded, counted in ``publish_deferred``, and a sweep publishes them.
    """
    definition = workflow.definition
    ledger.workflows.save(workflow)
    first = next(rows, None)  # surfaces an unreadable file before a batch exists
    batch_id = ledger.batches.create(definition.name, workflow.digest, source_name, priority=priority, deadline=deadline,
                                   created_by=created_by)
    receipt = Receipt(batch_id, definition.name)
    chunk: dict[str, AcceptedCase] = {}
    refused: list[tuple[int, str, str, str]] = []  # written to the ledger REJECTIONS_PER_WRITE at a time

    def record(rejection: Rejection) -> None:
        refused.append((rejection.row, rejection.field, rejection.reason, rejection.kind))
        if len(refused) >= REJECTIONS_PER_WRITE:
            ledger.batches.record_rejections(batch_id, refused)
            refused.clear()

    def refuse(rejection: Rejection, duplicate: bool) -> None:
        receipt.refuse(rejection, duplicate=duplicate)
        record(rejection)
        if on_rejection is not None:
            on_rejection(rejection)

    def duplicate(item: AcceptedCase) -> Rejection:
        return Rejection(item.row, definition.reference_field,
                         f"duplicate case reference {item.case_ref} (an earlier row has it)", "duplicate")

    def flush() -> None:
        new_ids, known = ledger.batches.add_cases(batch_id, definition.name, definition.version, workflow.digest,
                                          definition.max_attempts, [(c.case_ref, c.payload) for c in chunk.values()],
                                          priority=priority, deadline=deadline,
                                          deadlines={c.case_ref: c.deadline for c in chunk.values() if c.deadline is not None})
        receipt.accepted += len(new_ids)
        unfinished = []
        for ref, (tx_id, state, owner_batch, same) in known.items():
            if owner_batch == batch_id:
                refuse(duplicate(chunk[ref]), True)
            elif existing == "refuse":
                what = "was already handed off" if same else "conflicts with the case already handed off"
                refuse(Rejection(chunk[ref].row, definition.reference_field,
                                 f"case reference {ref} {what} in batch {owner_batch} (now {state.replace('_', ' ')}); "
                                 "not queued again", "already_handed_off" if same else "conflict"), True)
            elif state in TERMINAL:
                receipt.already_finished[state] = receipt.already_finished.get(state, 0) + 1
                # not a refusal (running a file again is safe), but the reconciliation must account for the row
                record(Rejection(chunk[ref].row, definition.reference_field,
                                 f"case reference {ref} already ended {state.replace('_', ' ')} in batch {owner_batch}; "
                                 "not run again", "already_finished"))
            else:
                unfinished.append(tx_id)
        resumed = ledger.batches.adopt(batch_id, unfinished)
        receipt.resumed += len(resumed)
        chunk.clear()
        try:
            publisher.publish(new_ids + resumed)
        except BrokerError as exc:
            # Recorded is enough: the rows stay in the outbox and a sweep publishes them once the broker
            # takes messages again (it was down, or an alarm blocks publishers).
            receipt.publish_deferred += len(new_ids) + len(resumed)
            log.warning("publish deferred to the sweep", batch=batch_id, cases=len(new_ids) + len(resumed), error=str(exc))

    try:
        try:
            for item in itertools.chain([first] if first is not None else [], rows):
                if isinstance(item, Rejection):
                    refuse(item, False)
                    continue
                if item.case_ref in chunk:
                    refuse(duplicate(item), True)
                    continue
                chunk[item.case_ref] = item
                if len(chunk) >= CHUNK_ROWS:
                    flush()
        except CasesFileError as exc:
            receipt.stopped_by = str(exc)  # what came before the unreadable stretch is kept
        if chunk:
            flush()
    finally:
        ledger.batches.record_rejections(batch_id, refused)
        ledger.batches.finish_intake(batch_id, rejected=receipt.rejected + receipt.duplicates, stopped=bool(receipt.stopped_by),
                                     rows_read=receipt.rows_read, accepted=receipt.waiting,
                                     input_sha256=source_sha256() if source_sha256 is not None else None)
    return receipt


def wait_for_batch(ledger: Ledger, publisher: Publisher, batch_id: str, *, timeout_s: float | None = None,
                   on_progress: Callable[[dict[str, int]], None] | None = None, poll_s: float = 0.2,
                   sweep_every_s: float = 2.0) -> dict[str, int]:
    """Block until every transaction of the batch is terminal; return the counts by state.

    Every ``sweep_every_s`` it publishes what the outbox still holds, retries whose time has come and
    what a dead worker's expired lease left behind (duplicates are absorbed by the ledger's claim).

    Raises:
        TimeoutError: ``timeout_s`` passed first (the work goes on; running again resumes it).
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last_sweep = time.monotonic()
    while True:
        try:
            asked = time.monotonic()
            counts = ledger.reports.counts(batch_id)
            # Counting a batch of millions takes a while: ask at most a tenth of the time, so watching the
            # batch never costs more than a tenth of a core.
            wait_s = max(poll_s, 9 * (time.monotonic() - asked))
            if on_progress:
                on_progress(counts)
            if not any(counts[s] for s in counts if s not in TERMINAL):
                ledger.batches.settle(batch_id)  # finishing its last case did, unless two finished at once
                return counts
            if counts["paused"] == sum(counts[s] for s in counts if s not in TERMINAL) and ledger.reports.held(batch_id):
                return counts  # what is left was held for a missing setting: it waits for a person, not for time
        except LEDGER_UNREACHABLE as exc:
            # The database restarted or cut the connection: the work goes on in the workers, and the
            # pool reconnects on the next call. Only the deadline ends the wait.
            log.warning("ledger unreachable; watching the batch again shortly", error=type(exc).__name__)
            wait_s = 1.0
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id} still has unfinished transactions after {timeout_s:g} s")
        if time.monotonic() - last_sweep > sweep_every_s:
            last_sweep = time.monotonic()
            try:
                publisher.sweep(batch_id)
            except BrokerError as exc:  # an outage delays the sweep; what it would publish stays in the outbox
                log.warning("sweep failed; trying again later", error=str(exc))
            except LEDGER_UNREACHABLE as exc:  # the ledger keeps what the sweep would publish
                log.warning("sweep failed; trying again later", error=type(exc).__name__)
        time.sleep(wait_s)
