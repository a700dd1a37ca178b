"""Forms generated from a workflow's input schema, and form posts turned back into case rows.

Each input field becomes the GOV.UK component a caseworker expects: text inputs (with the length and
pattern as a hint), a date input of day, month and year, radios for booleans and short enums, a select
for long ones, a textarea for notes and lists. A posted form becomes the same row a CSV line would, so it
is checked by exactly the rules of a batch row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from workflows import InputField, Workflow, label_of

RADIOS_UP_TO = 5
LONG_TEXT = 200


@dataclass
class FormField:
    """One field as a template renders it."""

    name: str
    label: str
    hint: str | None
    kind: str  # text, number, textarea, date, radios, select
    required: bool
    value: Any = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    readonly: bool = False
    max_length: int | None = None


def _hint(spec: InputField) -> str | None:
    parts = [spec.description] if spec.description else []
    if spec.type == "list":
        parts.append("One item on each line")
    if spec.type == "date":
        parts.append("For example, 27 3 2026")
    if spec.max_length and spec.type == "string":
        parts.append(f"At most {spec.max_length} characters")
    if not spec.required:
        parts.append("Optional")
    return ". ".join(parts) or None


def _kind(spec: InputField) -> str:
    if spec.type == "date":
        return "date"
    if spec.type == "boolean":
        return "radios"
    if spec.type == "enum":
        return "radios" if len(spec.codes) <= RADIOS_UP_TO else "select"
    if spec.type in ("integer", "decimal"):
        return "number"
    if spec.type == "list" or (spec.max_length or 0) > LONG_TEXT:
        return "textarea"
    return "text"


def form_fields(workflow: Workflow, values: dict[str, Any] | None = None, errors: dict[str, str] | None = None, *,
                fixed_reference: bool = False) -> list[FormField]:
    """The form of ``workflow``'s input, filled with ``values`` (a case row) and the ``errors`` by field."""
    values, errors = values or {}, errors or {}
    out = []
    for name, spec in workflow.input.items():
        kind = _kind(spec)
        options: list[tuple[str, str]] = []
        if spec.type == "boolean":
            options = [("true", "Yes"), ("false", "No")]
        elif spec.type == "enum":
            options = [(code, spec.option_label(code)) for code in spec.codes]
        value = values.get(name, "")
        if value is None:
            value = ""
        if kind == "date":
            value = _date_parts(str(value))
        elif spec.type == "list" and isinstance(value, list):
            value = "\n".join(str(v) for v in value)
        elif spec.type == "boolean" and isinstance(value, bool):
            value = "true" if value else "false"
        out.append(FormField(name=name, label=spec.label_for(name), hint=_hint(spec), kind=kind, required=spec.required,
                             value=value, options=options, error=errors.get(name),
                             readonly=fixed_reference and name == workflow.reference_field,
                             max_length=spec.max_length))
    return out


def _date_parts(text: str) -> dict[str, str]:
    year, _, rest = text.partition("-")
    month, _, day = rest.partition("-")
    return {"day": day.lstrip("0"), "month": month.lstrip("0"), "year": year}


def row_from_form(workflow: Workflow, form: FormData) -> dict[str, str]:
    """A posted form as a case row (text values, as a CSV row would hold them)."""
    row: dict[str, str] = {}
    for name, spec in workflow.input.items():
        if spec.type == "date":
            day, month, year = (str(form.get(f"{name}-{part}", "")).strip() for part in ("day", "month", "year"))
            if not (day or month or year):
                row[name] = ""
            elif day.isdigit() and month.isdigit() and year.isdigit():
                row[name] = f"{int(year):04d}-{int(month):02d}-{int(day):02d}"
            else:
                row[name] = f"{year}-{month}-{day}"  # refused by the date rule, as any malformed date is
        elif spec.type == "list":
            lines = [line.strip() for line in str(form.get(name, "")).splitlines() if line.strip()]
            row[name] = spec.separator.join(lines)
        else:
            row[name] = str(form.get(name, ""))
    return row


def error_links(fields: list[FormField]) -> dict[str, str]:
    """Where the error summary's link for each field goes (the first input of a date or of radios)."""
    return {f.name: f"{f.name}-day" if f.kind == "date" else f.name for f in fields}


def readable_errors(workflow: Workflow, errors: dict[str, str]) -> dict[str, str]:
    """Errors as a form shows them: the sentences :func:`workflows.field_errors` gives (``Enter a postcode like
    SW1A 1AA``), each starting with a capital letter."""
    return {name: reason[:1].upper() + reason[1:] for name, reason in errors.items()}


def field_labels(workflow: Workflow) -> dict[str, str]:
    """What a caseworker reads for each field a rejected row can name: the input's labels, the reserved
    deadline column and the whole row."""
    return {"row": "Whole row", "_deadline": "Deadline",
            **{name: spec.label_for(name) for name, spec in workflow.input.items()}}
