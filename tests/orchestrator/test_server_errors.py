"""How a failed attempt is counted when the target system answered a server error (5xx) but is not down:
a burst keeps the case's attempts, a bounded number of times; other failures spend them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bots import StepTimeout, TargetServerError
from orchestrator.queue.execution import SERVER_BUSY, _retry_or_fail
from orchestrator.ledger import Breaker, Claim
from orchestrator import Settings
from workflows import Needs


def _claim(attempt: int = 1, max_attempts: int = 3, graced: int = 0) -> Claim:
    history = [{"attempt": n, "outcome": "retry_scheduled", "error_class": SERVER_BUSY} for n in range(graced)]
    return Claim(id=1, workflow="w", digest="d", batch_id="b", case_ref="CASE-1", payload={}, attempt=attempt,
                 max_attempts=max_attempts, fence=1, effect_attempt=None, history=history, started_at=0.0)


def _runtime(down: str | None = None, grace: int = 2) -> Any:
    breaker = None if down is None else Breaker(down, "closed", 1, None, None, None, "answered 503")
    return SimpleNamespace(settings=Settings(server_error_grace=grace),
                           breakers=SimpleNamespace(after_failure=lambda _: breaker))


LOADED: Any = SimpleNamespace(definition=SimpleNamespace(systems={"portal": None}), calls={},
                              needs=lambda: Needs(frozenset(), {}, frozenset()))


def test_a_server_error_while_the_system_answers_waits_without_spending_the_attempt() -> None:
    outcome = _retry_or_fail(_runtime(), _claim(attempt=3), TargetServerError("the target system answered 503"), LOADED)
    assert (outcome.state, outcome.error_class, outcome.give_back_attempt) == ("retry_scheduled", SERVER_BUSY, True)
    assert "1 of 2 such waits" in (outcome.error_message or "")
    assert outcome.next_attempt_at is not None


def test_server_errors_beyond_the_grace_spend_attempts_so_a_page_that_always_fails_still_ends_the_case() -> None:
    spent = _retry_or_fail(_runtime(), _claim(attempt=1, graced=2), TargetServerError("answered 500"), LOADED)
    assert (spent.state, spent.error_class, spent.give_back_attempt) == ("retry_scheduled", "TargetServerError", False)
    last = _retry_or_fail(_runtime(), _claim(attempt=3, graced=2), TargetServerError("answered 500"), LOADED)
    assert (last.state, last.error_class) == ("failed", "TargetServerError")


def test_other_failures_spend_their_attempt_and_a_grace_of_zero_turns_the_rule_off() -> None:
    timeout = _retry_or_fail(_runtime(), _claim(attempt=3), StepTimeout("no such button"), LOADED)
    assert (timeout.state, timeout.error_class) == ("failed", "StepTimeout")
    off = _retry_or_fail(_runtime(grace=0), _claim(attempt=3), TargetServerError("answered 503"), LOADED)
    assert off.state == "failed"


def test_a_system_that_does_not_answer_is_an_outage_whatever_the_grace() -> None:
    outcome = _retry_or_fail(_runtime(down="portal", grace=0), _claim(attempt=3), TargetServerError("503"), LOADED)
    assert (outcome.error_class, outcome.give_back_attempt) == ("TargetUnavailable", True)
