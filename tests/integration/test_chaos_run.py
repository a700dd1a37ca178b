"""``autoclerk faults chaos`` as other tools call it: a short seeded run on its own RabbitMQ node and
PostgreSQL cluster, a table, and with ``--json`` one JSON object on the last line; nothing lost or duplicated
and every fault it injected confirmed. The shared broker and database are not touched."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import autoclerk
from tests.faults.servers import listening


def _processes() -> str:
    """Every process's command line (another chaos run may be going on beside a test: each checks its own node)."""
    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def test_a_short_chaos_run_prints_a_table_and_one_json_object_with_nothing_lost(tmp_path: Path, chromium: str) -> None:
    result = autoclerk("faults", "chaos", "--seed", "7", "--cases", "16", "--minutes", "1", "--workers", "2", "--json",
                       cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"seed", "cases", "minutes", "faults", "lost", "duplicated", "done", "exceptions", "makespan_s",
            "not_done"} <= set(summary)
    assert len(summary["not_done"]) == min(summary["exceptions"], 50), "each case not done is named"
    assert all(any(line.startswith(case.split(":", 1)[0] + ": ") for line in summary["not_done_attempts"])
               for case in summary["not_done"]), "with its attempts"
    assert summary["seed"] == 7 and summary["cases"] == 16 and summary["lost"] == summary["duplicated"] == 0
    assert summary["done"] + summary["exceptions"] == 16
    assert summary["faults"] and all(row["count"] == row["confirmed"] >= 1 for row in summary["faults"].values())
    assert "Chaos run: seed 7" in result.stdout and "private RabbitMQ autoclerk-chaos-" in result.stderr
    node = re.search(r"private RabbitMQ (\S+) on", result.stderr)
    assert node is not None and node.group(1) not in _processes(), "its private RabbitMQ node was stopped at the end"


def test_faults_chaos_refuses_a_bad_flag_in_one_line(tmp_path: Path) -> None:
    result = autoclerk("faults", "chaos", "--seed", "1", "--cases", "0", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("autoclerk: error:") and "--cases" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_chaos_run_interrupted_through_the_command_alone_stops_its_private_servers(
        tmp_path: Path, chromium: str) -> None:
    # A signal to the command alone (a supervisor's, or kill) once left the run itself going on, its servers with it.
    cli = subprocess.Popen([sys.executable, "-m", "orchestrator", "faults", "chaos", "--seed", "7", "--cases", "16",
                            "--minutes", "1", "--workers", "2"], cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(cli.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    started = None
    deadline = time.monotonic() + 300
    while started is None and cli.poll() is None and time.monotonic() < deadline:
        started = next((m for line in list(lines) if (m := re.search(
            r"private RabbitMQ (\S+) on 127.0.0.1:(\d+), private PostgreSQL on 127.0.0.1:(\d+)", line))), None)
        time.sleep(0.2)
    assert started is not None, "".join(lines)[-3000:]
    node, ports = started.group(1), (int(started.group(2)), int(started.group(3)))
    cli.send_signal(signal.SIGINT)
    try:
        assert cli.wait(timeout=300) == 130
        reader.join(timeout=30)
    finally:
        cli.stdout.close()  # type: ignore[union-attr]
        cli.stderr.close()  # type: ignore[union-attr]
    assert "autoclerk: error: interrupted" in "".join(lines)
    ps = _processes()
    assert node not in ps, "the private RabbitMQ node was stopped"
    assert "tests.faults.chaos --seed 7 --cases 16" not in ps, "the run itself ended"
    assert not any(listening(port) for port in ports), "neither private server listens any more"
