"""The names of the screenshots the bot takes and of the folders of a case's evidence, defined once for all that
use them: the bot writes them (``bots``, and ``orchestrator.queue`` names the folder of each run of an attempt),
a workflow's ``screenshot`` step may not take one of the bot's own (:class:`workflows.steps.Screenshot`), and the
hand-off service captions each screenshot by them (``orchestrator.web``). The other files the bot keeps
(``failure.html``, ``page-errors.txt``, ``trace.zip``, ``verify-fields.json``) are named where they are written.

The layout, under ``<artifacts>/<workflow>/<case>/``::

    attempt-<n>/             one folder per attempt
        failure.png          the page when the attempt stopped (and failure.html, page-errors.txt, trace.zip)
        verify-before.png    the page the steps ended on after the submit, when the workflow has a check
        heal-<k>.png         a page whose element for a step had changed, the element found in its place outlined
        <name>.png           a workflow's own ``screenshot`` step
        lookup/              the look in place after a server error on the submit
        run-2/               the second run of the steps after that look found nothing
        verify/              the check of the case's record (verify-after.png: the record it read;
                             verify-fields.json: the fields it compared)
"""

from __future__ import annotations

import re

FAILURE = "failure"
"""The screenshot (``.png``) and page (``.html``) of where an attempt, or one run of it, stopped."""
VERIFY_BEFORE = "verify-before"
"""The screenshot the submitting run takes of the page its steps ended on."""
VERIFY_AFTER = "verify-after"
"""The screenshot of the case's record in the target system, as a check read it."""
HEAL = "heal-"
"""The prefix of a healed step's screenshots, numbered by the worker's healer (``heal-1``, ``heal-2``, …): a
number is unique within the worker, not within the run."""

LOOKUP = "lookup"
"""The folder of a look in place: the search for a case that may have been submitted."""
SECOND_RUN = "run-2"
"""The folder of the second run of the steps, after a look in place found no record of the case."""
VERIFY = "verify"
"""The folder of a check of the case's record in the target system."""

_ATTEMPT = re.compile(r"attempt-([0-9]+)")


def heal_shot(number: int) -> str:
    """The name of a healed step's ``number``-th screenshot (without ``.png``)."""
    return f"{HEAL}{number}"


def attempt_folder(attempt: int) -> str:
    """The name of the folder of an attempt's evidence."""
    return f"attempt-{attempt}"


def attempt_number(folder: str) -> int | None:
    """The attempt a folder named by :func:`attempt_folder` holds, or ``None`` for any other name."""
    found = _ATTEMPT.fullmatch(folder)
    return int(found.group(1)) if found is not None else None


def is_heal_shot(name: str) -> bool:
    """``name`` (without ``.png``) is one of a healed step's screenshots."""
    return re.fullmatch(rf"{re.escape(HEAL)}[0-9]+", name) is not None


def is_the_bots_own(name: str) -> bool:
    """``name`` (without ``.png``) is one the bot gives its own screenshots, so a workflow's step may not take it."""
    return name in (FAILURE, VERIFY_BEFORE, VERIFY_AFTER) or is_heal_shot(name)
