"""An operator's actions on one case, in the ledger on both backends: retry a failed case, cancel a waiting
one, run a finished one again with a reason; each recorded with who, when and why, each refused with one
sentence when the case's state does not allow it."""

from __future__ import annotations

import pytest

from orchestrator import Ledger, LedgerError, Outcome
from orchestrator.queue import act_on_case


def one_case(ledger: Ledger, state: str | None) -> tuple[str, int]:
    batch = ledger.batches.create("wf", "d1", "cases.csv")
    (tx,), _ = ledger.batches.add_cases(batch, "wf", 1, "d1", 1, [("REF-1", {"case_ref": "REF-1"})])
    ledger.batches.finish_intake(batch, rejected=0, stopped=False)
    if state is not None:
        claim = ledger.transactions.claim(tx, "w1", lease_s=60)
        assert claim is not None
        ledger.transactions.finish_many([Outcome(claim, state, error_class="StepTimeout")])
    return batch, tx


def test_a_failed_case_is_retried_with_more_attempts_and_its_batch_reopens(ledger: Ledger) -> None:
    batch, tx = one_case(ledger, "failed")
    assert ledger.batches.get(batch)["state"] == "finished"  # type: ignore[index]
    done = act_on_case(ledger, tx, "retry", "olga", attempts=2, reason="the system is back")
    row = ledger.transactions.get(tx)
    assert done.batch_id == batch and row and row["state"] == "queued" and row["max_attempts"] == row["attempts"] + 2
    assert ledger.batches.get(batch)["state"] == "active" and tx in ledger.outbox.due(batch)  # type: ignore[index]
    action = ledger.cases.get(tx)["actions"][-1]  # type: ignore[index]
    assert (action["username"], action["action"], action["note"]) == ("olga", "retried", "the system is back")


def test_a_waiting_case_is_cancelled_and_its_batch_finishes(ledger: Ledger) -> None:
    batch, tx = one_case(ledger, None)
    act_on_case(ledger, tx, "cancel", "olga")
    assert ledger.transactions.get(tx)["state"] == "cancelled"  # type: ignore[index]
    assert ledger.batches.get(batch)["state"] == "finished"  # type: ignore[index]
    assert ledger.cases.get(tx)["actions"][-1]["action"] == "cancelled"  # type: ignore[index]


def test_a_finished_case_runs_again_on_its_own_row_with_its_lookup_first(ledger: Ledger) -> None:
    batch, tx = one_case(ledger, "done")
    act_on_case(ledger, tx, "rerun", "olga", reason="the citizen says the change never arrived", attempts=1)
    row = ledger.transactions.get(tx)
    assert row and row["state"] == "queued" and row["max_attempts"] == row["attempts"] + 1
    assert row["effect_attempt"] is not None, "an earlier submit is assumed: the lookup runs before any submit"
    claim = ledger.transactions.claim(tx, "w1", lease_s=60)
    assert claim and claim.attempt == 2 and len(claim.history) == 1  # the earlier attempt is kept
    action = ledger.cases.get(tx)["actions"][-1]  # type: ignore[index]
    assert (action["action"], action["note"]) == ("rerun", "the citizen says the change never arrived")


@pytest.mark.parametrize(("state", "action", "refusal"), [
    ("done", "retry", "case REF-1 is done: only a failed case can be retried"),
    ("failed", "cancel", "case REF-1 is failed: only a waiting case can be cancelled"),
    (None, "rerun", "case REF-1 is queued: only a case with an outcome can be run again"),
])
def test_an_action_the_state_does_not_allow_is_refused_in_one_sentence_and_changes_nothing(
        ledger: Ledger, state: str | None, action: str, refusal: str) -> None:
    _, tx = one_case(ledger, state)
    before = ledger.transactions.get(tx)
    with pytest.raises(LedgerError) as refused:
        act_on_case(ledger, tx, action, "olga", reason="because")
    assert str(refused.value) == refusal
    assert ledger.transactions.get(tx) == before and ledger.cases.get(tx)["actions"] == []  # type: ignore[index]


def test_a_rerun_needs_a_reason_and_an_unknown_case_or_action_is_refused(ledger: Ledger) -> None:
    _, tx = one_case(ledger, "done")
    with pytest.raises(LedgerError, match="needs a reason"):
        act_on_case(ledger, tx, "rerun", "olga", reason="  ")
    with pytest.raises(LedgerError, match="there is no case 999999"):
        act_on_case(ledger, 999999, "retry", "olga")
    with pytest.raises(ValueError, match="action must be one of retry, cancel, rerun"):
        act_on_case(ledger, tx, "delete", "olga")
