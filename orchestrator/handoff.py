"""Handing a batch off: intake into the ledger, publishing through Celery, waiting for every outcome.

Nothing is published before it is committed to the ledger, and a row leaves the outbox only after the
publish returned (with publisher confirms on RabbitMQ). Handing off the same file again adds nothing
that the ledger already has: finished cases are reported, unfinished ones are resumed.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError

from workflows import LoadedWorkflow

from .celery_app import TASK_NAME
from .errors import BrokerError
from .intake import CHUNK_ROWS, AcceptedCase, Rejection, read_cases
from .ledger import TERMINAL, Ledger


@dataclass
class Receipt:
    """What a hand-off accepted.

    Attributes:
        batch_id: the new batch.
        accepted: new cases queued by this hand-off.
        resumed: unfinished cases of earlier hand-offs taken into this batch.
        already_finished: cases the ledger had already finished, by state (not processed again).
        rejected: rows that failed the input schema.
        duplicates: rows repeating a case reference seen earlier in the same file.
    """

    batch_id: str
    workflow: str
    accepted: int = 0
    resumed: int = 0
    already_finished: dict[str, int] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: list[Rejection] = field(default_factory=list)

    @property
    def waiting(self) -> int:
        return self.accepted + self.resumed


class Publisher:
    """Publishes transaction ids to the broker and takes them out of the outbox."""

    def __init__(self, app: Celery, ledger: Ledger) -> None:
        self.app, self.ledger = app, ledger

    def publish(self, ids: Iterable[int]) -> None:
        """Publish each id, then mark them published.

        Raises:
            BrokerError: the broker cannot be reached; the ids stay in the outbox for the sweep.
        """
        ids = list(ids)
        try:
            with self.app.producer_or_acquire() as producer:
                for tx_id in ids:
                    self.app.send_task(TASK_NAME, args=(tx_id,), producer=producer)
        except (KombuOperationalError, OSError) as exc:
            raise BrokerError(f"the broker at {self.app.conf.broker_url} cannot be reached ({exc})") from None
        self.ledger.mark_published(ids)


def hand_off(ledger: Ledger, publisher: Publisher, workflow: LoadedWorkflow, cases: Path) -> Receipt:
    """Validate, record and publish a batch of cases; return what was accepted and rejected.

    Raises:
        CasesFileError: the file cannot be read (nothing is recorded).
        BrokerError: publishing failed after the cases were recorded (they are resumed by the next run).
    """
    definition = workflow.definition
    ledger.save_workflow(workflow.digest, definition.name, definition.version, workflow.stored_text)
    rows = read_cases(cases, definition)
    first = next(rows, None)  # surfaces an unreadable file before a batch exists
    batch_id = ledger.create_batch(definition.name, workflow.digest, str(cases))
    receipt = Receipt(batch_id, definition.name)
    seen: set[str] = set()
    chunk: list[AcceptedCase] = []

    def flush() -> None:
        new_ids, existing = ledger.add_cases(batch_id, definition.name, workflow.digest, definition.max_attempts,
                                             [(c.case_ref, c.payload) for c in chunk])
        receipt.accepted += len(new_ids)
        unfinished = []
        for tx_id, state in existing.values():
            if state in TERMINAL:
                receipt.already_finished[state] = receipt.already_finished.get(state, 0) + 1
            else:
                unfinished.append(tx_id)
        resumed = ledger.adopt(batch_id, unfinished)
        receipt.resumed += len(resumed)
        publisher.publish(new_ids + resumed)
        chunk.clear()

    for item in itertools.chain([first] if first is not None else [], rows):
        if isinstance(item, Rejection):
            receipt.rejected.append(item)
            continue
        if item.case_ref in seen:
            receipt.duplicates.append(Rejection(item.row, definition.reference_field,
                                                f"duplicate case reference {item.case_ref} (an earlier row has it)"))
            continue
        seen.add(item.case_ref)
        chunk.append(item)
        if len(chunk) >= CHUNK_ROWS:
            flush()
    if chunk:
        flush()
    return receipt


def wait_for_batch(ledger: Ledger, publisher: Publisher, batch_id: str, *, timeout_s: float | None = None,
                   on_progress: Callable[[dict[str, int]], None] | None = None, poll_s: float = 0.2,
                   sweep_every_s: float = 5.0) -> dict[str, int]:
    """Block until every transaction of the batch is terminal; return the counts by state.

    Every ``sweep_every_s`` it republishes what the outbox still holds and what a dead worker's expired
    lease left behind (duplicates are absorbed by the ledger's claim).

    Raises:
        TimeoutError: ``timeout_s`` passed first (the work goes on; running again resumes it).
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last_sweep = time.monotonic()
    while True:
        counts = ledger.counts(batch_id)
        if on_progress:
            on_progress(counts)
        if not any(counts[s] for s in counts if s not in TERMINAL):
            return counts
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id} still has unfinished transactions after {timeout_s:g} s")
        if time.monotonic() - last_sweep > sweep_every_s:
            last_sweep = time.monotonic()
            stale = ledger.unpublished(batch_id)
            if stale:
                publisher.publish(stale)
        time.sleep(poll_s)
