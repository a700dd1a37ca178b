"""Bots against a hand-written Playwright script, measured in the same run on the same demo portal.

Ours: the example workflow (``workflows/examples/change_of_address.yaml``) through ``BotEngine`` as a
worker runs it: one Chromium (the one a worker picks: the headless shell when installed), a fresh context
per transaction, several transactions in flight, the sign-in kept per worker. The baseline: the same
transactions written the plain way, one browser, a new context per transaction, one transaction at a
time, signing in each time, no tuning, on the system Chromium (``--baseline-browser``, default
``system``: Debian's, which is what a plain script can launch here, since ``playwright install`` cannot
download). When ours runs on another browser, each run also measures the baseline on ours' browser, so
the report separates what the browser gives (``ratio``) from what the engine gives on the same browser
(``ratio_same_browser``). Both run the same
kind of cases (about 5% of them invalid, which the portal refuses); every run checks the portal's own
export: exactly one submission per valid case, none for an invalid one.

Peak memory per bot is the proportional set size of the bot's Python process plus its Chromium
processes, sampled every 0.2 s. ``--soak N`` also runs N transactions through one engine, sampling memory
every 100, and reports the growth between the first and the last tenth.

    python benchmarks/bots.py [--cases 60] [--runs 3] [--concurrency 4] [--soak 0]
                              [--baseline-browser system] [--healing] [--json]

``--healing`` also runs ours, right after each run of ours, with step fingerprints kept in a SQLite ledger
(as a worker keeps them), and reports ``healing_per_s`` and ``healing_cost`` (1 - with / without).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bots import BotConfig, BotEngine, BotJob, BusinessException, find_chromium, launch_options  # noqa: E402
from bots.processes import memory_mb  # noqa: E402
from bots.shell import browser_version  # noqa: E402
from benchmarks.sampling import Sampler  # noqa: E402
from demo_portal import generate_cases, portal_process  # noqa: E402
from workflows import SecretValues, check_case, load_workflow  # noqa: E402

WORKFLOW = ROOT / "workflows" / "examples" / "change_of_address.yaml"
PASSWORD = "demo-password"


def cases_file(folder: Path, count: int, start: int) -> list[dict[str, str]]:
    path = folder / f"cases-{start}.csv"
    generate_cases(path, count, invalid_rate=0.05, start=start, seed=start)
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


class MemoryPeak(Sampler):
    """Samples the memory of this process and the given browser processes until stopped; keeps the peak."""

    def __init__(self, browser_pids: Callable[[], list[int]]) -> None:
        super().__init__(0.2)
        self.browser_pids, self.peak_mb = browser_pids, 0.0

    def sample(self) -> None:
        self.peak_mb = max(self.peak_mb, memory_mb([os.getpid(), *self.browser_pids()]))


# -- the baseline: a hand-written script, the plain way ----------------------------------------------------
async def baseline(url: str, rows: list[dict[str, str]], executable: str) -> tuple[float, float]:
    """Run the cases one at a time, a new context each; returns (transactions per second, peak MB)."""
    from playwright.async_api import async_playwright

    from bots.processes import browser_processes

    marker = f"baseline-{os.getpid()}"  # to find its processes; not a worker's form, so no reaper ends them
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, **launch_options(),
                                           env={**os.environ, "AUTOCLERK_BOT_OWNER": marker})
        with MemoryPeak(lambda: list(browser_processes(marker))) as peak:
            started = time.perf_counter()
            for row in rows:
                context = await browser.new_context()
                page = await context.new_page()
                try:
                    await page.goto(f"{url}/login")
                    await page.fill("#username", "clerk")
                    await page.fill("#password", PASSWORD)
                    await page.click("#sign-in")
                    await page.wait_for_url("**/cases*")
                    await page.fill("#search-ref", row["case_ref"])
                    await page.click("#search")
                    await page.click("a.case-link")
                    await page.click("#change-address")
                    for name in ("address_line1", "address_line2", "city", "postcode", "effective_date", "notes"):
                        await page.fill(f"#{name}", row[name])
                    await page.select_option("#country", row["country"])
                    await page.check(f"#contact-{row['contact_method']}")
                    await page.check("#consent")
                    await page.fill("#your_ref", row["case_ref"])
                    await page.click("#submit-change")
                    await page.wait_for_selector("#confirmation-ref, .error-summary:visible")
                finally:
                    await context.close()
            elapsed = time.perf_counter() - started
        await browser.close()
    return len(rows) / elapsed, peak.peak_mb


# -- ours ------------------------------------------------------------------------------------------------------
def ours(url: str, rows: list[dict[str, str]], concurrency: int, engine: BotEngine | None = None,
         executable: str | None = None, healing: Any = None) -> tuple[float, float]:
    """Run the cases through the engine, ``concurrency`` in flight; returns (transactions per second, peak MB)."""
    loaded = load_workflow(WORKFLOW)
    wf = loaded.definition
    secrets = SecretValues()
    own = engine is None
    engine = engine or BotEngine(BotConfig(system_urls={"portal": url}, chromium_path=executable), healing=healing)

    def one(row: dict[str, str]) -> None:
        job = BotJob(loaded, wf.steps, check_case(wf.input, row, 1), row["case_ref"], 1, secrets)
        try:
            engine.run(job, before_effect=lambda: None)
        except BusinessException:
            pass  # the portal refused an invalid case: handed back, as expected

    try:
        with MemoryPeak(engine.browser_pids) as peak:
            started = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(one, rows))
            elapsed = time.perf_counter() - started
        return len(rows) / elapsed, peak.peak_mb
    finally:
        if own:
            engine.close()


def soak(url: str, folder: Path, count: int, concurrency: int, executable: str) -> dict[str, Any]:
    """Run ``count`` transactions through one engine, sampling its memory every 100; report the growth."""
    engine = BotEngine(BotConfig(system_urls={"portal": url}, chromium_path=executable))
    samples: list[float] = []
    try:
        for start in range(0, count, 100):
            ours(url, cases_file(folder, min(100, count - start), 800_000 + start), concurrency, engine)
            samples.append(memory_mb([os.getpid(), *engine.browser_pids()]))
            print(f"soak: {start + 100} transactions, {samples[-1]:.0f} MB", file=sys.stderr)
    finally:
        engine.close()
    tenth = max(1, len(samples) // 10)
    first, last = statistics.median(samples[:tenth]), statistics.median(samples[-tenth:])
    return {"soak_transactions": count, "soak_first_mb": round(first, 1), "soak_last_mb": round(last, 1),
            "soak_growth_mb": round(last - first, 1), "soak_browser_launches": engine.launches}


def check_portal(url: str, rows: list[dict[str, str]], invalid: set[str]) -> tuple[int, int]:
    """(valid cases without exactly one submission, invalid cases submitted) for these rows."""
    export = httpx.get(f"{url}/api/export", timeout=30).json()
    counts: dict[str, int] = {}
    for entry in export:
        ref = entry.get("your_ref") or entry.get("case_ref")
        counts[ref] = counts.get(ref, 0) + 1
    wrong = sum(1 for r in rows if r["case_ref"] not in invalid and counts.get(r["case_ref"], 0) != 1)
    submitted_invalid = sum(1 for ref in invalid if counts.get(ref, 0))
    return wrong, submitted_invalid


def invalid_refs(url: str, rows: list[dict[str, str]]) -> set[str]:
    """The cases the portal refuses (checked the way the portal checks, through its own rules)."""
    from demo_portal.records import validate_change

    return {r["case_ref"] for r in rows if validate_change({**r, "consent": "yes", "your_ref": r["case_ref"]})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=60, help="cases per run, for each side (default 60)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4, help="transactions in flight in our engine")
    parser.add_argument("--soak", type=int, default=0, help="also run this many through one engine, sampling memory")
    parser.add_argument("--baseline-browser", default="system",
                        help="the baseline's Chromium: a path, 'system' (default) or 'headless-shell'")
    parser.add_argument("--healing", action="store_true",
                        help="also run ours with fingerprints kept in a ledger (SQLite) right after each run of ours")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("AUTOCLERK_SECRET_PORTAL_PASSWORD", PASSWORD)
    mine_exe = find_chromium(os.environ.get("AUTOCLERK_CHROMIUM_PATH"))  # as a worker finds it
    executable = find_chromium(args.baseline_browser)
    same_browser = mine_exe != executable
    ours_rates, base_rates, ours_mb, base_mb, wrong, invalid_submitted = [], [], [], [], 0, 0
    same_rates: list[float] = []
    healing_rates: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, portal_process(password=PASSWORD) as portal:
        folder = Path(tmp)
        store = None
        if args.healing:
            from orchestrator.ledger import Ledger

            store = Ledger(f"sqlite:///{folder / 'ledger.db'}").heals
        # Warm-up outside the measurement (first browser launch, page caches).
        ours(portal.url, cases_file(folder, 4, 900_000), args.concurrency, executable=mine_exe)
        asyncio.run(baseline(portal.url, cases_file(folder, 2, 910_000), executable))
        for run in range(args.runs):
            mine = cases_file(folder, args.cases, 100_000 + run * 10_000)
            theirs = cases_file(folder, args.cases, 500_000 + run * 10_000)
            rate, mb = ours(portal.url, mine, args.concurrency, executable=mine_exe)
            ours_rates.append(rate)
            ours_mb.append(mb)
            if store is not None:  # the same engine set-up, with fingerprints recorded: first success, then every N
                healed_rows = cases_file(folder, args.cases, 300_000 + run * 10_000)
                healing_rates.append(ours(portal.url, healed_rows, args.concurrency, executable=mine_exe,
                                          healing=store)[0])
                w, s = check_portal(portal.url, healed_rows, invalid_refs(portal.url, healed_rows))
                wrong, invalid_submitted = wrong + w, invalid_submitted + s
            rate, mb = asyncio.run(baseline(portal.url, theirs, executable))
            base_rates.append(rate)
            base_mb.append(mb)
            checked = [mine, theirs]
            if same_browser:
                rows = cases_file(folder, args.cases, 700_000 + run * 10_000)
                same_rates.append(asyncio.run(baseline(portal.url, rows, mine_exe))[0])
                checked.append(rows)
            for rows in checked:
                w, s = check_portal(portal.url, rows, invalid_refs(portal.url, rows))
                wrong, invalid_submitted = wrong + w, invalid_submitted + s
            print(f"run {run + 1}: ours {ours_rates[-1]:.2f} tx/s ({ours_mb[-1]:.0f} MB), "
                  + (f"ours with fingerprints {healing_rates[-1]:.2f} tx/s, " if store is not None else "")
                  + f"baseline {base_rates[-1]:.2f} tx/s ({base_mb[-1]:.0f} MB)"
                  + (f", baseline on ours' browser {same_rates[-1]:.2f} tx/s" if same_browser else ""), file=sys.stderr)
        soaked = soak(portal.url, folder, args.soak, args.concurrency, mine_exe) if args.soak else {}
    per_s, base = statistics.median(ours_rates), statistics.median(base_rates)
    result: dict[str, Any] = {
        "cases": args.cases, "runs": args.runs, "concurrency": args.concurrency,
        "browser": f"{mine_exe} ({browser_version(mine_exe)})",
        "baseline_browser": f"{executable} ({browser_version(executable)})",
        "per_s": round(per_s, 3), "baseline_per_s": round(base, 3), "ratio": round(per_s / base, 2),
        "peak_rss_mb_per_bot": round(max(ours_mb), 1), "baseline_peak_rss_mb": round(max(base_mb), 1),
        "portal_one_submission_per_valid_case": wrong == 0 and invalid_submitted == 0,
        "valid_cases_not_submitted_once": wrong, "invalid_cases_submitted": invalid_submitted, **soaked,
    }
    if healing_rates:  # what recording fingerprints costs: 1 - (with / without), each the median of its runs
        result["healing_per_s"] = round(statistics.median(healing_rates), 3)
        result["healing_cost"] = round(1 - statistics.median(healing_rates) / per_s, 3)
    if same_browser:
        same = statistics.median(same_rates)
        result |= {"baseline_same_browser_per_s": round(same, 3), "ratio_same_browser": round(per_s / same, 2)}
    print(f"ours: {per_s:.2f} transactions/s (median of {args.runs}, {args.concurrency} in flight), "
          f"{per_s / base:.2f}x the baseline's {base:.2f}/s; peak memory per bot {max(ours_mb):.0f} MB "
          f"(baseline {max(base_mb):.0f} MB)")
    print(f"browsers: ours {result['browser']}, baseline {result['baseline_browser']}")
    if same_browser:
        print(f"the baseline on ours' browser: {result['baseline_same_browser_per_s']:.2f}/s, so the engine alone gives "
              f"{result['ratio_same_browser']:.2f}x and the browser the rest")
    print(f"portal check: {'exactly one submission per valid case' if result['portal_one_submission_per_valid_case'] else 'FAILED'}"
          f" ({wrong} valid cases not submitted once, {invalid_submitted} invalid cases submitted)")
    if soaked:
        print(f"soak: {args.soak} transactions, memory {soaked['soak_first_mb']} MB → {soaked['soak_last_mb']} MB "
              f"(growth {soaked['soak_growth_mb']} MB, {soaked['soak_browser_launches']} browser launches)")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
