"""``autoclerk faults report``: run the fault-injection suite and print its figures.

It runs ``tests/faults`` (from a source checkout: the suite needs RabbitMQ, Chromium and the demo portal,
as ``make test`` sets up) and prints a table with one row per fault: the transactions it covered, how
many were lost, duplicated or recovered, and the time to recover. With ``--json`` the last line is one
JSON list with a row per fault (``fault``, ``transactions``, ``lost``, ``duplicated``, ``recovered``,
``unexpected``, ``fault_confirmed``, ``time_to_recover_s``, …). ``--quick`` runs the CI sizes (a dozen
browser transactions per fault); without it each fault runs hundreds and the soak runs 2,000.

``autoclerk faults chaos --seed S --cases N --minutes M`` runs one batch of N cases through several workers
while faults drawn at random by the seed hit it (workers killed at the three fault points or stalled,
RabbitMQ and PostgreSQL restarted or their connections cut, Chromium killed, 5xx bursts, outages, ended
sessions) until the batch ends or M minutes pass; then the oracle counts lost and duplicated cases. It
starts a RabbitMQ node and a PostgreSQL cluster of its own on free loopback ports (``tests/faults/servers.py``)
and never touches a broker or ledger named in the settings. It prints a table, and with ``--json`` one JSON
object (``seed``, ``cases``, ``minutes``, ``workers``, ``stopped_by``, ``faults`` (name: ``count``,
``confirmed``), ``lost``, ``duplicated``, ``unexpected``, ``recovered``, ``done``, ``exceptions``,
``dead_letters``, ``makespan_s``).

Both run from a source checkout; from an installed wheel they say so in one line.

Exit codes: 0 when every fault was confirmed and nothing was lost, duplicated or unexpected; 1 otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from ..errors import EXIT_UNFINISHED, UsageError

SUITE = Path(__file__).resolve().parent.parent.parent / "tests" / "faults"
COLUMNS = ("fault", "transactions", "lost", "duplicated", "recovered", "unexpected", "time_to_recover_s")


def _need_checkout(command: str) -> None:
    if not SUITE.is_dir():
        raise UsageError(f"the fault suite is not here ({SUITE}); run 'autoclerk faults {command}' from a source checkout")


def run_suite(quick: bool, select: str | None) -> tuple[list[dict[str, Any]], int]:
    """Run the suite; return its rows and pytest's exit code."""
    _need_checkout("report")
    with tempfile.TemporaryDirectory(prefix="autoclerk-faults-") as folder:
        out = Path(folder) / "rows.jsonl"
        args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(SUITE), "-o", "addopts="]
        if not quick:  # a fault at the full size works through 200 browser transactions (the soak sets its own)
            args += ["-o", "timeout=1800"]
        if select:
            args += ["-k", select]
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")},  # its own session
               "AUTOCLERK_FAULTS_SIZE": "quick" if quick else "full", "AUTOCLERK_FAULTS_OUT": str(out)}
        code = subprocess.run(args, cwd=SUITE.parent.parent, env=env, stdout=sys.stderr).returncode
        rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return rows, code


def render(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("fault", "transactions", "lost", "duplicated", "recovered", "unexpected", "confirmed",
                  "time to recover (s)", title="Fault injection: every figure from the oracle")
    for row in rows:
        table.add_row(row["fault"], f"{row['transactions']:,}", str(row["lost"]), str(row["duplicated"]),
                      str(row["recovered"]), str(row["unexpected"]), "yes" if row["fault_confirmed"] else "NO",
                      "" if row.get("time_to_recover_s") is None else f"{row['time_to_recover_s']:.1f}")
    Console(width=160).print(table)


@click.group()
def faults() -> None:
    """The fault-injection suite (crashes, outages, hostile input) and its figures."""


@faults.command()
@click.option("--quick", is_flag=True, help="The CI sizes: a dozen browser transactions per fault.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON list (a row per fault) on the last line.")
@click.option("-k", "select", metavar="EXPR", help="Only the faults whose test names match (pytest -k).")
def report(quick: bool, as_json: bool, select: str | None) -> None:
    """Run the fault suite and print lost / duplicated / recovered per fault."""
    rows, code = run_suite(quick, select)
    render(rows)
    if as_json:
        click.echo(json.dumps(rows))
    bad = [r["fault"] for r in rows if not r["fault_confirmed"] or r["lost"] or r["duplicated"] or r["unexpected"]]
    if code != 0 or bad:
        click.echo(f"autoclerk: error: {len(bad)} fault(s) failed the oracle; pytest exited {code}", err=True)
        sys.exit(EXIT_UNFINISHED)


def run_chaos(seed: int, cases: int, minutes: float, workers: int) -> dict[str, Any] | None:
    """Run ``tests/faults/chaos.py`` once (its progress goes to stderr); return its JSON object, or ``None``
    when it ended without one."""
    _need_checkout("chaos")
    args = [sys.executable, "-m", "tests.faults.chaos", "--seed", str(seed), "--cases", str(cases),
            "--minutes", str(minutes), "--workers", str(workers)]
    # Its own session, so an interrupt reaches it once, from here, whoever sent it (a terminal's Ctrl-C, or a
    # signal to this process alone): it then stops its private servers and deletes their folders before ending.
    chaos = subprocess.Popen(args, cwd=SUITE.parent.parent, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, _ = chaos.communicate()
    except KeyboardInterrupt:
        chaos.send_signal(signal.SIGINT)
        chaos.wait()
        raise
    lines = out.strip().splitlines()
    try:
        return dict(json.loads(lines[-1]))
    except (IndexError, ValueError):
        return None


def render_chaos(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("fault", "injected", "confirmed", title=(
        f"Chaos run: seed {result['seed']}, {result['cases']:,} cases, {result['workers']} workers, "
        f"{result['minutes']:g} min of faults ({result['stopped_by']})"))
    for name, row in result["faults"].items():
        table.add_row(name, str(row["count"]), str(row["confirmed"]) if row["confirmed"] == row["count"]
                      else f"{row['confirmed']} (NOT ALL)")
    table.add_section()
    for label, key in (("lost", "lost"), ("duplicated", "duplicated"), ("unexpected", "unexpected"),
                       ("recovered (took more than one attempt)", "recovered"), ("done", "done"),
                       ("exceptions", "exceptions"), ("makespan (s)", "makespan_s")):
        table.add_row(label, f"{result[key]:,}", "")
    Console(width=160).print(table)
    if result.get("not_done"):
        click.echo("Cases not done:\n" + "\n".join(f"  {line}" for line in result["not_done"]))
    if result.get("not_done_attempts"):
        click.echo("Their attempts:\n" + "\n".join(f"  {line}" for line in result["not_done_attempts"]))


@faults.command()
@click.option("--seed", type=int, required=True, help="Draws the faults and the gaps between them.")
@click.option("--cases", type=click.IntRange(1, 100_000), default=200, show_default=True, help="The batch's size.")
@click.option("--minutes", type=click.FloatRange(0.5, 240), default=5, show_default=True,
              help="Faults stop after this long (or when the batch ends).")
@click.option("--workers", type=click.IntRange(1, 16), default=3, show_default=True,
              help="Separate worker processes (more are started briefly, armed at a fault point).")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
def chaos(seed: int, cases: int, minutes: float, workers: int, as_json: bool) -> None:
    """One batch through several workers under random faults; lost and duplicated must be 0."""
    result = run_chaos(seed, cases, minutes, workers)
    if result is None:
        click.echo("autoclerk: error: the chaos run ended without a result (its output above says why)", err=True)
        sys.exit(EXIT_UNFINISHED)
    render_chaos(result)
    if as_json:
        click.echo(json.dumps({k: v for k, v in result.items() if k != "details"}))
    unconfirmed = [name for name, row in result["faults"].items() if row["confirmed"] != row["count"]]
    if result["lost"] or result["duplicated"] or result["unexpected"] or unconfirmed:
        click.echo(f"autoclerk: error: the chaos run lost {result['lost']}, duplicated {result['duplicated']}, "
                   f"had {result['unexpected']} unexpected and {len(unconfirmed)} unconfirmed fault(s)"
                   + "".join(f"\n  {line}" for line in result.get("details", [])), err=True)
        sys.exit(EXIT_UNFINISHED)
