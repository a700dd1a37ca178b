"""Case fields marked ``secret: true``: found, masked as whole fields, masked inside free text, and never
shown by ``explain``."""

from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from workflows import (
    FIELD_MASK,
    InputField,
    case_fields_in,
    check_case,
    mask_case,
    mask_text,
    parse_workflow,
    secret_fields,
    secret_values,
)
from workflows.explain import explain

FIELDS = {
    "case_ref": InputField(),
    "account": InputField(secret=True),
    "pin": InputField(secret=True, required=False),
    "born": InputField(type="date", secret=True, required=False),
    "codes": InputField(type="list", secret=True, required=False),
    "city": InputField(required=False),
}


def test_secret_fields_are_the_fields_marked_secret() -> None:
    assert secret_fields(FIELDS) == frozenset({"account", "pin", "born", "codes"})
    assert secret_fields({"city": InputField()}) == frozenset()


def test_a_masked_case_shows_each_secret_value_as_the_mask_and_leaves_the_rest_and_the_original_alone() -> None:
    case = check_case(FIELDS, {"case_ref": "CASE-1", "account": "12345678", "pin": "42", "born": "1980-02-03",
                               "codes": "AB1;CD2", "city": "Leeds"}, 1)
    masked = mask_case(FIELDS, {**case, "unknown": "kept"})
    assert masked == {"case_ref": "CASE-1", "account": FIELD_MASK, "pin": FIELD_MASK, "born": FIELD_MASK,
                      "codes": FIELD_MASK, "city": "Leeds", "unknown": "kept"}
    assert case["account"] == "12345678" and case["codes"] == ["AB1", "CD2"]  # a copy: the ledger keeps the value


@pytest.mark.parametrize("empty", [None, "", []])
def test_an_empty_secret_field_stays_empty_when_masked(empty: object) -> None:
    assert mask_case(FIELDS, {"pin": empty, "account": "x"}) == {"pin": empty, "account": FIELD_MASK}


def test_secret_values_are_the_text_forms_of_the_secret_values_with_list_items_longest_first_once() -> None:
    case = {"case_ref": "CASE-1", "account": "12345678", "pin": "AB1", "born": dt.date(1980, 2, 3),
            "codes": ["AB1", "CD2345"], "city": "Leeds-on-Sea-and-more"}
    assert secret_values(FIELDS, case) == ("['AB1', 'CD2345']", "1980-02-03", "12345678", "CD2345", "AB1")
    assert secret_values(FIELDS, {"account": "", "pin": None, "codes": []}) == ()
    amount = {"amount": InputField(type="decimal", secret=True)}
    assert secret_values(amount, {"amount": Decimal("12.50")}) == ("12.50",)


def test_mask_text_replaces_every_occurrence_and_the_longest_value_first() -> None:
    text = "account 12345678 (short form 1234) refused; 12345678 again"
    masked = mask_text(text, ["1234", "12345678"])
    assert masked == f"account {FIELD_MASK} (short form {FIELD_MASK}) refused; {FIELD_MASK} again"


def test_mask_text_takes_values_literally_and_in_one_pass() -> None:
    assert mask_text("a.b axb", ["a.b"]) == f"{FIELD_MASK} axb"
    assert mask_text("x•••y", ["•••", "x••"]) == f"{FIELD_MASK}•y"  # what it put in is not searched again


def test_values_under_three_characters_are_not_masked_inside_free_text() -> None:
    assert mask_text("PIN 42 at 42 Elm Street", ["42", "", "ab"]) == "PIN 42 at 42 Elm Street"
    assert mask_text("PIN 427", ["427"]) == f"PIN {FIELD_MASK}"
    assert mask_text("", ["abc"]) == "" and mask_text("abc", []) == "abc"


def test_case_fields_in_lists_the_case_fields_a_template_names_by_attribute_or_item_once() -> None:
    template = "{{ case.city | upper }} {{ case['postcode'] }} {{ case.city }} {{ secrets.key }} {{ vars.case }}"
    assert list(case_fields_in(template)) == ["city", "postcode"]
    assert list(case_fields_in("{% if case.vip %}{{ case.name[:3] }}{% endif %}")) == ["vip", "name"]
    assert list(case_fields_in("{{ case[vars.which] }}")) == []  # only the run can tell
    assert list(case_fields_in("case.city")) == []  # no braces: plain text, not a template


WORKFLOW = textwrap.dedent("""\
    name: secret-explain
    version: 1
    systems: {portal: {}}
    secrets: [portal_password]
    input:
      case_ref: {type: string}
      account: {type: string, secret: true}
      pin: {type: string, secret: true}
      born: {type: date, secret: true}
      region: {type: enum, values: [North, South], secret: true}
      city: {type: string}
    at_most_once: true
    steps:
      - call: {workflow: part.yaml, with: {user: "{{ case.city }}", passcode: "{{ case.city }}-7"}}
      - goto: /accounts/{{ case.account }}
      - fill: {locator: {label: PIN}, value: "{{ case.pin }}"}
      - fill: {locator: {label: Born}, value: "{{ case.born | date('%d.%m.%Y') }}"}
      - select: {locator: {label: Region}, label: "{{ case.region }}"}
      - click: {role: button, name: "Account {{ case['account'] }}"}
      - set: {to: vars.acct, expr: case.account}
      - fill: {locator: {label: Note}, value: "copied {{ vars.acct }} for {{ case.city }}"}
      - fill: {locator: {label: Password}, value: "{{ secrets.portal_password }}"}
      - fail: {message: "stopped: {{ case.city }} has account {{ case.account }}", code: probe}
""")

PART = textwrap.dedent("""\
    name: part
    version: 1
    part: true
    systems: {portal: {}}
    input:
      user: {type: string}
      passcode: {type: string, secret: true}
    steps:
      - fill: {locator: "#user", value: "{{ case.user }}"}
      - fill: {locator: "#passcode", value: "{{ case.passcode }}"}
      - fill: {locator: "#note", value: "the code is {{ vars.none | default(case.passcode) }}!"}
""")


def test_explain_never_prints_a_secret_case_value_however_it_reaches_a_step(tmp_path: Path) -> None:
    (tmp_path / "part.yaml").write_text(PART)
    loaded = parse_workflow(WORKFLOW, str(tmp_path / "secret.yaml"))
    case = check_case(loaded.definition.input, {"case_ref": "CASE-1", "account": "ACC-99871", "pin": "42",
                                                "born": "1980-02-03", "region": "South", "city": "Leeds"}, 1)
    lines = explain(loaded, case)
    text = "\n".join(lines)
    for value in ("ACC-99871", "99871", "42", "1980", "03.02", "South", "Leeds-7"):
        assert value not in text, f"{value!r} shown in:\n{text}"
    mask = repr(FIELD_MASK)
    assert f"call part.yaml (user: Leeds, passcode: {FIELD_MASK})" in text  # a secret field of the called part
    assert f"fill #passcode ← {mask}" in text
    assert f"fill #note ← {mask}" in text  # names the part's secret field, through a filter
    assert f"goto /accounts/{FIELD_MASK}" not in text and f"goto {FIELD_MASK}" in text  # the whole value
    assert f"fill {{label='PIN'}} ← {mask}" in text  # two characters: masked all the same
    assert f"fill {{label='Born'}} ← {mask}" in text  # reformatted by a filter: masked all the same
    assert f"select label {mask} in {{label='Region'}}" in text
    assert f"click {{role='button', name={mask}}}" in text
    assert f"set vars.acct = {mask}" in text
    assert f"fill {{label='Note'}} ← 'copied {FIELD_MASK} for Leeds'" in text  # through vars: masked in the text
    assert f"fill {{label='Password'}} ← {mask}" in text  # a declared secret: the same mask
    assert f"fail (business, probe): {mask}" in text
