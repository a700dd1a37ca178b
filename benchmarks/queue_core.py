"""The queue core alone, end to end through RabbitMQ and the ledger, against plain Celery in the same run.

Ours: a CSV of N cases is handed off (streamed, checked against the input schema, written to the ledger
in large transactions, published with confirms, several ids per message, to the quorum queue), then
``autoclerk worker`` processes with the null bot claim, "run" and record every transaction. Baseline:
plain Celery, one ``apply_async`` per transaction, a no-op task, ``acks_late``, prefork with 2 processes.
It prints transactions per second for intake and end to end (median of the runs), the ratios to the
baseline, peak memory of each process, and the exact count check (every transaction done once in the
ledger, none missing, none duplicated).

    python benchmarks/queue_core.py --transactions 100000 [--runs 3] [--workers 2] [--broker URL] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.sampling import Sampler  # noqa: E402
from bots.processes import descendants, rss_mb  # noqa: E402

WORKFLOW = (ROOT / "benchmarks" / "queue_bench.yaml").read_text()


# -- measuring --------------------------------------------------------------------------------------
class PeakMemory(Sampler):
    """Samples the resident memory of some processes (each with its children) every 0.2 s; keeps the peaks."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(0.2)
        self.pids, self.peaks = pids, {name: 0.0 for name in pids}

    def sample(self) -> None:
        for name, pid in self.pids.items():
            self.peaks[name] = max(self.peaks[name], sum(rss_mb(p) for p in descendants(pid)))


def wait_until(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"queue_core: {what} did not happen within {timeout_s:.0f} s")
        time.sleep(0.05)


# -- the broker -------------------------------------------------------------------------------------
def ensure_rabbitmq(url: str | None) -> str:
    if url:
        return url
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError:
        subprocess.run([str(ROOT / "scripts" / "start-rabbitmq")], check=True)
    return "amqp://guest:guest@127.0.0.1:5672//"


def purge(broker: str, queue: str) -> None:
    from kombu import Connection

    with Connection(broker) as conn:
        try:
            conn.default_channel.queue_purge(queue)
        except Exception:  # noqa: BLE001 - the queue does not exist yet
            pass


# -- the baseline -----------------------------------------------------------------------------------
def baseline(broker: str, count: int, workdir: Path) -> dict[str, float]:
    out = workdir / "baseline"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    env = {**os.environ, "BENCH_OUT": str(out), "BENCH_BROKER": broker, "PYTHONPATH": str(ROOT)}
    from benchmarks.baseline_app import QUEUE, app, noop

    app.conf.broker_url = broker
    purge(broker, QUEUE)
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "benchmarks.baseline_app", "worker", "-P",
                               "prefork", "-c", "2", "-Q", QUEUE, "--without-mingle", "--without-gossip",
                               "-l", "WARNING"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)

    def done() -> int:
        return sum(len(p.read_bytes().splitlines()) for p in out.glob("done-*.txt"))

    try:
        with PeakMemory({"baseline_worker": worker.pid, "baseline_publisher": os.getpid()}) as memory:
            started = time.monotonic()
            with app.producer_or_acquire() as producer:
                for tx_id in range(1, count + 1):
                    noop.apply_async((tx_id,), producer=producer)
            published = time.monotonic()
            wait_until(lambda: done() >= count, 3600, "the baseline")
            finished = time.monotonic()
        ids = [int(x) for p in out.glob("done-*.txt") for x in p.read_bytes().split()]
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    return {"per_s": count / (finished - started), "intake_per_s": count / (published - started),
            "lost": count - len(set(ids)), "duplicated": len(ids) - len(set(ids)),
            "peak_worker_mb": memory.peaks["baseline_worker"]}


# -- ours -------------------------------------------------------------------------------------------
def write_cases(path: Path, count: int) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["case_ref", "amount", "note"])
        for n in range(1, count + 1):
            writer.writerow([f"T{n}", f"{n % 997}.{n % 100:02d}", "routine"])


def ours(broker: str, ledger_url: str | None, count: int, workers: int, concurrency: int, workdir: Path,
         cases: Path, worker_env: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """Hand off ``cases`` and wait for ``workers`` worker processes to finish them (``worker_env``: extra
    environment per worker)."""
    from orchestrator import Ledger, Publisher, hand_off, load_settings, wait_for_batch
    from orchestrator.queue import QUEUE, make_celery
    from workflows import parse_workflow

    db = workdir / "ledger.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    url = ledger_url or f"sqlite:///{db}"
    env = {**os.environ, "AUTOCLERK_BROKER_URL": broker, "AUTOCLERK_LEDGER_URL": url, "AUTOCLERK_BOT": "null",
           "AUTOCLERK_LOG_LEVEL": "WARNING", "AUTOCLERK_SWEEP_INTERVAL_S": "5"}
    settings = load_settings(broker_url=broker, ledger_url=url, bot="null")
    ledger = Ledger(url)
    purge(broker, QUEUE)
    extra = worker_env or [{} for _ in range(workers)]
    procs = [subprocess.Popen([sys.executable, "-m", "orchestrator", "worker", "--concurrency", str(concurrency)],
                              env={**env, **extra[i]}, cwd=workdir) for i in range(workers)]
    try:
        app = make_celery(settings)
        publisher = Publisher(app, ledger, settings.ids_per_message)
        loaded = parse_workflow(WORKFLOW, "queue-bench.yaml")
        pids = {f"worker_{i + 1}": p.pid for i, p in enumerate(procs)} | {"intake": os.getpid()}
        with PeakMemory(pids) as memory:
            started = time.monotonic()
            receipt = hand_off(ledger, publisher, loaded, cases)
            intake_s = time.monotonic() - started
            wait_for_batch(ledger, publisher, receipt.batch_id, poll_s=0.25, sweep_every_s=30)
            total_s = time.monotonic() - started
        check = count_check(ledger, count)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        ledger.close()
    return {"per_s": count / total_s, "intake_per_s": count / intake_s, "intake_s": intake_s, "total_s": total_s,
            "peak_mb": memory.peaks, **check}


def count_check(ledger: Any, count: int) -> dict[str, int]:
    """Every transaction done exactly once: none missing, none run twice (one claim, one outcome each)."""
    from sqlalchemy import text

    with ledger.engine.connect() as conn:
        rows = conn.execute(text("select count(*), sum(case when state = 'done' then 1 else 0 end), "
                                 "sum(case when attempts <> 1 then 1 else 0 end) from transactions")).one()
        done_events = conn.execute(text("select count(*), count(distinct transaction_id) from transaction_events "
                                        "where state = 'done'")).one()
    total, done, reattempted = rows[0], rows[1] or 0, rows[2] or 0
    return {"ledger_rows": total, "done": done, "lost": count - done,
            "duplicated": max(0, total - count) + reattempted + (done_events[0] - done_events[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="autoclerk worker processes")
    parser.add_argument("--concurrency", type=int, default=1, help="threads per worker process (the null bot is CPU-bound: one)")
    parser.add_argument("--baseline-transactions", type=int, help="baseline size (default: the same, at most 100,000)")
    parser.add_argument("--broker", help="a running RabbitMQ (default: start Debian's on 127.0.0.1)")
    parser.add_argument("--ledger", help="ledger URL (default: a new SQLite file per run)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    broker = ensure_rabbitmq(args.broker)
    base_count = args.baseline_transactions or min(args.transactions, 100_000)
    workdir = Path(tempfile.mkdtemp(prefix="queue-core-"))
    try:
        cases = workdir / "cases.csv"
        write_cases(cases, args.transactions)
        base_runs, our_runs = [], []
        for run in range(1, args.runs + 1):
            base_runs.append(baseline(broker, base_count, workdir))
            our_runs.append(ours(broker, args.ledger, args.transactions, args.workers, args.concurrency, workdir, cases))
            b, o = base_runs[-1], our_runs[-1]
            print(f"run {run}: ours {o['per_s']:,.0f} tx/s end to end, intake {o['intake_per_s']:,.0f} rows/s "
                  f"({o['total_s']:.1f} s; lost {o['lost']}, duplicated {o['duplicated']}) · baseline "
                  f"{b['per_s']:,.0f} tx/s, apply_async loop {b['intake_per_s']:,.0f}/s", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    median = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
    result = {
        "transactions": args.transactions,
        "runs": args.runs,
        "end_to_end_per_s": round(median(our_runs, "per_s"), 1),
        "intake_per_s": round(median(our_runs, "intake_per_s"), 1),
        "baseline_per_s": round(median(base_runs, "per_s"), 1),
        "baseline_intake_per_s": round(median(base_runs, "intake_per_s"), 1),
        "baseline_transactions": base_count,
        "total_s": round(median(our_runs, "total_s"), 1),
        "lost": sum(r["lost"] for r in our_runs),
        "duplicated": sum(r["duplicated"] for r in our_runs),
        "baseline_lost": sum(r["lost"] for r in base_runs),
        "baseline_duplicated": sum(r["duplicated"] for r in base_runs),
        "peak_mb": {name: round(max(r["peak_mb"][name] for r in our_runs), 1) for name in our_runs[0]["peak_mb"]}
                   | {"baseline_worker": round(max(r["peak_worker_mb"] for r in base_runs), 1)},
    }
    result["ratio"] = round(result["end_to_end_per_s"] / result["baseline_per_s"], 2)
    result["intake_ratio"] = round(result["intake_per_s"] / result["baseline_intake_per_s"], 2)
    print(f"end to end: {result['end_to_end_per_s']:,.0f} tx/s, {result['ratio']}× the baseline "
          f"({result['baseline_per_s']:,.0f} tx/s); intake {result['intake_per_s']:,.0f} rows/s, "
          f"{result['intake_ratio']}× an apply_async loop; lost {result['lost']}, duplicated {result['duplicated']}; "
          f"peak MB {result['peak_mb']}")
    if args.json:
        print(json.dumps(result))
    if result["lost"] or result["duplicated"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
