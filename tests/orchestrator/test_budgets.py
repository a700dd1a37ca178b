"""System budgets: at most N bots in a system at once, at most M transactions a minute, for every worker."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from orchestrator import Ledger
from orchestrator import SystemLimit
from orchestrator.queue import BudgetUnavailable, budget_held
from orchestrator.ledger import SystemBudgets


@pytest.fixture(params=["sqlite", "postgresql"])
def budgets(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'l.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    ledger = Ledger(url)
    yield SystemBudgets(ledger.engine)
    ledger.close()


def test_a_session_budget_keeps_concurrent_bots_at_or_under_the_limit(budgets: SystemBudgets) -> None:
    limits = {"portal": SystemLimit(sessions=2)}
    inside, peak, lock = 0, 0, threading.Lock()

    def bot(name: str) -> None:
        nonlocal inside, peak
        with budget_held(budgets, limits, ["portal", "other"], name, lease_s=30, wait_s=30):
            with lock:
                inside += 1
                peak = max(peak, inside)
            time.sleep(0.05)  # the bot's work, during which it holds its session
            with lock:
                inside -= 1

    threads = [threading.Thread(target=bot, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 2


def test_a_rate_budget_spaces_transactions_and_a_spent_budget_is_reported_in_time(budgets: SystemBudgets) -> None:
    limits = {"portal": SystemLimit(per_minute=600)}  # 10 a second, a burst of 10
    started = time.monotonic()
    for _ in range(15):
        with budget_held(budgets, limits, ["portal"], "w1", lease_s=30, wait_s=5):
            pass
    assert time.monotonic() - started >= 0.4  # the five beyond the burst waited for tokens
    with pytest.raises(BudgetUnavailable, match="600 transactions a minute"):
        for _ in range(20):
            with budget_held(budgets, limits, ["portal"], "w1", lease_s=30, wait_s=0.05):
                pass
