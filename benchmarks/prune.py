"""``autoclerk ledger prune`` on a large SQLite ledger: how fast it moves cases into its archive, and how long
a worker's write waits while it runs (the ledger must never be locked for minutes).

A SQLite ledger is built in bulk: ``--cases`` finished cases (one in ten handed back, dealt with) in batches of
100,000, two state changes each, all 500 days old. Then ``autoclerk ledger prune --finished-before 400d
--archive DIR --chunk N`` runs as a subprocess while another process writes to the ledger every 10 ms (as a
worker finishing a case does) and records how long each write waited for the lock. It prints the prune's
seconds, cases per second, the archive's size, and the writer's longest and 99th-percentile wait; and it
checks that the ledger holds no case afterwards and that the counts by state are what they were.

    python benchmarks/prune.py --cases 1000000 [--chunk 500] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH = 100_000
CHUNK_ROWS = 20_000
WORKFLOW = """\
name: prune-bench
version: 1
systems: {target: {}}
input:
  case_ref: {type: string}
  account_number: {type: string, secret: true}
steps:
  - goto: /record/{{ case.case_ref }}
"""


def build_ledger(folder: Path, size: int) -> str:
    """A SQLite ledger of ``size`` finished cases, 500 days old; returns its URL."""
    from sqlalchemy import insert, update

    from orchestrator import Ledger
    from orchestrator.ledger.schema import batches, events, transactions
    from workflows import load_workflow

    path = folder / "prune-bench.yaml"
    path.write_text(WORKFLOW)
    loaded = load_workflow(path)
    url = f"sqlite:///{folder / 'ledger.db'}"
    ledger = Ledger(url)
    old = time.time() - 500 * 86400
    try:
        ledger.workflows.save(loaded)
        for first in range(1, size + 1, BATCH):
            batch_id = ledger.batches.create("prune-bench", loaded.digest, "cases.csv")
            last = min(first + BATCH, size + 1)
            for start in range(first, last, CHUNK_ROWS):
                rows = [{"workflow": "prune-bench", "version": 1, "digest": loaded.digest, "batch_id": batch_id,
                         "case_ref": f"T{n}", "payload": json.dumps({"case_ref": f"T{n}", "account_number": f"{n:08d}"}),
                         "state": "business_exception" if n % 10 == 0 else "done",
                         "resolution": "closed" if n % 10 == 0 else None, "attempts": 1, "max_attempts": 3,
                         "fence": 1, "published": 1, "history": "[]", "priority": 0, "created_at": old,
                         "updated_at": old, "result_ref": f"REF-{n}"} for n in range(start, min(start + CHUNK_ROWS, last))]
                with ledger.engine.begin() as conn:
                    conn.execute(insert(transactions), rows)
                    low = conn.exec_driver_sql("SELECT max(id) FROM transactions").scalar_one() - len(rows) + 1
                    conn.execute(insert(events), [{"transaction_id": low + i, "at": old, "state": s, "attempt": 1}
                                                  for i in range(len(rows)) for s in ("in_progress", "done")])
            ledger.batches.finish_intake(batch_id, rejected=0, stopped=False, rows_read=last - first,
                                         accepted=last - first)
        with ledger.engine.begin() as conn:
            conn.execute(update(batches).values(created_at=old))
    finally:
        ledger.close()
    return url


def writer(url: str, stop: Any, waits: Any) -> None:
    """Write to the ledger every 10 ms (a short transaction, as a worker's), recording each wait in ms."""
    from orchestrator import Ledger

    ledger = Ledger(url)
    found = []
    while not stop.is_set():
        started = time.perf_counter()
        with ledger.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE ledger_info SET value = value WHERE key = 'ledger_id'")
        found.append((time.perf_counter() - started) * 1000)
        time.sleep(0.01)
    ledger.close()
    waits.put(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="End with one JSON object on the last line.")
    args = parser.parse_args()
    from orchestrator import Ledger

    with tempfile.TemporaryDirectory(prefix="autoclerk-prune-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        url = build_ledger(folder, args.cases)
        print(f"{args.cases:,} cases written to the ledger in {time.perf_counter() - started:.1f} s", flush=True)
        ledger = Ledger(url)
        before = ledger.reports.waiting()
        ledger.close()
        stop, waits = multiprocessing.Event(), multiprocessing.Queue()
        write = multiprocessing.Process(target=writer, args=(url, stop, waits))
        write.start()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTOCLERK_LOG_LEVEL": "WARNING"}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "orchestrator", "ledger", "prune", "--finished-before", "400d",
                               "--archive", str(folder / "archive"), "--chunk", str(args.chunk), "--ledger", url,
                               "--artifacts-dir", str(folder / "artifacts"), "--json"],
                              env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        stop.set()
        found = waits.get(timeout=60)
        write.join(timeout=60)
        if done.returncode != 0:
            raise SystemExit(f"prune: the prune exited with {done.returncode}: {done.stderr.strip()[-500:]}")
        summary = json.loads(done.stdout)
        ledger = Ledger(url)
        after = ledger.reports.waiting()
        remaining = sum(ledger.retention.cases_left(b) for b in ledger.retention.batches(time.time() + 1))
        ledger.close()
        archive = Path(summary["archive"]).stat().st_size
        report = {"cases": args.cases, "chunk": args.chunk, "seconds": round(seconds, 1),
                  "cases_per_second": round(args.cases / seconds), "archive_mb": round(archive / 2**20, 1),
                  "writes": len(found), "write_wait_max_ms": round(max(found), 1),
                  "write_wait_p99_ms": round(statistics.quantiles(found, n=100)[98], 1),
                  "pruned": summary["cases"], "cases_left": remaining, "counts_unchanged": before == after}
        print(f"pruned {summary['cases']:,} cases in {seconds:.1f} s ({report['cases_per_second']:,}/s), archive "
              f"{report['archive_mb']} MB; a concurrent writer waited at most {report['write_wait_max_ms']} ms "
              f"(p99 {report['write_wait_p99_ms']} ms over {len(found):,} writes); counts unchanged: "
              f"{report['counts_unchanged']}", flush=True)
        if args.json:
            print(json.dumps(report))
        if summary["cases"] != args.cases or remaining or before != after:
            raise SystemExit("prune: the check failed (cases left in the ledger, or the counts changed)")


if __name__ == "__main__":
    main()
