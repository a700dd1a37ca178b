"""One batch run from start to end, as ``autoclerk run`` and ``autoclerk demo`` do it: hand a cases file off,
process it (in this process when the broker is embedded), wait until every case has an outcome, and sum up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from bots import find_chromium
from monitoring import configure_logging
from workflows import CasesFileError, load_workflow

from ..errors import ConfigurationError, UsageError
from ..ledger import Ledger
from ..settings import Settings
from .celery_app import make_celery
from .embedded import embedded_worker
from .handoff import Receipt, audit_hand_off, hand_off, wait_for_batch
from .intake import Rejection
from .preflight import check_configuration, check_workers
from .publisher import Publisher
from .runtime import Runtime, set_runtime
from .summary import Summary


def run_batch(settings: Settings, workflow_path: Path, cases_path: Path, *, timeout_s: float | None = None,
              priority: int = 0, sheet: str | None = None, deadline: float | None = None,
              on_rejection: Callable[[Rejection], None] | None = None,
              on_handed_off: Callable[[Receipt], None] | None = None,
              on_progress: Callable[[dict[str, int]], None] | None = None,
              on_timeout: Callable[[str], None] | None = None,
              on_warning: Callable[[str], None] | None = None, by: str | None = None) -> Summary:
    """Hand ``cases_path`` off to the workflow at ``workflow_path``, wait for every case, return the summary.

    Args:
        sheet: the sheet of an ``.xlsx`` workbook that holds the cases (needed when it has several).
        on_rejection: called with each row that is refused (not queued).
        by: who hands the file off (the operating-system user of ``autoclerk run``): the hand-off is recorded
            in the audit trail from the origin ``cli`` (``None``: not recorded, for the demo).
        on_handed_off: called with the receipt once the whole file is handed off.
        on_progress: called with the batch's counts by state while it runs.
        on_timeout: called with the reason when ``timeout_s`` ran out; the summary then counts what is unfinished.
        on_warning: called with a sentence the user should read (with a broker: no worker is live yet).

    Raises:
        WorkflowFileError, CasesFileError, UsageError: the workflow or the cases file cannot be used (nothing is queued).
        ConfigurationError: a secret, env value or system URL the workflow needs is missing: on the embedded
            broker, here; with a broker, on every live worker (their heartbeats name what they can resolve).
        BrowserNotFoundError, LedgerError, BrokerError: a service the run needs is missing.
    """
    configure_logging(json=settings.log_json, level=settings.log_level)
    loaded = load_workflow(workflow_path)
    if loaded.definition.part:
        raise UsageError(f"{workflow_path}: is a part (part: true), run only through 'call' from another workflow")
    if not cases_path.exists():
        raise CasesFileError(f"{cases_path}: no such cases file")
    if settings.embedded and settings.bot == "chromium":  # the bots run here: check what they need, first
        check_configuration(loaded, settings)
        find_chromium(settings.chromium_path)  # a missing browser is one clear error before anything is queued
    ledger = Ledger(settings.ledger_url)
    if not settings.embedded:  # the bots run on the workers: check what the live ones report
        try:
            warning = check_workers(loaded, ledger.heartbeats.workers(), what="Nothing was queued")
        except ConfigurationError:
            ledger.close()
            raise
        if warning is not None and on_warning is not None:
            on_warning(warning)
    app = make_celery(settings)
    publisher = Publisher(app, ledger, settings.ids_per_message)
    runtime = Runtime(settings, ledger)
    started = time.monotonic()
    try:
        with embedded_worker(app, settings.concurrency) if settings.embedded else nullcontext():
            set_runtime(runtime)
            receipt = hand_off(ledger, publisher, loaded, cases_path, priority=priority, sheet=sheet, deadline=deadline,
                               on_rejection=on_rejection, tz=settings.tz)
            if by is not None:
                audit_hand_off(ledger, receipt, loaded, by, origin="cli", file=str(cases_path))
            if on_handed_off is not None:
                on_handed_off(receipt)
            try:
                counts = wait_for_batch(ledger, publisher, receipt.batch_id, timeout_s=timeout_s,
                                        on_progress=on_progress)
            except TimeoutError as exc:
                if on_timeout is not None:
                    on_timeout(str(exc))
                counts = ledger.reports.counts(receipt.batch_id)
            held = ledger.reports.held(receipt.batch_id) if counts["paused"] else {}
            verification = ledger.reports.verification(receipt.batch_id)
    finally:
        set_runtime(None)
        runtime.close()
    if held and on_warning is not None:
        on_warning(f"{sum(held.values())} case(s) held: the bots lacked a setting the workflow needs (see "
                   f"'autoclerk batches show {receipt.batch_id} --state paused'); fix it, then run the same "
                   f"command again or 'autoclerk batches resume {receipt.batch_id}'")
    summary = Summary.of(receipt, counts, time.monotonic() - started, verification)
    summary.extra["ledger"] = settings.ledger_url
    return summary
