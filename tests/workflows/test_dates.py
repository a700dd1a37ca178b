"""Dates from spreadsheets: ``format`` on date fields, ``parse_date``, and date filters checked by ``validate``.

The mistakes table changes one thing in ``tests/tutorial_site/suspend_permit.yaml`` (a valid workflow whose
cases write dates as dd/mm/yyyy) and asserts the exact problems, as ``test_loader.py`` does.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.conftest import ROOT
from workflows import CaseDataError, InputField, TemplateRenderError, WorkflowFileError, check_case, evaluate
from workflows import parse_workflow, render, to_json_value

SITE = ROOT / "tests" / "tutorial_site"
BASE = (SITE / "suspend_permit.yaml").read_text()
DAY_FIRST = InputField(type="date", format="%d/%m/%Y")


def problems_of(text: str) -> list[str]:
    with pytest.raises(WorkflowFileError) as caught:
        parse_workflow(text, str(SITE / "wf.yaml"))
    return [str(p).replace(f"{SITE}/", "") for p in caught.value.problems]


# -- input: format ---------------------------------------------------------------------------------------
def test_a_day_first_date_is_read_as_day_first() -> None:
    assert DAY_FIRST.coerce("03/04/2026") == dt.date(2026, 4, 3)
    assert DAY_FIRST.coerce(" 25/12/2026 ") == dt.date(2026, 12, 25)


def test_an_ambiguous_date_is_read_by_the_declared_format_and_no_other() -> None:
    assert DAY_FIRST.coerce("01/02/2026") == dt.date(2026, 2, 1)
    assert InputField(type="date", format="%m/%d/%Y").coerce("01/02/2026") == dt.date(2026, 1, 2)


def test_a_list_of_formats_is_tried_in_order() -> None:
    field = InputField(type="date", format=["%d/%m/%Y", "%d.%m.%Y", "%d %B %Y"])
    assert [field.coerce(text) for text in ("03/04/2026", "3.4.2026", "3 April 2026")] == [dt.date(2026, 4, 3)] * 3


def test_an_iso_date_is_read_as_well_so_stored_cases_and_the_form_still_work() -> None:
    fields = {"when": DAY_FIRST}
    stored = {name: to_json_value(value) for name, value in check_case(fields, {"when": "03/04/2026"}, 1).items()}
    assert stored == {"when": "2026-04-03"}
    assert check_case(fields, stored, 0) == {"when": dt.date(2026, 4, 3)}  # as a worker reads the stored payload


@pytest.mark.parametrize(("field", "value", "reason"), [
    (DAY_FIRST, "04/13/2026", "must be a date like 31/12/2026 (day/month/year)"),
    (DAY_FIRST, "3 April 2026", "must be a date like 31/12/2026 (day/month/year)"),
    (InputField(type="date", format=["%d/%m/%Y", "%d.%m.%Y"]), "2026/04/03",
     "must be a date like 31/12/2026 or 31.12.2026 (day/month/year)"),
    (InputField(type="date", format=["%d/%m/%Y", "%Y.%m.%d"]), "x",
     "must be a date like 31/12/2026 (day/month/year) or 2026.12.31 (year/month/day)"),
    (InputField(type="date", format="%m/%d/%y"), "31/12/26", "must be a date like 12/31/26 (month/day/year)"),
    (InputField(type="date"), "03/04/2026", "must be a date as YYYY-MM-DD"),
    (InputField(type="list", item_type="date", format="%d/%m/%Y"), "03/04/2026; 2026/04/04",
     "item 2 must be a date like 31/12/2026 (day/month/year)"),
])
def test_a_date_that_matches_no_format_is_refused_with_an_example_of_the_format_and_not_the_value(
        field: InputField, value: str, reason: str) -> None:
    with pytest.raises(CaseDataError) as caught:
        check_case({"when": field}, {"when": value}, 3)
    assert str(caught.value) == f"row 3: when: {reason}"


def test_a_list_of_dates_reads_each_item_with_the_format() -> None:
    field = InputField(type="list", item_type="date", format="%d/%m/%Y")
    assert field.coerce("03/04/2026; 2026-05-06") == [dt.date(2026, 4, 3), dt.date(2026, 5, 6)]


# -- filters ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("template", "value", "expected"), [
    ("{{ case.v | date('%m/%d/%Y') }}", dt.date(2026, 4, 3), "04/03/2026"),
    ("{{ case.v | parse_date('%m/%d/%Y') | date('%d/%m/%Y') }}", "04/03/2026", "03/04/2026"),
    ("{{ case.v | parse_date('%m/%d/%Y') }}", "04/03/2026", "2026-04-03"),
    ("{{ case.v | parse_date('%d/%m/%Y', '%d.%m.%Y') | add_days(1) }}", "3.4.2026", "2026-04-04"),
    ("{{ case.v | parse_date('%d %B %Y') | month }}", "3 April 2026", "4"),
    ("{{ case.v | parse_date('%d/%m/%Y') | date('%Y') }}", dt.date(2026, 4, 3), "2026"),  # a date stays a date
    ("{{ case.v | parse_date('%d/%m/%Y') }}", "2026-04-03", "2026-04-03"),  # ISO is read too
    ("{{ case.v | parse_date('%Y%m%d') | date('%d/%m/%Y') }}", 20260403, "03/04/2026"),
])
def test_parse_date_reads_text_in_a_given_format_for_the_date_filters(template: str, value: object, expected: str) -> None:
    assert render(template, {"case": {"v": value}}) == expected


def test_parse_date_gives_a_date_to_an_expression() -> None:
    assert evaluate("vars.found | parse_date('%m/%d/%Y')", {"vars": {"found": "04/03/2026"}}) == dt.date(2026, 4, 3)


@pytest.mark.parametrize(("template", "message"), [
    ("{{ case.v | parse_date('%m/%d/%Y') }}", "parse_date needs a date like 12/31/2026 (month/day/year)"),
    ("{{ case.v | parse_date }}", "parse_date needs the format its text is written in, as in parse_date('%d/%m/%Y')"),
    ("{{ case.v | parse_date('%m/%Y') }}", "parse_date: the date format '%m/%Y' has no day; a date format needs a day "
                                           "(%d), a month (%m, %b or %B) and a year (%Y or %y)"),
    ("{{ case.v | date }}", "the date filters need a date such as 2026-03-01; read a date written another way with "
                            "parse_date first"),
])
def test_a_date_filter_given_text_it_cannot_read_is_a_render_error_without_the_value(template: str, message: str) -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render(template, {"case": {"v": "13/03/2026"}})
    assert str(caught.value) == message


# -- validate --------------------------------------------------------------------------------------------
FILLED = "value: \"{{ case.suspend_from | date('%d/%m/%Y') }}\""
REMEDY = "declare it 'type: date' (with 'format: …' if its dates are not ISO) or read it with parse_date('…')"

MISTAKES = [
    ('suspend_from: {type: date, format: "%d/%m/%Y"}',
     'suspend_from: {type: string}',
     [f"wf.yaml:26:51: steps[6].fill.value: the date filter needs a date, and case.suspend_from is a string field; {REMEDY}"]),
    ('suspend_from: {type: date, format: "%d/%m/%Y"}',
     'suspend_from: {type: integer}',
     [f"wf.yaml:26:51: steps[6].fill.value: the date filter needs a date, and case.suspend_from is an integer field; {REMEDY}"]),
    (FILLED,
     'value: "{{ case.permit | add_days(1) }}"',
     [f"wf.yaml:26:51: steps[6].fill.value: the add_days filter needs a date, and case.permit is a string field; {REMEDY}"]),
    (FILLED,
     'value: "{{ case[\'permit\'] | day }}"',
     [f"wf.yaml:26:51: steps[6].fill.value: the day filter needs a date, and case.permit is a string field; {REMEDY}"]),
    ('  - wait_for: {text: Suspension recorded}',
     '  - set: {expr: "case.permit | year", to: vars.year}\n  - wait_for: {text: Suspension recorded}',
     [f"wf.yaml:28:17: steps[8].set.expr: the year filter needs a date, and case.permit is a string field; {REMEDY}"]),
    (FILLED,
     'value: "{{ case.suspend_from | date(\'dd/mm/yyyy\') }}"',
     ["wf.yaml:26:51: steps[6].fill.value: the date format needs strftime codes such as %d/%m/%Y"]),
    (FILLED,
     'value: "{{ case.permit | parse_date(\'%d/%Y\') }}"',
     ["wf.yaml:26:51: steps[6].fill.value: parse_date: the date format '%d/%Y' has no month; a date format needs a "
      "day (%d), a month (%m, %b or %B) and a year (%Y or %y)"]),
    (FILLED,
     'value: "{{ case.permit | parse_date | date }}"',
     ["wf.yaml:26:51: steps[6].fill.value: parse_date needs the format its text is written in, as in "
      "parse_date('%d/%m/%Y')"]),
    ('format: "%d/%m/%Y"',
     'format: "%d/%m"',
     ["wf.yaml:15:38: input.suspend_from.format: the date format '%d/%m' has no year; a date format needs a day (%d), "
      "a month (%m, %b or %B) and a year (%Y or %y)"]),
    ('format: "%d/%m/%Y"',
     'format: "%d/%m/%Y %Q"',
     ["wf.yaml:15:38: input.suspend_from.format: the date format '%d/%m/%Y %Q' cannot be read ('Q' is a bad directive "
      "in format '%d/%m/%Y %Q')"]),
    ('format: "%d/%m/%Y"',
     'format: "%d/%m/%d"',
     ["wf.yaml:15:38: input.suspend_from.format: the date format '%d/%m/%d' uses %d twice"]),
    ('format: "%d/%m/%Y"',
     'format: ["%d/%m/%Y", "%m/%d/%Y"]',
     ["wf.yaml:15:38: input.suspend_from.format: the formats '%d/%m/%Y' and '%m/%d/%Y' read 04/03/2026 as different "
      "dates (4 March 2026 and 3 April 2026); keep only one of them"]),
    ('format: "%d/%m/%Y"',
     'format: "%Y-%d-%m"',
     ["wf.yaml:15:38: input.suspend_from.format: ISO dates and the format '%Y-%d-%m' read 2026-03-04 as different "
      "dates (4 March 2026 and 3 April 2026); ISO dates are always read, so use another format"]),
    ('format: "%d/%m/%Y"',
     'format: []',
     ["wf.yaml:15:38: input.suspend_from.format: give a date format such as %d/%m/%Y, or leave 'format' out for "
      "ISO dates"]),
    ('permit: {type: string, pattern: "^P-[0-9]{4}$"}',
     'permit: {type: string, pattern: "^P-[0-9]{4}$", format: "%d/%m/%Y"}',
     ["wf.yaml:14:11: input.permit: 'format' is only for date fields (and lists of dates)"]),
]


def test_the_dates_workflow_is_valid() -> None:
    assert parse_workflow(BASE, str(SITE / "wf.yaml")).definition.input["suspend_from"].format == "%d/%m/%Y"


@pytest.mark.parametrize(("old", "new", "expected"), MISTAKES, ids=[f"mistake-{i:02d}" for i in range(len(MISTAKES))])
def test_a_date_mistake_is_reported_with_its_exact_line_column_path_and_message(
        old: str, new: str, expected: list[str]) -> None:
    assert old in BASE
    assert problems_of(BASE.replace(old, new, 1)) == expected


@pytest.mark.parametrize("template", [
    "{{ vars.found | date('%d/%m/%Y') }}",  # vars and output are known only at run time
    "{{ output.when | day }}",
    "{{ case.permit | parse_date('%d/%m/%Y') | date('%d/%m/%Y') }}",
    "{{ case.suspend_from | parse_date('%m/%d/%Y') | date }}",  # a date field stays the date it is
    "{{ case.permit | upper }}",
])
def test_what_validate_cannot_know_or_what_is_right_passes(template: str) -> None:
    parse_workflow(BASE.replace(FILLED, f'value: "{template}"', 1), str(SITE / "wf.yaml"))


def test_a_list_of_dates_may_have_a_format_and_a_list_of_text_may_not() -> None:
    assert InputField(type="list", item_type="date", format="%d/%m/%Y").format == "%d/%m/%Y"
    with pytest.raises(ValueError, match="'format' is only for date fields"):
        InputField(type="list", format="%d/%m/%Y")
