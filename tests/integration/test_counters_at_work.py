"""The counts by state after real work: a batch through RabbitMQ and a worker with real Chromium against the
demo portal answering some requests with 503 (so cases are retried), exceptions dealt with by a person, a
failed case re-queued, then a prune: the counts still equal a real count of the ledger, on SQLite and on
PostgreSQL, and the pages' figures come from them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from demo_portal import PortalProcess, generate_cases
from orchestrator import Ledger
from orchestrator.ledger.schema import events, transactions
from tests.conftest import autoclerk
from tests.faults.rig import FaultRig


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_counts_equal_a_real_count_after_a_run_with_retries_peoples_actions_and_a_prune(
        backend: str, tmp_path: Path, rabbitmq: str, portal: PortalProcess, chromium: str,
        request: pytest.FixtureRequest) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    rig = FaultRig(tmp_path, rabbitmq, portal)
    rig.common = ("--broker", rabbitmq, "--ledger", url, "--system", f"portal={portal.url}")
    rig.env["AUTOCLERK_SERVER_ERROR_RETRIES"] = "0"  # a 503 schedules a retry at once, not after retries in place
    # Each 503 spends an attempt here: with the example's 3, a case could use them all up (CI once saw 6 of 10
    # fail, the portal's refusals among them). With 20, one of the 3 refused cases fails about once in 10,000 runs.
    workflow = rig.example(max_attempts=20)
    cases = tmp_path / "cases.csv"
    assert generate_cases(cases, 10, invalid_rate=0.3, seed=6) == 3  # the portal refuses 3: business exceptions
    httpx.put(f"{portal.url}/api/faults", json={"error_rate": 0.15}).raise_for_status()
    try:
        rig.start_worker()
        rig.wait_for_consumers(1)
        with rig.run_in_background(cases, workflow=workflow) as run:
            summary = rig.finish(run)
    finally:
        rig.close()
    httpx.put(f"{portal.url}/api/faults", json={"error_rate": 0.0}).raise_for_status()
    ledger = Ledger(url)
    try:
        with ledger.engine.connect() as conn:
            retried = conn.execute(select(func.count()).where(events.c.state == "retry_scheduled")).scalar_one()
        assert retried > 0, "the portal's 503s really made the worker retry"
        assert ledger.counters.mismatches() == {}
        batch = summary["batch_id"]
        counts = ledger.reports.counts(batch)
        assert sum(counts.values()) == 10 and counts["business_exception"] == 3
        assert counts["done"] == summary["done"]

        # a person deals with every exception; an operator runs a done case again and cancels it while it waits
        for case in ledger.cases.list(batch, state="open_exception"):
            assert ledger.cases.resolve(case["id"], "closed", "clerk", "refused by the portal")
        assert ledger.reports.open_exceptions(batch) == 0
        done = ledger.cases.list(batch, state="done", limit=1)[0]
        ledger.cases.rerun(done["id"], "ops", "checked by hand", attempts=1)
        ledger.cases.cancel(done["id"], "ops")
        assert ledger.counters.mismatches() == {}

        # the prune takes every case out of the ledger; the counts leave with them and the totals stay
        soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)).isoformat()
        pruned = autoclerk("ledger", "prune", "--finished-before", soon, "--archive", str(tmp_path / "archive"),
                           "--ledger", url, "--artifacts-dir", str(tmp_path / "artifacts"), cwd=tmp_path)
        assert pruned.returncode == 0, pruned.stderr
        with ledger.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(transactions)).scalar_one() == 0
        assert ledger.counters.mismatches() == {}
        assert ledger.counters.batches([batch])[batch].get("done", 0) == 0
        assert sum(ledger.reports.counts(batch).values()) == 10
    finally:
        ledger.close()
