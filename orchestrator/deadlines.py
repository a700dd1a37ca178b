"""The clock of a case's service level: deadlines, working days and the target systems' maintenance windows.

- A **deadline** is ISO 8601 (``2026-12-24T17:00``, ``2026-12-24T17:00+01:00``, or a date alone, which means
  the end of that day). A time without an offset is in ``AUTOCLERK_TIMEZONE`` (default ``Europe/London``).
- **Within** a span: ``30m``, ``4h``, ``3d`` (calendar time) or ``2wd`` (working days: the same time of day on
  the second working day after today). Working days are Monday to Friday, less the holidays of
  ``AUTOCLERK_HOLIDAYS_FILE`` (an ICS calendar, or one ISO date per line).
- A **maintenance window** of a target system (``AUTOCLERK_SYSTEM_MAINTENANCE``) is ``22:00-06:00`` (every
  night, into the next morning), ``Sun 02:00-04:00`` or ``Mon-Fri 12:00-13:00``; the days are the days the
  window starts on, and the times are in ``AUTOCLERK_TIMEZONE``. No case for a system in its window is
  claimed: it waits, with no attempt spent, until the window ends.

Every function takes the time zone and the time ("now") it works from, so none of it reads the clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DeadlineError", "Window", "WorkingDays", "batch_deadline", "deadline_at", "deadline_within", "maintenance_until", "parse_span",
    "time_zone",
]

DEADLINE_EXPECTED = "a date and time such as 2026-12-24T17:00 or 2026-12-24 17:00"
WITHIN_EXPECTED = "a number and a unit: m (minutes), h (hours), d (days) or wd (working days), such as 3d or 2wd"
WINDOW_EXPECTED = "a window such as 22:00-06:00, Sun 02:00-04:00 or Mon-Fri 12:00-13:00"

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|h|d|wd)\s*$")
_SECONDS = {"m": 60.0, "h": 3600.0, "d": 86400.0}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^\s*(?:(?P<days>[A-Za-z]{3}(?:\s*[-,]\s*[A-Za-z]{3})*)\s+)?"
                     r"(?P<start>\d{1,2}:\d{2}(?::\d{2})?)\s*-\s*(?P<end>\d{1,2}:\d{2}(?::\d{2})?)\s*$")
WEEKEND = frozenset({5, 6})
CHAINED_WINDOWS = 16
"""How many windows that meet end to end are followed (a window open all day, every day, ends after this many)."""


class DeadlineError(ValueError):
    """A deadline, span, calendar or window that cannot be read; the message says what was expected."""


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/London``).

    Raises:
        DeadlineError: no such zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DeadlineError(f"'{name}' is not a time zone; expected an IANA name such as Europe/London") from None


def deadline_at(text: str, tz: dt.tzinfo) -> float:
    """The Unix time of an ISO 8601 deadline; a date alone is the end of that day, and a time without an
    offset is in ``tz``.

    Raises:
        DeadlineError: not a date and time.
    """
    value = text.strip()
    try:
        if len(value) == 10:  # a date alone: the deadline is the end of that day
            day = dt.date.fromisoformat(value)
            return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz).timestamp()
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise DeadlineError(f"expected {DEADLINE_EXPECTED}, got '{text}'") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.timestamp()


def parse_span(text: str) -> float:
    """Seconds in a calendar span: ``30m``, ``4h``, ``2d`` (no working days: see :func:`deadline_within`).

    Raises:
        DeadlineError: not a number and one of the units m, h, d.
    """
    match = _SPAN.match(text)
    if not match or match[2] == "wd":
        raise DeadlineError(f"expected a number and a unit: m (minutes), h (hours) or d (days), such as 4h; got '{text}'")
    return float(match[1]) * _SECONDS[match[2]]


@dataclass(frozen=True)
class WorkingDays:
    """Monday to Friday, less ``holidays``."""

    holidays: frozenset[dt.date] = frozenset()

    def is_working(self, day: dt.date) -> bool:
        return day.weekday() not in WEEKEND and day not in self.holidays

    def add(self, start: dt.datetime, days: int) -> dt.datetime:
        """The same time of day (in ``start``'s zone) on the ``days``-th working day after ``start``'s day."""
        day, counted = start.date(), 0
        while counted < days:
            day += dt.timedelta(days=1)
            counted += self.is_working(day)
        return dt.datetime.combine(day, start.timetz().replace(tzinfo=None), start.tzinfo)

    @classmethod
    def from_file(cls, path: Path) -> WorkingDays:
        """Holidays from an ICS calendar (each event's days; all-day or timed) or a list of ISO dates (one a
        line; ``#`` starts a comment).

        Raises:
            DeadlineError: the file cannot be read; the message names the file, the line or event, and what
                was expected.
        """
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DeadlineError(f"{path}: the holiday calendar cannot be read ({exc.strerror})") from None
        if path.suffix.lower() == ".ics" or data.lstrip().upper().startswith(b"BEGIN:VCALENDAR"):
            return cls(frozenset(_ics_days(path, data)))
        days = set()
        for number, line in enumerate(data.decode("utf-8-sig", errors="replace").splitlines(), start=1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            try:
                days.add(dt.date.fromisoformat(entry))
            except ValueError:
                raise DeadlineError(f"{path}:{number}: expected a date such as 2026-12-25, got '{entry}'") from None
        return cls(frozenset(days))


def _ics_days(path: Path, data: bytes) -> Iterable[dt.date]:
    import icalendar

    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise DeadlineError(f"{path}: is not a readable ICS calendar ({exc})") from None
    for event in calendar.walk("VEVENT"):
        summary = str(event.get("SUMMARY", "an event"))
        if event.get("RRULE") is not None:
            raise DeadlineError(f"{path}: the event '{summary}' repeats (RRULE); list each holiday as its own event")
        start = event.get("DTSTART")
        if start is None:
            raise DeadlineError(f"{path}: the event '{summary}' has no DTSTART; expected the holiday's date")
        first = _day(start.dt)
        end = event.get("DTEND")
        last = _day(end.dt) - dt.timedelta(days=1) if end is not None and isinstance(end.dt, dt.date) \
            and not isinstance(end.dt, dt.datetime) else (_day(end.dt) if end is not None else first)
        day = first
        while day <= max(first, last):
            yield day
            day += dt.timedelta(days=1)


def _day(value: dt.date | dt.datetime) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def deadline_within(text: str, now: float, tz: dt.tzinfo, working_days: WorkingDays) -> float:
    """The Unix time ``text`` (``3d``, ``4h``, ``2wd``) after ``now``.

    Raises:
        DeadlineError: not a span.
    """
    match = _SPAN.match(text)
    if not match:
        raise DeadlineError(f"expected {WITHIN_EXPECTED}; got '{text}'")
    amount, unit = match[1], match[2]
    if unit != "wd":
        return now + float(amount) * _SECONDS[unit]
    if not amount.isdigit():
        raise DeadlineError(f"working days are whole days, such as 2wd; got '{text}'")
    return working_days.add(dt.datetime.fromtimestamp(now, tz), int(amount)).timestamp()


def batch_deadline(deadline: str | None, within: str | None, *, now: float, tz: dt.tzinfo,
                   working_days: WorkingDays) -> float | None:
    """A batch's deadline from a time (``--deadline``) or a span from ``now`` (``--within``); ``None`` for neither.

    Raises:
        DeadlineError: both are given, or the one given cannot be read.
    """
    if deadline and within:
        raise DeadlineError("give a deadline or a span (within), not both")
    if deadline:
        return deadline_at(deadline, tz)
    if within:
        return deadline_within(within, now, tz, working_days)
    return None


@dataclass(frozen=True)
class Window:
    """A maintenance window: from ``start`` to ``end`` (the next day when ``end`` is not after ``start``),
    starting on the ``days`` (0 = Monday)."""

    days: frozenset[int]
    start: dt.time
    end: dt.time
    text: str

    @classmethod
    def parse(cls, text: str) -> Window:
        """Raises: DeadlineError: not a window."""
        match = _WINDOW.match(text)
        if not match:
            raise DeadlineError(f"expected {WINDOW_EXPECTED}; got '{text}'")
        try:
            start, end = _clock(match["start"]), _clock(match["end"])
            days = _weekdays(match["days"]) if match["days"] else frozenset(range(7))
        except ValueError:
            raise DeadlineError(f"expected {WINDOW_EXPECTED}; got '{text}'") from None
        return cls(days, start, end, text.strip())

    def until(self, now: dt.datetime) -> dt.datetime | None:
        """The end of this window if ``now`` is inside it, else ``None``."""
        for back in (0, 1):
            day = now.date() - dt.timedelta(days=back)
            if day.weekday() not in self.days:
                continue
            opens = dt.datetime.combine(day, self.start, now.tzinfo)
            closes_on = day + dt.timedelta(days=1) if self.end <= self.start else day
            closes = dt.datetime.combine(closes_on, self.end, now.tzinfo)
            if opens <= now < closes:
                return closes
        return None


def _clock(text: str) -> dt.time:
    """``HH:MM`` (or ``HH:MM:SS``); ``24:00`` is the end of the day, i.e. midnight."""
    hours, minutes, seconds = (int(part) for part in (text + ":00").split(":")[:3])
    if hours == 24 and not minutes and not seconds:
        return dt.time(0, 0)
    return dt.time(hours, minutes, seconds)


def _weekdays(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in re.split(r"\s*,\s*", text.strip().lower()):
        first, _, last = (p.strip() for p in part.partition("-"))
        a = _DAYS.index(first)
        b = _DAYS.index(last) if last else a
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


def maintenance_until(windows: Sequence[Window], now: float, tz: dt.tzinfo) -> float | None:
    """When the maintenance that ``now`` falls in ends (following windows that meet or overlap), or ``None``
    when ``now`` is outside every window."""
    moment, until = dt.datetime.fromtimestamp(now, tz), None
    for _ in range(CHAINED_WINDOWS):
        ends = [end for window in windows if (end := window.until(moment)) is not None]
        if not ends:
            break
        moment = until = max(ends)
    return None if until is None else until.timestamp()
