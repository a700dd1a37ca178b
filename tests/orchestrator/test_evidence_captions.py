"""The case page's caption of a screenshot says what the screenshot shows, in plain English: the page where a case
stopped, a verification's record or the page where it stopped, a healed step's page, or a screenshot a step took
(a look in place's runs, through the ledger, are in ``test_look_in_place.py``)."""

from __future__ import annotations

import pytest

from orchestrator.web.service import caption_of, screenshots_of

CASE = "/srv/autoclerk-artifacts/change-of-address/CASE-1"
SERVER_ERROR = ("Attempt 1: the page when the target system answered with a server error on or after the bot's "
                "submit. The bot then looked the case up in the target system, in the same attempt.")


@pytest.mark.parametrize(("path", "caption"), [
    (f"{CASE}/attempt-2/failure.png", "Attempt 2: the page when the case stopped."),
    (f"{CASE}/attempt-1/verify/verify-after.png",
     "Attempt 1: the case's record in the target system, as the bot checked it."),
    (f"{CASE}/attempt-1/verify/failure.png",
     "Attempt 1: the page when the bot's check of the case's record in the target system stopped."),
    (f"{CASE}/attempt-1/verify-before.png", "Attempt 1: the page the bot's steps ended on, after it submitted the case."),
    (f"{CASE}/attempt-3/heal-1.png",
     "Attempt 3: a page whose element for a step had changed; the element the bot found in its place is outlined."),
    (f"{CASE}/attempt-1/confirmation.png", "Attempt 1: a screenshot a step of the workflow took."),
    (f"{CASE}/attempt-1/lookup/failure.png",
     "Attempt 1: the page when the bot's search for the case in the target system stopped."),
    ("/srv/elsewhere/failure.png", "The page when the case stopped."),
])
def test_each_screenshot_is_captioned_by_what_it_shows(path: str, caption: str) -> None:
    assert caption_of(path) == caption


def test_only_the_first_runs_failure_of_an_attempt_that_looked_in_place_is_the_submits_server_error() -> None:
    assert caption_of(f"{CASE}/attempt-1/failure.png", looked_in_place=True) == SERVER_ERROR
    assert caption_of(f"{CASE}/attempt-1/run-2/failure.png", looked_in_place=True).startswith(
        "Attempt 1: the page when the case stopped. The bot had found no record")
    assert caption_of(f"{CASE}/attempt-1/verify/failure.png", looked_in_place=True) == \
        "Attempt 1: the page when the bot's check of the case's record in the target system stopped."
    assert caption_of(f"{CASE}/attempt-1/run-2/verify-before.png", looked_in_place=True) == \
        "Attempt 1: the page the bot's steps ended on, after it submitted the case."


def test_a_case_or_workflow_named_like_an_attempt_folder_does_not_change_the_attempt() -> None:
    case = {"evidence": [], "history": [
        {"attempt": 1, "evidence": ["/srv/attempt-data/attempt-9/attempt-5/attempt-1/failure.png"],
         "looked_in_place": True},
        {"attempt": 2, "evidence": ["/srv/attempt-data/attempt-9/attempt-5/attempt-2/failure.png"]}]}
    assert [(shot["attempt"], shot["caption"]) for shot in screenshots_of(case)] == [
        ("2", "Attempt 2: the page when the case stopped."), ("1", SERVER_ERROR)]
