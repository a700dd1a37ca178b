"""The case page's caption of a screenshot says what the screenshot shows, in plain English: the page where a case
stopped, a verification's record, a healed step's page, or a screenshot a step took (a look in place's runs are
in ``test_look_in_place.py``)."""

from __future__ import annotations

import pytest

from orchestrator.web.service import caption_of


@pytest.mark.parametrize(("path", "caption"), [
    ("change-of-address/CASE-1/attempt-2/failure.png", "Attempt 2: the page when the case stopped."),
    ("change-of-address/CASE-1/attempt-1/verify/verify-after.png",
     "Attempt 1: the case's record in the target system, as the bot checked it after the submit."),
    ("change-of-address/CASE-1/attempt-1/verify-before.png", "Attempt 1: the page the bot's submit ended on."),
    ("change-of-address/CASE-1/attempt-3/heal-1.png",
     "Attempt 3: a page whose element for a step had changed; the element the bot took in its place is outlined."),
    ("change-of-address/CASE-1/attempt-1/confirmation.png", "Attempt 1: a screenshot a step of the workflow took."),
    ("change-of-address/CASE-1/attempt-1/lookup/verify/verify-after.png",
     "Attempt 1: the case's record in the target system, as the bot checked it after the submit."),
    ("elsewhere/failure.png", "The page when the case stopped."),
])
def test_each_screenshot_is_captioned_by_what_it_shows(path: str, caption: str) -> None:
    assert caption_of(path) == caption


def test_only_the_first_runs_failure_of_an_attempt_that_looked_in_place_is_the_submits_server_error() -> None:
    server_error = ("Attempt 1: the page when the target system answered with a server error on or after the bot's "
                    "submit. The bot then looked the case up in the target system, in the same attempt.")
    assert caption_of("w/CASE-1/attempt-1/failure.png", looked_in_place=True) == server_error
    assert caption_of("w/CASE-1/attempt-1/run-2/failure.png", looked_in_place=True).startswith(
        "Attempt 1: the page when the case stopped. The bot had found no record")
    assert caption_of("w/CASE-1/attempt-1/run-2/verify-before.png", looked_in_place=True) == \
        "Attempt 1: the page the bot's submit ended on."
