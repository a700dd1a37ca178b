"""What metrics cost the queue core: the same load with metrics recorded and scraped, and with them off.

Both sides are ``benchmarks/queue_core.py``'s run (a CSV handed off, ``autoclerk worker`` processes with
the null bot, RabbitMQ, a SQLite ledger), alternating in each round so drift affects both alike:

- metrics on: every worker records its metrics and serves ``/metrics`` with the ledger and broker
  gauges, and a scraper reads every worker's ``/metrics`` every second (Prometheus at a 1 s interval;
  production uses 15 s or more);
- metrics off: ``AUTOCLERK_METRICS=false``, nothing recorded or served.

It prints end-to-end transactions per second for each side (median of the runs) and the overhead:
``1 - on / off``. The issue's bar is under 5%.

    python benchmarks/metrics_overhead.py [--transactions 100000] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.queue_core import ensure_rabbitmq, ours, write_cases  # noqa: E402
from benchmarks.sampling import Sampler  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Scraper(Sampler):
    """Reads each URL every ``interval_s`` until stopped; counts the scrapes that answered."""

    def __init__(self, urls: list[str], interval_s: float = 1.0) -> None:
        super().__init__(interval_s)
        self.urls, self.scrapes, self.bytes = urls, 0, 0

    def sample(self) -> None:
        for url in self.urls:
            try:
                self.bytes += len(urllib.request.urlopen(url, timeout=5).read())
                self.scrapes += 1
            except OSError:
                pass  # a worker still starting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--broker", help="a running RabbitMQ (default: start Debian's on 127.0.0.1)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    broker = ensure_rabbitmq(args.broker)
    workdir = Path(tempfile.mkdtemp(prefix="metrics-overhead-"))
    on_rates: list[float] = []
    off_rates: list[float] = []
    scrapes = 0
    lost = duplicated = 0
    try:
        cases = workdir / "cases.csv"
        write_cases(cases, args.transactions)
        for run in range(1, args.runs + 1):
            off = ours(broker, None, args.transactions, args.workers, 1, workdir, cases,
                       worker_env=[{"AUTOCLERK_METRICS": "false"} for _ in range(args.workers)])
            ports = [free_port() for _ in range(args.workers)]
            with Scraper([f"http://127.0.0.1:{p}/metrics" for p in ports]) as scraper:
                on = ours(broker, None, args.transactions, args.workers, 1, workdir, cases,
                          worker_env=[{"AUTOCLERK_METRICS_PORT": str(p)} for p in ports])
            scrapes += scraper.scrapes
            on_rates.append(on["per_s"])
            off_rates.append(off["per_s"])
            lost += on["lost"] + off["lost"]
            duplicated += on["duplicated"] + off["duplicated"]
            print(f"run {run}: metrics on {on['per_s']:,.0f} tx/s ({scraper.scrapes} scrapes), "
                  f"off {off['per_s']:,.0f} tx/s", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    on_median, off_median = statistics.median(on_rates), statistics.median(off_rates)
    result: dict[str, Any] = {
        "transactions": args.transactions, "runs": args.runs, "workers": args.workers,
        "metrics_on_per_s": round(on_median, 1), "metrics_off_per_s": round(off_median, 1),
        "overhead": round(1 - on_median / off_median, 4), "scrapes": scrapes, "lost": lost, "duplicated": duplicated,
    }
    print(f"metrics on: {on_median:,.0f} tx/s, off: {off_median:,.0f} tx/s (medians of {args.runs}); "
          f"overhead {result['overhead']:.1%} ({scrapes} scrapes at 1 s); lost {lost}, duplicated {duplicated}")
    if args.json:
        print(json.dumps(result))
    if lost or duplicated:
        sys.exit(1)


if __name__ == "__main__":
    main()
