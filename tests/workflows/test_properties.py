"""Property-based tests of the loader and templating: arbitrary input raises only the package's own errors,
and case data is never evaluated."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflows import CaseDataError, TemplateRenderError, WorkflowError, check_case, evaluate, parse_workflow, render
from workflows import ensure_models

DATA = Path(__file__).parent / "data"
BASE = (DATA / "base.yaml").read_text()
BASE_DATA = yaml.safe_load(BASE)
ensure_models()

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40),
                    st.dates(), st.decimals(allow_nan=False, places=3))
json_like = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
                         lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                         max_leaves=20)
template_bits = st.sampled_from(["{{", "}}", "{%", "%}", "{#", "#}", "7*7", "case.", "__class__", "config", "self",
                                 "lipsum", "range(9**9)", "'a'*99999", "|attr('x')", "x", " ", "\n", "'", '"'])
hostile_text = st.lists(template_bits, max_size=12).map("".join) | st.text(max_size=60)


def accepted_or_workflow_error(text: str) -> None:
    try:
        parse_workflow(text, str(DATA / "wf.yaml"))
    except WorkflowError as exc:
        assert str(exc)  # every problem renders as lines of text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_text_is_a_workflow_or_a_workflow_error(text: str) -> None:
    accepted_or_workflow_error(text)


@settings(max_examples=300, deadline=None)
@given(json_like)
def test_arbitrary_yaml_documents_are_a_workflow_or_a_workflow_error(document: Any) -> None:
    accepted_or_workflow_error(yaml.safe_dump(document))


def _replace_at(data: Any, path: list[int], value: Any) -> Any:
    """Replace one node of the base workflow's data (picked by a list of indices) with ``value``."""
    if not path or not isinstance(data, (dict, list)) or not data:
        return value
    keys = list(data) if isinstance(data, dict) else list(range(len(data)))
    key = keys[path[0] % len(keys)]
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[key] = _replace_at(copy[key], path[1:], value)  # type: ignore[index]
    return copy


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=6), json_like | hostile_text)
def test_any_one_node_of_a_valid_workflow_replaced_by_anything_is_a_workflow_or_a_workflow_error(
        path: list[int], value: Any) -> None:
    accepted_or_workflow_error(yaml.safe_dump(_replace_at(BASE_DATA, path, value), allow_unicode=True))


@settings(max_examples=300, deadline=None)
@given(hostile_text)
def test_a_hostile_template_in_a_workflow_is_refused_or_renders_without_escaping_the_sandbox(template: str) -> None:
    text = BASE.replace('"{{ case.holder | upper }}"', yaml.safe_dump(template, default_style='"').strip(), 1)
    try:
        loaded = parse_workflow(text, str(DATA / "wf.yaml"))
    except WorkflowError:
        return
    value = loaded.definition.steps[2].args.value  # type: ignore[attr-defined]
    try:
        render(value, {"case": {"holder": "x"}, "vars": {}, "output": {}, "secrets": {}, "env": {}})
    except TemplateRenderError:
        pass


@settings(max_examples=500, deadline=None)
@given(hostile_text)
def test_a_case_value_is_always_data_never_a_template(value: str) -> None:
    context = {"case": {"holder": value}, "vars": {}, "output": {}, "secrets": {}, "env": {}}
    assert render("{{ case.holder }}", context) == value
    assert render("[{{ case.holder | upper }}]", context) == f"[{value.upper()}]"
    assert evaluate("case.holder", context) == value


FILTER_TEMPLATES = [
    "{{ case.v | date('%d/%m/%Y') }}", "{{ case.v | day }}", "{{ case.v | month }}", "{{ case.v | year }}",
    "{{ case.v | add_days(30) }}", "{{ case.v | number(2, thousands='.', point=',') }}", "{{ case.v | pad(8) }}",
    "{{ case.v | digits }}", "{{ case.v | upper }}", "{{ case.v[:3] }}", "{{ case.v + 1 }}", "{{ case.v * 3 }}",
    "{{ case.v | length }}", "{{ case.v | join(',') }}", "{{ case.v.x }}", "{{ case.v | int }}", "{{ case.v | round }}",
]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(FILTER_TEMPLATES), st.one_of(scalars, json_like))
def test_filters_on_any_case_value_render_or_raise_a_template_render_error(template: str, value: Any) -> None:
    try:
        out = render(template, {"case": {"v": value}})
    except TemplateRenderError as exc:
        assert "{{" not in str(exc)  # the message names the cause, not the value
    else:
        assert isinstance(out, str)


FIELDS = parse_workflow(BASE, str(DATA / "wf.yaml")).definition.input


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(list(FIELDS) + ["other"]), st.one_of(scalars, json_like, hostile_text)))
def test_any_case_row_is_typed_or_rejected_with_a_case_data_error(row: dict[str, Any]) -> None:
    try:
        typed = check_case(FIELDS, row, 3)
    except CaseDataError as exc:
        assert exc.row == 3 and exc.field in FIELDS
    else:
        assert set(typed) == set(FIELDS)
        assert isinstance(typed["expires"], dt.date) and isinstance(typed["holder"], str)
        assert not isinstance(typed["holder"], Decimal)
