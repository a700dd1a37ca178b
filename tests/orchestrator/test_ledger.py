"""The ledger on SQLite and PostgreSQL: one row per case reference, fenced claims, stale writes refused,
the outbox swept, retries scheduled in the ledger, operator actions, Alembic migrations."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import inspect

import orchestrator.accounts.schema  # noqa: F401 - the account tables join the ledger's metadata
from orchestrator import Ledger, Outcome, StaleAttempt
from orchestrator.ledger import migrate
from orchestrator.ledger.schema import metadata


def add(ledger: Ledger, refs: list[str], batch: str | None = None, **kw: object) -> tuple[str, list[int], dict]:
    batch = batch or ledger.batches.create("wf", "d1", "cases.csv")
    ids, existing = ledger.batches.add_cases(batch, "wf", 1, "d1", 3, [(r, {"case_ref": r}) for r in refs], **kw)  # type: ignore[arg-type]
    return batch, ids, existing


def test_a_second_hand_off_of_a_reference_is_reported_with_its_batch_not_added(ledger: Ledger) -> None:
    first, ids, _ = add(ledger, ["A", "B"])
    _, again, existing = add(ledger, ["B", "C"])
    assert len(ids) == 2 and len(again) == 1
    assert existing == {"B": (ids[1], "queued", first, True)}


def test_only_one_worker_can_claim_a_transaction(ledger: Ledger) -> None:
    _, (tx,), _ = add(ledger, ["A"])
    first = ledger.transactions.claim(tx, "w1", lease_s=60)
    assert first is not None and first.attempt == 1 and first.fence == 1
    assert ledger.transactions.claim(tx, "w2", lease_s=60) is None
    assert ledger.transactions.claim_many([tx], "w1", lease_s=60) == []  # the same worker's duplicate message too


def test_claims_and_outcomes_of_a_whole_message_go_in_one_database_transaction_each(ledger: Ledger) -> None:
    _, ids, _ = add(ledger, [f"R{i}" for i in range(50)])
    claims = ledger.transactions.claim_many(ids + ids[:5], "w1", lease_s=60)
    assert [c.id for c in claims] == ids
    assert ledger.transactions.finish_many([Outcome(c, "done", result_ref=f"ref-{c.case_ref}") for c in claims]) == []
    assert ledger.reports.counts(claims[0].batch_id)["done"] == 50
    assert ledger.transactions.get(ids[7])["result_ref"] == "ref-R7"  # type: ignore[index]


def test_a_finished_transaction_is_never_claimed_again(ledger: Ledger) -> None:
    _, (tx,), _ = add(ledger, ["A"])
    claim = ledger.transactions.claim(tx, "w1", lease_s=60)
    assert claim is not None
    ledger.transactions.finish(claim, "done", result_ref="CHG-1")
    assert ledger.transactions.claim(tx, "w2", lease_s=60) is None
    row = ledger.transactions.get(tx)
    assert row and row["state"] == "done" and row["result_ref"] == "CHG-1" and row["attempts"] == 1


def test_a_stale_workers_late_write_is_refused_after_its_lease_was_taken_over(ledger: Ledger) -> None:
    _, (tx, other), _ = add(ledger, ["A", "B"])
    stale = ledger.transactions.claim(tx, "w1", lease_s=0.01)
    assert stale is not None
    time.sleep(0.05)  # let the lease run out: the point of the test is the passage of time
    fresh = ledger.transactions.claim(tx, "w2", lease_s=60)
    assert fresh is not None and fresh.fence == stale.fence + 1 and fresh.attempt == 2
    with pytest.raises(StaleAttempt):
        ledger.transactions.mark_effect_started(stale)
    with pytest.raises(StaleAttempt):
        ledger.transactions.finish(stale, "done", result_ref="late")
    fine = ledger.transactions.claim(other, "w1", lease_s=60)
    assert fine is not None
    assert ledger.transactions.finish_many([Outcome(stale, "done"), Outcome(fine, "done")]) == [stale]
    ledger.transactions.finish(fresh, "done", result_ref="CHG-2")
    assert ledger.transactions.get(tx)["result_ref"] == "CHG-2"  # type: ignore[index]
    assert ledger.transactions.get(other)["state"] == "done"  # type: ignore[index]


def test_the_outbox_holds_what_is_unconfirmed_due_or_abandoned_highest_priority_first(ledger: Ledger) -> None:
    batch, low, _ = add(ledger, ["A", "B"])
    _, high, _ = add(ledger, ["C"], priority=5)
    assert ledger.outbox.due() == high + low
    ledger.outbox.mark_published(low + high)
    assert ledger.outbox.due(batch) == []
    claim = ledger.transactions.claim(low[0], "w1", lease_s=0.01)
    assert claim is not None
    time.sleep(0.05)  # the lease runs out
    assert ledger.outbox.due(batch) == [low[0]]


def test_a_retry_waits_in_the_ledger_until_its_time(ledger: Ledger) -> None:
    batch, (tx,), _ = add(ledger, ["A"])
    ledger.outbox.mark_published([tx])
    claim = ledger.transactions.claim(tx, "w1", lease_s=60)
    assert claim is not None
    ledger.transactions.finish(claim, "retry_scheduled", error_class="StepTimeout", error_message="slow",
                  next_attempt_at=time.time() + 60)
    assert ledger.outbox.due(batch) == [] and ledger.transactions.claim(tx, "w1", lease_s=60) is None
    again = ledger.transactions.claim_many([tx], "w1", lease_s=60)
    assert again == []
    claim_row = ledger.transactions.get(tx)
    assert claim_row and claim_row["state"] == "retry_scheduled" and claim_row["published"] == 0


def test_every_state_change_is_recorded_with_its_time_and_attempt(ledger: Ledger) -> None:
    _, (tx,), _ = add(ledger, ["A"])
    claim = ledger.transactions.claim(tx, "w1", lease_s=60)
    assert claim is not None
    ledger.transactions.finish(claim, "retry_scheduled", error_class="StepTimeout", error_message="slow", next_attempt_at=time.time())
    claim2 = ledger.transactions.claim(tx, "w1", lease_s=60)
    assert claim2 is not None
    ledger.transactions.finish(claim2, "done", result_ref="R")
    history = json.loads(ledger.transactions.get(tx)["history"])  # type: ignore[index]
    assert [(h["outcome"], h["attempt"]) for h in history] == [("retry_scheduled", 1), ("done", 2)]
    changes = ledger.transactions.state_changes(tx)
    assert [(state, attempt) for state, _, attempt in changes] == [
        ("queued", 0), ("in_progress", 1), ("retry_scheduled", 1), ("in_progress", 2), ("done", 2)]
    assert [at for _, at, _ in changes] == sorted(at for _, at, _ in changes)


def test_an_operator_pauses_resumes_cancels_and_requeues_a_batch(ledger: Ledger) -> None:
    batch, ids, _ = add(ledger, ["A", "B", "C", "D"])
    ledger.outbox.mark_published(ids)
    running = ledger.transactions.claim(ids[0], "w1", lease_s=60)
    assert running is not None
    assert ledger.batches.pause(batch) == 3
    assert ledger.transactions.claim(ids[1], "w1", lease_s=60) is None  # held: a message for it is skipped
    ledger.transactions.finish(running, "failed", error_class="AttemptsExhausted")  # a running one finishes normally
    assert ledger.batches.get(batch)["state"] == "paused"  # type: ignore[index]
    assert ledger.batches.resume(batch) == 3 and sorted(ledger.outbox.due(batch)) == ids[1:]
    assert ledger.batches.cancel(batch) == 3
    assert ledger.reports.counts(batch)["cancelled"] == 3 and ledger.outbox.due(batch) == []
    assert ledger.batches.requeue(batch, ("failed",), extra_attempts=2) == 1
    row = ledger.transactions.get(ids[0])
    assert row and row["state"] == "queued" and row["max_attempts"] == row["attempts"] + 2
    assert ledger.outbox.due(batch) == [ids[0]]


def test_opening_migrates_to_the_newest_revision_and_the_tables_match_the_models(ledger: Ledger) -> None:
    assert migrate.current(ledger.engine) == migrate.head()
    assert migrate.newest_file() == migrate.head()  # the check on every open reads the newest revision from file names
    found = inspect(ledger.engine)
    assert {"users", "api_tokens", "web_sessions", "transactions"} <= {table.name for table in metadata.sorted_tables}
    for table in metadata.sorted_tables:
        assert {c["name"] for c in found.get_columns(table.name)} == set(table.columns.keys()), table.name


def test_a_ledger_from_before_migrations_is_stamped_and_upgraded_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript((Path(__file__).parent / "data" / "foundation_ledger.sql").read_text())
    db.close()
    ledger = Ledger(f"sqlite:///{path}")
    try:
        assert migrate.current(ledger.engine) == migrate.head()
        row = ledger.transactions.get(1)
        assert row and row["case_ref"] == "CASE-000001" and row["priority"] == 0 and row["version"] == 1
    finally:
        ledger.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_several_processes_opening_one_new_ledger_at_once_all_find_it_migrated(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'new.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    code = f"from orchestrator.ledger import Ledger; print(Ledger({url!r}).ledger_id)"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(6)]
    results = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 6, [err for _, err in results]
    assert len({out.strip() for out, _ in results}) == 1  # one ledger, one identity


def test_a_rate_budget_gives_a_seconds_burst_then_one_token_per_interval(ledger: Ledger) -> None:
    from orchestrator.ledger import SystemBudgets

    budgets = SystemBudgets(ledger.engine)
    waits = [budgets.take_token("portal", per_minute=120) for _ in range(3)]  # 2 a second, a burst of 2
    assert waits[:2] == [0.0, 0.0] and 0 < waits[2] <= 60 / 119  # refilled at 119 a minute: the burst is the 120th


def test_session_slots_are_shared_and_a_dead_holders_slot_frees_itself(ledger: Ledger) -> None:
    from orchestrator.ledger import SystemBudgets

    budgets = SystemBudgets(ledger.engine)
    assert budgets.take_session("portal", 2, "w1", lease_s=60) == 0
    assert budgets.take_session("portal", 2, "w2", lease_s=2) == 1  # long enough for the next two calls on a busy machine
    assert budgets.take_session("portal", 2, "w3", lease_s=60) is None
    budgets.release_session("portal", 0, "w1")
    assert budgets.take_session("portal", 2, "w3", lease_s=60) == 0
    deadline = time.monotonic() + 30  # w2 never releases its slot: its lease runs out
    while (taken := budgets.take_session("portal", 2, "w4", lease_s=60)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert taken == 1
