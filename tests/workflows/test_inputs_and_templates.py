"""Case rows are typed by the input schema; templates render case values as data only."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import EXAMPLE
from workflows import CaseDataError, check_case, load_workflow, render
from workflows.secrets import SecretMissingError, SecretValues

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
