"""Errors of the orchestrator, grouped by what the caller must do::

    OrchestratorError
    ├── LedgerError        the ledger cannot be used (bad URL, unreachable database): fix the setting
    ├── StaleAttempt       this attempt lost its claim (lease ran out, another worker took over):
    │                      stop, write nothing more, acknowledge the message
    ├── BrokerError        the broker cannot be reached or refused a publish: retry later; nothing is lost
    └── UsageError         a wrong flag, path or file on the command line: one line to the user
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base class of everything the ``orchestrator`` package raises on purpose."""


class LedgerError(OrchestratorError):
    """The ledger cannot be opened or used."""


class StaleAttempt(OrchestratorError):
    """An attempt's fenced write was refused: another attempt owns the transaction now."""


class BrokerError(OrchestratorError):
    """The broker cannot be reached, or did not confirm a publish."""


class UsageError(OrchestratorError):
    """A command-line mistake; the message is shown as one line."""


EXIT_UNFINISHED, EXIT_USAGE, EXIT_SERVICE, EXIT_INTERNAL = 1, 2, 3, 4
"""The CLI's exit codes: cases left unfinished, a usage or input error, a service down, an internal error."""


def echo_error(message: str) -> None:
    """Print one ``autoclerk: error: …`` line on standard error (the CLI's only way to report a failure)."""
    import click

    click.echo(f"autoclerk: error: {message}", err=True)
