"""The ledger: one row per case reference, fenced claims, stale writes refused, the outbox swept."""

from __future__ import annotations

import time

import pytest

from orchestrator import Ledger, StaleAttempt


@pytest.fixture
def ledger(tmp_path):  # type: ignore[no-untyped-def]
    opened = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.close()


def add(ledger: Ledger, refs: list[str], batch: str | None = None) -> tuple[str, list[int], dict]:
    batch = batch or ledger.create_batch("wf", "d1", "cases.csv")
    ids, existing = ledger.add_cases(batch, "wf", "d1", 3, [(r, {"case_ref": r}) for r in refs])
    return batch, ids, existing


def test_a_second_hand_off_of_a_reference_is_reported_not_added(ledger: Ledger) -> None:
    _, ids, _ = add(ledger, ["A", "B"])
    _, again, existing = add(ledger, ["B", "C"])
    assert len(ids) == 2 and len(again) == 1
    assert set(existing) == {"B"}


def test_only_one_worker_can_claim_a_transaction(ledger: Ledger) -> None:
    _, (tx,), _ = add(ledger, ["A"])
    first = ledger.claim(tx, "w1", lease_s=60)
    assert first is not None and first.attempt == 1 and first.fence == 1
    assert ledger.claim(tx, "w2", lease_s=60) is None


def test_a_finished_transaction_is_never_claimed_again(ledger: Ledger) -> None:
    _, (tx,), _ = add(ledger, ["A"])
    claim = ledger.claim(tx, "w1", lease_s=60)
    assert claim is not None
    ledger.finish(claim, "done", result_ref="CHG-1")
    assert ledger.claim(tx, "w2", lease_s=60) is None
    row = ledger.transaction(tx)
    assert row and row["state"] == "done" and row["result_ref"] == "CHG-1" and row["attempts"] == 1


def test_a_stale_workers_late_write_is_refused_after_its_lease_was_taken_over(ledger: Ledger) -> None:
    _, (tx,), _ = add(ledger, ["A"])
    stale = ledger.claim(tx, "w1", lease_s=0.01)
    assert stale is not None
    time.sleep(0.05)  # let the lease run out: the point of the test is the passage of time
    fresh = ledger.claim(tx, "w2", lease_s=60)
    assert fresh is not None and fresh.fence == stale.fence + 1 and fresh.attempt == 2
    with pytest.raises(StaleAttempt):
        ledger.mark_effect_started(stale)
    with pytest.raises(StaleAttempt):
        ledger.finish(stale, "done", result_ref="late")
    ledger.finish(fresh, "done", result_ref="CHG-2")
    row = ledger.transaction(tx)
    assert row and row["result_ref"] == "CHG-2"


def test_unpublished_rows_and_expired_leases_are_swept_for_republishing(ledger: Ledger) -> None:
    batch, ids, _ = add(ledger, ["A", "B", "C"])
    assert sorted(ledger.unpublished(batch)) == sorted(ids)
    ledger.mark_published(ids)
    assert ledger.unpublished(batch) == []
    claim = ledger.claim(ids[0], "w1", lease_s=60)
    assert claim is not None
    assert ledger.unpublished(batch, stale_lease_before=time.time() + 120) == [ids[0]]


def test_every_state_change_is_recorded_with_its_attempt(ledger: Ledger) -> None:
    _, (tx,), _ = add(ledger, ["A"])
    claim = ledger.claim(tx, "w1", lease_s=60)
    assert claim is not None
    ledger.finish(claim, "retry_scheduled", error_class="StepTimeout", error_message="slow")
    claim2 = ledger.claim(tx, "w1", lease_s=60)
    assert claim2 is not None
    ledger.finish(claim2, "done", result_ref="R")
    row = ledger.transaction(tx)
    assert row is not None
    import json

    history = json.loads(row["history"])
    assert [h["outcome"] for h in history] == ["retry_scheduled", "done"]
    assert [h["attempt"] for h in history] == [1, 2]
