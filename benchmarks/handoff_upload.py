"""A batch uploaded to the hand-off service, against the command line's intake of the same file, same run.

Ours: ``POST /api/batches`` to ``autoclerk serve`` (embedded, null bot, so no browser competes for the
cores) with a CSV of N change-of-address cases: the multipart body is parsed as it arrives, every row
checked against the input schema, written to the ledger ten thousand at a time and published. Baseline:
``hand_off()`` of the same file from disk in this process (what ``autoclerk run`` does before it waits),
on the same kind of ledger, with the same embedded null-bot worker consuming alongside. It prints rows per second for both (median of the runs), the ratio, and the
service's peak memory before and after the upload (it must not grow with the file).

    python benchmarks/handoff_upload.py --cases 200000 [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXAMPLE = ROOT / "workflows" / "examples" / "change_of_address.yaml"


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def through_service(cases: Path, folder: Path) -> tuple[float, float, float, int]:
    """Seconds for the upload, the service's peak memory (MB) before and after it, and the rows accepted."""
    import httpx

    from orchestrator.accounts import Accounts
    from orchestrator.ledger import Ledger
    from orchestrator.web.server import READY_PREFIX
    from workflows import load_workflow

    ledger_url = f"sqlite:///{folder / 'service.db'}"
    ledger = Ledger(ledger_url)
    accounts = Accounts(ledger.engine)
    accounts.add_user("bench", ["caseworker"], None)
    token = accounts.new_token("bench")
    ledger.workflows.publish(load_workflow(EXAMPLE), "bench", str(EXAMPLE))
    ledger.close()
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "serve", "--port", "0", "--ledger", ledger_url],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=folder,
                            env={**os.environ, "AUTOCLERK_BOT": "null", "AUTOCLERK_CONCURRENCY": "1"})
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith(READY_PREFIX):
            raise SystemExit(f"handoff_upload: the service did not start: {line!r}")
        url = line[len(READY_PREFIX):].strip()
        before = peak_mb(proc.pid)
        started = time.perf_counter()
        with open(cases, "rb") as fh:
            answer = httpx.post(f"{url}/api/batches", params={"workflow": "change-of-address"},
                                files={"file": ("cases.csv", fh, "text/csv")},
                                headers={"authorization": f"Bearer {token}"}, timeout=3600)
        elapsed = time.perf_counter() - started
        if answer.status_code != 201:
            raise SystemExit(f"handoff_upload: the upload was refused: {answer.status_code} {answer.text[:300]}")
        return elapsed, before, peak_mb(proc.pid), answer.json()["accepted"]
    finally:
        proc.terminate()
        proc.wait(timeout=120)


def through_cli_intake(cases: Path, folder: Path) -> tuple[float, int]:
    from orchestrator.queue import make_celery
    from orchestrator.queue import hand_off
    from orchestrator.ledger import Ledger
    from orchestrator.queue import Publisher
    from orchestrator.settings import load_settings
    from workflows import load_workflow

    from orchestrator.queue import embedded_worker
    from orchestrator.queue import Runtime, set_runtime

    ledger = Ledger(f"sqlite:///{folder / 'cli.db'}")
    settings = load_settings(ledger_url=ledger.url, bot="null", concurrency=1)
    app = make_celery(settings)
    publisher = Publisher(app, ledger, settings.ids_per_message)
    runtime = Runtime(settings, ledger)
    with embedded_worker(app, settings.concurrency):  # the same consumer working alongside as in the service
        set_runtime(runtime)
        started = time.perf_counter()
        receipt = hand_off(ledger, publisher, load_workflow(EXAMPLE), cases)
        elapsed = time.perf_counter() - started
    set_runtime(None)
    runtime.close()
    ledger.close()
    return elapsed, receipt.accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="End with one JSON object on the last line.")
    args = parser.parse_args()
    from demo_portal import generate_cases
    from monitoring import configure_logging

    configure_logging(level="WARNING")  # as the command line does: the baseline must not print every transaction

    with tempfile.TemporaryDirectory(prefix="autoclerk-upload-bench-") as tmp:
        folder = Path(tmp)
        cases = folder / "cases.csv"
        generate_cases(cases, args.cases, invalid_rate=0.0)
        size_mb = cases.stat().st_size / 2**20
        ours, baseline, growth = [], [], []
        for run in range(args.runs):
            run_dir = folder / f"run-{run}"
            run_dir.mkdir()
            seconds, before, after, accepted = through_service(cases, run_dir)
            assert accepted == args.cases, f"the service accepted {accepted} of {args.cases}"
            ours.append(args.cases / seconds)
            growth.append(after - before)
            cli_seconds, cli_accepted = through_cli_intake(cases, run_dir)
            assert cli_accepted == args.cases
            baseline.append(args.cases / cli_seconds)
            print(f"run {run + 1}: service {ours[-1]:,.0f} rows/s (peak memory {before:.0f} → {after:.0f} MB), "
                  f"command-line intake {baseline[-1]:,.0f} rows/s", flush=True)
    result = {"cases": args.cases, "file_mb": round(size_mb, 1), "runs": args.runs,
              "service_rows_per_s": round(statistics.median(ours)), "cli_rows_per_s": round(statistics.median(baseline)),
              "ratio": round(statistics.median(ours) / statistics.median(baseline), 3),
              "service_peak_growth_mb": round(max(growth), 1)}
    print(f"{args.cases:,} rows ({size_mb:.1f} MB): service {result['service_rows_per_s']:,} rows/s, "
          f"command-line intake {result['cli_rows_per_s']:,} rows/s (ratio {result['ratio']}); "
          f"the service's peak memory grew at most {result['service_peak_growth_mb']} MB")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
