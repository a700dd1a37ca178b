"""Every page and API route of the hand-off service at 10,000 cases and at 10,000,000, in the same run.

For each size a new ledger (SQLite, or a throwaway PostgreSQL database) is built in bulk: batches of
``--batch-size`` cases (the older ones finished: mostly done, one in a hundred an open exception, some failed;
the newest one active: queued, retries later, done with their state changes in the last hour), their counts by
state, refused rows, an audit trail. The newest batch (the one the routes of a batch ask for) holds
``--batch-size`` cases at both sizes where the ledger can spare them (at most half of it), and a small ledger's
older batches are smaller, at least ``--min-batches`` in all: so each route does the same work at both sizes
and the ratio measures the ledger's growth. (At 10,000 cases in one batch of 10,000, the batch list showed one row
against a page of 50 at 10,000,000; with 51 batches of 196, a download's first page held 196 rows against 1,000.) SQLite gets ``executemany`` in large transactions,
PostgreSQL ``COPY`` through psycopg. Then ``autoclerk serve`` runs on it, an operator signs in (the sign-in
form, for the pages; an API token, for the API), and every route is requested ``--requests`` times: pages
and API answers to the last byte, downloads to the first byte (they stream). ``autoclerk status --json``
runs ``--status-runs`` times as a subprocess (Python's start included), and as many times from
``--status-before`` (another checkout, the baseline) in turn with it.

It prints p50 and p95 per route at each size and the ratio of the p95s (the goal: at most 2×, and p95
under 200 ms at the largest size), the status command's median time, and, with
``--queue-core-transactions N``, hand-off and claim throughput (``benchmarks/queue_core.py``) of this
checkout ("after") and of ``--before`` (a checkout without the counters, e.g. main), interleaved run by run.

    python benchmarks/service_at_scale.py [--ledger sqlite|postgresql] [--rows 10000,10000000] [--requests 20]
        [--status-runs 5 --status-before CHECKOUT]
        [--queue-core-transactions 100000 --before /work/main --broker URL] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXAMPLE = ROOT / "workflows" / "examples" / "change_of_address.yaml"
WORKFLOW = "change-of-address"
POSTGRES_ADMIN = os.environ.get("AUTOCLERK_TEST_POSTGRES", "postgresql+psycopg://autoclerk:autoclerk@127.0.0.1:5432/autoclerk")
COLUMNS = ("id", "workflow", "digest", "batch_id", "case_ref", "payload", "state", "attempts", "max_attempts", "fence",
           "next_attempt_at", "published", "result_ref", "error_class", "error_message", "history", "created_at",
           "updated_at", "version", "priority", "resolution")
CHUNK = 200_000


# -- building the ledger ------------------------------------------------------------------------------
def case_state(n: int, newest: bool) -> tuple[str, str | None]:
    """The state (and resolution) of the ``n``-th case of a batch."""
    k = n % 100
    if newest:
        return ("queued", None) if k < 50 else ("retry_scheduled", None) if k < 55 else \
            ("business_exception", None) if k < 58 else ("failed", None) if k < 60 else ("done", None)
    return ("business_exception", None) if k == 0 else ("business_exception", "closed") if k == 1 else \
        ("failed", None) if k in (2, 3) else ("cancelled", None) if k == 4 else ("done", None)


def batch_sizes(size: int, batch_size: int, min_batches: int) -> list[int]:
    """How many cases each batch holds, oldest first. The newest (the one the routes of a batch ask for) holds
    ``batch_size`` cases at every size that can spare them (at most half the ledger), so those routes do the
    same work at both sizes. The older ones share the rest, at most ``batch_size`` each and at least
    ``min_batches - 1`` of them, so the lists of batches show a full page at both sizes."""
    newest = min(batch_size, size // 2)
    rest = size - newest
    older = max(1, min(rest, max(min_batches - 1, -(-rest // batch_size))))  # none empty
    base, extra = divmod(rest, older)
    return [base + (1 if b < extra else 0) for b in range(older)] + [newest]


def case_rows(sizes: list[int], digest: str, now: float, tally: Counter[tuple[str, str]]
              ) -> Iterator[tuple[Any, ...]]:
    """Every case of the ledger in id order (batches of ``sizes`` cases), counting each batch's states into
    ``tally``."""
    ends = list(itertools.accumulate(sizes))
    b = 0
    for n in range(ends[-1]):
        while n >= ends[b]:
            b += 1
        newest = b == len(sizes) - 1
        state, resolution = case_state(n, newest)
        batch_id = f"b{b:07d}"
        tally[(batch_id, state)] += 1
        if state == "business_exception" and resolution is None:
            tally[(batch_id, "open_exception")] += 1
        at = now - 60 * (n % 3000) / 3000 if newest else now - 86400 * 30 + b
        payload = (f'{{"case_ref":"CASE-{n % 1000000:06d}","address_line1":"{n} High Street","city":"Leeds",'
                   f'"postcode":"LS1 4AP","country":"GB-ENG","contact_method":"email","effective_date":"2026-01-01"}}')
        waiting = state in ("queued", "retry_scheduled")
        yield (n + 1, WORKFLOW, digest, batch_id, f"R{n:09d}", payload, state, 0 if state == "queued" else 1, 3,
               0 if state == "queued" else 1, now + 86400 if state == "retry_scheduled" else None,
               # queued cases count as published and retries wait a day: the service's own worker leaves them
               0 if state == "retry_scheduled" else 1,
               f"CHG-{n}" if state == "done" else None,
               "ExceptionRaised" if state == "business_exception" else "TimeoutError" if state == "failed" else None,
               "The case is closed" if state == "business_exception" else "The portal did not answer" if state == "failed" else None,
               "[]" if waiting else f'[{{"attempt":1,"started_at":{at - 5},"ended_at":{at},"outcome":"{state}","error_class":null,'
               f'"error":null,"error_detail":null,"evidence":[]}}]', at, at, 1, 0, resolution)


def build(url: str, sizes: list[int]) -> dict[str, Any]:
    """A ledger at ``url`` of batches of ``sizes`` cases (see :func:`batch_sizes`); returns what the routes ask
    for (the newest batch, one case)."""
    from orchestrator.accounts import Accounts
    from orchestrator.ledger import Ledger
    from orchestrator.ledger.schema import batches, events
    from sqlalchemy import insert
    from workflows import load_workflow

    ledger = Ledger(url)
    loaded = load_workflow(EXAMPLE)
    ledger.workflows.publish(loaded, "bench", str(EXAMPLE))
    accounts = Accounts(ledger.engine)
    accounts.add_user("bench", ["operator", "caseworker", "author"], "bench-password-1234")
    token = accounts.new_token("bench")
    now = time.time()
    size, count = sum(sizes), len(sizes)
    newest = f"b{count - 1:07d}"
    with ledger.engine.begin() as conn:
        conn.execute(insert(batches), [{
            "id": f"b{b:07d}", "workflow": WORKFLOW, "digest": loaded.digest, "source_name": f"cases-{b}.csv",
            "created_at": now - 86400 * 30 + b, "state": "active" if b == count - 1 else "finished",
            "priority": 0, "created_by": "bench", "intake": "complete", "rows_rejected": 20 if b == count - 1 else 0,
            "finished_at": None if b == count - 1 else now - 86400,
            "rows_read": sizes[b] + (20 if b == count - 1 else 0), "accepted": sizes[b]} for b in range(count)])
    tally: Counter[tuple[str, str]] = Counter()
    started = time.perf_counter()
    rows = case_rows(sizes, loaded.digest, now, tally)
    if ledger.engine.dialect.name == "sqlite":
        _sqlite_bulk(url, rows)
    else:
        _postgres_bulk(url, rows)
    bulk_s = time.perf_counter() - started
    first = size - sizes[-1] + 1
    whole: Counter[str] = Counter()
    for (_, state), n in tally.items():
        whole[state] += n
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO ledger_counters (batch_id, workflow, name, shard, count) VALUES (:b, :w, :s, 0, :n)"
            .replace(":b", "?").replace(":w", "?").replace(":s", "?").replace(":n", "?")
            if conn.dialect.paramstyle == "qmark" else
            "INSERT INTO ledger_counters (batch_id, workflow, name, shard, count) VALUES (%s, %s, %s, 0, %s)",
            [(b, WORKFLOW, s, n) for (b, s), n in sorted(tally.items())] + [("", WORKFLOW, s, n) for s, n in sorted(whole.items())])
        # the newest batch's finished cases reached their state in the last hour: the throughput chart has them
        done = [i for i in range(first, size + 1) if case_state(i - 1, True)[0] in ("done", "failed", "business_exception")]
        conn.execute(insert(events), [{"transaction_id": i, "at": now - 3600 * (i % 997) / 997, "state": s, "attempt": 1}
                                      for i in done for s in ("in_progress", case_state(i - 1, True)[0])])
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('transactions', 'id'), %s)", (size,))
    ledger.batches.record_rejections(newest, [(n, "postcode", "Enter a postcode in capitals like SW1A 1AA", "invalid")
                                              for n in range(2, 22)])
    for n in range(300):
        ledger.audit.record("bench", "batch.pause" if n % 2 else "batch.resume", "batch", newest, origin="127.0.0.1")
    if ledger.engine.dialect.name == "postgresql":
        with ledger.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")  # now, not by autovacuum while the routes are timed
    # a done case of the newest batch, with its state changes (any case of it, in a batch too small to have one)
    case_id = next((i for i in range(first, size + 1) if case_state(i - 1, True)[0] == "done"), first)
    ledger.close()
    return {"batch": newest, "case": case_id, "token": token, "bulk_s": bulk_s}


def _sqlite_bulk(url: str, rows: Iterator[tuple[Any, ...]]) -> None:
    import sqlite3

    db = sqlite3.connect(url.removeprefix("sqlite:///"))
    db.execute("PRAGMA synchronous=OFF")
    sql = f"INSERT INTO transactions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    while chunk := [row for _, row in zip(range(CHUNK), rows)]:
        with db:
            db.executemany(sql, chunk)
    db.close()


def _postgres_bulk(url: str, rows: Iterator[tuple[Any, ...]]) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as db, db.cursor() as cur:
        with cur.copy(f"COPY transactions ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def new_ledger(kind: str, folder: Path, size: int) -> tuple[str, Any]:
    """A new empty ledger URL, and how to drop it afterwards."""
    if kind == "sqlite":
        path = folder / f"ledger-{size}.db"
        return f"sqlite:///{path}", lambda: [p.unlink(missing_ok=True) for p in folder.glob(f"ledger-{size}.db*")]
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"autoclerk_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(POSTGRES_ADMIN).set(database=name).render_as_string(hide_password=False), drop


# -- measuring --------------------------------------------------------------------------------------
def routes(batch: str, case: int) -> list[tuple[str, str, bool]]:
    """``(name, path, streamed)``: every GET route of the service (pages, downloads, API)."""
    b, wf = f"/batches/{batch}", WORKFLOW
    return [
        ("page operations", "/operations", False), ("page batches", "/batches", False),
        ("page batch", b, False), ("page batch failed", f"{b}?state=failed", False),
        ("page batch open exceptions", f"{b}?state=open_exception", False),
        ("page batch by reference", f"{b}?ref=R0", False), ("page batch next page", f"{b}?after={case}", False),
        ("page rejections", f"{b}/rejections", False), ("page case", f"/cases/{case}", False),
        ("page exceptions", "/exceptions", False), ("page audit", "/audit", False),
        ("page workflows", "/workflows", False), ("page workflow versions", f"/workflows/{wf}", False),
        ("page hand-off", "/hand-off", False), ("page hand-off case", f"/hand-off/{wf}/case", False),
        ("page hand-off batch", f"/hand-off/{wf}/batch", False),
        ("download results.csv", f"{b}/results.csv", True), ("download results.jsonl", f"{b}/results.jsonl", True),
        ("download rejections.csv", f"{b}/rejections.csv", True), ("download audit.csv", "/audit.csv", True),
        ("api operations", "/api/operations", False), ("api batches", "/api/batches", False),
        ("api batch", f"/api{b}", False), ("api batch cases", f"/api{b}/cases", False),
        ("api batch cases failed", f"/api{b}/cases?state=failed", False),
        ("api reconciliation", f"/api{b}/reconciliation", False), ("api rejections", f"/api{b}/rejections", False),
        ("api case", f"/api/cases/{case}", False), ("api exceptions", "/api/exceptions", False),
        ("api workflows", "/api/workflows", False), ("api workflow versions", f"/api/workflows/{wf}/versions", False),
        ("api audit", "/api/audit?limit=100", False), ("api results (stream)", f"/api{b}/results", True),
        ("api audit export (stream)", "/api/audit/export", True),
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure_service(url: str, built: dict[str, Any], requests: int, folder: Path) -> dict[str, dict[str, float]]:
    """p50 and p95 (ms) of every route, through ``autoclerk serve`` on the ledger."""
    import httpx

    from orchestrator.web.server import READY_PREFIX

    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTOCLERK_BOT": "null", "AUTOCLERK_CONCURRENCY": "1",
           "AUTOCLERK_COOKIE_SECURE": "false", "AUTOCLERK_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "serve", "--port", "0", "--ledger", url],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=folder, env=env)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith(READY_PREFIX):
            raise SystemExit(f"service_at_scale: the service did not start: {line!r}")
        base = line[len(READY_PREFIX):].strip()
        pages = httpx.Client(base_url=base, timeout=120)
        form = pages.get("/sign-in").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
        if csrf is None:
            raise SystemExit("service_at_scale: the sign-in form has no CSRF token")
        signed = pages.post("/sign-in", data={"csrf_token": csrf.group(1), "username": "bench",
                                              "password": "bench-password-1234", "next": "/operations"})
        if signed.status_code != 303:
            raise SystemExit(f"service_at_scale: signing in failed: {signed.status_code}")
        api = httpx.Client(base_url=base, timeout=120, headers={"authorization": f"Bearer {built['token']}"})
        found: dict[str, dict[str, float]] = {}
        for name, path, streamed in routes(built["batch"], built["case"]):
            client = api if path.startswith("/api") else pages
            times = []
            for _ in range(requests + 1):  # the first request warms the caches and is not counted
                started = time.perf_counter()
                with client.stream("GET", path) as answer:
                    if answer.status_code != 200:
                        raise SystemExit(f"service_at_scale: {path} answered {answer.status_code}")
                    if streamed:
                        next(answer.iter_bytes())
                    else:
                        answer.read()
                    times.append((time.perf_counter() - started) * 1000)
            times = times[1:]
            found[name] = {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 0.95), 1)}
        return found
    finally:
        proc.terminate()
        proc.wait(timeout=120)


def measure_status(url: str, runs: int, checkouts: list[Path]) -> list[float]:
    """Median seconds of ``autoclerk status --json`` as a subprocess (Python's start included), of each checkout's
    code, run by run in turn so that a busy moment hits each of them."""
    times: list[list[float]] = [[] for _ in checkouts]
    for _ in range(runs):
        for checkout, taken in zip(checkouts, times):
            env = {**os.environ, "PYTHONPATH": str(checkout), "AUTOCLERK_LOG_LEVEL": "WARNING"}
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "orchestrator", "status", "--ledger", url, "--json"],
                                  env=env, capture_output=True, text=True, cwd=checkout)
            taken.append(time.perf_counter() - started)
            if done.returncode != 0:
                raise SystemExit(f"service_at_scale: status of {checkout} exited with {done.returncode}: "
                                 f"{done.stderr.strip()[-300:]}")
    return [round(statistics.median(taken), 3) for taken in times]


def measure_status_work(url: str, runs: int) -> float:
    """Median milliseconds of ``autoclerk status --json`` run in this process (the ledger's part: opening it,
    the figures; without Python's start and the imports, which do not depend on the ledger)."""
    from click.testing import CliRunner

    from orchestrator.cli.status import status

    times = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        result = CliRunner().invoke(status, ["--ledger", url, "--json"])
        times.append((time.perf_counter() - started) * 1000)
        if result.exit_code != 0:
            raise SystemExit(f"service_at_scale: status failed: {result.output[-300:]}")
    return round(statistics.median(times[1:]), 1)


def queue_core(checkout: Path, transactions: int, broker: str) -> dict[str, Any]:
    """One run of ``benchmarks/queue_core.py`` of a checkout (its own code in its workers)."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run([sys.executable, str(checkout / "benchmarks" / "queue_core.py"), "--transactions",
                           str(transactions), "--runs", "1", "--broker", broker, "--json",
                           "--baseline-transactions", str(min(transactions, 5000))],  # its baseline is not compared here
                          env=env, capture_output=True, text=True, cwd=checkout)
    if done.returncode != 0:
        raise SystemExit(f"service_at_scale: queue_core.py of {checkout} exited with {done.returncode}: "
                         f"{done.stderr.strip()[-300:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rows", default="10000,10000000", help="the two ledger sizes, small first")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--min-batches", type=int, default=51,
                        help="at least this many batches at each size (more than a page of the batch list)")
    parser.add_argument("--requests", type=int, default=20, help="requests per route and size")
    parser.add_argument("--status-runs", type=int, default=5)
    parser.add_argument("--status-before", type=Path, help="also time autoclerk status of this checkout (the baseline)")
    parser.add_argument("--queue-core-transactions", type=int, default=0, help="0: skip the throughput comparison")
    parser.add_argument("--queue-core-runs", type=int, default=3)
    parser.add_argument("--before", type=Path, default=Path("/work/main"), help="the checkout to compare with")
    parser.add_argument("--broker", default=os.environ.get("AUTOCLERK_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//"))
    parser.add_argument("--json", action="store_true", help="End with one JSON object on the last line.")
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.rows.split(",")]
    if len(sizes) != 2 or sizes[0] >= sizes[1]:
        parser.error("--rows takes two sizes, small first, e.g. 10000,10000000")
    report: dict[str, Any] = {"ledger": args.ledger, "rows": sizes, "batch_size": args.batch_size,
                              "min_batches": args.min_batches, "requests": args.requests, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="autoclerk-scale-bench-") as tmp:
        folder = Path(tmp)
        for size in sizes:
            url, drop = new_ledger(args.ledger, folder, size)
            try:
                started = time.perf_counter()
                sizes_of = batch_sizes(size, args.batch_size, args.min_batches)
                built = build(url, sizes_of)
                build_s = time.perf_counter() - started
                print(f"{args.ledger}: {size:,} cases in {len(sizes_of):,} batches, the newest of {sizes_of[-1]:,}, "
                      f"built in {build_s:.0f} s (bulk insert {built['bulk_s']:.0f} s)", flush=True)
                figures = measure_service(url, built, args.requests, folder)
                status_s, *baseline = measure_status(url, args.status_runs,
                                                     [ROOT, *([args.status_before] if args.status_before else [])])
                status_ms = measure_status_work(url, args.requests)
                report["sizes"][str(size)] = {"build_s": round(build_s, 1), "newest_batch": sizes_of[-1],
                                              "batches": len(sizes_of),
                                              "routes": figures, "status_s": status_s,
                                              "status_work_ms": status_ms}
                print(f"  autoclerk status: {status_s:.2f} s as a command (median of {args.status_runs}, Python's "
                      f"start and imports included), {status_ms:.1f} ms of it reading the ledger", flush=True)
                if baseline:
                    report["sizes"][str(size)]["status_before_s"] = baseline[0]
                    print(f"  autoclerk status of {args.status_before}: {baseline[0]:.2f} s; this checkout takes "
                          f"{status_s / baseline[0]:.2f}× its time", flush=True)
            finally:
                drop()
    small, large = (report["sizes"][str(s)] for s in sizes)
    print(f"{'route':<30} {'p50 small':>10} {'p95 small':>10} {'p50 large':>10} {'p95 large':>10} {'p95 ratio':>10}")
    ratios = {}
    for name in small["routes"]:
        a, b = small["routes"][name], large["routes"][name]
        ratios[name] = round(b["p95_ms"] / max(a["p95_ms"], 0.1), 2)
        print(f"{name:<30} {a['p50_ms']:>10.1f} {a['p95_ms']:>10.1f} {b['p50_ms']:>10.1f} {b['p95_ms']:>10.1f} "
              f"{ratios[name]:>9.2f}×")
    report["p95_ratio"] = ratios
    report["worst_p95_ratio"] = max(ratios.values())
    report["worst_p95_ms_large"] = max(r["p95_ms"] for r in large["routes"].values())
    report["status_s"] = {str(s): report["sizes"][str(s)]["status_s"] for s in sizes}
    report["status_work_ms"] = {str(s): report["sizes"][str(s)]["status_work_ms"] for s in sizes}
    if args.status_before:
        report["status_before_s"] = {str(s): report["sizes"][str(s)]["status_before_s"] for s in sizes}
        report["status_ratio"] = {s: round(report["status_s"][s] / report["status_before_s"][s], 3)
                                  for s in report["status_s"]}
    print(f"worst p95 ratio {report['worst_p95_ratio']}× (goal ≤ 2×); worst p95 at {sizes[1]:,}: "
          f"{report['worst_p95_ms_large']} ms (goal < 200 ms); autoclerk status {report['status_s']} s as a command "
          f"(goal < 1 s), {report['status_work_ms']} ms reading the ledger"
          + (f"; the baseline's status {report['status_before_s']} s, ratio {report['status_ratio']}"
             if args.status_before else ""))
    if args.queue_core_transactions:
        before, after = [], []
        for run in range(1, args.queue_core_runs + 1):  # interleaved, so a busy moment hits both sides
            before.append(queue_core(args.before, args.queue_core_transactions, args.broker))
            after.append(queue_core(ROOT, args.queue_core_transactions, args.broker))
            print(f"queue core run {run}: before {before[-1]['end_to_end_per_s']:,.0f} tx/s end to end, intake "
                  f"{before[-1]['intake_per_s']:,.0f} rows/s · after {after[-1]['end_to_end_per_s']:,.0f} tx/s, "
                  f"intake {after[-1]['intake_per_s']:,.0f} rows/s", flush=True)
        median = lambda runs, key: round(statistics.median(r[key] for r in runs), 1)  # noqa: E731
        core = {"transactions": args.queue_core_transactions, "runs": args.queue_core_runs,
                "before": {k: median(before, k) for k in ("end_to_end_per_s", "intake_per_s")},
                "after": {k: median(after, k) for k in ("end_to_end_per_s", "intake_per_s")},
                "lost": sum(r["lost"] for r in after), "duplicated": sum(r["duplicated"] for r in after)}
        core["end_to_end_ratio"] = round(core["after"]["end_to_end_per_s"] / core["before"]["end_to_end_per_s"], 3)
        core["intake_ratio"] = round(core["after"]["intake_per_s"] / core["before"]["intake_per_s"], 3)
        report["queue_core"] = core
        print(f"queue core ({args.queue_core_transactions:,} transactions, median of {args.queue_core_runs}): end to "
              f"end {core['before']['end_to_end_per_s']:,.0f} → {core['after']['end_to_end_per_s']:,.0f} tx/s "
              f"({core['end_to_end_ratio']}×), intake {core['before']['intake_per_s']:,.0f} → "
              f"{core['after']['intake_per_s']:,.0f} rows/s ({core['intake_ratio']}×); lost {core['lost']}, "
              f"duplicated {core['duplicated']}")
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
