"""``autoclerk faults chaos`` as other tools call it: a short seeded run on its own RabbitMQ node and
PostgreSQL cluster, a table, and with ``--json`` one JSON object on the last line; nothing lost or duplicated
and every fault it injected confirmed. The shared broker and database are not touched."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.conftest import autoclerk


def _private_nodes() -> list[str]:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return re.findall(r"autoclerk-chaos-\d+@localhost", ps)


def test_a_short_chaos_run_prints_a_table_and_one_json_object_with_nothing_lost(tmp_path: Path, chromium: str) -> None:
    result = autoclerk("faults", "chaos", "--seed", "7", "--cases", "16", "--minutes", "1", "--workers", "2", "--json",
                       cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"seed", "cases", "minutes", "faults", "lost", "duplicated", "done", "exceptions", "makespan_s",
            "not_done"} <= set(summary)
    assert len(summary["not_done"]) == min(summary["exceptions"], 50), "each case not done is named"
    assert summary["seed"] == 7 and summary["cases"] == 16 and summary["lost"] == summary["duplicated"] == 0
    assert summary["done"] + summary["exceptions"] == 16
    assert summary["faults"] and all(row["count"] == row["confirmed"] >= 1 for row in summary["faults"].values())
    assert "Chaos run: seed 7" in result.stdout and "private RabbitMQ autoclerk-chaos-" in result.stderr
    assert _private_nodes() == [], "the private RabbitMQ node was stopped at the end"


def test_faults_chaos_refuses_a_bad_flag_in_one_line(tmp_path: Path) -> None:
    result = autoclerk("faults", "chaos", "--seed", "1", "--cases", "0", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("autoclerk: error:") and "--cases" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
