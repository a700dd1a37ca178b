"""The ``autoclerk`` command line: one module per command group, assembled here.

Every mistake a user can make (a wrong flag, a missing file, a malformed workflow, an unreadable CSV, a
broker that is down) ends as one line on standard error and a non-zero exit, never a traceback
(``AUTOCLERK_DEBUG=1`` shows the traceback of an unexpected error). The exit codes are listed in
:mod:`orchestrator.errors`.

- ``run``: :mod:`.run`; ``demo``, ``portal``, ``cases generate``: :mod:`.demo` (the only commands that
  import the demo system); ``cases retry|cancel|rerun|erase``: :mod:`.cases`; ``ledger prune|backup|restored``: :mod:`.ledger`; ``worker``: :mod:`.worker`; ``batches``: :mod:`.batches`; ``results export``: :mod:`.results`; ``status``:
  :mod:`.status`; ``serve``, ``users``, ``teams``, ``workflows`` (``publish``, ``list``, ``versions``, ``diff``, ``rollback``): :mod:`.service`;
  ``audit``, ``audit verify``: :mod:`.audit`; ``validate``, ``schema``,
  ``reference``, ``explain``: :mod:`.authoring`; ``try``: :mod:`.trying`; ``browsers``: :mod:`.browsers`; ``faults report|chaos``: :mod:`.faults`; ``heals list|approve``: :mod:`.heals`;
  ``init``, ``monitoring export``: :mod:`.project`; ``schedule``, ``beat``: :mod:`.schedule`.
- Settings are resolved in one place, :func:`.options.settings_from_flags`.
"""

from __future__ import annotations

import os
import sys

import click

from bots import BrowserNotFoundError
from workflows import CasesFileError, WorkflowError, WorkflowFileError

from ..errors import EXIT_INTERNAL, EXIT_SERVICE, EXIT_USAGE, BrokerError, LedgerError, UsageError
from .audit import audit
from .authoring import explain, reference, schema, validate
from .batches import batches
from .browsers import browsers
from .cases import cases
from .demo import cases_generate, demo, portal
from .faults import faults
from .heals import heals
from .ledger import ledger
from .options import echo_error as _err
from .project import init, monitoring
from .results import results
from .run import run
from .schedule import beat, schedule
from .service import serve, teams, users, workflows
from .status import status
from .trying import try_case
from .worker import worker

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="autoclerk")
def cli() -> None:
    """Autoclerk: robotic process automation for mass-repetitive back-office work."""


for _command in (run, demo, worker, portal, cases, validate, schema, reference, explain, batches, browsers, status,
                 serve, users, teams, workflows, faults, results, try_case, audit, init, monitoring, schedule, beat, ledger,
                 heals):
    cli.add_command(_command)
cases.add_command(cases_generate)


# -- entry point --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    """Run the CLI, turning every expected failure into one line and an exit code."""
    try:
        code = cli.main(args=argv, prog_name="autoclerk", standalone_mode=False)
        if isinstance(code, int) and code:  # a command's click.exceptions.Exit(code), returned in this mode
            sys.exit(code)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "autoclerk"
        _err(f"{exc.format_message()} (see '{command} --help')")
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        _err("interrupted")
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _err(exc.format_message())
        sys.exit(EXIT_USAGE)
    except WorkflowFileError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(EXIT_USAGE)
    except WorkflowError as exc:  # a broken custom step package, a missing env value
        _err(str(exc))
        sys.exit(EXIT_USAGE)
    except (CasesFileError, UsageError) as exc:
        _err(str(exc))
        sys.exit(EXIT_USAGE)
    except (BrokerError, LedgerError, BrowserNotFoundError) as exc:
        _err(str(exc))
        sys.exit(EXIT_SERVICE)
    except KeyboardInterrupt:
        _err("interrupted; run the same command again to resume")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("AUTOCLERK_DEBUG"):
            raise
        from monitoring import redact_text

        _err(f"unexpected {type(exc).__name__}: {redact_text(str(exc)).splitlines()[0] if str(exc) else ''} "
             "(set AUTOCLERK_DEBUG=1 for the traceback)")
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
