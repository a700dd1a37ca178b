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
from .options import LazyGroup
from .options import echo_error as _err

__all__ = ["cli", "main"]

COMMANDS = {
    "audit": ".audit:audit", "batches": ".batches:batches", "beat": ".schedule:beat", "browsers": ".browsers:browsers",
    "cases": ".cases:cases", "demo": ".demo:demo", "explain": ".authoring:explain", "faults": ".faults:faults",
    "heals": ".heals:heals", "init": ".project:init", "ledger": ".ledger:ledger", "monitoring": ".project:monitoring",
    "portal": ".demo:portal", "reference": ".authoring:reference", "results": ".results:results", "run": ".run:run",
    "schedule": ".schedule:schedule", "schema": ".authoring:schema", "serve": ".service:serve",
    "status": ".status:status", "teams": ".service:teams", "try": ".trying:try_case", "users": ".service:users",
    "validate": ".authoring:validate", "worker": ".worker:worker", "workflows": ".service:workflows",
}
"""Each command and where it lives; a command's module is imported only when that command runs (or help lists it)."""


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="autoclerk")
def cli() -> None:
    """Autoclerk: robotic process automation for mass-repetitive back-office work."""


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
