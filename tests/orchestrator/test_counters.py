"""The counts by state kept as the ledger changes: every writer keeps them equal to a real count, on SQLite
and PostgreSQL; writers on PostgreSQL spread them over shards; the migration fills them from the cases a
ledger already holds."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from alembic import command
from sqlalchemy import func, select

from orchestrator import Ledger, Outcome
from orchestrator.ledger import bump, migrate
from orchestrator.ledger.schema import ledger_counters, transactions

from .test_ledger import add


def agree(ledger: Ledger) -> None:
    """The counts equal a real count of the cases, batch by batch, state by state, and for the whole ledger."""
    assert ledger.counters.mismatches() == {}


def test_every_change_of_the_ledger_keeps_the_counts_equal_to_a_real_count(ledger: Ledger, tmp_path: Path) -> None:
    batch, ids, _ = add(ledger, [f"C{i}" for i in range(12)])
    agree(ledger)
    assert ledger.reports.counts(batch)["queued"] == 12 and ledger.counters.whole()["queued"] == 12

    claims = ledger.transactions.claim_many(ids[:8], "w1", lease_s=60)
    agree(ledger)
    states = ["done", "business_exception", "business_exception", "failed", "retry_scheduled", "cancelled", "paused",
              "business_exception"]
    ledger.transactions.finish_many([Outcome(c, s, next_attempt_at=time.time() - 1 if s == "retry_scheduled" else None)
                                     for c, s in zip(claims, states)])
    agree(ledger)
    assert ledger.reports.open_exceptions(batch) == 3
    retried = ledger.transactions.claim(ids[4], "w1", lease_s=0.01)  # the retry's time has come
    assert retried is not None
    time.sleep(0.05)  # the lease runs out: the point is the passage of time
    taken_over = ledger.transactions.claim(ids[4], "w2", lease_s=60)  # in progress to in progress
    assert taken_over is not None
    agree(ledger)
    assert ledger.transactions.finish_many([Outcome(retried, "done"), Outcome(taken_over, "failed")]) == [retried]
    agree(ledger)
    assert ledger.transactions.defer({ids[8]: time.time() + 60}, "maintenance") == [ids[8]]
    agree(ledger)

    # people's actions on one case
    ledger.cases.retry(ids[3], "ops", attempts=2)
    ledger.cases.cancel(ids[9], "ops")
    ledger.cases.rerun(ids[0], "ops", "checked by hand", attempts=1)
    assert ledger.cases.resubmit(ids[2], {"case_ref": "C2"}, "clerk", attempts=2)
    assert ledger.cases.resolve(ids[7], "closed", "clerk", None)
    agree(ledger)
    assert ledger.reports.open_exceptions(batch) == 1
    ledger.cases.rerun(ids[7], "ops", "closed by mistake", attempts=1)  # a dealt-with exception
    ledger.cases.rerun(ids[1], "ops", "the portal is fixed", attempts=1)  # an open one
    agree(ledger)
    assert ledger.reports.open_exceptions(batch) == 0
    # an operator's actions on the batch
    assert ledger.batches.pause(batch) > 0
    agree(ledger)
    ledger.batches.resume(batch)
    ledger.batches.cancel(batch)
    agree(ledger)
    ledger.batches.requeue(batch, ("failed", "cancelled"))
    agree(ledger)
    # a resumed hand-off moves unfinished cases into a new batch
    later, _, existing = add(ledger, ["C10", "C11", "N1"])
    assert ledger.batches.adopt(later, [found[0] for found in existing.values()])
    agree(ledger)
    assert sum(ledger.reports.counts(batch).values()) + sum(ledger.reports.counts(later).values()) == 13

    # everything finishes, then a prune takes the first batch's cases out of the ledger
    while claims := ledger.transactions.claim_many(ledger.outbox.due(limit=100), "w1", lease_s=60):
        ledger.transactions.finish_many([Outcome(c, "done") for c in claims])
    agree(ledger)
    ledger.batches.finish_intake(batch, rejected=0, stopped=False)  # finished: every case has an outcome
    assert ledger.batches.get(batch)["state"] == "finished"  # type: ignore[index]
    chunk = ledger.retention.prune_cases(batch, time.time() + 1, 100, lambda _chunk: None)
    assert chunk.cases
    agree(ledger)
    assert ledger.retention.cases_left(batch) == 0
    assert sum(ledger.reports.counts(batch).values()) == 10  # pruned cases still count in their state
    assert ledger.counters.batches([batch])[batch].get("done", 0) == 0


def test_a_count_written_by_several_writers_at_once_is_spread_over_shards_and_summed_on_read(postgres_url: str) -> None:
    ledger = Ledger(postgres_url)
    try:
        batch, ids, _ = add(ledger, [f"C{i}" for i in range(80)])
        claims = ledger.transactions.claim_many(ids, "w1", lease_s=60)
        errors: list[BaseException] = []

        def finish(part: list) -> None:  # type: ignore[type-arg]
            try:
                for claim in part:
                    ledger.transactions.finish(claim, "done")
            except BaseException as exc:  # noqa: BLE001 - reported by the assert below
                errors.append(exc)

        workers = [threading.Thread(target=finish, args=(claims[i::4],)) for i in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert errors == []
        with ledger.engine.connect() as conn:
            shards = conn.execute(select(func.count()).where(ledger_counters.c.batch_id == batch,
                                                              ledger_counters.c.name == "done")).scalar_one()
        assert shards > 1
        assert ledger.reports.counts(batch)["done"] == 80 and ledger.reports.counts(batch)["in_progress"] == 0
        agree(ledger)
    finally:
        ledger.close()


def test_a_name_other_than_a_state_is_counted_beside_the_states_without_changing_them(ledger: Ledger) -> None:
    batch, ids, _ = add(ledger, ["A", "B"])
    with ledger.engine.begin() as conn:
        bump(conn, batch, "wf", "verified", 2)
        bump(conn, batch, "wf", "verified", -1)
    assert ledger.counters.batches([batch])[batch] == {"queued": 2, "verified": 1}
    assert ledger.counters.whole()["verified"] == 1
    assert "verified" not in ledger.reports.counts(batch) and sum(ledger.reports.counts(batch).values()) == 2
    agree(ledger)


def test_the_migration_fills_the_counts_from_the_cases_a_ledger_already_holds(ledger: Ledger) -> None:
    batch, ids, _ = add(ledger, [f"C{i}" for i in range(6)])
    ledger.transactions.finish_many([Outcome(c, "done") for c in ledger.transactions.claim_many(ids[:3], "w", 60)])
    ledger.transactions.finish(ledger.transactions.claim_many(ids[5:], "w", 60)[0], "business_exception")
    config = migrate._config()
    with ledger.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0013")
    with ledger.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    agree(ledger)
    assert ledger.reports.counts(batch)["done"] == 3 and ledger.reports.open_exceptions(batch) == 1
    assert ledger.counters.whole() == {"done": 3, "queued": 2, "business_exception": 1, "open_exception": 1}
    with ledger.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(transactions)).scalar_one() == 6
