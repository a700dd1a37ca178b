"""The hand-off service's commands: ``autoclerk serve``, ``autoclerk users …``, ``autoclerk teams …`` and
``autoclerk workflows …`` (publish, list, and each name's versions: ``versions``, ``diff``, ``rollback``).

Every change (a user, their roles, password, tokens or limit; a team; a publish or a rollback) is recorded
in the audit trail as the operating-system user, from the origin ``cli``.

``autoclerk users add NAME --role ROLE --token`` prints the new API token on its last line; it is shown
only once (the ledger keeps its digest). Passwords are read from standard input with ``--password-stdin``
(one line) or asked for at the terminal, never taken as a flag (flags end up in shell histories).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import sys
from pathlib import Path
from typing import Any

import click

from ..accounts import ROLES
from ..errors import LedgerError, UsageError
from .options import cli_user, ledger_option, open_ledger, settings_from_flags, systems_option


@click.command()
@click.option("--host", "serve_host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", "serve_port", type=click.IntRange(0, 65535), help="Port (default 8000; 0 picks a free one).")
@click.option("--ledger", "ledger_url", help="SQLAlchemy URL of the ledger (default sqlite:///autoclerk-ledger.db).")
@click.option("--broker", "broker_url", help="amqp://… to hand work to RabbitMQ workers; default: bots run in this process.")
@systems_option
@click.option("--concurrency", type=click.IntRange(1, 64), help="Embedded bots: transactions in flight.")
@click.option("--chromium", "chromium_path", help="Embedded bots: Chromium executable, 'headless-shell' or 'system'.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="Serve /metrics on 127.0.0.1:PORT.")
@click.option("--insecure-cookies", is_flag=True, default=None,
              help="Do not mark cookies Secure (only behind a TLS-terminating proxy on a trusted network).")
def serve(insecure_cookies: bool | None, **flags: Any) -> None:
    """Run the hand-off service: pages for caseworkers, operators and authors, and the JSON API."""
    from monitoring import configure_logging

    from ..ledger import Ledger
    from ..queue import serve_process_metrics
    from ..web import serve as run

    settings = settings_from_flags(**flags, cookie_secure=False if insecure_cookies else None)
    configure_logging(json=settings.log_json, level=settings.log_level)
    if settings.metrics_port is not None:
        serve_process_metrics(settings, Ledger(settings.ledger_url), settings.concurrency if settings.embedded else 0)
    try:
        run(settings)
    except OSError as exc:
        raise UsageError(f"cannot listen on {settings.serve_host}:{settings.serve_port} ({exc.strerror})") from None


# -- users --------------------------------------------------------------------------------------------
@click.group()
def users() -> None:
    """Manage the hand-off service's users, roles and API tokens."""


_LEDGER = ledger_option
_ROLE = click.option("--role", "roles", multiple=True, type=click.Choice(ROLES), help="A role (repeatable).")


def _accounts(ledger_url: str | None) -> Any:
    from ..accounts import Accounts

    return Accounts(open_ledger(ledger_url).engine)


def _audited(ledger_url: str | None, action: str, username: str, change: Any, *, object_type: str = "user",
             **detail: Any) -> Any:
    """Make one change to the accounts (``change(accounts)``) and record it in the audit trail; its result."""
    from ..accounts import Accounts

    ledger = open_ledger(ledger_url)
    try:
        done = change(Accounts(ledger.engine))
        ledger.audit.record(cli_user(), action, object_type, username, origin="cli", detail=detail)
        return done
    finally:
        ledger.close()


def _read_password(from_stdin: bool, *, required: bool) -> str | None:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UsageError("--password-stdin: standard input held no password")
        return line
    if not sys.stdin.isatty():
        if required:
            raise UsageError("no terminal to ask for the password: pass --password-stdin and send it on standard input")
        return None
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("The same password again: "):
        raise UsageError("the two passwords differ; nothing was changed")
    return first


@users.command("add")
@click.argument("username")
@_ROLE
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (one line).")
@click.option("--token", "with_token", is_flag=True, help="Also issue an API token (printed on the last line).")
@_LEDGER
def users_add(username: str, roles: tuple[str, ...], password_stdin: bool, with_token: bool, ledger_url: str | None) -> None:
    """Create a user with one or more roles: caseworker, operator, author."""
    if not roles:
        raise UsageError(f"give at least one --role ({', '.join(ROLES)})")
    password = _read_password(password_stdin, required=not with_token) if (password_stdin or not with_token) else None
    _audited(ledger_url, "user.add", username, lambda a: a.add_user(username, list(roles), password),
             roles=sorted(roles), password=password is not None)
    click.echo(f"user {username} added with role(s) {', '.join(sorted(roles))}"
               f"{'' if password else '; no password (API token only)'}")
    if with_token:
        click.echo(_audited(ledger_url, "user.token", username, lambda a: a.new_token(username)))


@users.command("token")
@click.argument("username")
@_LEDGER
def users_token(username: str, ledger_url: str | None) -> None:
    """Issue another API token for a user (printed on the last line, shown only this once)."""
    click.echo(_audited(ledger_url, "user.token", username, lambda a: a.new_token(username)))


@users.command("revoke-tokens")
@click.argument("username")
@_LEDGER
def users_revoke(username: str, ledger_url: str | None) -> None:
    """Stop every API token of a user working."""
    revoked = _audited(ledger_url, "user.revoke_tokens", username, lambda a: a.revoke_tokens(username))
    click.echo(f"{revoked} token(s) of {username} revoked")


@users.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (one line).")
@_LEDGER
def users_passwd(username: str, password_stdin: bool, ledger_url: str | None) -> None:
    """Set a user's password (their open sessions end)."""
    password = _read_password(password_stdin, required=True)
    assert password is not None
    _audited(ledger_url, "user.password", username, lambda a: a.set_password(username, password))
    click.echo(f"password of {username} changed; their sessions were ended")


@users.command("roles")
@click.argument("username")
@_ROLE
@_LEDGER
def users_roles(username: str, roles: tuple[str, ...], ledger_url: str | None) -> None:
    """Replace a user's roles."""
    _audited(ledger_url, "user.roles", username, lambda a: a.set_roles(username, list(roles)), roles=sorted(roles))
    click.echo(f"{username} now has role(s) {', '.join(sorted(roles))}")


@users.command("disable")
@click.argument("username")
@_LEDGER
def users_disable(username: str, ledger_url: str | None) -> None:
    """Stop a user signing in or using their tokens (their sessions end at once)."""
    _audited(ledger_url, "user.disable", username, lambda a: a.set_active(username, False))
    click.echo(f"{username} disabled")


@users.command("enable")
@click.argument("username")
@_LEDGER
def users_enable(username: str, ledger_url: str | None) -> None:
    """Let a disabled user back in."""
    _audited(ledger_url, "user.enable", username, lambda a: a.set_active(username, True))
    click.echo(f"{username} enabled")


@users.command("list")
@_LEDGER
@click.option("--json", "as_json", is_flag=True, help="One JSON object per user, one per line.")
def users_list(ledger_url: str | None, as_json: bool) -> None:
    """Every user with their roles, whether they may sign in, their live tokens and their limit."""
    for user in _accounts(ledger_url).list_users():
        if as_json:
            click.echo(json.dumps(user))
        else:
            click.echo(f"{user['username']:<24} {','.join(user['roles']):<30} {'active' if user['active'] else 'disabled':<9}"
                       f" password {'yes' if user['password'] else 'no':<4} tokens {user['tokens']:<3} {_limit_text(user)}")


def _limit_text(limit: dict[str, Any]) -> str:
    if not limit.get("limited", True):
        return "all workflows"
    parts = [f"team {', '.join(limit['teams'])}" if limit["teams"] else "",
             f"workflow {', '.join(limit['workflows'])}" if limit["workflows"] else ""]
    return "limited to " + "; ".join(p for p in parts if p)


@users.command("limit")
@click.argument("username")
@click.option("--team", "team_names", multiple=True, help="A team whose workflows the user reaches (repeatable).")
@click.option("--workflow", "workflow_names", multiple=True, help="A workflow the user reaches (repeatable).")
@_LEDGER
def users_limit(username: str, team_names: tuple[str, ...], workflow_names: tuple[str, ...],
                ledger_url: str | None) -> None:
    """Limit a user's roles to teams' workflows and named workflows (replacing any limit they had): a
    caseworker then hands off and sees only that work, an operator operates only it, an author publishes
    only those workflows."""
    limit = _audited(ledger_url, "user.limit", username,
                     lambda a: a.teams.limit(username, team_names, workflow_names),
                     teams=sorted(set(team_names)), workflows=sorted(set(workflow_names)))
    click.echo(f"{username} is {_limit_text(limit)}")


@users.command("unlimit")
@click.argument("username")
@_LEDGER
def users_unlimit(username: str, ledger_url: str | None) -> None:
    """Remove a user's limit: their roles reach every workflow again (the default)."""
    had = _audited(ledger_url, "user.unlimit", username, lambda a: a.teams.unlimit(username))
    click.echo(f"{username} now reaches all workflows" + ("" if had else " (they had no limit)"))


# -- teams --------------------------------------------------------------------------------------------
@click.group()
def teams() -> None:
    """Teams that own workflows, for limiting users to their business area (autoclerk users limit NAME --team T)."""


_WORKFLOWS = click.option("--workflow", "workflow_names", multiple=True,
                          help="A published workflow's name (repeatable).")


@teams.command("add")
@click.argument("team")
@_WORKFLOWS
@_LEDGER
def teams_add(team: str, workflow_names: tuple[str, ...], ledger_url: str | None) -> None:
    """Make a team that owns workflows, or give an existing team more."""
    owned = _audited(ledger_url, "team.add", team, lambda a: a.teams.add(team, workflow_names), object_type="team",
                     workflows=sorted(set(workflow_names)))
    click.echo(f"team {team} owns {', '.join(owned)}")


@teams.command("remove")
@click.argument("team")
@_WORKFLOWS
@_LEDGER
def teams_remove(team: str, workflow_names: tuple[str, ...], ledger_url: str | None) -> None:
    """Take workflows from a team, or remove the team when no --workflow is given (refused while users are
    limited to it)."""
    owned = _audited(ledger_url, "team.release" if workflow_names else "team.remove", team,
                     lambda a: a.teams.remove(team, workflow_names), object_type="team",
                     workflows=sorted(set(workflow_names)))
    click.echo(f"team {team} owns {', '.join(owned) or 'no workflows'}" if workflow_names else f"team {team} removed")


@teams.command("list")
@_LEDGER
@click.option("--json", "as_json", is_flag=True, help="One JSON object per team, one per line.")
def teams_list(ledger_url: str | None, as_json: bool) -> None:
    """Every team, the workflows it owns and the users limited to it."""
    for team in _accounts(ledger_url).teams.list_teams():
        if as_json:
            click.echo(json.dumps(team))
        else:
            click.echo(f"{team['name']:<24} workflows {', '.join(team['workflows']) or '-':<40} "
                       f"users {', '.join(team['users']) or '-'}")


# -- workflows ----------------------------------------------------------------------------------------
@click.group()
def workflows() -> None:
    """Publish workflow versions for hand-off through the service; list, compare and roll back each name's publishes."""


@workflows.command("publish")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@_LEDGER
def workflows_publish(path: Path, ledger_url: str | None) -> None:
    """Validate PATH (and the parts it calls) and make it the version caseworkers hand off to."""
    from monitoring import configure_logging
    from workflows import load_workflow

    from ..ledger import Ledger

    settings = settings_from_flags(ledger_url=ledger_url)
    configure_logging(json=settings.log_json, level=settings.log_level)
    from ..errors import ConfigurationError
    from ..queue import check_workers, publish_workflow

    loaded = load_workflow(path)
    ledger = Ledger(settings.ledger_url)
    try:
        number = publish_workflow(ledger, loaded, f"cli:{cli_user()}", str(path), origin="cli")
        workers = ledger.heartbeats.workers()
    finally:
        ledger.close()
    click.echo(f"published {loaded.definition.name} version {loaded.definition.version} as publish {number} "
               f"({loaded.digest})")
    try:  # workers that report what they can resolve say whether it can run now (an embedded service checks itself)
        check_workers(loaded, workers, what="It is published; hand-offs to it are refused until that is fixed")
    except ConfigurationError as exc:
        click.echo(f"autoclerk: warning: {exc}", err=True)


@workflows.command("list")
@_LEDGER
def workflows_list(ledger_url: str | None) -> None:
    """The published workflows."""
    from ..ledger import Ledger

    ledger = Ledger(settings_from_flags(ledger_url=ledger_url).ledger_url)
    try:
        for row in ledger.workflows.published():
            click.echo(f"{row['name']:<32} version {row['version']:<4} {row['digest']}  by {row['published_by']}")
    finally:
        ledger.close()


def _when(at: float) -> str:
    return dt.datetime.fromtimestamp(at).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


@workflows.command("versions")
@click.argument("name")
@_LEDGER
@click.option("--json", "as_json", is_flag=True, help="One JSON object per publish, one per line.")
def workflows_versions(name: str, ledger_url: str | None, as_json: bool) -> None:
    """Every publish of NAME, oldest first: its number, digest, the author's version, who published it and when
    (a rollback says which publish it brought back, and why). The newest is the one hand-offs use."""
    ledger = open_ledger(ledger_url)
    try:
        publishes = ledger.workflows.versions(name)
    finally:
        ledger.close()
    if not publishes:
        raise UsageError(f"workflow {name} has never been published (see 'autoclerk workflows list')")
    for p in publishes:
        if as_json:
            click.echo(json.dumps({k: p[k] for k in ("number", "digest", "version", "published_by", "published_at",
                                                     "file", "reason", "rolled_back_from")}))
            continue
        rolled = f"  rollback to {p['rolled_back_from']}: {p['reason']}" if p["rolled_back_from"] is not None else ""
        current = "  (in use)" if p is publishes[-1] else ""
        click.echo(f"{p['number']:>4}  {p['digest']}  version {p['version']:<4} {_when(p['published_at'])}  "
                   f"by {p['published_by']}{rolled}{current}")


@workflows.command("diff")
@click.argument("name")
@click.argument("v1")
@click.argument("v2")
@_LEDGER
def workflows_diff(name: str, v1: str, v2: str, ledger_url: str | None) -> None:
    """A unified diff of the sources of two publishes of NAME (each a publish number or a digest prefix)."""
    from ..queue import version_diff

    ledger = open_ledger(ledger_url)
    try:
        diff = version_diff(ledger, name, v1, v2)
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    finally:
        ledger.close()
    click.echo(diff or f"publishes {v1} and {v2} of {name} have the same source", nl=not diff)


@workflows.command("rollback")
@click.argument("name")
@click.argument("v")
@click.option("--reason", required=True, help="Why (kept with the new publish and in the audit trail).")
@_LEDGER
def workflows_rollback(name: str, v: str, reason: str, ledger_url: str | None) -> None:
    """Publish the source of publish V of NAME (a number or a digest prefix) again, as a new publish number.
    Batches already handed off keep the version they were handed off with; new hand-offs get this one."""
    from monitoring import configure_logging

    from ..queue import rollback_workflow

    settings = settings_from_flags(ledger_url=ledger_url)
    configure_logging(json=settings.log_json, level=settings.log_level)
    ledger = open_ledger(ledger_url)
    try:
        number, target = rollback_workflow(ledger, name, v, f"cli:{cli_user()}", reason, origin="cli")
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    finally:
        ledger.close()
    click.echo(f"rolled {name} back to publish {target['number']} (version {target['version']}, {target['digest']}) "
               f"as publish {number}")
