"""A batch's life in the ledger, on both backends: active while any case is pending, finished (with the time)
once every case has an outcome, active again when a case goes back to work; a finished batch refuses pause,
resume and cancel."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from orchestrator import Ledger, LedgerError, Outcome
from orchestrator.ledger.schema import batches


def handed_off(ledger: Ledger, count: int, *, receiving: bool = False) -> tuple[str, list[int]]:
    batch = ledger.batches.create("wf", "d1", "cases.csv")
    ids, _ = ledger.batches.add_cases(batch, "wf", 1, "d1", 1, [(f"{batch}-{i}", {}) for i in range(count)])
    if not receiving:
        ledger.batches.finish_intake(batch, rejected=0, stopped=False)
    return batch, ids


def end(ledger: Ledger, ids: list[int], state: str) -> None:
    claims = ledger.transactions.claim_many(ids, "w1", lease_s=60)
    assert len(claims) == len(ids)
    assert ledger.transactions.finish_many([Outcome(c, state) for c in claims]) == []


def state_of(ledger: Ledger, batch: str) -> str:
    found = ledger.batches.get(batch)
    assert found is not None
    return str(found["state"])


def test_a_batch_finishes_with_its_last_case_and_records_when(ledger: Ledger) -> None:
    batch, ids = handed_off(ledger, 3)
    end(ledger, ids[:2], "done")
    assert state_of(ledger, batch) == "active"
    end(ledger, ids[2:], "business_exception")  # handed back to a person is an outcome too
    found = ledger.batches.get(batch)
    assert found and found["state"] == "finished" and found["finished_at"] >= found["created_at"]
    assert ledger.reports.batch_states()["finished"] == 1


def test_a_retry_is_not_an_outcome_and_a_file_still_arriving_keeps_its_batch_active(ledger: Ledger) -> None:
    batch, ids = handed_off(ledger, 1)
    claim = ledger.transactions.claim(ids[0], "w1", lease_s=60)
    assert claim is not None
    ledger.transactions.finish(claim, "retry_scheduled", next_attempt_at=0)
    assert state_of(ledger, batch) == "active"
    receiving, more = handed_off(ledger, 1, receiving=True)
    end(ledger, more, "done")
    assert state_of(ledger, receiving) == "active"  # more rows may still come
    ledger.batches.finish_intake(receiving, rejected=0, stopped=False)
    assert state_of(ledger, receiving) == "finished"


def test_a_batch_whose_every_row_was_refused_finishes_when_its_intake_ends(ledger: Ledger) -> None:
    batch, _ = handed_off(ledger, 0)
    assert state_of(ledger, batch) == "finished"


@pytest.mark.parametrize("action", ["pause", "resume", "cancel"])
def test_a_finished_batch_refuses_pause_resume_and_cancel(ledger: Ledger, action: str) -> None:
    batch, ids = handed_off(ledger, 1)
    end(ledger, ids, "done")
    with pytest.raises(LedgerError, match=f"batch {batch} is finished: every case has an outcome"):
        getattr(ledger.batches, action)(batch)
    assert state_of(ledger, batch) == "finished"


def test_a_case_going_back_to_work_reopens_its_batch_until_it_ends_again(ledger: Ledger) -> None:
    batch, ids = handed_off(ledger, 2)
    end(ledger, ids[:1], "failed")
    end(ledger, ids[1:], "business_exception")
    first = ledger.batches.get(batch)
    assert first and first["state"] == "finished"

    assert ledger.batches.requeue(batch, ("failed",), extra_attempts=1) == 1  # a re-queued failure
    assert state_of(ledger, batch) == "active" and ledger.batches.get(batch)["finished_at"] is None  # type: ignore[index]
    end(ledger, ids[:1], "done")
    assert state_of(ledger, batch) == "finished"

    assert ledger.cases.resubmit(ids[1], {"fixed": True}, "alice", attempts=1)  # a resubmitted exception
    assert state_of(ledger, batch) == "active"
    end(ledger, ids[1:], "done")
    again = ledger.batches.get(batch)
    assert again and again["state"] == "finished" and again["finished_at"] >= first["finished_at"]

    assert ledger.batches.requeue(batch, ("failed",)) == 0  # nothing failed: nothing goes back, still finished
    assert state_of(ledger, batch) == "finished"


def test_the_sweep_settles_a_batch_that_two_workers_finished_at_the_same_moment(ledger: Ledger) -> None:
    batch, ids = handed_off(ledger, 2)
    end(ledger, ids, "done")
    with ledger.engine.begin() as conn:  # as if each worker had still seen the other's case pending
        conn.execute(update(batches).where(batches.c.id == batch).values(state="active", finished_at=None))
    paused, _ = handed_off(ledger, 1)
    ledger.batches.pause(paused)
    assert ledger.batches.settle() == 1
    assert state_of(ledger, batch) == "finished" and state_of(ledger, paused) == "paused"


def test_an_earlier_batch_whose_unfinished_cases_a_new_hand_off_resumes_is_finished(ledger: Ledger) -> None:
    earlier, ids = handed_off(ledger, 2)
    end(ledger, ids[:1], "done")
    later = ledger.batches.create("wf", "d1", "cases-again.csv")
    assert ledger.batches.adopt(later, ids[1:]) == ids[1:]
    assert state_of(ledger, earlier) == "finished" and state_of(ledger, later) == "active"


def test_the_migration_marks_finished_the_batches_that_already_are_and_leaves_the_others(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from alembic import command

    from orchestrator.ledger import migrate

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    done_batch, done_ids = handed_off(ledger, 2)
    end(ledger, done_ids, "done")
    open_batch, _ = handed_off(ledger, 1)
    last_case = max(ledger.transactions.get(i)["updated_at"] for i in done_ids)  # type: ignore[index]
    config = migrate._config()
    with ledger.engine.begin() as conn:  # back to the revision before batches could finish
        config.attributes["connection"] = conn
        command.downgrade(config, "0005")
    with ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT state FROM batches WHERE id = ?", (done_batch,)).scalar() == "active"
    migrate.upgrade(ledger.engine)
    finished = ledger.batches.get(done_batch)
    assert finished and finished["state"] == "finished" and finished["finished_at"] == last_case
    assert state_of(ledger, open_batch) == "active"
    ledger.close()
