"""The generated language reference: every field says what it means, in the model it belongs to, and its links
use GitHub's anchors (``tests/test_docs_links.py`` checks every link of the checked-in copy)."""

from __future__ import annotations

import inspect
import re

import pytest
from pydantic import BaseModel

from workflows import reference
from workflows.reference import _MODEL_FIELD_HELP, anchor, reference_markdown
from workflows.steps import ConditionArgs


def row(markdown: str, section: str, key: str) -> str:
    """The Meaning cell of field ``key`` in the section headed ``section``."""
    body = markdown.split(f"\n{section}\n", 1)[1].split("\n#", 1)[0]
    for line in body.splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)]  # an escaped \| is inside a cell
        if len(cells) == 6 and cells[1] == f"`{key}`":
            return cells[4]
    raise AssertionError(f"no field {key} under {section}")


@pytest.fixture(scope="module")
def markdown() -> str:
    return reference_markdown()


ENTRIES = sorted(_MODEL_FIELD_HELP, key=lambda entry: f"{entry[0].__name__}.{entry[1]}")


@pytest.mark.parametrize(("model", "key"), ENTRIES)
def test_each_model_field_entry_names_a_field_and_hides_no_description_the_model_declares(
        model: type[BaseModel], key: str) -> None:
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    assert key in fields, f"{model.__name__} has no field '{key}': remove the entry"
    own = fields[key].description
    inherited = {base.model_fields[name].description for base in model.__mro__[1:]
                 if isinstance(base, type) and issubclass(base, BaseModel) and base is not BaseModel
                 for name, info in base.model_fields.items() if (info.alias or name) == key}
    assert own is None or own in inherited, (
        f"{model.__name__}.{key} now describes itself ({own!r}): remove its entry from _MODEL_FIELD_HELP")


def test_the_label_locator_and_the_set_expression_say_what_they_are_in_their_own_model(markdown: str) -> None:
    label = row(markdown, "### `{label: …}`", "label")
    assert label == "The text of the field's `<label>` or `aria-label` (a template)."
    assert row(markdown, "### `select`", "label") == "The option's visible text (a template)."
    assert "stored" in row(markdown, "### `set`", "expr")
    assert "must be true" in row(markdown, "### `if`", "expr")


def test_conditions_say_whether_they_wait(markdown: str) -> None:
    said = inspect.cleandoc(ConditionArgs.__doc__ or "").replace("``", "`")
    assert "checked once" in said  # the condition's docstring answers "does it wait?"
    for verb in ("if", "assert"):
        section = markdown.split(f"\n### `{verb}`\n", 1)[1].split("\n### ", 1)[0]
        assert said in section and "the condition is false" in section


def test_the_session_and_the_lookup_have_sections_the_workflow_fields_link_to(markdown: str) -> None:
    session = row(markdown, "## The workflow file", "session")
    assert "see [Session](#the-session-of-a-sign-in-part-session)" in session
    assert "see [Lookup](#the-lookup-lookup)" in row(markdown, "## The workflow file", "lookup")
    assert "\n## The session of a sign-in part (`session`)\n" in markdown


def test_every_field_of_every_section_says_what_it_means(markdown: str) -> None:
    blank = [line for line in markdown.splitlines() if line.startswith("| `") and line.endswith("|  |")]
    assert blank == []


@pytest.mark.parametrize(("heading", "expected"), [
    ("`wait_for`", "wait_for"),
    ("`for_each`", "for_each"),
    ("The lookup (`lookup`)", "the-lookup-lookup"),
    ("Target systems (`systems.NAME`)", "target-systems-systemsname"),
])
def test_anchors_are_githubs_with_underscores_kept(heading: str, expected: str) -> None:
    assert anchor(heading) == expected


def test_the_verb_table_links_each_verb_to_its_section(markdown: str) -> None:
    assert "| [`wait_for`](#wait_for) |" in markdown and "| [`for_each`](#for_each) |" in markdown
    assert reference.INTRO.count("(custom-steps.md)") == 1
