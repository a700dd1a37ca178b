"""What the hand-off service's pages and its API share: the ledger, the accounts, the published workflows,
and the hand-off of one case, of a streamed batch and of a corrected exception.

Everything here is plain synchronous code (the web layer runs it in worker threads): it can be tested
without HTTP, and the pages and the API cannot drift apart in what they accept.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import structlog
from sqlalchemy import text

from workflows import FIELD_MASK, LoadedWorkflow, field_errors, load_workflow, mask_case, secret_fields, secret_values
from workflows.evidence import (FAILURE, LOOKUP, SECOND_RUN, VERIFY, VERIFY_AFTER, VERIFY_BEFORE, attempt_number,
                                 is_heal_shot)

from ..accounts import Accounts, SignInGuard, User
from ..errors import ConfigurationError, UsageError
from ..ledger import Ledger
from ..queue import DEADLINE_COLUMN, AcceptedCase, Rejection, audit_hand_off, check_workers, publish_workflow, rollback_workflow, mask_json, missing_configuration, BrokerCollector, Publisher, Receipt, check_row, hand_off, hand_off_rows, operations_figures, read_case_stream
from ..settings import Settings

log = structlog.get_logger(__name__)


class OutsideLimit(UsageError):
    """A limited user asked to publish a workflow that is not one of theirs (the pages and the API: 403)."""


class HandoffService:
    """The service's state for its whole life (thread-safe, as the ledger is)."""

    def __init__(self, settings: Settings, ledger: Ledger, publisher: Publisher) -> None:
        self.settings, self.ledger, self.publisher = settings, ledger, publisher
        self.accounts = Accounts(ledger.engine)
        self.sign_in_guard = SignInGuard(ledger.engine, slow_after=settings.sign_in_slow_after,
                                         lock_after=settings.sign_in_lock_after,
                                         lock_after_address=settings.sign_in_lock_after_address,
                                         lock_minutes=settings.sign_in_lock_minutes)
        self._broker = None if settings.embedded else BrokerCollector(settings.broker_url)

    def broker_depths(self) -> dict[str, float] | None:
        """Messages in RabbitMQ's work and dead-letter queues (NaN when it cannot be asked; ``None`` when embedded)."""
        return self._broker.depths() if self._broker is not None else None

    def readiness(self) -> dict[str, str]:
        """Whether the ledger and the broker can be reached: ``ok`` or ``unreachable`` for each (the broker is
        ``embedded`` when it runs in this process)."""
        try:
            with self.ledger.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            ledger = "ok"
        except Exception:  # noqa: BLE001 - any failure to reach the database is the answer
            ledger = "unreachable"
        depths = self.broker_depths()
        broker = "embedded" if depths is None else "unreachable" if any(math.isnan(v) for v in depths.values()) else "ok"
        return {"ledger": ledger, "broker": broker}

    def operations(self, user: User) -> dict[str, Any]:
        """The operations page's figures (the API returns the same): see :func:`orchestrator.queue.operations_figures`.

        For a limited user the lists that name work (the newest batches, the cases held and the deadlines
        by workflow) hold only their workflows; the figures of the shared machinery (the target, throughput,
        the queue's depth, the bots, the counts by state) stay the whole service's.
        """
        figures = operations_figures(self.ledger, self.settings, self.broker_depths())
        if user.limited:
            figures["batches"] = [b for b in figures["batches"] if user.may(b["workflow"])]
            figures["target"]["batches"] = figures["batches"]
            for key in ("held", "deadlines"):
                figures[key] = {w: v for w, v in figures[key].items() if user.may(w)}
        return figures

    # -- workflows -------------------------------------------------------------------------------------
    def workflow(self, name: str, user: User | None = None) -> LoadedWorkflow | None:
        """The published version of workflow ``name`` (``None`` when it is not published, or when ``user`` is
        given and their limit does not reach it: the two look the same)."""
        if user is not None and not user.may(name):
            return None
        return self.ledger.workflows.load_published(name)

    def published(self, user: User) -> list[dict[str, Any]]:
        """The published workflows that ``user`` reaches."""
        return [row for row in self.ledger.workflows.published() if user.may(row["name"])]

    def publish(self, files: dict[str, bytes], main: str, user: User, *, origin: str) -> tuple[LoadedWorkflow, int]:
        """Validate a workflow (``main`` among ``files``, with the parts it calls), publish it and record that
        in the audit trail.

        Returns:
            The workflow and its publish number.

        Raises:
            WorkflowFileError: a file is malformed (every problem located, file by file).
            OutsideLimit: ``user`` is limited and the workflow is not one of theirs (nothing is published).
        """
        with tempfile.TemporaryDirectory(prefix="autoclerk-publish-") as folder:
            for name, content in files.items():
                (Path(folder) / name).write_bytes(content)
            loaded = load_workflow(Path(folder) / main)
        if not user.may(loaded.definition.name):
            raise OutsideLimit(f"{user.username} may publish only the workflows of their teams "
                               f"({', '.join(sorted(user.workflows or ())) or 'none'}), not {loaded.definition.name}; "
                               "nothing was published")
        return loaded, publish_workflow(self.ledger, loaded, user.username, main, origin=origin)

    def rollback(self, name: str, ref: str, user: User, reason: str, *, origin: str) -> tuple[int, dict[str, Any]]:
        """Publish the source of an earlier publish of ``name`` again (see :meth:`WorkflowStore.rollback`),
        recorded in the audit trail.

        Raises:
            LedgerError: no reason, or ``ref`` names no single publish of ``name``.
            OutsideLimit: ``user`` is limited and ``name`` is not one of their workflows.
        """
        if not user.may(name):
            raise OutsideLimit(f"{user.username} may roll back only the workflows of their teams, not {name}")
        return rollback_workflow(self.ledger, name, ref, user.username, reason, origin=origin)

    def publish_warning(self, loaded: LoadedWorkflow) -> str | None:
        """Why hand-offs to a workflow just published would be refused or wait now, or ``None``."""
        try:
            return self.preflight(loaded, what="It is published; hand-offs to it are refused until that is fixed")
        except ConfigurationError as exc:
            return str(exc)

    def preflight(self, loaded: LoadedWorkflow, *, what: str = "Nothing was queued") -> str | None:
        """Check that the bots can run ``loaded`` before a hand-off: on the embedded broker, this process's
        secrets, env values and system URLs; with a broker, the names the live workers report.

        Returns:
            A warning (with a broker, no worker is live: the queue holds the work), or ``None``.

        Raises:
            ConfigurationError: the workflow cannot run; one line names what is missing and how to provide it.
        """
        if self.settings.embedded:
            problems = missing_configuration(loaded, self.settings)
            if problems:
                raise ConfigurationError(f"workflow {loaded.definition.name} cannot run here: {'; '.join(problems)} "
                                         f"(where the service runs). {what}")
            return None
        return check_workers(loaded, self.ledger.heartbeats.workers(), what=what)

    # -- hand-off --------------------------------------------------------------------------------------
    def hand_off_stream(self, user: User, loaded: LoadedWorkflow, stream: IO[str], name: str, *, origin: str,
                        json_lines: bool = False, source_sha256: Callable[[], str | None] | None = None,
                        deadline: float | None = None) -> Receipt:
        """Hand off a batch read from a text stream (an upload) as it arrives; every refused row is recorded.

        Raises:
            CasesFileError: the stream is unreadable from its first line (no batch is created). Later
                trouble stops the reading and is reported in ``Receipt.stopped_by``.
        """
        rows = read_case_stream(stream, name, loaded.definition, json_lines=json_lines, tz=self.settings.tz)
        receipt = hand_off_rows(self.ledger, self.publisher, loaded, rows, name, created_by=user.username,
                                existing="refuse", source_sha256=source_sha256, deadline=deadline)
        log.info("batch handed off", batch=receipt.batch_id, workflow=loaded.definition.name, by=user.username,
                 accepted=receipt.accepted, rejected=receipt.rejected + receipt.duplicates)
        audit_hand_off(self.ledger, receipt, loaded, user.username, origin=origin, file=name)
        return receipt

    def hand_off_file(self, user: User, loaded: LoadedWorkflow, path: Path, name: str, *, origin: str,
                      sheet: str | None = None, sheet_hint: str, deadline: float | None = None) -> Receipt:
        """Hand off a batch from a file on disk (an uploaded workbook, spooled whole: a zip is read from its
        end); every refused row is recorded, and the file's SHA-256 with the batch.

        Args:
            name: the name the file was uploaded as (its suffix says its format).
            sheet: the sheet of a workbook that holds the cases.
            sheet_hint: how to tell the person to name the sheet when the workbook has several.

        Raises:
            CasesFileError: the file cannot be read as cases (no batch is created). Later trouble stops
                the reading and is reported in ``Receipt.stopped_by``.
        """
        receipt = hand_off(self.ledger, self.publisher, loaded, path, name=name, sheet=sheet, sheet_hint=sheet_hint,
                           created_by=user.username, existing="refuse", raise_when_stopped=False, deadline=deadline,
                           tz=self.settings.tz)
        log.info("batch handed off", batch=receipt.batch_id, workflow=loaded.definition.name, by=user.username,
                 accepted=receipt.accepted, rejected=receipt.rejected + receipt.duplicates)
        audit_hand_off(self.ledger, receipt, loaded, user.username, origin=origin, file=name)
        return receipt

    def hand_off_case(self, user: User, loaded: LoadedWorkflow, row: dict[str, Any], *, origin: str,
                      deadline: str | None = None) -> Receipt | dict[str, str]:
        """Hand off one case from a form or an API call: the receipt, or the errors by field. ``deadline`` (ISO
        8601) is the case's own (as a ``_deadline`` column in ``row`` is).

        Raises:
            ConfigurationError: the bots cannot run the workflow (see :meth:`preflight`); nothing is queued.
        """
        definition = loaded.definition
        warning = self.preflight(loaded)
        if deadline:
            row = {**row, DEADLINE_COLUMN: deadline}
        errors = field_errors(definition.input, row)
        checked = check_row(definition, row, tz=self.settings.tz)
        if isinstance(checked, Rejection) and checked.field == DEADLINE_COLUMN:
            errors["deadline"] = checked.reason
        if errors:
            return errors
        assert isinstance(checked, AcceptedCase)
        known = self.ledger.cases.by_ref(definition.name, checked.case_ref)
        if known is not None:
            return {definition.reference_field: f"Case {checked.case_ref} was already handed off "
                                                f"(batch {known['batch_id']}, now {known['state'].replace('_', ' ')})"}
        receipt = hand_off_rows(self.ledger, self.publisher, loaded, iter([checked]), "one case (form)",
                                created_by=user.username, existing="refuse")
        if receipt.examples:  # another hand-off took the reference a moment ago
            return {definition.reference_field: receipt.examples[0].reason}
        if warning is not None:
            receipt.warnings.append(warning)
        audit_hand_off(self.ledger, receipt, loaded, user.username, origin=origin, file=None)
        return receipt

    def resubmit(self, user: User, case: dict[str, Any], row: dict[str, Any], note: str | None, *,
                 origin: str) -> dict[str, str] | None:
        """Send an open exception back to the bots with corrected data: ``None``, or the errors by field."""
        loaded = self.ledger.workflows.load(case["digest"])
        definition = loaded.definition
        row = {**row, definition.reference_field: case["case_ref"]}  # the reference itself never changes
        stored = self.ledger.cases.get(case["id"])
        for name in secret_fields(definition.input):  # a secret field left as shown (masked) keeps its value
            if row.get(name) == FIELD_MASK and stored is not None:
                row[name] = stored["payload"].get(name)
        errors = field_errors(definition.input, row)
        if errors:
            return errors
        checked = check_row(definition, row)
        assert isinstance(checked, AcceptedCase)
        if not self.ledger.cases.resubmit(case["id"], checked.payload, user.username, attempts=definition.max_attempts,
                                      note=note):
            return {"form": "This case is no longer waiting for a person (someone else acted on it)"}
        self.ledger.audit.record(user.username, "case.resubmit", "case", case["id"], origin=origin,
                                 detail={"batch": case["batch_id"], "note": note})  # the corrected data stays out
        self.publisher.sweep(case["batch_id"])
        return None

    def resolve(self, user: User, tx_id: int, resolution: str, note: str | None, *, origin: str) -> bool:
        """Mark an open exception done by hand or closed (``resolution``: ``done_by_hand`` or ``closed``),
        recorded in the audit trail; whether it was still open."""
        if not self.ledger.cases.resolve(tx_id, resolution, user.username, note):
            return False
        self.ledger.audit.record(user.username, "case.close" if resolution == "closed" else "case.done_by_hand",
                                 "case", tx_id, origin=origin, detail={"note": note})
        return True

    # -- who may see what ------------------------------------------------------------------------------
    @staticmethod
    def can_see(user: User, created_by: str | None, workflow: str) -> bool:
        """Operators see every batch and case; a caseworker sees the ones they handed off; a limited user
        only those of their workflows."""
        return user.may(workflow) and (user.has("operator") or (user.has("caseworker") and created_by == user.username))

    @staticmethod
    def _own(user: User) -> str | None:
        """Whose batches ``user`` sees: everyone's (``None``) for an operator, else their own."""
        return None if user.has("operator") else user.username

    def batches(self, user: User, *, limit: int = 50) -> list[dict[str, Any]]:
        """The newest batches ``user`` may see, each with its counts by state."""
        return self.ledger.batches.newest(self._own(user), workflows=user.workflows, limit=limit)

    def exceptions(self, user: User, *, everyone: bool | None = None) -> list[dict[str, Any]]:
        """The open exceptions ``user`` may see: of their own batches, or of everyone's (``everyone``; by
        default, for an operator), of their workflows only when they are limited."""
        everyone = user.has("operator") if everyone is None else everyone
        return self.ledger.reports.exceptions(None if everyone else user.username, workflows=user.workflows)

    def visible_batch(self, user: User, batch_id: str) -> dict[str, Any] | None:
        """The batch, when ``user`` may see it (``None`` also when it does not exist: they look the same)."""
        batch = self.ledger.batches.get(batch_id)
        return batch if batch is not None and self.can_see(user, batch["created_by"], batch["workflow"]) else None

    def visible_case(self, user: User, tx_id: int) -> dict[str, Any] | None:
        """The case with its attempts and actions, when ``user`` may see it; the fields its workflow marks
        ``secret: true`` are masked (in its data and its output)."""
        case = self.ledger.cases.get(tx_id)
        if case is None or not self.can_see(user, case["created_by"], case["workflow"]):
            return None
        inputs = self.ledger.workflows.load(case["digest"]).definition.input
        values = secret_values(inputs, case["payload"])
        if values:
            case["payload"] = mask_case(inputs, case["payload"])
            case["output"] = mask_json(case["output"], values)
        return case


def evidence_paths(case: dict[str, Any]) -> list[str]:
    """Every evidence file the ledger lists for a case, oldest attempt first, each once."""
    paths: list[str] = []
    for attempt in case["history"]:
        paths += [p for p in attempt.get("evidence") or [] if p not in paths]
    paths += [p for p in case["evidence"] if p not in paths]
    return paths


def screenshots_of(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The screenshots in a case's evidence, newest attempt first, numbered as :func:`evidence_paths` numbers them,
    each with a caption saying what it shows (see :func:`caption_of`)."""
    looked = {attempt["attempt"] for attempt in case["history"] if attempt.get("looked_in_place")}
    shots = []
    for index, path in enumerate(evidence_paths(case)):
        if path.endswith(".png"):
            number, _ = _attempt_of(path)
            shots.append({"index": index, "attempt": "" if number is None else str(number), "name": Path(path).name,
                          "caption": caption_of(path, looked_in_place=number in looked)})
    return list(reversed(shots))


def _attempt_of(path: str) -> tuple[int | None, tuple[str, ...]]:
    """The attempt an evidence file is of (its ``attempt-N`` folder, the innermost: a case or workflow may be named
    so too) and the folders below that one (``lookup``, ``run-2``, ``verify``)."""
    folders = Path(path).parts[:-1]
    for at in range(len(folders) - 1, -1, -1):
        if (number := attempt_number(folders[at])) is not None:
            return number, folders[at + 1:]
    return None, ()


def caption_of(path: str, *, looked_in_place: bool = False) -> str:
    """What a screenshot of a case's evidence shows, in plain English, from its file's name and the folder of its
    attempt's run (``lookup/``, ``run-2/`` or ``verify/``, see ``bots.BotJob``). ``looked_in_place``: its
    attempt's submit met a server error and the attempt then looked the case up, so its first run's failure was
    not where the attempt stopped."""
    number, runs = _attempt_of(path)
    name = Path(path).stem
    if name == VERIFY_AFTER:
        what = "the case's record in the target system, as the bot checked it."
    elif name == VERIFY_BEFORE:
        what = "the page the bot's steps ended on, after it submitted the case."
    elif is_heal_shot(name):
        what = "a page whose element for a step had changed; the element the bot found in its place is outlined."
    elif name != FAILURE:
        what = "a screenshot a step of the workflow took."
    elif VERIFY in runs:
        what = "the page when the bot's check of the case's record in the target system stopped."
    elif LOOKUP in runs:
        what = "the page when the bot's search for the case in the target system stopped."
    elif SECOND_RUN in runs:
        what = ("the page when the case stopped. The bot had found no record of the case after a server error, "
                "and was trying it again in the same attempt.")
    elif looked_in_place and not runs:
        what = ("the page when the target system answered with a server error on or after the bot's submit. The "
                "bot then looked the case up in the target system, in the same attempt.")
    else:
        what = "the page when the case stopped."
    return f"Attempt {number}: {what}" if number is not None else what[0].upper() + what[1:]
