"""What the hand-off service's pages and its API share: the ledger, the accounts, the published workflows,
and the hand-off of one case, of a streamed batch and of a corrected exception.

Everything here is plain synchronous code (the web layer runs it in worker threads): it can be tested
without HTTP, and the pages and the API cannot drift apart in what they accept.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import IO, Any

import structlog

from workflows import LoadedWorkflow, field_errors, load_workflow

from ..accounts import Accounts, User
from ..ledger import Ledger
from ..queue import AcceptedCase, BrokerCollector, Publisher, Receipt, check_row, hand_off_rows, operations_figures, read_case_stream
from ..settings import Settings

log = structlog.get_logger(__name__)


class HandoffService:
    """The service's state for its whole life (thread-safe, as the ledger is)."""

    def __init__(self, settings: Settings, ledger: Ledger, publisher: Publisher) -> None:
        self.settings, self.ledger, self.publisher = settings, ledger, publisher
        self.accounts = Accounts(ledger.engine)
        self._broker = None if settings.embedded else BrokerCollector(settings.broker_url)

    def broker_depths(self) -> dict[str, float] | None:
        """Messages in RabbitMQ's work and dead-letter queues (NaN when it cannot be asked; ``None`` when embedded)."""
        return self._broker.depths() if self._broker is not None else None

    def operations(self) -> dict[str, Any]:
        """The operations page's figures (the API returns the same): see :func:`orchestrator.queue.operations_figures`."""
        return operations_figures(self.ledger, self.settings, self.broker_depths())

    # -- workflows -------------------------------------------------------------------------------------
    def workflow(self, name: str) -> LoadedWorkflow | None:
        """The published version of workflow ``name`` (``None`` when it is not published)."""
        return self.ledger.workflows.load_published(name)

    def publish(self, files: dict[str, bytes], main: str, by: str) -> LoadedWorkflow:
        """Validate a workflow (``main`` among ``files``, with the parts it calls) and publish it.

        Raises:
            WorkflowFileError: a file is malformed (every problem located, file by file).
        """
        with tempfile.TemporaryDirectory(prefix="autoclerk-publish-") as folder:
            for name, content in files.items():
                (Path(folder) / name).write_bytes(content)
            loaded = load_workflow(Path(folder) / main)
        return self.ledger.workflows.publish(loaded, by, main)

    # -- hand-off --------------------------------------------------------------------------------------
    def hand_off_stream(self, user: User, loaded: LoadedWorkflow, stream: IO[str], name: str, *,
                        json_lines: bool = False) -> Receipt:
        """Hand off a batch read from a text stream (an upload) as it arrives; every refused row is recorded.

        Raises:
            CasesFileError: the stream is unreadable from its first line (no batch is created). Later
                trouble stops the reading and is reported in ``Receipt.stopped_by``.
        """
        rows = read_case_stream(stream, name, loaded.definition, json_lines=json_lines)
        receipt = hand_off_rows(self.ledger, self.publisher, loaded, rows, name, created_by=user.username,
                                existing="refuse")
        log.info("batch handed off", batch=receipt.batch_id, workflow=loaded.definition.name, by=user.username,
                 accepted=receipt.accepted, rejected=receipt.rejected + receipt.duplicates)
        return receipt

    def hand_off_case(self, user: User, loaded: LoadedWorkflow, row: dict[str, Any]) -> Receipt | dict[str, str]:
        """Hand off one case from a form or an API call: the receipt, or the errors by field."""
        definition = loaded.definition
        errors = field_errors(definition.input, row)
        if errors:
            return errors
        checked = check_row(definition, row)
        assert isinstance(checked, AcceptedCase)
        known = self.ledger.cases.by_ref(definition.name, checked.case_ref)
        if known is not None:
            return {definition.reference_field: f"case {checked.case_ref} was already handed off "
                                                f"(batch {known['batch_id']}, now {known['state'].replace('_', ' ')})"}
        receipt = hand_off_rows(self.ledger, self.publisher, loaded, iter([checked]), "one case (form)",
                                created_by=user.username, existing="refuse")
        if receipt.examples:  # another hand-off took the reference a moment ago
            return {definition.reference_field: receipt.examples[0].reason}
        return receipt

    def resubmit(self, user: User, case: dict[str, Any], row: dict[str, Any], note: str | None) -> dict[str, str] | None:
        """Send an open exception back to the bots with corrected data: ``None``, or the errors by field."""
        loaded = self.ledger.workflows.load(case["digest"])
        definition = loaded.definition
        row = {**row, definition.reference_field: case["case_ref"]}  # the reference itself never changes
        errors = field_errors(definition.input, row)
        if errors:
            return errors
        checked = check_row(definition, row)
        assert isinstance(checked, AcceptedCase)
        if not self.ledger.cases.resubmit(case["id"], checked.payload, user.username, attempts=definition.max_attempts,
                                      note=note):
            return {"form": "this case is no longer waiting for a person (someone else acted on it)"}
        self.publisher.sweep(case["batch_id"])
        return None

    # -- who may see what ------------------------------------------------------------------------------
    @staticmethod
    def can_see(user: User, created_by: str | None) -> bool:
        """Operators see every batch and case; a caseworker sees the ones they handed off."""
        return user.has("operator") or (user.has("caseworker") and created_by == user.username)

    def visible_batch(self, user: User, batch_id: str) -> dict[str, Any] | None:
        """The batch, when ``user`` may see it (``None`` also when it does not exist: they look the same)."""
        batch = self.ledger.batches.get(batch_id)
        return batch if batch is not None and self.can_see(user, batch["created_by"]) else None

    def visible_case(self, user: User, tx_id: int) -> dict[str, Any] | None:
        """The case with its attempts and actions, when ``user`` may see it."""
        case = self.ledger.cases.get(tx_id)
        return case if case is not None and self.can_see(user, case["created_by"]) else None


def evidence_paths(case: dict[str, Any]) -> list[str]:
    """Every evidence file the ledger lists for a case, oldest attempt first, each once."""
    paths: list[str] = []
    for attempt in case["history"]:
        paths += [p for p in attempt.get("evidence") or [] if p not in paths]
    paths += [p for p in case["evidence"] if p not in paths]
    return paths


def screenshots_of(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The screenshots in a case's evidence, newest attempt first, numbered as :func:`evidence_paths` numbers them."""
    shots = []
    for index, path in enumerate(evidence_paths(case)):
        if path.endswith(".png"):
            attempt = next((part for part in Path(path).parts if part.startswith("attempt-")), "")
            shots.append({"index": index, "attempt": attempt.removeprefix("attempt-"), "name": Path(path).name})
    return list(reversed(shots))
