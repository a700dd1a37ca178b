"""The loader turns every mistake into a located, one-line problem."""

from __future__ import annotations

import pytest

from tests.conftest import EXAMPLE
from workflows import WorkflowFileError, load_workflow, parse_workflow

SOURCE = EXAMPLE.read_text()


def problems_of(text: str) -> list[str]:
    with pytest.raises(WorkflowFileError) as caught:
        parse_workflow(text, "wf.yaml")
    return [str(p) for p in caught.value.problems]


def test_the_example_workflow_loads_with_its_steps_and_lookup() -> None:
    loaded = load_workflow(EXAMPLE)
    assert loaded.definition.name == "change-of-address"
    assert loaded.definition.has_submit
    assert loaded.definition.lookup
    assert len(loaded.digest) == 16


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('- fill: {locator: "#city"', '- fil: {locator: "#city"',
         "wf.yaml:39:5: steps[10]: unknown step 'fil'; did you mean 'fill'?"),
        ('value: "{{ case.city }}"', 'valu: "{{ case.city }}"',
         "wf.yaml:39:30: steps[10].fill.valu: unknown field 'valu'; did you mean 'value'?"),
        ("case.postcode }}", "case.postcod }}",
         "wf.yaml:40:41: steps[11].fill.value: the template uses case.postcod, but the input schema has no field 'postcod'"),
        ("max_attempts: 3", "max_attempts: three",
         "wf.yaml:26:15: max_attempts: input should be a valid integer, unable to parse string as an integer"),
        ("version: 1", "version: 1\nversion: 2", "wf.yaml:4:1: version: duplicate key 'version' (it already appears above)"),
        ("{{ case.city }}", "{{ case.__class__ }}",
         "wf.yaml:39:37: steps[10].fill.value: access to '__class__' is not allowed in templates (names starting with _ are private)"),
        ('select: {locator: "#country", value: "{{ case.country }}"}', 'select: {locator: "#country"}',
         "wf.yaml:41:13: steps[12].select: give exactly one of 'value' or 'label'"),
        ("postcode:       {type: string,", "postcode:       {typo: string,",
         "wf.yaml:20:20: input.postcode.typo: unknown field 'typo'; did you mean 'type'?"),
        ("lookup:", "lookupp:", "wf.yaml:51:1: lookupp: unknown field 'lookupp'; did you mean 'lookup'?"),
    ],
)
def test_a_mistake_is_reported_with_line_column_path_and_hint(old: str, new: str, expected: str) -> None:
    assert old in SOURCE
    assert expected in problems_of(SOURCE.replace(old, new))


def test_malformed_yaml_names_the_line() -> None:
    assert problems_of("name: [1\n") == ["wf.yaml:2:1: malformed YAML: expected ',' or ']', but got '<stream end>'"]


def test_anchors_and_aliases_are_refused_so_a_yaml_bomb_cannot_expand() -> None:
    bomb = "a: &a [x, x]\nb: [*a, *a]\n"
    assert "anchors and aliases are not allowed" in problems_of(bomb)[0]


def test_a_python_tag_is_refused() -> None:
    assert "is not allowed" in problems_of("name: !!python/object/apply:os.system [ls]\n")[0]


def test_a_submitting_workflow_needs_a_lookup_or_at_most_once() -> None:
    text = SOURCE.split("\n# Run before any retry")[0]
    assert any("needs a 'lookup' block or 'at_most_once: true'" in p for p in problems_of(text))
    parse_workflow(text + "\nat_most_once: true\n", "wf.yaml")


def test_a_missing_file_is_one_problem_not_an_exception(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WorkflowFileError) as caught:
        load_workflow(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}:0:0: no such workflow file"
