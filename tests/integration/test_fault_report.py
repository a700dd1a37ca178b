"""``autoclerk faults report`` as other tools call it: a table, and with ``--json`` one JSON list on the last
line with a row per fault holding at least fault, transactions, lost, duplicated and fault_confirmed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import autoclerk


def test_faults_report_prints_a_table_and_a_json_list_with_a_row_per_fault(tmp_path: Path) -> None:
    result = autoclerk("faults", "report", "--quick", "--json", "-k", "hostile_workflow", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(rows, list) and len(rows) == 1
    row = rows[0]
    assert {"fault", "transactions", "lost", "duplicated", "fault_confirmed", "recovered", "time_to_recover_s"} <= set(row)
    assert row["transactions"] == 5 and row["lost"] == row["duplicated"] == 0 and row["fault_confirmed"] is True
    assert "hostile workflow files" in result.stdout and "lost" in result.stdout.splitlines()[0] + result.stdout


def test_faults_report_refuses_a_bad_flag_in_one_line(tmp_path: Path) -> None:
    result = autoclerk("faults", "report", "--bogus", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("autoclerk: error: No such option '--bogus'")
