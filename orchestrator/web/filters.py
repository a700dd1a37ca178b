"""Template filters: times, counts and states as a caseworker reads them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from workflows import label_of

STATE_LABELS = {
    "queued": "Waiting",
    "in_progress": "Being worked",
    "retry_scheduled": "Retrying",
    "paused": "Paused",
    "done": "Done",
    "business_exception": "Needs a person",
    "failed": "Failed",
    "cancelled": "Cancelled",
}
STATE_COLOURS = {
    "done": "green", "business_exception": "orange", "failed": "red", "cancelled": "grey", "paused": "yellow",
    "in_progress": "blue", "retry_scheduled": "purple", "queued": "light-blue",
}
RESOLUTION_LABELS = {"done_by_hand": "Done by hand", "closed": "Closed"}
BATCH_STATE_LABELS = {"active": "Being worked", "paused": "Paused", "finished": "Finished", "cancelled": "Cancelled"}


def when(epoch: float | None) -> str:
    """``1 December 2026, 19:04:39`` (UTC), or an empty string."""
    if not epoch:
        return ""
    moment = dt.datetime.fromtimestamp(float(epoch), dt.timezone.utc)
    return f"{moment.day} {moment:%B %Y, %H:%M:%S} UTC"


def count(value: Any) -> str:
    return f"{int(value or 0):,}"


def state_label(state: str, resolution: str | None = None) -> str:
    if resolution:
        return RESOLUTION_LABELS.get(resolution, resolution)
    return STATE_LABELS.get(state, state)


def state_colour(state: str, resolution: str | None = None) -> str:
    return "grey" if resolution else STATE_COLOURS.get(state, "grey")


def batch_state(state: str) -> str:
    """A batch's state as a person reads it."""
    return BATCH_STATE_LABELS.get(state, state)


def percent(part: float, whole: float) -> str:
    return f"{(100.0 * part / whole) if whole else 0:.1f}%"


def screenshot(path: str) -> bool:
    """A Jinja test: whether an evidence path is a screenshot."""
    return str(path).endswith(".png")


TESTS = {"screenshot": screenshot}
FILTERS = {"when": when, "count": count, "state_label": state_label, "state_colour": state_colour,
           "batch_state": batch_state, "percent": percent, "field_label": label_of}
