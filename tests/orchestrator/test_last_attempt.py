"""A case's last attempt when its submit may have reached the target system: it is not failed while a look at
the target system can still settle it (a person given a failed case would do it again by hand). A bounded
number of attempts after the last only look for the record; a submit known to have succeeded ends the case
done, its check left to the delayed verifications."""

from __future__ import annotations

import dataclasses
import time
from types import SimpleNamespace
from typing import Any

from bots import BrowserGone, PageCrashed
from orchestrator import Settings
from orchestrator.ledger import Claim, Outcome
from orchestrator.queue import verification
from orchestrator.queue.execution import (MAY_HAVE_SUBMITTED, SETTLING_LOOKUPS, _exhausted, _not_submitted,
                                          _retry_or_fail)
from workflows import Needs


def _claim(attempt: int = 1, max_attempts: int = 3) -> Claim:
    return Claim(id=1, workflow="w", digest="d", batch_id="b", case_ref="CASE-1", payload={}, attempt=attempt,
                 max_attempts=max_attempts, fence=1, effect_attempt=None, history=[], started_at=0.0)


def _runtime() -> Any:
    return SimpleNamespace(settings=Settings(), breakers=SimpleNamespace(after_failure=lambda _: None))


LOOKED_UP: Any = SimpleNamespace(definition=SimpleNamespace(systems={"portal": None}, lookup_steps=[object()]), calls={},
                                 needs=lambda: Needs(frozenset(), {}, frozenset()))
NO_LOOKUP: Any = SimpleNamespace(definition=SimpleNamespace(systems={"portal": None}, lookup_steps=None), calls={},
                                 needs=lambda: Needs(frozenset(), {}, frozenset()))


def test_a_last_attempt_that_may_have_submitted_is_followed_by_looks_for_the_record_not_failed() -> None:
    crash = PageCrashed("the page crashed")
    looked = _retry_or_fail(_runtime(), _claim(attempt=3), crash, LOOKED_UP, uncertain=True)
    assert (looked.state, looked.give_back_attempt) == ("retry_scheduled", False), "the next attempt only looks"
    again = _retry_or_fail(_runtime(), _claim(attempt=3 + SETTLING_LOOKUPS - 1), crash, LOOKED_UP, uncertain=True)
    assert again.state == "retry_scheduled"
    last = _retry_or_fail(_runtime(), _claim(attempt=3 + SETTLING_LOOKUPS), crash, LOOKED_UP, uncertain=True)
    assert (last.state, last.error_class) == ("failed", "UncertainSubmit"), "the looks are bounded"
    assert last.error_message == f"The browser page crashed while the bot worked on the case. {MAY_HAVE_SUBMITTED}"
    certain = _retry_or_fail(_runtime(), _claim(attempt=3), crash, LOOKED_UP)
    assert (certain.state, certain.error_class) == ("failed", "PageCrashed"), "nothing began submitting: it fails"


def test_without_a_lookup_a_case_that_may_have_submitted_fails_saying_so() -> None:
    outcome = _retry_or_fail(_runtime(), _claim(attempt=3), BrowserGone("gone"), NO_LOOKUP, uncertain=True)
    assert (outcome.state, outcome.error_class) == ("failed", "UncertainSubmit")
    assert "check the target system for it before doing it again" in (outcome.error_message or "")


def test_a_look_after_the_last_attempt_that_finds_nothing_ends_the_case_as_its_last_attempt_failed() -> None:
    history = [{"attempt": 3, "error_class": "BrowserGone", "error": "The browser closed while the bot worked on "
                "the case.", "error_detail": "step 7: BrowserGone: gone", "evidence": ["a.png"]},
               {"attempt": 4, "error_class": "StepTimeout", "error": "A page did not show.", "error_detail": "lookup",
                "evidence": []}]
    claim = dataclasses.replace(_claim(attempt=5), effect_attempt=3, history=history)
    outcome = _not_submitted(claim)
    assert (outcome.state, outcome.error_class, outcome.evidence) == ("failed", "BrowserGone", ["a.png"])
    assert outcome.error_detail == ("step 7: BrowserGone: gone; after the last attempt the lookup found no record of "
                                    "the case in the target system: nothing was submitted")
    exhausted = _exhausted(dataclasses.replace(_claim(attempt=6), effect_attempt=3))
    assert (exhausted.state, exhausted.error_class) == ("failed", "UncertainSubmit")
    assert _exhausted(_claim(attempt=4)).error_class == "AttemptsExhausted", "nothing began submitting"


def test_a_submitted_case_whose_check_cannot_run_on_its_last_attempt_ends_done_and_is_checked_later() -> None:
    claim = dataclasses.replace(_claim(attempt=3), verification="pending", result_ref="REF-1", output={"reference": "REF-1"})

    def run(job: Any, before_effect: Any) -> Any:
        raise BrowserGone("the browser closed")

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
