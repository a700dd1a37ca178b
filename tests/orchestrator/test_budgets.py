"""System budgets: at most N bots in a system at once, at most M transactions a minute, for every worker."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator import Ledger
from orchestrator import SystemLimit
from orchestrator.queue import BudgetUnavailable, budget_held
from orchestrator.ledger import SystemBudgets
from orchestrator.ledger.budgets import WAITER_FRESH_S


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


@pytest.mark.parametrize("per_minute", [12, 120, 600])
def test_no_sixty_seconds_see_more_starts_than_the_rate_budget_allows(
        budgets: SystemBudgets, monkeypatch: pytest.MonkeyPatch, per_minute: int) -> None:
    import orchestrator.ledger.budgets as ledger_budgets

    clock = [1_000_000.0]
    monkeypatch.setattr(ledger_budgets, "time", SimpleNamespace(time=lambda: clock[0]))
    starts: list[float] = []
    while clock[0] < 1_000_000.0 + 130:  # bots that always want a token, for two minutes and more
        wait = budgets.take_token("portal", per_minute)
        if wait == 0:
            starts.append(clock[0])
        clock[0] += wait
    busiest = max(sum(1 for t in starts if first <= t < first + 60) for first in starts)
    assert busiest == per_minute, f"the busiest 60 s saw {busiest} starts; the budget is {per_minute} a minute"


def test_a_session_slot_held_while_its_bot_waits_for_a_rate_token_is_not_given_to_another_bot(
        budgets: SystemBudgets, monkeypatch: pytest.MonkeyPatch) -> None:
    import orchestrator.queue.budgets as queue_budgets

    limits = {"portal": SystemLimit(sessions=1, per_minute=60)}
    assert budgets.take_token("portal", 60) == 0  # the bucket is empty: the next token is a second away
    others: list[int | None] = []

    def wait_then_compete(seconds: float) -> None:
        time.sleep(seconds)  # the token's wait, longer than the block's own lease: the passage of time is the point
        others.append(budgets.take_session("portal", 1, "another-worker", lease_s=60))

    monkeypatch.setattr(queue_budgets, "time", SimpleNamespace(monotonic=time.monotonic, sleep=wait_then_compete))
    with budget_held(budgets, limits, ["portal"], "w1", lease_s=0.2, wait_s=5):
        assert others and others == [None] * len(others), "another bot took the one session while this one held it"


def test_a_bot_that_has_just_freed_the_slot_does_not_take_it_back_ahead_of_a_bot_already_waiting(
        budgets: SystemBudgets) -> None:
    limits = {"portal": SystemLimit(sessions=1)}
    assert budgets.take_session("portal", 1, "busy-worker", lease_s=60) == 0
    got: list[str] = []

    def waiting_bot() -> None:
        with budget_held(budgets, limits, ["portal"], "waiting-worker", lease_s=30, wait_s=20):
            got.append("waiting-worker")

    waiter = threading.Thread(target=waiting_bot)
    waiter.start()
    with budgets.engine.connect() as conn:  # the waiting bot has found the slot busy and said so
        deadline = time.monotonic() + 10
        while conn.exec_driver_sql("SELECT waited_at FROM system_sessions").scalar() is None:
            assert time.monotonic() < deadline, "the waiting bot never marked its wait"
            time.sleep(0.01)
    budgets.release_session("portal", 0, "busy-worker")
    assert budgets.take_session("portal", 1, "busy-worker", lease_s=60) is None, \
        "the bot that freed the slot took it back ahead of the bot waiting for it"
    waiter.join(timeout=20)
    assert got == ["waiting-worker"]
    # once no bot has waited for a while, a bot asking for the first time takes a free slot at once
    time.sleep(WAITER_FRESH_S + 0.1)  # the waiting bot's mark ages: the passage of time is what is under test
    assert budgets.take_session("portal", 1, "busy-worker", lease_s=60) == 0
