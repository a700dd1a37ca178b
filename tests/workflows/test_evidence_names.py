"""The names in a case's evidence are defined once (workflows.evidence): the bot writes them, the screenshot step
refuses the bot's own, and the hand-off service captions by them."""

from __future__ import annotations

import pytest

from workflows import evidence


@pytest.mark.parametrize("attempt", [1, 7, 120])
def test_an_attempts_folder_is_read_back_as_its_number(attempt: int) -> None:
    assert evidence.attempt_number(evidence.attempt_folder(attempt)) == attempt


@pytest.mark.parametrize("folder", ["attempt-", "attempt-x", "attempts-3", "attempt-3-old", "lookup", ""])
def test_any_other_folder_is_no_attempts(folder: str) -> None:
    assert evidence.attempt_number(folder) is None


def test_the_bots_own_names_are_the_failure_the_checks_and_each_heal() -> None:
    own = [evidence.FAILURE, evidence.VERIFY_BEFORE, evidence.VERIFY_AFTER, evidence.heal_shot(1), evidence.heal_shot(12)]
    assert all(evidence.is_the_bots_own(name) for name in own)
    assert all(evidence.is_heal_shot(evidence.heal_shot(n)) for n in (1, 12))


@pytest.mark.parametrize("name", ["before-submit", "failures", "heal-", "heal-one", "verify", "my-failure"])
def test_a_workflows_own_names_are_not_the_bots(name: str) -> None:
    assert not evidence.is_the_bots_own(name)
