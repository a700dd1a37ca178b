"""One way to operate a batch (``orchestrator.queue.operate_batch``), and one cache of parsed workflows
(``Ledger.workflows``), on both ledger backends."""

from __future__ import annotations

import pytest

from orchestrator import BrokerError, Ledger, LedgerError, Outcome
from orchestrator.queue import ACTIONS, DONE, operate_batch
from workflows import parse_workflow

WORKFLOW = """
name: echo
version: 1
systems: {portal: {}}
input:
  case_ref: {type: string, required: true}
steps:
  - goto: {system: portal, url: /}
"""


class RecordingPublisher:
    """Stands in for the broker: records what it was asked to publish, or fails like a broker that is down."""

    def __init__(self, ledger: Ledger, *, down: bool = False) -> None:
        self.ledger, self.down = ledger, down
        self.swept: list[str] = []

    def sweep(self, batch_id: str | None = None) -> int:
        if self.down:
            raise BrokerError("the broker at amqp://127.0.0.1:1// cannot be reached")
        assert batch_id is not None
        self.swept.append(batch_id)
        due = self.ledger.outbox.due(batch_id)
        self.ledger.outbox.mark_published(due)
        return len(due)


def batch_of(ledger: Ledger, count: int) -> tuple[str, list[int]]:
    batch = ledger.batches.create("echo", "d1", "cases.csv")
    ids, _ = ledger.batches.add_cases(batch, "echo", 1, "d1", 1, [(f"R{i}", {"case_ref": f"R{i}"}) for i in range(count)])
    ledger.outbox.mark_published(ids)
    return batch, ids


def test_pause_holds_waiting_cases_and_resume_publishes_them_at_once(ledger: Ledger) -> None:
    batch, ids = batch_of(ledger, 4)
    publisher = RecordingPublisher(ledger)
    paused = operate_batch(ledger, batch, "pause", by="olga", publisher=publisher)  # type: ignore[arg-type]
    assert (paused.count, paused.published) == (4, None) and publisher.swept == []
    assert ledger.reports.counts(batch)["paused"] == 4 and ledger.batches.get(batch)["state"] == "paused"  # type: ignore[index]
    resumed = operate_batch(ledger, batch, "resume", by="olga", publisher=publisher)  # type: ignore[arg-type]
    assert (resumed.count, resumed.published, resumed.not_published) == (4, 4, None)
    assert publisher.swept == [batch] and ledger.outbox.due(batch) == []
    assert f"Batch {DONE['resume']}" == "Batch resumed" and set(ACTIONS) == set(DONE)


def test_retry_failed_requeues_failed_cases_and_leaves_them_to_the_sweep_when_the_broker_is_down(ledger: Ledger) -> None:
    batch, ids = batch_of(ledger, 2)
    claim = ledger.transactions.claim(ids[0], "w1", lease_s=60)
    assert claim is not None
    ledger.transactions.finish_many([Outcome(claim, "failed", error_class="StepTimeout")])
    retried = operate_batch(ledger, batch, "retry-failed", by="olga", publisher=RecordingPublisher(ledger, down=True),  # type: ignore[arg-type]
                            attempts=2)
    assert retried.count == 1 and retried.published is None and "cannot be reached" in (retried.not_published or "")
    row = ledger.transactions.get(ids[0])
    assert row and row["state"] == "queued" and row["max_attempts"] == row["attempts"] + 2
    assert ids[0] in ledger.outbox.due(batch)  # the next sweep publishes it


def test_an_unknown_action_or_batch_is_refused_and_changes_nothing(ledger: Ledger) -> None:
    batch, _ = batch_of(ledger, 1)
    with pytest.raises(ValueError, match="action must be one of pause, resume, cancel, retry-failed"):
        operate_batch(ledger, batch, "delete", by="olga")
    with pytest.raises(LedgerError, match="there is no batch nope"):
        operate_batch(ledger, "nope", "cancel", by="olga")
    assert ledger.reports.counts(batch)["queued"] == 1


def test_a_workflow_version_is_parsed_once_per_ledger_and_publishing_stores_it(ledger: Ledger) -> None:
    loaded = parse_workflow(WORKFLOW, "echo.yaml")
    ledger.workflows.publish(loaded, "arthur", "echo.yaml")
    first = ledger.workflows.load(loaded.digest)
    assert first is ledger.workflows.load(loaded.digest) is ledger.workflows.load_published("echo")
    assert first.definition.name == "echo" and ledger.workflows.published_digest("echo") == loaded.digest
    assert ledger.workflows.load_published("other") is None
    with pytest.raises(LedgerError, match="is not in the ledger"):
        ledger.workflows.load("0" * 16)
