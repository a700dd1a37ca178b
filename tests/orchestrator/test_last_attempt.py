"""A case's last attempt when its submit may have reached the target system: it is not failed while a look at
the target system can still settle it (a person given a failed case would do it again by hand). A bounded
number of attempts after the last only look for the record; a submit known to have succeeded ends the case
done, its check left to the delayed verifications."""

from __future__ import annotations

import dataclasses
import json
import time
from types import SimpleNamespace
from typing import Any

import pytest

from bots import BotResult, BrowserGone, StepTimeout
from orchestrator import Ledger, Runtime, Settings, execute_many, load_settings
from orchestrator.ledger import Claim, Outcome
from orchestrator.ledger.schema import transactions
from orchestrator.queue import verification
from orchestrator.queue.execution import (FORGIVEN_FAULTS, MAY_HAVE_SUBMITTED, NOT_COUNTED, NOT_SUBMITTED,
                                          SETTLING_LOOKUPS, _exhausted, _not_submitted, _retry_or_fail)
from orchestrator.web.api import CaseDetail
from tests.orchestrator.conftest import SETTLED, Scripted
from workflows import Needs


def _claim(attempt: int = 1, max_attempts: int = 3) -> Claim:
    return Claim(id=1, workflow="w", digest="d", batch_id="b", case_ref="CASE-1", payload={}, attempt=attempt,
                 max_attempts=max_attempts, fence=1, effect_attempt=None, history=[], started_at=0.0)


def _runtime() -> Any:
    return SimpleNamespace(settings=Settings(), breakers=SimpleNamespace(after_failure=lambda _: None))


LOOKED_UP: Any = SimpleNamespace(definition=SimpleNamespace(systems={"portal": None}, lookup_steps=[object()],
                                                           at_most_once=False), calls={},
                                 needs=lambda: Needs(frozenset(), {}, frozenset()))
NO_LOOKUP: Any = SimpleNamespace(definition=SimpleNamespace(systems={"portal": None}, lookup_steps=None,
                                                           at_most_once=False), calls={},
                                 needs=lambda: Needs(frozenset(), {}, frozenset()))


def test_a_last_attempt_that_may_have_submitted_is_followed_by_looks_for_the_record_not_failed() -> None:
    crash = StepTimeout("the confirmation page did not show")
    looked = _retry_or_fail(_runtime(), _claim(attempt=3), crash, LOOKED_UP, uncertain=True)
    assert (looked.state, looked.give_back_attempt) == ("retry_scheduled", False), "the next attempt only looks"
    again = _retry_or_fail(_runtime(), _claim(attempt=3 + SETTLING_LOOKUPS - 1), crash, LOOKED_UP, uncertain=True)
    assert again.state == "retry_scheduled"
    assert again.error_detail and again.error_detail.startswith("after the last attempt: "), "a look is marked"
    last = _retry_or_fail(_runtime(), _claim(attempt=3 + SETTLING_LOOKUPS), crash, LOOKED_UP, uncertain=True)
    assert (last.state, last.error_class) == ("failed", "UncertainSubmit"), "the looks are bounded"
    assert last.error_message == ("A page of the target system did not show what the bot expected in time. It may "
                                  "already have been submitted: check the target system for it before doing it again.")
    certain = _retry_or_fail(_runtime(), _claim(attempt=3), crash, LOOKED_UP)
    assert (certain.state, certain.error_class) == ("failed", "StepTimeout"), "nothing began submitting: it fails"


def test_without_a_lookup_a_case_that_may_have_submitted_fails_saying_so_or_goes_to_a_person_if_at_most_once() -> None:
    timeout = StepTimeout("no answer")
    outcome = _retry_or_fail(_runtime(), _claim(attempt=3), timeout, NO_LOOKUP, uncertain=True)
    assert (outcome.state, outcome.error_class) == ("failed", "UncertainSubmit")
    assert outcome.error_message and outcome.error_message.endswith(MAY_HAVE_SUBMITTED)
    once: Any = SimpleNamespace(definition=SimpleNamespace(systems={"portal": None}, lookup_steps=None, at_most_once=True),
                                calls={}, needs=lambda: Needs(frozenset(), {}, frozenset()))
    person = _retry_or_fail(_runtime(), _claim(attempt=3), timeout, once, uncertain=True)
    assert (person.state, person.error_class) == ("business_exception", "UncertainSubmit"), \
        "the same inbox as on an earlier attempt: a person checks"


def test_a_look_after_the_last_attempt_that_finds_nothing_ends_the_case_as_its_last_attempt_failed() -> None:
    history = [{"attempt": 3, "error_class": "BrowserGone", "error": "The browser closed while the bot worked on "
                f"the case. {NOT_COUNTED}", "error_detail": "step 7: BrowserGone: gone", "evidence": ["a.png"]},
               {"attempt": 4, "error_class": "StepTimeout", "error": "A page did not show.",
                "error_detail": "after the last attempt: lookup step 2: StepTimeout", "evidence": []},
               {"attempt": 5, "error_class": "BudgetUnavailable", "error": "all 1 sessions of portal stayed busy",
                "error_detail": None, "evidence": []}]  # a look whose budget was spent: given back (max 3 -> 4)
    claim = dataclasses.replace(_claim(attempt=6, max_attempts=4), effect_attempt=3, history=history)
    outcome = _not_submitted(claim)
    assert (outcome.state, outcome.error_class, outcome.evidence) == ("failed", "BrowserGone", ["a.png"]), \
        "the last counted attempt's error, not a look's nor a given-back attempt's"
    assert outcome.error_message == (  # the case's last word does not say that an attempt did not count
"The browser closed while the bot worked on the case. The bot then found no "
                                     "record of it in the target system, so it was not submitted.")
    assert outcome.error_detail == ("step 7: BrowserGone: gone; after the last attempt the lookup found no record of "
                                    "the case in the target system: nothing was submitted")
    exhausted = _exhausted(dataclasses.replace(_claim(attempt=6), effect_attempt=3), LOOKED_UP)
    assert (exhausted.state, exhausted.error_class) == ("failed", "UncertainSubmit")
    assert exhausted.error_message == ("The bot could not finish the case, and it may already have been submitted: "
                                       "check the target system for it before doing it again.")
    exhausted = _exhausted(_claim(attempt=4), LOOKED_UP)
    assert exhausted.error_class == "AttemptsExhausted", "nothing began submitting"
    assert exhausted.error_message == "attempt 3, the last allowed, stopped without recording an outcome; no attempts are left"


def test_a_submitted_case_whose_check_cannot_run_on_its_last_attempt_ends_done_and_is_checked_later() -> None:
    claim = dataclasses.replace(_claim(attempt=3), verification="pending", result_ref="REF-1", output={"reference": "REF-1"})

    def run(job: Any, before_effect: Any) -> Any:
        raise StepTimeout("the case page did not show")

    tools = verification.AttemptTools(
        run=run, failed=lambda exc, loaded: _retry_or_fail(_runtime(), claim, exc, loaded),
        deferred=lambda exc: Outcome(claim, "retry_scheduled"), detail=lambda exc, loaded: str(exc),
        backoff_s=lambda n: 5.0)
    verify = SimpleNamespace(steps=[], delay_s=0)
    loaded: Any = SimpleNamespace(definition=SimpleNamespace(systems={"portal": None}, verification=verify,
                                                             verify_label="verify", lookup_steps=None),
                                  calls={}, needs=lambda: Needs(frozenset(), {}, frozenset()))
    before = time.time()
    outcome = verification.verify_pending(tools, claim, loaded, {}, None)  # type: ignore[arg-type]
    assert (outcome.state, outcome.verification, outcome.result_ref) == ("done", "unverified", "REF-1")
    assert outcome.verify_due_at is not None and outcome.verify_due_at >= before + 5.0


CRASHES = [{"attempt": attempt, "outcome": "retry_scheduled", "error_class": "BrowserGone", "error": "The browser "
            "closed while the bot worked on the case.", "error_detail": "BrowserGone: gone", "evidence": [],
            "forgiven": 1} for attempt in range(1, FORGIVEN_FAULTS + 1)]
"""Attempts whose browser crashed, as many as are given back (each raised ``max_attempts`` by one): the case's
next fault of our own counts."""


def _cut_short_after_its_submit(ledger: Ledger, *, submitted: bool = True, **row: Any) -> tuple[int, Runtime]:
    """A case of one attempt whose worker began the submit (or not), then died: its lease has run out. ``row``
    sets columns (``attempts``, ``history``: the attempts before it)."""
    ledger.workflows.save(SETTLED)
    batch = ledger.batches.create("settled", SETTLED.digest, "cases.csv")
    ids, _ = ledger.batches.add_cases(batch, "settled", 1, SETTLED.digest, 1, [("S1", {"case_ref": "S1"})])
    claim = ledger.transactions.claim_many(ids, "dead-worker", lease_s=60)[0]
    if submitted:
        ledger.transactions.mark_effect_started(claim)
    with ledger.engine.begin() as conn:
        if "attempts" in row and submitted:
            conn.execute(transactions.update().values(effect_attempt=row["attempts"]))
        conn.execute(transactions.update().values(lease_until=time.time() - 1, **row))
    return ids[0], Runtime(load_settings(ledger_url=ledger.url, bot="null", systems={"portal": "http://127.0.0.1:9"}),
                           ledger)


@pytest.mark.parametrize("found", ["REF-9", None])
def test_a_look_after_the_last_attempt_never_submits_and_settles_the_case(ledger: Ledger, found: str | None) -> None:
    # Its browser crashed on the attempts given back, and then its worker died after the submit: the last attempt.
    tx_id, runtime = _cut_short_after_its_submit(ledger, attempts=FORGIVEN_FAULTS + 1, max_attempts=FORGIVEN_FAULTS + 1,
                                                 history=json.dumps(CRASHES))
    runtime._engine = engine = Scripted(found=found)  # type: ignore[assignment]
    assert len(execute_many(runtime, [tx_id])) == 1
    assert engine.ran == ["lookup"], "only the lookup ran: the steps that submit did not"
    case = ledger.cases.get(tx_id)
    assert case is not None and case["attempts"] == FORGIVEN_FAULTS + 2
    if found:
        assert (case["state"], case["result_ref"]) == ("done", "REF-9")
    else:
        assert (case["state"], case["error_class"]) == ("failed", "BrowserGone"), "the last counted attempt's error"
        assert case["error_message"].endswith(NOT_SUBMITTED)


def test_a_submitted_case_whose_check_is_cut_short_again_and_again_ends_done_and_unverified(ledger: Ledger) -> None:
    # The check of a submitted case kills its worker each time: after the looks allowed, the case ends.
    tx_id, runtime = _cut_short_after_its_submit(ledger, verification="pending", result_ref="REF-1",
                                                 attempts=1 + FORGIVEN_FAULTS + SETTLING_LOOKUPS)
    runtime._engine = engine = Scripted()  # type: ignore[assignment]
    execute_many(runtime, [tx_id])
    assert engine.ran == [], "nothing runs again"
    case = ledger.cases.get(tx_id)
    assert case is not None
    assert (case["state"], case["verification"], case["result_ref"]) == ("done", "unverified", "REF-1")


def test_a_browser_crash_does_not_count_until_the_case_has_had_its_share_of_our_own_faults() -> None:
    crash = BrowserGone("the browser closed")
    timeouts = [{"attempt": attempt, "outcome": "retry_scheduled", "error_class": "StepTimeout"} for attempt in (1, 2)]
    forgiven = _retry_or_fail(_runtime(), dataclasses.replace(_claim(attempt=3), history=timeouts), crash, LOOKED_UP)
    assert (forgiven.state, forgiven.error_class, forgiven.forgiven) == ("retry_scheduled", "BrowserGone", 1), \
        "not the case's doing: its maximum is raised by one"
    # Two crashes given back already (the maximum was raised to 5), then two timeouts: this crash counts.
    spent = dataclasses.replace(_claim(attempt=5, max_attempts=5), history=CRASHES + [
        {"attempt": attempt, "outcome": "retry_scheduled", "error_class": "StepTimeout"} for attempt in (3, 4)])
    ended = _retry_or_fail(_runtime(), spent, crash, LOOKED_UP)
    assert (ended.state, ended.forgiven) == ("failed", 0), "the faults given back are bounded"


@pytest.mark.parametrize("submitted", [False, True])
def test_an_attempt_whose_worker_died_does_not_count(ledger: Ledger, submitted: bool) -> None:
    # The case's only attempt: its worker died before the submit, or after it (the lookup finds nothing).
    tx_id, runtime = _cut_short_after_its_submit(ledger, submitted=submitted)
    runtime._engine = engine = Scripted()  # type: ignore[assignment]
    execute_many(runtime, [tx_id])
    assert engine.ran == (["lookup", "steps"] if submitted else ["steps"]), "a real attempt, not a look after the last"
    case = ledger.cases.get(tx_id)
    assert case is not None
    assert (case["state"], case["result_ref"], case["attempts"], case["max_attempts"]) == ("done", "SUBMITTED", 2, 2)


def test_a_case_that_kills_its_worker_every_time_still_ends(ledger: Ledger) -> None:
    tx_id, runtime = _cut_short_after_its_submit(ledger, submitted=False, attempts=1 + FORGIVEN_FAULTS)
    runtime._engine = engine = Scripted()  # type: ignore[assignment]
    execute_many(runtime, [tx_id])
    assert engine.ran == []
    case = ledger.cases.get(tx_id)
    assert case is not None and (case["state"], case["error_class"]) == ("failed", "AttemptsExhausted")
    assert case["max_attempts"] == 1 + FORGIVEN_FAULTS, "two deaths given back, stored"


def test_a_worker_that_dies_in_a_look_after_the_last_attempt_is_not_given_back(ledger: Ledger) -> None:
    # The only attempt submitted and was recorded; the look after it died. The next claim is the last look.
    history = [{"attempt": 1, "outcome": "retry_scheduled", "error_class": "StepTimeout"}]
    tx_id, runtime = _cut_short_after_its_submit(ledger, attempts=2, history=json.dumps(history))
    with ledger.engine.begin() as conn:
        conn.execute(transactions.update().values(effect_attempt=1))
    runtime._engine = engine = Scripted()  # type: ignore[assignment]
    execute_many(runtime, [tx_id])
    assert engine.ran == ["lookup"], "still a look, never a submit"
    case = ledger.cases.get(tx_id)
    assert case is not None and (case["state"], case["max_attempts"]) == ("failed", 1)


def test_a_case_that_crashes_its_browser_every_time_ends_after_its_attempts_and_the_faults_given_back(
        ledger: Ledger, portal_url: str) -> None:
    class Crashes(Scripted):
        """Its browser closes before any submit begins, every time."""

        def run(self, job: Any, before_effect: Any) -> BotResult:
            self.ran.append(job.label)
            raise BrowserGone("the browser closed")

    ledger.workflows.save(SETTLED)
    batch = ledger.batches.create("settled", SETTLED.digest, "cases.csv")
    ids, _ = ledger.batches.add_cases(batch, "settled", 1, SETTLED.digest, 3, [("S1", {"case_ref": "S1"})])
    runtime = Runtime(load_settings(ledger_url=ledger.url, bot="null", retry_base_s=0.01,
                                    systems={"portal": portal_url}), ledger)
    runtime._engine = engine = Crashes()  # type: ignore[assignment]
    for _ in range(10):
        case = ledger.cases.get(ids[0])
        assert case is not None
        if case["state"] == "failed":
            break
        with ledger.engine.begin() as conn:  # its retry is due now
            conn.execute(transactions.update().values(next_attempt_at=time.time()))
        execute_many(runtime, ids)
    assert (case["state"], case["error_class"]) == ("failed", "BrowserGone")
    assert (case["attempts"], case["max_attempts"]) == (3 + FORGIVEN_FAULTS, 3 + FORGIVEN_FAULTS), \
        "3 attempts, and the 2 crashes given back, each shown in the maximum"
    assert engine.ran == ["steps"] * (3 + FORGIVEN_FAULTS)
    assert [past.get("forgiven") for past in case["history"]] == [1, 1, None, None, None]
    assert [past["error"].endswith(NOT_COUNTED) for past in case["history"]] == [True, True, False, False, False], \
        "the caseworker reads which attempts did not count"
    assert [a.forgiven for a in CaseDetail.model_validate({**case, "screenshots": []}).history] == [1, 1, 0, 0, 0], \
        "the API's case shows them too"
    # A person asks for one more attempt: it is exactly one, the faults given back are not given again.
    ledger.cases.retry(ids[0], "clerk", attempts=1)
    execute_many(runtime, ids)
    case = ledger.cases.get(ids[0])
    assert case is not None
    assert (case["state"], case["attempts"], case["max_attempts"]) == ("failed", 6, 6)
