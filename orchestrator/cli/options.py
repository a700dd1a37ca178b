"""What every command shares: settings resolved from flags and the environment in one place, the options
several commands take, the one way a command reports a failure, and the group that imports a command only
when it runs."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from ..errors import UsageError
from ..settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


class LazyGroup(click.Group):
    """A command group whose commands are imported when they are run or listed, not when ``autoclerk`` starts.

    Click's recipe for lazily loaded subcommands: ``lazy_commands`` maps a command's name to ``"module:attribute"``
    (a module relative to this package). ``autoclerk status`` then imports the ledger and nothing of the
    browser, the broker or the web service.
    """

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.lazy_commands:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = self.lazy_commands[cmd_name].partition(":")
        command = getattr(importlib.import_module(module, __package__), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
        self.add_command(command, cmd_name)
        return command


def settings_from_flags(**flags: Any) -> Settings:
    """The settings: flags over ``AUTOCLERK_*`` variables over defaults (a flag left unset is ``None``).

    Raises:
        UsageError: a setting is invalid; the one line names the flag and the variable that set it.
    """
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from ..settings import load_settings

    try:
        return load_settings(**flags)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "settings"
        inner = ".".join(str(p) for p in err["loc"][1:])
        raise UsageError(f"setting '{field}' ({_source(field, flags)}){f', at {inner}' if inner else ''}: "
                         f"{err['msg'].removeprefix('Value error, ')}") from None
    except SettingsError as exc:  # a mapping's variable that is not JSON at all
        field = str(exc).partition('field "')[2].partition('"')[0] or "settings"
        example = JSON_EXAMPLES.get(field, '{"name": "value"}')
        raise UsageError(f"setting '{field}' (AUTOCLERK_{field.upper()}): expected JSON, such as {example}") from None


FLAGS = {"ledger_url": "--ledger", "broker_url": "--broker", "systems": "--system", "chromium_path": "--chromium",
         "concurrency": "--concurrency", "metrics_port": "--metrics-port", "artifacts_dir": "--artifacts-dir",
         "serve_host": "--host", "serve_port": "--port"}
"""The flags that set a setting, where they are not ``--`` + the setting's name."""
JSON_EXAMPLES = {"systems": '{"portal": "http://127.0.0.1:8080"}',
                 "system_maintenance": '{"portal": ["22:00-06:00"]}',
                 "system_health": '{"portal": "/healthz"}',
                 "system_limits": '{"portal": {"sessions": 4, "per_minute": 120}}'}


def _source(field: str, flags: dict[str, Any]) -> str:
    """Where an invalid setting came from: the flag the command was given, else its environment variable."""
    given = flags.get(field)
    if given is not None and given != ():
        return f"flag {FLAGS.get(field, '--' + field.replace('_', '-'))}"
    return f"AUTOCLERK_{field.upper()}"


def echo_error(message: str) -> None:
    """Print one ``autoclerk: error: …`` line on standard error (the CLI's only way to report a failure)."""
    click.echo(f"autoclerk: error: {message}", err=True)


def engine_options(func: F) -> F:
    """``--broker``, ``--ledger``, ``--concurrency`` and ``--chromium``: where the work goes and what runs it."""
    for option in reversed([
        click.option("--broker", "broker_url", help="amqp://… for RabbitMQ; default: embedded (no server)."),
        click.option("--ledger", "ledger_url", help="SQLAlchemy URL of the ledger (default sqlite:///autoclerk-ledger.db)."),
        click.option("--concurrency", type=click.IntRange(1, 64), help="Transactions in flight per worker process."),
        click.option("--chromium", "chromium_path",
                     help="Chromium executable, 'headless-shell' or 'system' (default: the headless shell if installed, "
                          "else the system Chromium)."),
    ]):
        func = option(func)
    return func


def deadline_options(func: F) -> F:
    """``--deadline`` and ``--within``: when the batch's cases are due (a row's ``_deadline`` column overrides it)."""
    for option in reversed([
        click.option("--deadline", metavar="WHEN",
                     help="The batch's deadline, ISO 8601 (2026-12-24T17:00; without an offset, in AUTOCLERK_TIMEZONE)."),
        click.option("--within", metavar="SPAN",
                     help="The batch's deadline as a span from now: 30m, 4h, 3d, or 2wd (working days)."),
    ]):
        func = option(func)
    return func


def batch_deadline(settings: Any, deadline: str | None, within: str | None) -> float | None:
    """The Unix time ``--deadline`` or ``--within`` gives, or one line naming the flag and what was expected."""
    from ..deadlines import DeadlineError

    try:
        return settings.batch_deadline(deadline, within)  # type: ignore[no-any-return]
    except DeadlineError as exc:
        flag = "--deadline/--within" if deadline and within else ("--deadline" if deadline else "--within")
        raise UsageError(f"{flag}: {exc}") from None


systems_option = click.option("--system", "systems", multiple=True, metavar="NAME=URL",
                              help="Base URL of a target system (repeatable).")
sheet_option = click.option("--sheet", metavar="NAME",
                            help="The sheet of an .xlsx cases file that holds the cases (needed when it has several).")
ledger_option = click.option("--ledger", "ledger_url", help="SQLAlchemy URL of the ledger (default from settings).")


def cli_user() -> str:
    """Who acts on the command line: the operating-system user (the audit trail records it from the origin ``cli``)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return "unknown"


def open_ledger(ledger_url: str | None) -> Any:
    """The ledger a command's ``--ledger`` (or the settings) names."""
    from ..ledger import Ledger

    return Ledger(settings_from_flags(ledger_url=ledger_url).ledger_url)


def existing_batch(ledger: Any, batch_id: str) -> dict[str, Any]:
    """The batch, or one line saying it is not in this ledger."""
    batch = ledger.batches.get(batch_id)
    if batch is None:
        raise UsageError(f"there is no batch {batch_id} in {ledger.url} (see 'autoclerk batches list')")
    return dict(batch)
