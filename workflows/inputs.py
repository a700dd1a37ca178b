"""The input schema of a workflow: typed case fields, and checking case rows against them.

A batch is checked row by row at hand-off; a bad row is rejected with its row number, field and reason
and never reaches a bot. Rows come in as text (CSV) or JSON values; both are turned into typed values.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import CaseDataError

FieldType = Literal["string", "integer", "decimal", "date", "boolean", "enum", "list"]
ItemType = Literal["string", "integer", "decimal", "date", "boolean", "enum"]

_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


class InputField(BaseModel):
    """One typed field of a case.

    A field marked ``secret: true`` (an account number, a date of birth) is shown as ``••••••``:

    - by ``explain``: a value whose template names the field is shown as the mask, whole;
    - in the evidence of a failed attempt: the element a step typed, chose or uploaded the value into is
      covered in the screenshots (when the step's template names ``case.NAME``), and the value is
      replaced wherever it occurs in the saved page (``failure.html``);
    - in the message of the error an attempt ends with, which the logs and the ledger's views show;
      the bots write no case value into a log line of their own;
    - on the case pages, in the API and in the exports.

    The ledger keeps the value itself: the bot has to type it. Inside free text (a message, a saved
    page) values under 3 characters are not replaced, as they would mangle unrelated text; they are
    still masked wherever the whole field is shown. A value a step reaches only through ``vars`` is
    replaced in free text, but the element it was typed into is not covered in screenshots. A Playwright
    trace of a failed attempt (kept only when tracing is switched on) holds what was typed, secret
    fields included.

    A ``date`` field reads ISO dates (``2026-03-05``). A spreadsheet that writes them another way says how
    with ``format``: one strftime format, or a list tried in order. The value is kept as a date, so steps
    see the same date however the row wrote it, and a row that matches no format is rejected at hand-off
    with an example of the format expected (``must be a date like 31/12/2026 (day/month/year)``). ISO
    dates are read as well, since the service's form and stored cases give dates that way. Formats that
    could read one text as two dates (``%d/%m/%Y`` and ``%m/%d/%Y`` both read ``03/04/2026``) are refused
    when the workflow is loaded, as is a format that would read an ISO text as another date.

    What a caseworker reads is plain English: ``label`` names the field (without it, the key in words:
    ``address_line1`` reads "Address line 1"); an enum's ``values`` may give each code the label its
    option shows (``{GB-ENG: England}``); ``pattern_message`` says what a value that does not match
    ``pattern`` should look like, and ``message`` is said for any other broken rule. Without them, a
    sentence is made from the label and the rule (never the regular expression itself):
    "Enter case reference", "Postcode must be in the right format". :func:`check_case` and
    :func:`field_errors` give these sentences; the precise rule stays in ``CaseDataError.reason`` for
    authors (``autoclerk run``, ``try``, ``explain``).

    Example::

        postcode: {type: string, label: Postcode, pattern: "^[A-Z]{1,2}[0-9][0-9A-Z]? [0-9][A-Z]{2}$",
                   pattern_message: "Enter a postcode like SW1A 1AA"}
        country: {type: enum, values: {GB-ENG: England, GB-SCT: Scotland}}
        contact: {type: enum, values: [email, post, phone]}
        account_number: {type: string, pattern: "^[0-9]{8}$", secret: true}
        received: {type: date, format: "%d/%m/%Y"}
        renewed_on: {type: list, item_type: date, format: ["%d/%m/%Y", "%d.%m.%Y"]}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: FieldType = "string"
    required: bool = True
    label: str | None = Field(default=None, min_length=1, max_length=200, description=(
        "The field's name as a caseworker reads it (forms, rejected rows, case pages); without it, the key in "
        "words (address_line1: Address line 1)."))
    description: str | None = Field(default=None, description="The hint a form shows under the field.")
    pattern: str | None = Field(default=None, description="A regular expression the whole value must match.")
    pattern_message: str | None = Field(default=None, min_length=1, max_length=500, description=(
        "What a caseworker reads when a value does not match 'pattern', as a sentence (Enter a postcode like "
        "SW1A 1AA); without it, a sentence asking for the right format (never the regular expression)."))
    message: str | None = Field(default=None, min_length=1, max_length=500, description=(
        "What a caseworker reads when a value breaks any other rule of the field (or the pattern, when there is "
        "no 'pattern_message'), as a sentence; without it, a sentence made from the label and the rule."))
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1, le=100_000)
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    values: list[str] | dict[str, str] | None = Field(default=None, description=(
        "The allowed values of an enum field: a list of codes ([email, post]), or each code with the label a "
        "caseworker reads ({GB-ENG: England, GB-SCT: Scotland})."))
    secret: bool = Field(default=False, description=(
        "Show the value as •••••• wherever case data is shown; the ledger keeps it for the bot."))
    item_type: ItemType = Field(default="string", description="For a list field: the type of each item.")
    separator: str = Field(default=";", min_length=1, max_length=3,
                           description="For a list field in a CSV file: what separates the items.")
    max_items: int = Field(default=100, ge=1, le=10_000, description="For a list field: the most items a case may have.")
    format: str | list[str] | None = Field(default=None, description=(
        "For a date field (or a list of dates): how the rows write the date, as a strftime format "
        "(`%d/%m/%Y` for 31/12/2026) or a list of them tried in order; ISO dates are read too. "
        "Without it, only ISO dates (2026-12-31)."))

    @field_validator("format")
    @classmethod
    def _readable_formats(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is not None and not value:
            raise ValueError("give a date format such as %d/%m/%Y, or leave 'format' out for ISO dates")
        problems = date_format_problems(date_formats(value))
        if problems:
            raise ValueError(problems[0])
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "InputField":
        if self.type == "enum" and not self.values:
            raise ValueError("an enum field needs 'values'")
        if self.type == "list" and self.item_type == "enum" and not self.values:
            raise ValueError("a list of enum items needs 'values'")
        if self.values is not None and not (self.type == "enum" or self.item_type == "enum"):
            raise ValueError("'values' is only for enum fields")
        if self.format is not None and not (self.type == "date" or (self.type == "list" and self.item_type == "date")):
            raise ValueError("'format' is only for date fields (and lists of dates)")
        if self.pattern_message is not None and self.pattern is None:
            raise ValueError("'pattern_message' needs a 'pattern'")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"'pattern' is not a valid regular expression ({exc})") from None
        return self

    @property
    def codes(self) -> list[str]:
        """An enum's allowed codes, in order (whichever form ``values`` takes)."""
        return list(self.values or [])

    def option_label(self, code: str) -> str:
        """What a caseworker reads for an enum code: its label, or the code itself when none is given."""
        return self.values.get(code, code) if isinstance(self.values, dict) else code

    def label_for(self, name: str) -> str:
        """The field's label, or its key ``name`` in words."""
        return self.label or label_of(name)

    def sentence(self, name: str, broken: ValueError) -> str:
        """What a caseworker reads for a broken rule of this field (called ``name``): the author's message, or
        a sentence made from the label and the rule, never a regular expression.

        Example::

            InputField(pattern="^[0-9]{6}$").sentence("case_ref", RuleBroken("must match …", "pattern"))
            == "Case ref must be in the right format"
        """
        rule = broken.rule if isinstance(broken, RuleBroken) else "other"
        if rule == "pattern" and self.pattern_message:
            return self.pattern_message
        if self.message:
            return self.message
        label = self.label_for(name)
        if rule == "required":
            verb = "Select" if self.type in ("enum", "boolean") else "Enter"
            return f"{verb} {_lower_first(label)}"
        plain = broken.plain if isinstance(broken, RuleBroken) else str(broken)
        return f"{label} {plain}"

    def coerce(self, raw: Any) -> Any:
        """Turn one raw value into the field's type; raise :class:`RuleBroken` (a ``ValueError``) with the rule
        broken, precisely (for authors), and in plain words (for caseworkers: see :meth:`sentence`).

        The message never repeats the value: rejected rows may hold personal data.
        """
        if isinstance(raw, str):
            raw = raw.strip()
        if raw is None or raw == "":
            if self.required:
                raise RuleBroken("is required", "required")
            return None
        value = _CONVERTERS[self.type](self, raw)
        if isinstance(value, str):
            if self.min_length is not None and len(value) < self.min_length:
                raise ValueError(f"must be at least {self.min_length} characters")
            if self.max_length is not None and len(value) > self.max_length:
                raise ValueError(f"must be at most {self.max_length} characters")
            if self.pattern is not None and not re.fullmatch(self.pattern, value):
                raise RuleBroken(f"must match the pattern {self.pattern}", "pattern", "must be in the right format")
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                raise ValueError(f"must be at least {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise ValueError(f"must be at most {self.maximum}")
        return value


class RuleBroken(ValueError):
    """A value broke a rule of its field.

    ``str()`` is the precise rule, for authors (it may hold the regular expression); ``plain`` is the same
    rule in words a caseworker reads; ``rule`` is which rule (``required``, ``pattern`` or ``other``).
    """

    def __init__(self, detail: str, rule: str = "other", plain: str | None = None) -> None:
        super().__init__(detail)
        self.rule, self.plain = rule, plain or detail


def label_of(name: str) -> str:
    """A field key in words: ``address_line1`` → ``Address line 1``."""
    text = name.replace("_", " ").strip()
    spaced = "".join(f" {ch}" if ch.isdigit() and i and not text[i - 1].isdigit() else ch for i, ch in enumerate(text))
    return spaced[:1].upper() + spaced[1:]


def _lower_first(label: str) -> str:
    """``Case reference`` → ``case reference``; ``NI number`` stays (an acronym keeps its capitals)."""
    return label[:1].lower() + label[1:] if label[1:2].islower() else label


def _as_string(field: InputField, raw: Any) -> str:
    if not isinstance(raw, (str, int, Decimal)) or isinstance(raw, bool):
        raise ValueError("must be text")
    return str(raw)


def _as_integer(field: InputField, raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("must be a whole number")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and re.fullmatch(r"[+-]?\d{1,18}", raw):
        return int(raw)
    raise ValueError("must be a whole number")


def _as_decimal(field: InputField, raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float, Decimal)):
        raise ValueError("must be a decimal number such as 12.50")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise ValueError("must be a decimal number such as 12.50") from None
    if not value.is_finite():
        raise ValueError("must be a finite decimal number")
    return value


def _as_date(field: InputField, raw: Any) -> dt.date:
    if isinstance(raw, dt.date):
        return raw
    formats = date_formats(field.format)
    if isinstance(raw, str):
        value = read_date(raw, formats)
        if value is not None:
            return value
    if formats:
        raise ValueError(f"must be a date like {date_example(formats)}")
    raise RuleBroken("must be a date as YYYY-MM-DD", "other", "must be a real date, like 2026-12-31")


def _as_boolean(field: InputField, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("must be true or false")


def _as_enum(field: InputField, raw: Any) -> str:
    text = str(raw)
    if text not in field.codes:
        plain = [code if field.option_label(code) == code else f"{field.option_label(code)} ({code})"
                 for code in field.codes]
        raise RuleBroken(f"must be one of {', '.join(field.codes)}", "other", f"must be one of {', '.join(plain)}")
    return text


def _as_list(field: InputField, raw: Any) -> list[Any]:
    if isinstance(raw, str):
        items: list[Any] = [part.strip() for part in raw.split(field.separator) if part.strip()]
    elif isinstance(raw, list):
        items = raw
    else:
        raise ValueError(f"must be a list (in CSV: items separated by '{field.separator}')")
    if len(items) > field.max_items:
        raise ValueError(f"must have at most {field.max_items} items")
    item = field.model_copy(update={"type": field.item_type, "required": True})
    out = []
    for number, value in enumerate(items, start=1):
        try:
            out.append(item.coerce(value))
        except RuleBroken as exc:
            raise RuleBroken(f"item {number} {exc}", exc.rule, f"item {number} {exc.plain}") from None
        except ValueError as exc:
            raise ValueError(f"item {number} {exc}") from None
    return out


_CONVERTERS = {
    "string": _as_string,
    "integer": _as_integer,
    "decimal": _as_decimal,
    "date": _as_date,
    "boolean": _as_boolean,
    "enum": _as_enum,
    "list": _as_list,
}


def check_case(fields: dict[str, InputField], row: dict[str, Any], row_number: int) -> dict[str, Any]:
    """Check one case row against the input schema and return its typed values.

    Columns the schema does not name are ignored; a missing column counts as an empty value.

    Raises:
        CaseDataError: for the first field that breaks its rule, with the row number, the precise rule
            (``reason``, for authors) and the sentence a caseworker reads (``message``).
    """
    typed: dict[str, Any] = {}
    for name, field in fields.items():
        try:
            typed[name] = field.coerce(row.get(name))
        except ValueError as exc:
            raise CaseDataError(row_number, name, str(exc), field.sentence(name, exc)) from None
    return typed


def field_errors(fields: dict[str, InputField], row: dict[str, Any]) -> dict[str, str]:
    """Every field of ``row`` that breaks its rule, with the sentence a caseworker reads (the same rules as
    :func:`check_case`, all at once: a form shows each error beside its field)."""
    errors: dict[str, str] = {}
    for name, field in fields.items():
        try:
            field.coerce(row.get(name))
        except ValueError as exc:
            errors[name] = field.sentence(name, exc)
    return errors


def to_json_value(value: Any) -> Any:
    """A typed case value as JSON (dates as ISO text, decimals as text)."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [to_json_value(item) for item in value]
    return value


# -- date formats ----------------------------------------------------------------------------------------
_EXAMPLE_DATE = dt.date(2026, 12, 31)  # day 31 and month 12 cannot be mistaken for each other
_CONFUSABLE_DATES = (dt.date(2026, 4, 3), dt.date(2011, 4, 3))  # day, month (and a short year) that could swap
_PARTS = {"d": "day", "m": "month", "b": "month", "B": "month", "Y": "year", "y": "year"}
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def date_formats(declared: str | Sequence[str] | None) -> tuple[str, ...]:
    """A ``format`` setting as a tuple of formats: one, several, or none (ISO only)."""
    if declared is None:
        return ()
    return (declared,) if isinstance(declared, str) else tuple(declared)


def read_date(text: str, formats: Sequence[str] = ()) -> dt.date | None:
    """The date ``text`` holds, read as ISO first and then with each format in order; ``None`` if none fits.

    ISO comes first because stored cases, the service's form and called workflows pass dates that way;
    :func:`date_format_problems` refuses a format that would read an ISO text as another date.

    Example::

        read_date("03/04/2026", ["%d/%m/%Y"]) == dt.date(2026, 4, 3)
        read_date("2026-04-03", ["%d/%m/%Y"]) == dt.date(2026, 4, 3)
    """
    text = text.strip()
    for fmt in (None, *formats):
        value = _read_as(text, fmt)
        if value is not None:
            return value
    return None


def date_example(formats: Sequence[str]) -> str:
    """How dates in ``formats`` look, in words a caseworker reads: an example and the order of its parts.

    Example::

        date_example(["%d/%m/%Y"]) == "31/12/2026 (day/month/year)"
        date_example(["%d/%m/%Y", "%d.%m.%Y"]) == "31/12/2026 or 31.12.2026 (day/month/year)"
    """
    examples = [_EXAMPLE_DATE.strftime(fmt) for fmt in formats]
    orders = ["/".join(_PARTS[code] for code in _directives(fmt) if code in _PARTS) for fmt in formats]
    if len(set(orders)) == 1:
        return f"{' or '.join(dict.fromkeys(examples))} ({orders[0]})"
    return " or ".join(f"{example} ({order})" for example, order in zip(examples, orders))


def date_format_problems(formats: Sequence[str]) -> list[str]:
    """What is wrong with a list of date formats (empty when nothing is), checked when a workflow is loaded.

    A format must name a day, a month and a year, and read back what it writes. No text a format writes may
    be read as another date by what is tried before it: ISO (always first) or a format earlier in the list.

    Example::

        date_format_problems(["%d/%m/%Y", "%m/%d/%Y"]) == ["the formats '%d/%m/%Y' and '%m/%d/%Y' read "
            "04/03/2026 as different dates (4 March 2026 and 3 April 2026); keep only one of them"]
    """
    problems: list[str] = []
    for index, fmt in enumerate(formats):
        codes = _directives(fmt)
        twice = next((code for code in codes if codes.count(code) > 1), None)
        if twice:
            problems.append(f"the date format '{fmt}' uses %{twice} twice")
            continue
        missing = [part for part, have in (("day", {"d"}), ("month", {"m", "b", "B"}), ("year", {"Y", "y"}))
                   if not set(codes) & have]
        if missing:
            problems.append(f"the date format '{fmt}' has no {' and no '.join(missing)}; a date format needs a "
                            "day (%d), a month (%m, %b or %B) and a year (%Y or %y)")
            continue
        try:
            read_back = dt.datetime.strptime(_EXAMPLE_DATE.strftime(fmt), fmt).date()
        except (ValueError, re.error) as exc:  # strptime's own words: "'q' is a bad directive in format '%q'"
            problems.append(f"the date format '{fmt}' cannot be read ({exc})")
            continue
        if read_back != _EXAMPLE_DATE:
            problems.append(f"the date format '{fmt}' does not read back the dates it writes")
            continue
        confusion = _confusion(fmt, formats[:index])
        if confusion:
            problems.append(confusion)
    return problems


def _confusion(fmt: str, earlier: Sequence[str]) -> str | None:
    """How ``fmt`` clashes with what is tried before it: a text it writes that ISO or an earlier format
    reads first, as another date."""
    for date in _CONFUSABLE_DATES:
        text = date.strftime(fmt)
        for before in (None, *earlier):
            other = _read_as(text, before)
            if other is None:
                continue
            if other != date:
                which = "ISO dates and the format" if before is None else f"the formats '{before}' and"
                advice = "ISO dates are always read, so use another format" if before is None else "keep only one of them"
                return (f"{which} '{fmt}' read {text} as different dates ({_spoken(other)} and {_spoken(date)}); "
                        f"{advice}")
            break  # the first reader wins, and it reads the right date
    return None


def _read_as(text: str, fmt: str | None) -> dt.date | None:
    """``text`` read with one format (``None``: ISO), or ``None``."""
    try:
        return dt.date.fromisoformat(text) if fmt is None else dt.datetime.strptime(text, fmt).date()
    except (ValueError, re.error):
        return None


def _directives(fmt: str) -> list[str]:
    """The strftime codes of a format, in order (``%%`` is a literal percent sign, not a code)."""
    return re.findall(r"%(.)", fmt.replace("%%", ""))


def _spoken(date: dt.date) -> str:
    return f"{date.day} {_MONTHS[date.month - 1]} {date.year}"


# -- secret fields ----------------------------------------------------------------------------------------
FIELD_MASK = "••••••"
"""What a secret field's value is shown as (and what ``explain`` shows for a declared secret)."""

_SHORTEST_IN_TEXT = 3  # shorter values are masked as whole fields, never searched for inside free text


def secret_fields(fields: Mapping[str, InputField]) -> frozenset[str]:
    """The names of the fields marked ``secret: true``.

    Example::

        secret_fields({"pin": InputField(secret=True), "city": InputField()}) == frozenset({"pin"})
    """
    return frozenset(name for name, field in fields.items() if field.secret)


def mask_case(fields: Mapping[str, InputField], payload: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a case's payload (typed or JSON values) with each secret field's value shown as :data:`FIELD_MASK`.

    A secret field that is absent, ``None``, empty text or an empty list stays as it is: that it is empty
    is no secret, and a form can still say so. Fields the schema does not name are copied unchanged.

    Example::

        mask_case({"pin": InputField(secret=True)}, {"pin": "4711", "city": "Leeds"})
        == {"pin": "••••••", "city": "Leeds"}
    """
    secret = secret_fields(fields)
    return {name: FIELD_MASK if name in secret and not _empty(value) else value for name, value in payload.items()}


def secret_values(fields: Mapping[str, InputField], payload: Mapping[str, Any]) -> tuple[str, ...]:
    """The text forms of the secret fields' values in a payload, to mask them inside free text.

    A value's text form is what a template renders for it (``str``: a date as ``2026-03-05``, a decimal
    as ``12.50``); a list field gives its whole text form and each item's. Empty texts are left out,
    duplicates once, longest first (so that a value is masked before a shorter one inside it).

    Example::

        secret_values({"codes": InputField(type="list", secret=True)}, {"codes": ["AB12", "CD345"]})
        == ("['AB12', 'CD345']", "CD345", "AB12")
    """
    texts: set[str] = set()
    for name in secret_fields(fields):
        value = payload.get(name)
        if _empty(value):
            continue
        texts.add(str(value))
        if isinstance(value, (list, tuple)):
            texts.update(str(item) for item in value if not _empty(item))
    texts.discard("")
    return tuple(sorted(texts, key=lambda text: (-len(text), text)))


def mask_text(text: str, values: Iterable[str]) -> str:
    """``text`` with every occurrence of each value replaced by :data:`FIELD_MASK`, longest value first.

    Values shorter than 3 characters are not replaced: a PIN of ``42`` would turn every ``42`` of an
    unrelated message into the mask. Such values are masked only where a whole field is shown
    (:func:`mask_case`). One pass: a replaced part is not searched again.

    Example::

        mask_text("account 12345678 is closed", ["12345678"]) == "account •••••• is closed"
    """
    if not text:
        return text
    # Only the values present: most texts hold none, and then no pattern is built (a pattern per case would
    # churn the regular-expression cache, since every case has its own values).
    wanted = sorted({value for value in values if len(value) >= _SHORTEST_IN_TEXT and value in text},
                    key=len, reverse=True)
    if not wanted:
        return text
    if len(wanted) == 1:
        return text.replace(wanted[0], FIELD_MASK)
    # An alternation tries its branches in order at each position: longest first takes the longest match.
    return re.sub("|".join(re.escape(value) for value in wanted), FIELD_MASK, text)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, tuple)) and not value)
