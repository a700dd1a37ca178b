"""``autoclerk audit``: read the audit trail, and ``autoclerk audit verify``: check its hash chain.

The trail records every action a person takes (see :mod:`orchestrator.ledger.audit`): on the command line
as the operating-system user, from the origin ``cli``; on the pages and the API as the signed-in user,
from the client's address.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import click

from ..errors import EXIT_UNFINISHED, AuditChainBroken, UsageError
from .options import echo_error, ledger_option, open_ledger

_RELATIVE = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float) -> float:
    """``--since``: a date or time (ISO 8601; without an offset, in this machine's time zone), or an age such
    as ``30m``, ``12h`` or ``7d``. Returns Unix time.

    Raises:
        UsageError: neither.
    """
    match = _RELATIVE.match(text.strip())
    if match:
        return now - int(match.group(1)) * _UNITS[match.group(2)]
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since {text!r}: expected a date such as 2026-12-01, a time such as 2026-12-01T09:30, "
                         "or an age such as 7d, 12h or 30m") from None
    return (when if when.tzinfo else when.astimezone()).timestamp()


def _line(record: dict[str, object]) -> str:
    from ..ledger.audit import describe

    when = dt.datetime.fromtimestamp(float(record["at"])).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")  # type: ignore[arg-type]
    return f"{record['seq']:>6}  {when}  {record['actor']} (from {record['origin']}) {describe(record)}"  # type: ignore[arg-type]


@click.group(invoke_without_command=True)
@click.option("--since", help="From this date or time (2026-12-01, 2026-12-01T09:30) or this age (7d, 12h, 30m).")
@click.option("--user", "actor", help="Only what this user did (on the command line: the operating-system user).")
@click.option("--action", help="Only this action (for example batch.pause), or every action of a kind (batch.).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per record, one per line (the export).")
@ledger_option
@click.pass_context
def audit(ctx: click.Context, since: str | None, actor: str | None, action: str | None, as_json: bool,
          ledger_url: str | None) -> None:
    """The audit trail: every action a person took, oldest first (who, when, from where, what, to which object)."""
    if ctx.invoked_subcommand is not None:
        return
    import time

    start = parse_since(since, time.time()) if since else None
    ledger = open_ledger(ledger_url)
    try:
        after = shown = 0
        while True:  # a page at a time, so a long trail streams in flat memory
            records = ledger.audit.records(since=start, actor=actor, action=action, after=after, limit=1000)
            for record in records:
                click.echo(json.dumps(record, ensure_ascii=False) if as_json else _line(record))
            shown += len(records)
            if len(records) < 1000:
                break
            after = records[-1]["seq"]
        if not shown and not as_json:  # with --json, no line is the answer a program expects
            click.echo("no audit records match" if (since or actor or action) else "the audit trail is empty",
                       err=True)
    finally:
        ledger.close()


@audit.command()
@click.option("--expect-head", metavar="SEQ:HASH",
              help="A head printed earlier: the chain must still reach it (catches newest records cut off).")
@click.option("--json", "as_json", is_flag=True, help="The head as one JSON object.")
@ledger_option
def verify(expect_head: str | None, as_json: bool, ledger_url: str | None) -> None:
    """Check the whole hash chain and print its head (sequence and hash). Exit 1 with one line naming the first
    bad record when it is broken."""
    from ..ledger import AuditHead

    expected = None
    if expect_head:
        seq, _, digest = expect_head.partition(":")
        if not seq.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise UsageError(f"--expect-head {expect_head!r}: expected SEQ:HASH as 'audit verify' prints it "
                             "(a number, a colon, 64 hex digits)")
        expected = AuditHead(int(seq), digest)
    ledger = open_ledger(ledger_url)
    try:
        head = ledger.audit.verify(expected=expected)
    except AuditChainBroken as exc:
        echo_error(f"the audit trail is broken: {exc}")
        raise click.exceptions.Exit(EXIT_UNFINISHED) from None
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps({"ok": True, "head_sequence": head.seq, "head_hash": head.hash}))
    else:
        click.echo(f"audit trail intact: {head.seq} record(s); head {head.seq}:{head.hash}")
