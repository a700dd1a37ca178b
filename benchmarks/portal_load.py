"""How much load the demo portal takes, against how much the bots give it, measured in the same run.

The portal must never be the bottleneck of a benchmark. This drives whole change-of-address transactions
through the portal with plain HTTP (search, case page, form, submit, confirmation: the requests a bot
makes), several in flight, and then runs real bots on a few cases against the same portal. It prints
the median of several runs of each and the headroom: portal transactions per second / bot transactions
per second.

    python benchmarks/portal_load.py [--transactions 2000] [--concurrency 32] [--bot-cases 12] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from demo_portal import generate_cases, portal_process  # noqa: E402

TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


async def http_transactions(url: str, count: int, concurrency: int, start: int) -> float:
    """Run ``count`` transactions with plain HTTP; return transactions per second."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30, follow_redirects=True) as client:
        login = await client.post("/login", data={"username": "clerk", "password": "demo-password"})
        assert login.status_code == 200, login.status_code
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(start, start + count):
            queue.put_nowait(n)

        async def worker() -> None:
            while not queue.empty():
                ref = f"CASE-{queue.get_nowait():06d}"
                assert (await client.get("/cases", params={"ref": ref})).status_code == 200
                assert (await client.get(f"/cases/{ref}")).status_code == 200
                form = await client.get(f"/cases/{ref}/address")
                token = TOKEN.search(form.text).group(1)  # type: ignore[union-attr]
                done = await client.post(f"/cases/{ref}/address", data={
                    "form_token": token, "address_line1": "1 High Street", "city": "Leeds", "postcode": "LS1 4AB",
                    "country": "GB-ENG", "contact_method": "email", "effective_date": dt.date.today().isoformat(),
                    "consent": "yes", "your_ref": ref})
                assert "confirmation-ref" in done.text, done.status_code

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


def bot_transactions(url: str, cases: int, start: int) -> float:
    """Run ``cases`` valid cases through the real bot engine (4 in flight); return transactions per second."""
    from concurrent.futures import ThreadPoolExecutor

    from bots import BotConfig, BotEngine, BotJob
    from workflows import SecretValues, check_case, load_workflow

    import csv

    loaded = load_workflow(ROOT / "workflows/examples/change_of_address.yaml")
    wf = loaded.definition
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cases.csv"
        generate_cases(path, cases, invalid_rate=0.0, start=start)
        rows = list(csv.DictReader(path.read_text().splitlines()))
    engine = BotEngine(BotConfig(system_urls={"portal": url}))
    try:
        engine.run(BotJob(loaded, wf.steps, check_case(wf.input, rows[0], 1), rows[0]["case_ref"], 1, SecretValues()),
                   lambda: None)  # warm-up: browser launch is not part of the rate
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda r: engine.run(BotJob(loaded, wf.steps, check_case(wf.input, r, 1), r["case_ref"], 1,
                                                      SecretValues()), lambda: None), rows[1:]))
        return (len(rows) - 1) / (time.perf_counter() - started)
    finally:
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--bot-cases", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("AUTOCLERK_SECRET_PORTAL_PASSWORD", "demo-password")
    portal_rates, bot_rates = [], []
    with portal_process() as portal:
        for run in range(args.runs):
            portal_rates.append(asyncio.run(http_transactions(portal.url, args.transactions, args.concurrency,
                                                              start=100_000 + run * args.transactions)))
            bot_rates.append(bot_transactions(portal.url, args.bot_cases + 1, start=500_000 + run * 1000))
            print(f"run {run + 1}: portal {portal_rates[-1]:.1f} tx/s over plain HTTP, bots {bot_rates[-1]:.2f} tx/s",
                  file=sys.stderr)
    portal_rate, bot_rate = statistics.median(portal_rates), statistics.median(bot_rates)
    result = {"portal_http_tx_per_s": round(portal_rate, 1), "bot_tx_per_s": round(bot_rate, 3),
              "headroom": round(portal_rate / bot_rate, 1), "runs": args.runs,
              "transactions_per_run": args.transactions, "concurrency": args.concurrency}
    print(f"portal over plain HTTP: {portal_rate:.1f} transactions/s (median of {args.runs}, "
          f"{args.concurrency} in flight, 5 requests each)")
    print(f"bots (4 in flight, one Chromium): {bot_rate:.2f} transactions/s (median of {args.runs})")
    print(f"headroom: the portal takes {portal_rate / bot_rate:.0f}x what the bots give it")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
