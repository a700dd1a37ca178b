"""Case rows are typed by the input schema; templates render case values as data only."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import EXAMPLE
from workflows import CaseDataError, EnvMissingError, EnvValues, InputField, TemplateRenderError, check_case, evaluate, load_workflow, render
from workflows import SecretMissingError, SecretValues

FIELDS = load_workflow(EXAMPLE).definition.input
GOOD = {"case_ref": "CASE-000001", "address_line1": "1 High Street", "city": "Leeds", "postcode": "LS1 4AB",
        "country": "GB-ENG", "contact_method": "email", "effective_date": "2026-12-01"}


def test_a_good_row_is_typed() -> None:
    typed = check_case(FIELDS, GOOD, 1)
    assert typed["effective_date"] == dt.date(2026, 12, 1)
    assert typed["address_line2"] is None


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("case_ref", "CASE-1", "must match the pattern ^CASE-[0-9]{6}$"),
    ("country", "FR", "must be one of GB-ENG, GB-SCT, GB-WLS, GB-NIR"),
    ("effective_date", "01/12/2026", "must be a date as YYYY-MM-DD"),
    ("city", "", "is required"),
])
def test_a_bad_row_names_row_field_and_rule_but_not_the_value(field: str, value: str, reason: str) -> None:
    with pytest.raises(CaseDataError) as caught:
        check_case(FIELDS, {**GOOD, field: value}, 7)
    assert str(caught.value) == f"row 7: {field}: {reason}"


def test_a_case_value_that_looks_like_a_template_is_rendered_as_plain_data() -> None:
    case = {"city": "{{ 7*7 }} {% for x in [] %}"}
    assert render("{{ case.city }}", {"case": case}) == "{{ 7*7 }} {% for x in [] %}"


def test_secrets_resolve_from_the_environment_and_are_reported_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setenv("AUTOCLERK_SECRET_API_KEY", "s3cr3t-value")
    secrets = SecretValues(on_read=seen.append)
    assert render("{{ secrets.api_key }}", {"secrets": secrets}) == "s3cr3t-value"
    assert seen == ["s3cr3t-value"]
    assert "s3cr3t" not in repr(secrets)
    with pytest.raises(SecretMissingError, match="AUTOCLERK_SECRET_NOPE"):
        secrets["nope"]


@pytest.mark.parametrize(("template", "value", "expected"), [
    ("{{ case.v | date }}", "2026-03-05", "05/03/2026"),
    ("{{ case.v | date('%Y%m%d') }}", dt.date(2026, 3, 5), "20260305"),
    ("{{ case.v | day }}.{{ case.v | month }}.{{ case.v | year }}", "2026-03-05", "5.3.2026"),
    ("{{ case.v | add_days(30) }}", "2026-03-05", "2026-04-04"),
    ("{{ case.v | number }}", "1234.5", "1234.50"),
    ("{{ case.v | number(2, thousands='.', point=',') }}", "1234567.891", "1.234.567,89"),
    ("{{ case.v | number(0, thousands=',') }}", 1234567, "1,234,567"),
    ("{{ case.v | pad(6) }}", 42, "000042"),
    ("{{ case.v | pad(5, ' ', 'right') }}|", "ab", "ab   |"),
    ("{{ case.v | digits }}", "+44 (0)20 7946-0000", "4402079460000"),
    ("{{ case.v | upper }}", "leeds", "LEEDS"),
    ("{{ case.v[:4] }}", "Leeds Road", "Leed"),
    ("{{ case.v | truncate(8, true, '', 0) }}", "Leeds Road", "Leeds Ro"),
])
def test_filters_give_the_formats_legacy_forms_want(template: str, value: object, expected: str) -> None:
    assert render(template, {"case": {"v": value}}) == expected


@pytest.mark.parametrize("template", ["{{ case.v | date }}", "{{ case.v | number }}", "{{ case.v + 1 }}",
                                      "{{ 'x' * 1000000 }}", "{{ 'x'.ljust(10**9) }}", "{{ case.v | pad(3, 'ab') }}"])
def test_a_filter_given_the_wrong_kind_of_value_is_a_template_render_error(template: str) -> None:
    with pytest.raises(TemplateRenderError):
        render(template, {"case": {"v": "not a date or number"}})


def test_a_list_field_takes_a_json_list_or_separated_text_and_types_each_item() -> None:
    field = InputField(type="list", item_type="integer", max_items=3)
    assert field.coerce("1; 2;3") == [1, 2, 3]
    assert field.coerce([4, "5"]) == [4, 5]
    with pytest.raises(ValueError, match="item 2 must be a whole number"):
        field.coerce("1;x")
    with pytest.raises(ValueError, match="at most 3 items"):
        field.coerce([1, 2, 3, 4])


def test_env_values_come_from_the_environment_or_their_default(monkeypatch: pytest.MonkeyPatch) -> None:
    env = EnvValues({"office": "LEEDS", "region": None})
    assert render("{{ env.office }}", {"env": env}) == "LEEDS"
    monkeypatch.setenv("AUTOCLERK_ENV_OFFICE", "York")
    assert render("{{ env.office }}", {"env": env}) == "York"
    with pytest.raises(EnvMissingError, match="AUTOCLERK_ENV_REGION"):
        render("{{ env.region }}", {"env": env})


def test_an_expression_keeps_its_type() -> None:
    context = {"case": {"topics": ["a", "b"], "amount": 7}, "vars": {}}
    assert evaluate("case.topics", context) == ["a", "b"]
    assert evaluate("case.amount > 5", context) is True
    with pytest.raises(TemplateRenderError):
        evaluate("case.missing", context)
