"""A 5xx on or after a submit, within the attempt: the change is looked up in place (once), and submitted again
only when the target system holds no record of it, so the case does not go behind the queue. Run through
``execute_many`` against a real ledger (SQLite and PostgreSQL) with a scripted bot engine."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bots import BotResult, BrowserGone, BusinessException, TargetServerError
from orchestrator import Ledger, Runtime, execute_many, load_settings
from orchestrator.ledger.schema import events, transactions
from orchestrator.queue.budgets import BudgetUnavailable
from orchestrator.queue.execution import AGAIN, NOT_COUNTED
from orchestrator.web.service import screenshots_of
from tests.orchestrator.conftest import SETTLED, Scripted
from workflows import parse_workflow


class Busy(Scripted):
    """A scripted engine whose run in the folder ``busy_for`` (the lookup's, or the second run's) finds the target
    system's budget spent."""

    def __init__(self, submits: list[BaseException | None], busy_for: str) -> None:
        super().__init__(submits)
        self.busy_for = busy_for

    def run(self, job: Any, before_effect: Any) -> BotResult:
        if job.folder == self.busy_for:
            self.ran.append(job.label)
            raise BudgetUnavailable("all 1 sessions of portal stayed busy")
        return super().run(job, before_effect)


def _answered_503(evidence: str = "attempt-1/failure.png") -> TargetServerError:
    exc = TargetServerError("the target system answered 503", method="POST", submitting=True)
    exc.evidence = [evidence]  # type: ignore[attr-defined]
    return exc


CHECKED = parse_workflow(SETTLED.source + "verify:\n  - goto: /\n")
"""``SETTLED`` with a check after its submit."""


@pytest.fixture
def runtime_for(ledger: Ledger, portal_url: str) -> Any:
    return lambda engine, workflow=SETTLED: _one_case(ledger, engine, portal_url, workflow)


def _one_case(ledger: Ledger, engine: Scripted, portal_url: str, workflow: Any) -> tuple[int, Runtime]:
    ledger.workflows.save(workflow)
    batch = ledger.batches.create("settled", workflow.digest, "cases.csv")
    ids, _ = ledger.batches.add_cases(batch, "settled", 1, workflow.digest, 3, [("L1", {"case_ref": "L1"})])
    runtime = Runtime(load_settings(ledger_url=ledger.url, bot="null", retry_base_s=0.01, sweep_interval_s=0.05,
                                    systems={"portal": portal_url}), ledger)
    runtime._engine = engine  # type: ignore[assignment]
    return ids[0], runtime


def _submits_begun(ledger: Ledger, tx_id: int) -> int:
    with ledger.engine.connect() as conn:
        return len(conn.execute(events.select().where(events.c.transaction_id == tx_id,
                                                      events.c.state == "effect_started")).all())


def test_a_5xx_after_the_submit_is_settled_by_a_look_in_place_that_finds_the_change(
        ledger: Ledger, runtime_for: Any) -> None:
    tx_id, runtime = runtime_for(engine := Scripted([_answered_503()], found="REF-7"))
    execute_many(runtime, [tx_id])
    assert engine.ran == ["steps", "lookup"], "found: nothing is submitted again"
    case = ledger.cases.get(tx_id)
    assert case is not None
    assert (case["state"], case["result_ref"], case["attempts"]) == ("done", "REF-7", 1)
    assert "looked_in_place" not in case["history"][-1], "the attempt ended done: its look found the change"


def test_a_look_in_place_that_finds_nothing_submits_again_in_the_same_attempt(
        ledger: Ledger, runtime_for: Any) -> None:
    tx_id, runtime = runtime_for(engine := Scripted([_answered_503(), None]))
    execute_many(runtime, [tx_id])
    assert engine.ran == ["steps", "lookup", "steps"]
    case = ledger.cases.get(tx_id)
    assert case is not None
    assert (case["state"], case["result_ref"], case["attempts"]) == ("done", "SUBMITTED", 1)
    assert _submits_begun(ledger, tx_id) == 2


def test_only_one_look_in_place_per_attempt_then_the_next_attempt_looks_first(
        ledger: Ledger, runtime_for: Any) -> None:
    second = _answered_503("attempt-1/run-2/failure.png")
    tx_id, runtime = runtime_for(engine := Scripted([_answered_503(), second, None]))
    execute_many(runtime, [tx_id])
    assert engine.ran == ["steps", "lookup", "steps"], "the second 5xx ends the attempt"
    assert engine.folders == [None, "lookup", "run-2"], "each run of the attempt keeps its evidence apart"
    case = ledger.cases.get(tx_id)
    assert case is not None
    assert (case["state"], case["error_class"], case["attempts"]) == ("retry_scheduled", "TargetServerError", 1)
    attempt = case["history"][-1]
    assert attempt["evidence"] == ["attempt-1/failure.png", "attempt-1/run-2/failure.png"], "both 5xx's evidence"
    assert attempt["error_detail"].startswith("after a server error on the submit (TargetServerError: "), \
        "the first 5xx is in the history too"
    with ledger.engine.begin() as conn:  # its retry is due now
        conn.execute(transactions.update().where(transactions.c.id == tx_id).values(next_attempt_at=time.time()))
    execute_many(runtime, [tx_id])
    assert engine.ran[3:] == ["lookup", "steps"], "the next attempt looked the change up before it submitted"
    case = ledger.cases.get(tx_id)
    assert case is not None and (case["state"], case["attempts"]) == ("done", 2)


def test_a_look_in_place_whose_budget_is_spent_ends_the_attempt_as_its_5xx_would(
        ledger: Ledger, runtime_for: Any) -> None:
    # Not deferred with its attempt given back: a submit was made, so the attempt counts.
    tx_id, runtime = runtime_for(engine := Busy([_answered_503()], busy_for="lookup"))
    execute_many(runtime, [tx_id])
    assert engine.ran == ["steps", "lookup"]
    case = ledger.cases.get(tx_id)
    assert case is not None
    assert (case["state"], case["error_class"], case["attempts"], case["max_attempts"]) == \
        ("retry_scheduled", "TargetServerError", 1, 3), "the attempt counted"
    assert "looked_in_place" not in case["history"][-1], "no look ran: the 5xx's page is where the attempt stopped"


def test_a_second_run_whose_budget_is_spent_ends_the_attempt_as_its_5xx_would_and_says_it_looked(
        ledger: Ledger, runtime_for: Any) -> None:
    tx_id, runtime = runtime_for(engine := Busy([_answered_503()], busy_for="run-2"))
    execute_many(runtime, [tx_id])
    assert engine.ran == ["steps", "lookup", "steps"]
    case = ledger.cases.get(tx_id)
    assert case is not None
    assert (case["state"], case["error_class"], case["max_attempts"]) == ("retry_scheduled", "TargetServerError", 3)
    attempt = case["history"][-1]
    assert attempt["looked_in_place"] is True and attempt["evidence"] == ["attempt-1/failure.png"]
    assert attempt["error_detail"].endswith(
        "; looked up in place and found nothing, then could not submit again: all 1 sessions of portal stayed busy")
    assert screenshots_of(case)[0]["caption"].startswith("Attempt 1: the page when the target system answered with a "
                                                         "server error on or after the bot's submit.")


def test_a_failed_check_of_the_second_run_keeps_the_submits_5xx(ledger: Ledger, runtime_for: Any) -> None:
    class CheckFails(Scripted):
        def run(self, job: Any, before_effect: Any) -> BotResult:
            if job.verification is not None:
                exc = BusinessException("the change is not in the case's history", code="change_missing")
                exc.evidence = ["attempt-1/verify/failure.png"]  # type: ignore[attr-defined]
                raise exc
            return super().run(job, before_effect)

    tx_id, runtime = runtime_for(CheckFails([_answered_503(), None]), CHECKED)
    execute_many(runtime, [tx_id])
    case = ledger.cases.get(tx_id)
    assert case is not None
    assert (case["state"], case["verification"], case["result_ref"]) == \
        ("business_exception", "verify_failed", "SUBMITTED"), "a person sees the failed check, as after any submit"
    attempt = case["history"][-1]
    assert attempt["looked_in_place"] is True
    assert attempt["evidence"] == ["attempt-1/failure.png", "attempt-1/verify/failure.png"]
    assert attempt["error_detail"].startswith("after a server error on the submit (TargetServerError: ") and \
        "looked up in place, found nothing and submitted again; its check: " in attempt["error_detail"]
    assert screenshots_of(case)[0]["caption"] == \
        "Attempt 1: the page when the bot's check of the case's record in the target system stopped."


def test_a_look_in_place_that_fails_keeps_the_submits_5xx_in_the_history(
        ledger: Ledger, runtime_for: Any) -> None:
    class Lost(Scripted):
        def run(self, job: Any, before_effect: Any) -> BotResult:
            if job.label == "lookup":
                self.ran.append(job.label)
                exc = TargetServerError("the search page answered 503", method="GET")
                exc.evidence = ["attempt-1/lookup/failure.png"]  # type: ignore[attr-defined]
                raise exc
            return super().run(job, before_effect)

    tx_id, runtime = runtime_for(engine := Lost([_answered_503()]))
    execute_many(runtime, [tx_id])
    assert engine.ran == ["steps", "lookup"]
    case = ledger.cases.get(tx_id)
    assert case is not None and case["state"] == "retry_scheduled"
    attempt = case["history"][-1]
    assert attempt["evidence"] == ["attempt-1/failure.png", "attempt-1/lookup/failure.png"]
    assert "after a server error on the submit (TargetServerError: the target system answered 503" in \
        attempt["error_detail"] and attempt["error_detail"].endswith("the search page answered 503")
    assert "looked up in place; the lookup failed: " in attempt["error_detail"]
    assert attempt["looked_in_place"] is True
    assert screenshots_of(case)[0]["caption"] == \
        "Attempt 1: the page when the bot's search for the case in the target system stopped."


def test_a_second_run_that_crashes_after_a_look_in_place_counts_as_the_submits_5xx_would(
        ledger: Ledger, runtime_for: Any) -> None:
    # The crash is the bots' own fault, but this attempt's submit met a 5xx: it is not given back.
    tx_id, runtime = runtime_for(engine := Scripted([_answered_503(), BrowserGone("the browser closed")]))
    execute_many(runtime, [tx_id])
    assert engine.ran == ["steps", "lookup", "steps"]
    case = ledger.cases.get(tx_id)
    assert case is not None
    assert (case["state"], case["error_class"], case["max_attempts"]) == ("retry_scheduled", "BrowserGone", 3)
    attempt = case["history"][-1]
    assert "forgiven" not in attempt and not attempt["error"].endswith(NOT_COUNTED)
    assert f"{AGAIN}: BrowserGone: the browser closed" in attempt["error_detail"]
    # The crashed run took no screenshot: the case page's one is the submit's 5xx, and its caption says so.
    assert attempt["looked_in_place"] is True and attempt["evidence"] == ["attempt-1/failure.png"]
    assert [shot["caption"] for shot in screenshots_of(case)] == [
        "Attempt 1: the page when the target system answered with a server error on or after the bot's submit. "
        "The bot then looked the case up in the target system, in the same attempt."]


def test_a_refusal_in_the_second_run_keeps_the_submits_5xx(ledger: Ledger, runtime_for: Any) -> None:
    refused = BusinessException("the portal refused the claim", code="Refused")
    refused.evidence = ["attempt-1/run-2/failure.png"]  # type: ignore[attr-defined]
    tx_id, runtime = runtime_for(Scripted([_answered_503(), refused]))
    execute_many(runtime, [tx_id])
    case = ledger.cases.get(tx_id)
    assert case is not None
    assert (case["state"], case["error_class"], case["error_message"]) == \
        ("business_exception", "Refused", "the portal refused the claim"), "the caseworker reads the refusal"
    assert case["history"][-1]["evidence"] == ["attempt-1/failure.png", "attempt-1/run-2/failure.png"]
    assert AGAIN in case["history"][-1]["error_detail"]
    shown = screenshots_of(case)[0]
    assert (shown["name"], shown["caption"]) == ("failure.png", (
        "Attempt 1: the page when the case stopped. The bot had found no record of the case after a server "
        "error, and was trying it again in the same attempt.")), "the page shown is the second run's"


def test_a_refused_look_in_place_keeps_the_evidence_of_both(ledger: Ledger, runtime_for: Any) -> None:
    class Refuses(Scripted):
        def run(self, job: Any, before_effect: Any) -> BotResult:
            if job.label == "lookup":
                exc = BusinessException("no search for this kind of case", code="NoSearch")
                exc.evidence = ["attempt-1/lookup/failure.png"]  # type: ignore[attr-defined]
                raise exc
            return super().run(job, before_effect)

    tx_id, runtime = runtime_for(Refuses([_answered_503()]))
    execute_many(runtime, [tx_id])
    case = ledger.cases.get(tx_id)
    assert case is not None and case["error_class"] == "LookupRefused"
    assert case["history"][-1]["evidence"] == ["attempt-1/failure.png", "attempt-1/lookup/failure.png"]
    assert [shot["caption"] for shot in screenshots_of(case)] == [
        "Attempt 1: the page when the bot's search for the case in the target system stopped.",
        "Attempt 1: the page when the target system answered with a server error on or after the bot's submit. "
        "The bot then looked the case up in the target system, in the same attempt."]


def test_a_5xx_before_any_submit_is_not_looked_up(
        ledger: Ledger, runtime_for: Any) -> None:
    class Early(Scripted):
        def run(self, job: Any, before_effect: Any) -> BotResult:
            self.ran.append(job.label)
            exc = TargetServerError("the target system answered 503", url="http://portal/", method="GET")
            exc.evidence = ["attempt-1/failure.png"]  # type: ignore[attr-defined]
            raise exc

    tx_id, runtime = runtime_for(engine := Early([]))
    execute_many(runtime, [tx_id])
    assert engine.ran == ["steps"]
    case = ledger.cases.get(tx_id)
    assert case is not None and case["state"] == "retry_scheduled"
    assert "looked_in_place" not in case["history"][-1]
    assert [shot["caption"] for shot in screenshots_of(case)] == ["Attempt 1: the page when the case stopped."]


def test_an_attempt_whose_lease_ran_out_stops_before_its_look_and_submits_nothing_more(
        ledger: Ledger, runtime_for: Any) -> None:
    def lease_lost() -> None:  # another worker may hold the case now
        with ledger.engine.begin() as conn:
            conn.execute(transactions.update().values(lease_until=time.time() - 1))

    tx_id, runtime = runtime_for(engine := Scripted([_answered_503(), None], on_fail=lease_lost))
    assert execute_many(runtime, [tx_id]) == [], "the stale attempt records nothing"
    assert engine.ran == ["steps"], "no look and no second submit"
    assert _submits_begun(ledger, tx_id) == 1
