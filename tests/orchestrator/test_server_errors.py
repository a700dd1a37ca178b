"""A server error (5xx) that reaches the orchestrator's outcome: the bot already retried it in place (or it
followed a submit, and a look in place did not settle it), so it spends the attempt as any failure does,
unless the system is down. The in-place retries' settings are validated and reach the bots."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from bots import StepTimeout, TargetServerError
from orchestrator import Settings
from orchestrator.ledger import Breaker, Claim
from orchestrator.queue.execution import _retry_or_fail
from orchestrator.queue.runtime import bot_config
from tests.conftest import EXAMPLE
from workflows import Needs


def _claim(attempt: int = 1, max_attempts: int = 3) -> Claim:
    return Claim(id=1, workflow="w", digest="d", batch_id="b", case_ref="CASE-1", payload={}, attempt=attempt,
                 max_attempts=max_attempts, fence=1, effect_attempt=None, history=[], started_at=0.0)


def _runtime(down: str | None = None) -> Any:
    breaker = None if down is None else Breaker(down, "closed", 1, None, None, None, "answered 503")
    return SimpleNamespace(settings=Settings(), breakers=SimpleNamespace(after_failure=lambda _: breaker))


LOADED: Any = SimpleNamespace(definition=SimpleNamespace(systems={"portal": None}), calls={},
                              needs=lambda: Needs(frozenset(), {}, frozenset()))


def test_a_server_error_the_bot_could_not_retry_in_place_spends_the_attempt_and_the_last_one_fails_the_case() -> None:
    error = TargetServerError("the target system answered 503", url="http://cms/cases/CASE-1", method="GET")
    error.retried_in_place = True
    spent = _retry_or_fail(_runtime(), _claim(attempt=1), error, LOADED)
    assert (spent.state, spent.error_class, spent.give_back_attempt) == ("retry_scheduled", "TargetServerError", False)
    assert spent.error_message == "The target system answered with a server error." and spent.next_attempt_at
    last = _retry_or_fail(_runtime(), _claim(attempt=3), error, LOADED)
    assert (last.state, last.error_class) == ("failed", "TargetServerError")


def test_a_server_error_after_a_submit_that_no_look_in_place_settled_is_an_ordinary_failure() -> None:
    error = TargetServerError("the target system answered 503", method="POST", submitting=True)
    outcome = _retry_or_fail(_runtime(), _claim(attempt=1), error, LOADED)
    assert (outcome.state, outcome.give_back_attempt) == ("retry_scheduled", False)
    timeout = _retry_or_fail(_runtime(), _claim(attempt=3), StepTimeout("no such button"), LOADED)
    assert (timeout.state, timeout.error_class) == ("failed", "StepTimeout")


def test_a_system_that_does_not_answer_is_still_an_outage() -> None:
    outcome = _retry_or_fail(_runtime(down="portal"), _claim(attempt=3), TargetServerError("503"), LOADED)
    assert (outcome.error_class, outcome.give_back_attempt) == ("TargetUnavailable", True)


def test_the_in_place_retry_settings_reach_the_bots_and_bad_values_are_refused() -> None:
    config = bot_config(Settings(server_error_retries=5, server_error_wait_s=0.1))
    assert (config.server_error_retries, config.server_error_wait_s) == (5, 0.1)
    assert Settings(server_error_retries=0).server_error_retries == 0, "0 turns retries in place off"
    for bad in ({"server_error_retries": -1}, {"server_error_retries": 21}, {"server_error_wait_s": 0},
                {"server_error_retries": 8, "server_error_wait_s": 1.0}):  # 255 s of waits in a 120 s attempt
        with pytest.raises(ValidationError):
            Settings(**bad)


@pytest.mark.parametrize("variable, value, expected", [
    ("AUTOCLERK_SERVER_ERROR_RETRIES", "-1",
     "autoclerk: error: setting 'server_error_retries' (AUTOCLERK_SERVER_ERROR_RETRIES): Input should be greater "
     "than or equal to 0"),
    ("AUTOCLERK_SERVER_ERROR_WAIT_S", "30",
     "autoclerk: error: setting 'settings' (AUTOCLERK_SETTINGS): server_error_wait_s doubled over server_error_retries "
     "must add up to less than half of transaction_budget_s, or the waits in place use up the attempt"),
])
def test_a_bad_retry_setting_is_one_line_before_any_work(tmp_path: Any, variable: str, value: str, expected: str) -> None:
    (tmp_path / "cases.csv").write_text("case_ref\nCASE-000001\n")
    result = subprocess.run([sys.executable, "-m", "orchestrator", "run", str(EXAMPLE), "--cases", "cases.csv",
                             "--ledger", f"sqlite:///{tmp_path / 'l.db'}"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={**os.environ, variable: value})
    assert (result.returncode, result.stderr.strip()) == (2, expected)
    assert not (tmp_path / "l.db").exists(), "refused before the ledger was opened"
