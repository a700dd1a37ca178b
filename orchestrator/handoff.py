"""Handing a batch off: intake into the ledger, publishing through Celery, waiting for every outcome.

Nothing is published before it is committed to the ledger, and a row leaves the outbox only after the
publish returned (with publisher confirms on RabbitMQ). Handing off the same file again adds nothing
that the ledger already has: finished cases are reported, unfinished ones are resumed.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from workflows import LoadedWorkflow

from .intake import CHUNK_ROWS, AcceptedCase, Rejection, read_cases
from .errors import BrokerError
from .ledger import TERMINAL, Ledger
from .publisher import Publisher

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


EXAMPLES = 1000
"""How many rejected rows a receipt keeps as examples."""

def hand_off(ledger: Ledger, publisher: Publisher, workflow: LoadedWorkflow, cases: Path, *, priority: int = 0,
             deadline: float | None = None, on_rejection: Callable[[Rejection], None] | None = None) -> Receipt:
    """Validate, record and publish a batch of cases; return what was accepted and rejected.

    The file is streamed: memory does not grow with it. Cases are recorded in large database
    transactions and published after each one commits; a reference repeated within the file is found
    through the ledger (its row already belongs to this batch), not through a set held in memory.
    Higher ``priority`` batches (and earlier deadlines) go first wherever the ledger orders work.

    Raises:
        CasesFileError: the file cannot be read (nothing is recorded).
        BrokerError: publishing failed after the cases were recorded (they are resumed by the next run).
    """
    definition = workflow.definition
    ledger.save_workflow(workflow.digest, definition.name, definition.version, workflow.stored_text)
    rows = read_cases(cases, definition)
    first = next(rows, None)  # surfaces an unreadable file before a batch exists
    batch_id = ledger.create_batch(definition.name, workflow.digest, str(cases), priority=priority, deadline=deadline)
    receipt = Receipt(batch_id, definition.name)
    chunk: dict[str, AcceptedCase] = {}

    def refuse(rejection: Rejection, duplicate: bool) -> None:
        receipt.refuse(rejection, duplicate=duplicate)
        if on_rejection is not None:
            on_rejection(rejection)

    def duplicate(item: AcceptedCase) -> Rejection:
        return Rejection(item.row, definition.reference_field,
                         f"duplicate case reference {item.case_ref} (an earlier row has it)")

    def flush() -> None:
        new_ids, existing = ledger.add_cases(batch_id, definition.name, definition.version, workflow.digest,
                                             definition.max_attempts, [(c.case_ref, c.payload) for c in chunk.values()],
                                             priority=priority, deadline=deadline)
        receipt.accepted += len(new_ids)
        unfinished = []
        for ref, (tx_id, state, owner_batch) in existing.items():
            if owner_batch == batch_id:
                refuse(duplicate(chunk[ref]), True)
            elif state in TERMINAL:
                receipt.already_finished[state] = receipt.already_finished.get(state, 0) + 1
            else:
                unfinished.append(tx_id)
        resumed = ledger.adopt(batch_id, unfinished)
        receipt.resumed += len(resumed)
        publisher.publish(new_ids + resumed)
        chunk.clear()

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
    if chunk:
        flush()
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
        asked = time.monotonic()
        counts = ledger.counts(batch_id)
        # Counting a batch of millions takes a while: ask at most a tenth of the time, so watching the
        # batch never costs more than a tenth of a core.
        wait_s = max(poll_s, 9 * (time.monotonic() - asked))
        if on_progress:
            on_progress(counts)
        if not any(counts[s] for s in counts if s not in TERMINAL):
            return counts
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id} still has unfinished transactions after {timeout_s:g} s")
        if time.monotonic() - last_sweep > sweep_every_s:
            last_sweep = time.monotonic()
            try:
                publisher.sweep(batch_id)
            except BrokerError as exc:  # an outage delays the sweep; what it would publish stays in the outbox
                log.warning("sweep failed; trying again later", error=str(exc))
        time.sleep(wait_s)
