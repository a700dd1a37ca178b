"""``autoclerk faults report``: run the fault-injection suite and print its figures.

It runs ``tests/faults`` (from a source checkout: the suite needs RabbitMQ, Chromium and the demo portal,
as ``make test`` sets up) and prints a table with one row per fault: the transactions it covered, how
many were lost, duplicated or recovered, and the time to recover. With ``--json`` the last line is one
JSON list with a row per fault (``fault``, ``transactions``, ``lost``, ``duplicated``, ``recovered``,
``unexpected``, ``fault_confirmed``, ``time_to_recover_s``, …). ``--quick`` runs the CI sizes (a dozen
browser transactions per fault); without it each fault runs hundreds and the soak runs 2,000.

Exit codes: 0 when every fault was confirmed and nothing was lost, duplicated or unexpected; 1 otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from ..errors import EXIT_UNFINISHED, UsageError

SUITE = Path(__file__).resolve().parent.parent.parent / "tests" / "faults"
COLUMNS = ("fault", "transactions", "lost", "duplicated", "recovered", "unexpected", "time_to_recover_s")


def run_suite(quick: bool, select: str | None) -> tuple[list[dict[str, Any]], int]:
    """Run the suite; return its rows and pytest's exit code."""
    if not SUITE.is_dir():
        raise UsageError(f"the fault suite is not here ({SUITE}); run 'autoclerk faults report' from a source checkout")
    with tempfile.TemporaryDirectory(prefix="autoclerk-faults-") as folder:
        out = Path(folder) / "rows.jsonl"
        args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(SUITE), "-o", "addopts="]
        if not quick:  # a fault at the full size works through 200 browser transactions (the soak sets its own)
            args += ["-o", "timeout=1800"]
        if select:
            args += ["-k", select]
        env = {**os.environ, "AUTOCLERK_FAULTS_SIZE": "quick" if quick else "full", "AUTOCLERK_FAULTS_OUT": str(out)}
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
