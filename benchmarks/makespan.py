"""The makespan of one batch against a system that answers some of its pages with 503, against the same batch
with none, measured in the same run (goal: at most 1.25×).

A batch of valid change-of-address cases (the example workflow) goes through the queue and the ledger as
``autoclerk run`` does: first embedded (``autoclerk run`` alone), then with an ``autoclerk worker`` over
RabbitMQ. Each measurement has a fresh demo portal, its ``error_rate`` knob set (``PUT /api/faults``), and a
fresh SQLite ledger. The makespan is from the hand-off (the batch's creation) to the last case's outcome, as
the ledger records them, so process and browser start-up are left out; a 503 on the submitting request takes
the lookup path (in place, once per attempt), and those cases count. Every measurement checks the portal's
export (one change per case: none lost, none duplicated) and counts the 5xx retried in place, the submits
looked up in place and the attempts sent back to the queue.
The two error rates alternate which goes first; the figure is the median of ``--runs``.

    python benchmarks/makespan.py [--cases 200] [--runs 3] [--error-rate 0.05] [--concurrency 4]
                                  [--broker URL] [--modes embedded,rabbitmq] [--json]

``--broker`` defaults to ``AUTOCLERK_TEST_BROKER`` (the test rig's RabbitMQ, a virtual host of one's own),
then to RabbitMQ's default virtual host on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.queue_core import purge  # noqa: E402
from demo_portal import generate_cases, portal_process  # noqa: E402
from orchestrator.queue import QUEUE  # noqa: E402

WORKFLOW = ROOT / "workflows" / "examples" / "change_of_address.yaml"
RETRIED = '"event": "server error retried in place"'
LOOKED_UP = '"event": "server error on a submit; the change is looked up in place"'
GOAL = 1.25


def wait_for_consumer(broker: str, timeout_s: float = 120) -> None:
    from kombu import Connection

    deadline = time.monotonic() + timeout_s
    with Connection(broker) as conn:
        while time.monotonic() < deadline:
            try:
                if conn.default_channel.queue_declare(QUEUE, passive=True).consumer_count >= 1:
                    return
            except Exception:  # noqa: BLE001 - the worker has not declared the queue yet
                conn.close()
                conn = Connection(broker)
            time.sleep(0.2)
    raise SystemExit("makespan: the worker did not start consuming within 120 s")


def measure(mode: str, error_rate: float, count: int, concurrency: int, broker: str, folder: Path, start: int) -> dict[str, Any]:
    """One batch of ``count`` cases at ``error_rate``; its makespan and what it took."""
    folder.mkdir(parents=True)
    cases, ledger = folder / "cases.csv", folder / "ledger.db"
    generate_cases(cases, count, invalid_rate=0.0, seed=start, start=start)
    env = {**os.environ, "AUTOCLERK_LOG_JSON": "true", "AUTOCLERK_LOG_LEVEL": "INFO",
           "AUTOCLERK_ARTIFACTS_DIR": str(folder / "artifacts"), "AUTOCLERK_SECRET_PORTAL_PASSWORD": "demo-password"}
    with portal_process() as portal:
        httpx.put(f"{portal.url}/api/faults", json={"error_rate": error_rate}, timeout=10).raise_for_status()
        common = ["--ledger", f"sqlite:///{ledger}", "--system", f"portal={portal.url}"]
        worker = None
        if mode == "rabbitmq":
            purge(broker, QUEUE)
            common += ["--broker", broker]
            with open(folder / "worker.log", "wb") as log:
                worker = subprocess.Popen([sys.executable, "-m", "orchestrator", "worker", "--concurrency",
                                           str(concurrency), *common], env=env, cwd=folder, stdout=subprocess.DEVNULL,
                                          stderr=log)
            wait_for_consumer(broker)
        try:
            with open(folder / "run.log", "wb") as log:
                run = subprocess.run([sys.executable, "-m", "orchestrator", "run", str(WORKFLOW), "--cases", str(cases),
                                      *common, "--concurrency", str(concurrency), "--json", "--timeout", "3600"],
                                     env=env, cwd=folder, stdout=subprocess.PIPE, stderr=log, text=True)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=120)
        if run.returncode not in (0, 5):
            raise SystemExit(f"makespan: autoclerk run failed ({run.returncode}); see {folder / 'run.log'}")
        summary = json.loads(run.stdout.strip().splitlines()[-1])
        export = httpx.get(f"{portal.url}/api/export", timeout=30).json()
    made = Counter(entry["your_ref"] for entry in export)
    with sqlite3.connect(ledger) as db:
        created, = db.execute("select min(created_at) from batches").fetchone()
        ended, = db.execute("select max(updated_at) from transactions").fetchone()
        sent_back, = db.execute("select count(*) from transaction_events where state = 'retry_scheduled'").fetchone()
        why = Counter(past["error_class"] for (history,) in db.execute("select history from transactions")
                      for past in json.loads(history) if past["outcome"] == "retry_scheduled")
        done_refs = {ref for (ref,) in db.execute("select case_ref from transactions where state = 'done'")}
    logs = "\n".join(p.read_text(errors="replace") for p in folder.glob("*.log"))
    return {"makespan_s": ended - created, "done": summary["done"], "failed": summary["failed"],
            "unfinished": summary["unfinished"], "lost": len(done_refs - set(made)),
            "duplicated": sum(n - 1 for n in made.values() if n > 1), "retried_in_place": logs.count(RETRIED),
            "looked_up_in_place": logs.count(LOOKED_UP), "sent_back_to_queue": sent_back, "sent_back_why": dict(why)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--error-rate", type=float, default=0.05, help="the fraction of page requests answered 503")
    parser.add_argument("--concurrency", type=int, default=4, help="bots at once (the run's, or the worker's)")
    parser.add_argument("--broker", default=os.environ.get("AUTOCLERK_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//"))
    parser.add_argument("--modes", default="embedded,rabbitmq", help="embedded, rabbitmq, or both (comma-separated)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if not modes or set(modes) - {"embedded", "rabbitmq"}:
        parser.error("--modes: expected embedded, rabbitmq or both, comma-separated")
    result: dict[str, Any] = {"cases": args.cases, "runs": args.runs, "error_rate": args.error_rate,
                              "concurrency": args.concurrency, "goal": GOAL}
    start = 1
    with tempfile.TemporaryDirectory(prefix="makespan-") as tmp:
        for mode in modes:
            seen: dict[float, list[dict[str, Any]]] = {0.0: [], args.error_rate: []}
            for run in range(1, args.runs + 1):
                rates = [0.0, args.error_rate] if run % 2 else [args.error_rate, 0.0]
                for rate in rates:
                    measured = measure(mode, rate, args.cases, args.concurrency, args.broker,
                                       Path(tmp) / f"{mode}-{run}-{rate}", start)
                    start += args.cases
                    seen[rate].append(measured)
                    print(f"{mode} run {run}, error rate {rate:g}: {measured['makespan_s']:.1f} s "
                          f"(done {measured['done']}, failed {measured['failed']}, lost {measured['lost']}, "
                          f"duplicated {measured['duplicated']}, retried in place {measured['retried_in_place']}, "
                          f"submits looked up in place {measured['looked_up_in_place']}, "
                          f"sent back to the queue {measured['sent_back_to_queue']} {measured['sent_back_why']})", flush=True)
            clean = statistics.median(m["makespan_s"] for m in seen[0.0])
            faulty = statistics.median(m["makespan_s"] for m in seen[args.error_rate])
            result[mode] = {
                "makespan_s": round(clean, 1), "makespan_with_errors_s": round(faulty, 1), "ratio": round(faulty / clean, 3),
                **{key: sum(m[key] for m in seen[args.error_rate]) for key in
                   ("failed", "unfinished", "lost", "duplicated", "retried_in_place", "looked_up_in_place",
                    "sent_back_to_queue")},
                "sent_back_why": dict(sum((Counter(m["sent_back_why"]) for m in seen[args.error_rate]), Counter())),
            }
            r = result[mode]
            print(f"{mode}: {r['makespan_s']} s without errors, {r['makespan_with_errors_s']} s with "
                  f"{args.error_rate:.0%} of pages answering 503: {r['ratio']}× (goal ≤ {GOAL}×); "
                  f"retried in place {r['retried_in_place']}, submits looked up in place {r['looked_up_in_place']}, "
                  f"sent back to the queue {r['sent_back_to_queue']}, "
                  f"failed {r['failed']}, lost {r['lost']}, duplicated {r['duplicated']}", flush=True)
    if args.json:
        print(json.dumps(result))
    if any(result[mode]["lost"] or result[mode]["duplicated"] for mode in modes):
        sys.exit(1)


if __name__ == "__main__":
    main()
