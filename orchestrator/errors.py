"""Errors of the orchestrator, grouped by what the caller must do::

    OrchestratorError
    ├── LedgerError          the ledger cannot be used (bad URL, unreachable database): fix the setting
    │   └── AuditChainBroken the audit trail's hash chain is broken at one record (ledger.audit): investigate
    ├── StaleAttempt         this attempt lost its claim (lease ran out, another worker took over):
    │                        stop, write nothing more, acknowledge the message
    ├── BrokerError          the broker cannot be reached or refused a publish: retry later; nothing is lost
    ├── BudgetUnavailable    a target system's budget stayed spent (queue.budgets): try the case later,
    │                        without spending an attempt
    ├── UsageError           a wrong flag, path or file on the command line: one line to the user
    │   └── ConfigurationError  a secret, env value or system URL a workflow needs is missing (queue.preflight),
    │                        here or on every live worker: refused before any case is queued (the API: 503)
    ├── SignInRequired       a page was asked for without a live session (web.auth): the sign-in page
    ├── Refused              a page was refused, no role or no CSRF token (web.auth): 403
    └── UploadError          an upload is not usable multipart (web.upload): 400 with the reason
        └── UploadTooLarge   larger than the service takes: 413

The errors of the other packages keep their own trees: ``workflows.WorkflowError`` (a workflow or a
case file is wrong) and ``bots.BotError`` (a transaction failed in a bot, or no browser could start).

The command line maps them to exit codes, each failure one line on standard error:

    ====  =======================================================================================
    0     success
    1     a run ended with cases unfinished (run the same command again to resume), or held for a missing
          setting; ``batches reconcile``: the batch's sums do not hold; ``audit verify``: the chain is broken
    2     a usage or input error: a wrong flag, a malformed workflow, an unreadable cases file
    3     a service is unavailable: the broker, the ledger or the browser
    4     an unexpected internal error (``AUTOCLERK_DEBUG=1`` shows its traceback)
    5     a run ended with every case accounted for, but at least one failed (business exceptions,
          handed back to a person, are not failures)
    130   interrupted
    ====  =======================================================================================
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base class of everything the ``orchestrator`` package raises on purpose."""


class LedgerError(OrchestratorError):
    """The ledger cannot be opened or used."""


class AuditChainBroken(LedgerError):
    """The audit trail's chain is broken: ``seq`` is the first bad record, ``problem`` what is wrong with it."""

    def __init__(self, seq: int, problem: str) -> None:
        self.seq, self.problem = seq, problem
        super().__init__(f"audit record {seq} {problem}")


class StaleAttempt(OrchestratorError):
    """An attempt's fenced write was refused: another attempt owns the transaction now."""


class BrokerError(OrchestratorError):
    """The broker cannot be reached, or did not confirm a publish."""


class UsageError(OrchestratorError):
    """A command-line mistake; the message is shown as one line."""


class ConfigurationError(UsageError):
    """What a workflow needs (a secret, an env value, a system's URL) is missing where it would run: refused
    before any case is queued, so it never spends a case's attempts."""


EXIT_UNFINISHED, EXIT_USAGE, EXIT_SERVICE, EXIT_INTERNAL, EXIT_FAILED = 1, 2, 3, 4, 5
"""The CLI's exit codes: cases left unfinished, a usage or input error, a service down, an internal error,
cases failed (see the table above)."""
