"""The input schema of a workflow: typed case fields, and checking case rows against them.

A batch is checked row by row at hand-off; a bad row is rejected with its row number, field and reason
and never reaches a bot. Rows come in as text (CSV) or JSON values; both are turned into typed values.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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

    Example::

        postcode: {type: string, required: true, pattern: "^[A-Z]{1,2}[0-9][0-9A-Z]? [0-9][A-Z]{2}$"}
        contact: {type: enum, values: [email, post, phone]}
        account_number: {type: string, pattern: "^[0-9]{8}$", secret: true}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: FieldType = "string"
    required: bool = True
    description: str | None = None
    pattern: str | None = Field(default=None, description="A regular expression the whole value must match.")
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1, le=100_000)
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    values: list[str] | None = Field(default=None, description="The allowed values of an enum field.")
    secret: bool = Field(default=False, description=(
        "Show the value as •••••• wherever case data is shown; the ledger keeps it for the bot."))
    item_type: ItemType = Field(default="string", description="For a list field: the type of each item.")
    separator: str = Field(default=";", min_length=1, max_length=3,
                           description="For a list field in a CSV file: what separates the items.")
    max_items: int = Field(default=100, ge=1, le=10_000, description="For a list field: the most items a case may have.")

    @model_validator(mode="after")
    def _consistent(self) -> "InputField":
        if self.type == "enum" and not self.values:
            raise ValueError("an enum field needs 'values'")
        if self.type == "list" and self.item_type == "enum" and not self.values:
            raise ValueError("a list of enum items needs 'values'")
        if self.type == "enum" and not self.values:
            raise ValueError("an enum field needs 'values'")
        if self.values is not None and not (self.type == "enum" or self.item_type == "enum"):
            raise ValueError("'values' is only for enum fields")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"'pattern' is not a valid regular expression ({exc})") from None
        return self

    def coerce(self, raw: Any) -> Any:
        """Turn one raw value into the field's type; raise ``ValueError`` with the rule broken.

        The message never repeats the value: rejected rows may hold personal data.
        """
        if isinstance(raw, str):
            raw = raw.strip()
        if raw is None or raw == "":
            if self.required:
                raise ValueError("is required")
            return None
        value = _CONVERTERS[self.type](self, raw)
        if isinstance(value, str):
            if self.min_length is not None and len(value) < self.min_length:
                raise ValueError(f"must be at least {self.min_length} characters")
            if self.max_length is not None and len(value) > self.max_length:
                raise ValueError(f"must be at most {self.max_length} characters")
            if self.pattern is not None and not re.fullmatch(self.pattern, value):
                raise ValueError(f"must match the pattern {self.pattern}")
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                raise ValueError(f"must be at least {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise ValueError(f"must be at most {self.maximum}")
        return value


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
    if isinstance(raw, str):
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            pass
    raise ValueError("must be a date as YYYY-MM-DD")


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
    if text not in (field.values or []):
        raise ValueError(f"must be one of {', '.join(field.values or [])}")
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
        CaseDataError: for the first field that breaks its rule, with the row number and the rule.
    """
    typed: dict[str, Any] = {}
    for name, field in fields.items():
        try:
            typed[name] = field.coerce(row.get(name))
        except ValueError as exc:
            raise CaseDataError(row_number, name, str(exc)) from None
    return typed


def field_errors(fields: dict[str, InputField], row: dict[str, Any]) -> dict[str, str]:
    """Every field of ``row`` that breaks its rule, with the rule (the same rules as :func:`check_case`,
    all at once: a form shows each error beside its field)."""
    errors: dict[str, str] = {}
    for name, field in fields.items():
        try:
            field.coerce(row.get(name))
        except ValueError as exc:
            errors[name] = str(exc)
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
