"""What the ledger records of verifications, on SQLite and PostgreSQL: the outcome per case, a submitted case
whose verification is pending (its next claim says so, with its result), delayed verifications taken by
one worker under a lease and recorded once, and the one function every view counts them with."""

from __future__ import annotations

import time
from pathlib import Path

from orchestrator import Ledger, Outcome
from tests.orchestrator.test_ledger import add


def finish(ledger: Ledger, tx: int, state: str, **fields: object) -> None:
    claim = ledger.transactions.claim(tx, "w1", lease_s=60)
    assert claim is not None
    ledger.transactions.finish(claim, state, **fields)


def test_the_counts_toward_the_target_split_done_cases_into_verified_and_unverified(ledger: Ledger) -> None:
    batch, ids, _ = add(ledger, ["A", "B", "C", "D", "E", "F"])
    finish(ledger, ids[0], "done", verification="verified")
    finish(ledger, ids[1], "done", verification="verified")
    finish(ledger, ids[2], "done", verification="unverified")
    finish(ledger, ids[3], "done")  # a workflow without verify
    finish(ledger, ids[4], "business_exception", error_class="VerifyFailed", verification="verify_failed")
    finish(ledger, ids[5], "business_exception", error_class="CaseDataError")
    assert ledger.reports.verification(batch) == {"verified": 2, "unverified": 2, "verify_failed": 1}
    assert ledger.reports.verification() == {"verified": 2, "unverified": 2, "verify_failed": 1}
    assert ledger.reports.verification(workflows=["other"]) == {"verified": 0, "unverified": 0, "verify_failed": 0}
    assert ledger.reports.reconciliation(batch)["verification"] == ledger.reports.verification(batch)  # type: ignore[index]


def test_a_case_whose_verification_could_not_run_keeps_its_result_and_its_next_claim_verifies_only(
        ledger: Ledger) -> None:
    _, (tx,), _ = add(ledger, ["A"])
    claim = ledger.transactions.claim(tx, "w1", lease_s=60)
    assert claim is not None and claim.verification is None
    ledger.transactions.mark_effect_started(claim)
    ledger.transactions.finish(claim, "retry_scheduled", result_ref="CHG-7", output={"reference": "CHG-7"},
                               verification="pending", next_attempt_at=time.time() - 1)
    again = ledger.transactions.claim(tx, "w2", lease_s=60)
    assert again is not None and again.attempt == 2
    assert (again.verification, again.result_ref, again.output) == ("pending", "CHG-7", {"reference": "CHG-7"})
    ledger.transactions.finish(again, "done", verification="verified")
    row = ledger.transactions.get(tx)
    assert row is not None and (row["state"], row["verification"], row["result_ref"]) == ("done", "verified", "CHG-7")


def test_a_delayed_verification_is_due_published_taken_by_one_worker_and_recorded_once(ledger: Ledger) -> None:
    batch, (tx, other), _ = add(ledger, ["A", "B"])
    finish(ledger, tx, "done", result_ref="CHG-1", verification="unverified", verify_due_at=time.time() - 1)
    finish(ledger, other, "done", result_ref="CHG-2", verification="unverified", verify_due_at=time.time() + 3600)
    assert ledger.outbox.due(batch) == [tx], "only the due one is published"
    assert ledger.transactions.claim_many([tx], "w1", lease_s=60) == [], "a done case is never attempted again"
    (taken,) = ledger.verifications.claim_many([tx, other], "w1", lease_s=60)
    assert (taken.id, taken.result_ref, taken.verify_lease is not None) == (tx, "CHG-1", True)
    assert ledger.verifications.claim_many([tx], "w2", lease_s=60) == [], "one worker at a time"
    assert ledger.outbox.due(batch) == [], "under its lease it is not due"
    assert ledger.verifications.finish(taken, "error", due_again_at=time.time() - 1, error_message="down")
    assert ledger.outbox.due(batch) == [tx]
    (retaken,) = ledger.verifications.claim_many([tx], "w2", lease_s=60)
    assert ledger.verifications.errors(retaken) == 1
    assert not ledger.verifications.finish(taken, "verified"), "the first worker's late write is refused"
    assert ledger.verifications.finish(retaken, "verify_failed", evidence=["/a/verify-after.png"],
                                       error_message="The target system does not hold it")
    row = ledger.transactions.get(tx)
    assert row is not None
    assert (row["state"], row["verification"], row["error_class"], row["verify_due_at"]) == (
        "business_exception", "verify_failed", "VerifyFailed", None)
    assert ledger.reports.verification(batch) == {"verified": 0, "unverified": 1, "verify_failed": 1}
    assert [s for s, _, _ in ledger.transactions.state_changes(tx)][-1] == "business_exception"


def test_a_resubmitted_verify_failure_forgets_its_verification(ledger: Ledger) -> None:
    _, (tx,), _ = add(ledger, ["A"])
    finish(ledger, tx, "business_exception", error_class="VerifyFailed", verification="verify_failed")
    assert ledger.cases.resubmit(tx, {"case_ref": "A"}, "alice", attempts=1)
    row = ledger.transactions.get(tx)
    assert row is not None and (row["state"], row["verification"], row["effect_attempt"]) == ("queued", None, None)


def test_outcomes_map_to_the_verification_metric_result() -> None:
    from orchestrator.queue.verification import counted_result

    claim = object()
    assert counted_result(Outcome(claim, "done", verification="verified")) == "verified"  # type: ignore[arg-type]
    assert counted_result(Outcome(claim, "business_exception", verification="verify_failed")) == "verify_failed"  # type: ignore[arg-type]
    assert counted_result(Outcome(claim, "retry_scheduled", error_class="StepTimeout", verification="pending")) == "error"  # type: ignore[arg-type]
    assert counted_result(Outcome(claim, "retry_scheduled", error_class="BudgetUnavailable", verification="pending")) is None  # type: ignore[arg-type]
    assert counted_result(Outcome(claim, "done", verification="unverified")) is None  # type: ignore[arg-type]
    assert counted_result(Outcome(claim, "done")) is None  # type: ignore[arg-type]


def test_running_a_verify_failure_again_forgets_its_verification_so_it_is_counted_anew(ledger: Ledger) -> None:
    batch, (tx,), _ = add(ledger, ["A"])
    finish(ledger, tx, "business_exception", error_class="VerifyFailed", verification="verify_failed")
    ledger.cases.rerun(tx, "olga", "the portal restored its records", attempts=1)
    finish(ledger, tx, "done", result_ref="CHG-1")  # found by the lookup, by a version without verify
    assert ledger.reports.verification(batch) == {"verified": 0, "unverified": 1, "verify_failed": 0}


def test_the_targets_recent_rate_counts_each_verification_once_when_it_passes(ledger: Ledger) -> None:
    batch, (now_checked, later_checked, never_checked), _ = add(ledger, ["A", "B", "C"])
    finish(ledger, now_checked, "done", verification="verified")  # verified as it ended: its done event says so
    finish(ledger, later_checked, "done", verification="unverified", verify_due_at=time.time() - 1)
    finish(ledger, never_checked, "done")  # a workflow without verify
    progress = ledger.reports.progress(600)
    assert (progress["done_recent"], progress["verified_recent"]) == (3, 1)
    (taken,) = ledger.verifications.claim_many([later_checked], "w1", lease_s=60)
    assert ledger.verifications.finish(taken, "verified")
    progress = ledger.reports.progress(600)
    assert (progress["done_recent"], progress["verified_recent"]) == (3, 2), "a delayed pass counts, not as done again"
    assert [s for s, _, _ in ledger.transactions.state_changes(later_checked)][-2:] == ["done", "verified"]
    assert ledger.reports.verification(batch) == {"verified": 2, "unverified": 1, "verify_failed": 0}


def test_one_persons_open_exceptions_are_read_on_the_open_exceptions_index_on_sqlite(tmp_path: Path) -> None:
    # Starting from the person's batches would read every exception they ever had, dealt with or not, and sort
    # them (300 ms at 10 million cases, benchmarks/service_at_scale.py); the open ones are few and in order.
    from orchestrator.ledger.reports import exceptions_query

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        for created_by, workflows in ((None, None), ("olga", None), ("olga", ["change-of-address"])):
            query = exceptions_query("sqlite", created_by, workflows).limit(200)
            sql = str(query.compile(ledger.engine, compile_kwargs={"literal_binds": True}))
            with ledger.engine.connect() as conn:
                plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
            assert plan[0] == "SCAN transactions USING INDEX ix_transactions_open_exceptions", plan
            assert not any("TEMP B-TREE" in step for step in plan), plan
    finally:
        ledger.close()
