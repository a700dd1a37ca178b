"""The counts by state kept as the ledger changes: every writer keeps them equal to a real count, on SQLite
and PostgreSQL; writers on PostgreSQL spread them over shards; the migration fills them from the cases a
ledger already holds."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

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
        bump(conn, batch, "wf", "example", 2)
        bump(conn, batch, "wf", "example", -1)
    assert ledger.counters.batches([batch])[batch] == {"queued": 2, "example": 1}
    assert ledger.counters.whole()["example"] == 1
    assert "example" not in ledger.reports.counts(batch) and sum(ledger.reports.counts(batch).values()) == 2
    agree(ledger)


def test_a_count_toward_the_target_that_drifts_from_the_cases_is_found_by_the_real_count(ledger: Ledger) -> None:
    batch, ids, _ = add(ledger, ["A"])
    ledger.transactions.finish(ledger.transactions.claim_many(ids, "w", 60)[0], "done", verification="verified")
    agree(ledger)
    with ledger.engine.begin() as conn:
        bump(conn, batch, "wf", "verified", 1)
    assert ledger.counters.mismatches() == {(batch, "wf", "verified"): (2, 1), ("", "wf", "verified"): (2, 1)}


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


def real_verification(ledger: Ledger, batch_id: str | None, workflows: list[str] | None,
                      archived: list[dict[str, Any]]) -> dict[str, int]:
    """The counts toward the target by a real count of the cases in the ledger and of those pruned to the
    archive (``archived``: the cases of the pruned chunks)."""
    t = transactions.c
    found = {"verified": 0, "unverified": 0, "verify_failed": 0}
    query = select(t.state, t.verification, func.count()).group_by(t.state, t.verification)
    if batch_id is not None:
        query = query.where(t.batch_id == batch_id)
    if workflows is not None:
        query = query.where(t.workflow.in_(workflows))
    with ledger.engine.connect() as conn:
        rows = [*conn.execute(query)]
    rows += [(case["state"], case["verification"], 1) for case in archived
             if batch_id in (None, case["batch_id"]) and (workflows is None or case["workflow"] in workflows)]
    for state, verification, count in rows:
        if state == "done":
            found["verified" if verification == "verified" else "unverified"] += count
        elif state == "business_exception" and verification == "verify_failed":
            found["verify_failed"] += count
    return found


def counted_right(ledger: Ledger, *batch_ids: str, archived: list[dict[str, Any]] | None = None) -> None:
    """Every count (by state, and toward the target) equals a real count, for each batch and the whole ledger,
    with and without a filter by workflow."""
    agree(ledger)
    for batch_id in (None, *batch_ids):
        for workflows in (None, ["wf"], ["other"], ["wf", "other"], []):
            assert ledger.reports.verification(batch_id, workflows=workflows) == \
                real_verification(ledger, batch_id, workflows, archived or []), (batch_id, workflows)


def test_a_run_with_verifications_keeps_the_counts_toward_the_target_equal_to_a_real_count(ledger: Ledger) -> None:
    batch, ids, _ = add(ledger, [f"A{i}" for i in range(8)])
    other = ledger.batches.create("other", "d2", "other.csv")
    others, _ = ledger.batches.add_cases(other, "other", 1, "d2", 3, [(r, {"case_ref": r}) for r in ("B0", "B1", "B2")])
    counted_right(ledger, batch, other)
    assert ledger.counters.whole().get("verified", 0) == 0

    # one message's attempts: every case submits, then its verification ends it
    claims = ledger.transactions.claim_many(ids, "w1", lease_s=60)
    for claim in claims:
        ledger.transactions.mark_effect_started(claim)
    due = time.time() - 1
    ledger.transactions.finish_many([
        Outcome(claims[0], "done", verification="verified"),
        Outcome(claims[1], "done", verification="unverified"),  # not sampled
        Outcome(claims[2], "done", verification="unverified", verify_due_at=due),  # delayed: will pass
        Outcome(claims[3], "done", verification="unverified", verify_due_at=due),  # delayed: will fail
        Outcome(claims[4], "business_exception", error_class="VerifyFailed", verification="verify_failed"),
        Outcome(claims[5], "retry_scheduled", verification="pending", next_attempt_at=due),  # portal down
        Outcome(claims[6], "done"),  # a version without verify
        Outcome(claims[7], "business_exception", error_class="CaseDataError"),
    ])
    counted_right(ledger, batch, other)
    assert ledger.reports.verification(batch) == {"verified": 1, "unverified": 4, "verify_failed": 1}

    # the pending verification runs on the next attempt (the outcome keeps the claim's verification: pending)
    (pending,) = ledger.transactions.claim_many([ids[5]], "w2", lease_s=60)
    assert pending.verification == "pending"
    ledger.transactions.finish(pending, "retry_scheduled", next_attempt_at=due)
    counted_right(ledger, batch, other)
    (pending,) = ledger.transactions.claim_many([ids[5]], "w2", lease_s=60)
    ledger.transactions.finish(pending, "done", verification="verified")
    counted_right(ledger, batch, other)

    # the sweep's delayed verifications: one could not run at first, then failed; the other passed
    assert sorted(ledger.outbox.due(batch)) == [ids[2], ids[3]]
    passing, failing = sorted(ledger.verifications.claim_many([ids[2], ids[3]], "w1", lease_s=60), key=lambda c: c.id)
    assert ledger.verifications.finish(passing, "verified")
    assert ledger.verifications.finish(failing, "error", due_again_at=due, error_message="down")
    counted_right(ledger, batch, other)
    (failing,) = ledger.verifications.claim_many([ids[3]], "w2", lease_s=60)
    assert ledger.verifications.finish(failing, "verify_failed", error_message="The target system does not hold it")
    counted_right(ledger, batch, other)
    assert ledger.reports.verification(batch) == {"verified": 3, "unverified": 2, "verify_failed": 2}

    # a person resubmits the first verify failure; it runs again and is verified
    assert ledger.cases.resubmit(ids[4], {"case_ref": "A4"}, "clerk", attempts=1)
    counted_right(ledger, batch, other)
    assert ledger.reports.verification(batch)["verify_failed"] == 1
    (again,) = ledger.transactions.claim_many([ids[4]], "w1", lease_s=60)
    ledger.transactions.finish(again, "done", verification="verified")
    counted_right(ledger, batch, other)
    # the other is dealt with by hand (it still counts as a failed verification), the data error closed
    assert ledger.cases.resolve(ids[3], "done_by_hand", "clerk", "entered by hand")
    assert ledger.cases.resolve(ids[7], "closed", "clerk", None)
    counted_right(ledger, batch, other)
    # a verified case run again forgets its verification until its lookup ends it anew
    ledger.cases.rerun(ids[0], "ops", "checked by hand", attempts=1)
    counted_right(ledger, batch, other)
    (again,) = ledger.transactions.claim_many([ids[0]], "w1", lease_s=60)
    ledger.transactions.finish(again, "done", verification="unverified")
    counted_right(ledger, batch, other)
    assert ledger.reports.verification(batch) == {"verified": 3, "unverified": 3, "verify_failed": 1}

    # the other workflow's batch: verified, unverified, and a verify failure run again by an operator
    claims = ledger.transactions.claim_many(others, "w1", lease_s=60)
    ledger.transactions.finish_many([
        Outcome(claims[0], "done", verification="verified"), Outcome(claims[1], "done", verification="unverified"),
        Outcome(claims[2], "business_exception", error_class="VerifyFailed", verification="verify_failed")])
    counted_right(ledger, batch, other)
    ledger.cases.rerun(others[2], "ops", "the portal restored its records", attempts=1)
    (again,) = ledger.transactions.claim_many([others[2]], "w1", lease_s=60)
    ledger.transactions.finish(again, "business_exception", error_class="VerifyFailed", verification="verify_failed")
    assert ledger.cases.resolve(others[2], "closed", "clerk", None)
    counted_right(ledger, batch, other)
    assert ledger.reports.verification() == {"verified": 4, "unverified": 4, "verify_failed": 2}
    assert ledger.reports.verification(workflows=["other"]) == {"verified": 1, "unverified": 1, "verify_failed": 1}

    # both batches end and are pruned: their cases leave the counts by state, and every count toward the target stays
    for finished in (batch, other):
        ledger.batches.finish_intake(finished, rejected=0, stopped=False)
        assert ledger.batches.get(finished)["state"] == "finished"  # type: ignore[index]
    archived: list[dict[str, Any]] = []

    def keep(chunk: Any) -> None:
        archived.extend(chunk.cases)

    assert len(ledger.retention.prune_cases(batch, time.time() + 1, 4, keep).cases) == 4
    counted_right(ledger, batch, other, archived=archived)
    ledger.retention.prune_cases(batch, time.time() + 1, 100, keep)
    ledger.retention.prune_cases(other, time.time() + 1, 100, keep)
    counted_right(ledger, batch, other, archived=archived)
    assert ledger.retention.cases_left(batch) == ledger.retention.cases_left(other) == 0
    assert ledger.reports.verification() == {"verified": 4, "unverified": 4, "verify_failed": 2}
    assert ledger.reports.verification(other) == {"verified": 1, "unverified": 1, "verify_failed": 1}
    assert {name: n for name, n in ledger.counters.whole().items() if n} == \
        {"pruned_verified": 4, "pruned_verify_failed": 2}


def test_the_migration_fills_the_counts_toward_the_target_from_the_verifications_a_ledger_holds(ledger: Ledger) -> None:
    batch, ids, _ = add(ledger, [f"C{i}" for i in range(5)])
    claims = ledger.transactions.claim_many(ids, "w", 60)
    ledger.transactions.finish_many([
        Outcome(claims[0], "done", verification="verified"), Outcome(claims[1], "done", verification="verified"),
        Outcome(claims[2], "done", verification="unverified"),
        Outcome(claims[3], "business_exception", error_class="VerifyFailed", verification="verify_failed"),
        Outcome(claims[4], "retry_scheduled", verification="pending")])
    before = ledger.reports.verification(batch)
    config = migrate._config()
    with ledger.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0016")  # the counters go; the verifications stay
    with ledger.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    agree(ledger)
    assert ledger.reports.verification(batch) == before == {"verified": 2, "unverified": 1, "verify_failed": 1}
    assert ledger.counters.whole() == {"done": 3, "business_exception": 1, "open_exception": 1, "retry_scheduled": 1,
                                       "verified": 2, "verify_failed": 1}
