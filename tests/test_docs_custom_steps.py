"""``docs/custom-steps.md`` holds a whole package that adds a verb; this builds it from the page's code blocks.

A code block captioned with a path alone (```` `ourteam-steps/pyproject.toml`: ````) is a file of the
example; the package is made importable the way an installed one is: its folder on ``PYTHONPATH`` with a
``*.dist-info/entry_points.txt`` made from the page's ``pyproject.toml``, which is what
``importlib.metadata.entry_points`` reads. Then the CLI runs as a subprocess (the step registry is
completed once per process) and every output the page shows is compared with what the commands print.
``tests/integration/test_custom_steps_doc.py`` runs the page's workflow in Chromium.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, autoclerk
from workflows.steps import ENTRY_POINT_GROUP

DOC = ROOT / "docs" / "custom-steps.md"
PACKAGE = "ourteam-steps/"
WORKFLOW = "find-holder.yaml"


@dataclass(frozen=True)
class Block:
    caption: str
    """The paragraph of text just before the block, on one line."""
    body: str


def blocks() -> list[Block]:
    """The fenced code blocks of the page, each with the paragraph before it."""
    found: list[Block] = []
    caption, paragraph = "", list[str]()
    body: list[str] | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if body is not None:
            if line.startswith("```"):
                found.append(Block(caption, "\n".join(body) + "\n"))
                body, caption = None, ""
            else:
                body.append(line)
        elif line.startswith("```"):
            body = []
            caption = " ".join(paragraph) or caption
            paragraph = []
        elif line.strip():
            paragraph.append(line.strip())
        elif paragraph:
            caption, paragraph = " ".join(paragraph), []
    return found


def files() -> dict[str, str]:
    """The example's files: each block captioned ``` `PATH`: ```, by path."""
    return {match.group(1): block.body for block in blocks() if (match := re.fullmatch(r"`([^`\s]+)`:", block.caption))}


def block_after(caption: str) -> str:
    """The first block whose caption contains ``caption``."""
    for block in blocks():
        if caption in block.caption:
            return block.body
    raise AssertionError(f"docs/custom-steps.md has no code block after a line with {caption!r}")


def install_example(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The page's package, importable as if installed, and a work folder holding the page's workflow and the
    demo's ``sign_in.yaml``. Returns the work folder and the environment that makes the package visible."""
    example = files()
    pyproject = tomllib.loads(example[PACKAGE + "pyproject.toml"])
    site = tmp_path / "site"
    for path, text in example.items():
        if path.startswith(PACKAGE) and path.endswith(".py"):
            target = site / path.removeprefix(PACKAGE)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    project = pyproject["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = [f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in points.items())
             for group, points in project["entry-points"].items()]
    (info / "entry_points.txt").write_text("\n".join(lines))
    work = tmp_path / "work"
    work.mkdir()
    (work / WORKFLOW).write_text(example[WORKFLOW])
    shutil.copy(ROOT / "workflows" / "examples" / "sign_in.yaml", work / "sign_in.yaml")
    return work, {"PYTHONPATH": str(site)}


def shown(caption: str) -> tuple[list[str], list[str]]:
    """A block showing a command and its output (``$ command`` then the lines it prints): both."""
    command, *output = block_after(caption).splitlines()
    assert command.startswith("$ autoclerk "), command
    return shlex.split(command.removeprefix("$ autoclerk ")), output


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    monkeypatch.delenv("AUTOCLERK_ENV_PORTAL_USER", raising=False)  # explain shows the default user
    return install_example(tmp_path)


def test_the_package_declares_its_step_in_the_entry_point_group_the_registry_reads() -> None:
    example = files()
    assert sorted(example) == [WORKFLOW, PACKAGE + "ourteam_steps/__init__.py", PACKAGE + "pyproject.toml"]
    pyproject = tomllib.loads(example[PACKAGE + "pyproject.toml"])
    assert pyproject["project"]["entry-points"] == {ENTRY_POINT_GROUP: {"type_keys": "ourteam_steps:TYPE_KEYS"}}
    assert pyproject["tool"]["setuptools"]["packages"] == ["ourteam_steps"]
    layout = block_after("The package has two files")
    assert all(part in layout for part in ("ourteam-steps/", "pyproject.toml", "ourteam_steps/", "__init__.py"))


def test_the_workflow_on_the_page_validates_and_explains_as_the_page_shows(
        example: tuple[Path, dict[str, str]]) -> None:
    work, env = example
    for caption in ("`validate` checks a custom step", "`explain` shows the step"):
        args, output = shown(caption)
        result = autoclerk(*args, cwd=work, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == output


def test_each_mistake_on_the_page_is_the_line_the_page_shows(example: tuple[Path, dict[str, str]]) -> None:
    work, env = example
    source = (work / WORKFLOW).read_text()
    mistakes = [(m.group(1), m.group(2), block.body) for block in blocks()
                if (m := re.search(r"With `([^`]+)` in place of `([^`]+)`:$", block.caption))]
    assert len(mistakes) == 2
    for wrong, right, line in mistakes:
        assert source.count(right) == 1, right
        (work / WORKFLOW).write_text(source.replace(right, wrong))
        result = autoclerk("validate", WORKFLOW, cwd=work, env=env)
        assert (result.returncode, result.stderr) == (2, line), wrong


def test_without_the_package_the_verb_is_unknown_and_a_broken_package_is_one_line(
        example: tuple[Path, dict[str, str]]) -> None:
    work, env = example
    unknown = block_after("Without the package installed").strip()
    assert unknown.endswith("…")
    result = autoclerk("validate", WORKFLOW, cwd=work)
    assert result.returncode == 2 and result.stderr.startswith(unknown.removesuffix("…"))

    shutil.rmtree(Path(env["PYTHONPATH"]) / "ourteam_steps")  # installed, then its code removed
    result = autoclerk("validate", WORKFLOW, cwd=work, env=env)
    assert (result.returncode, result.stderr) == (2, block_after("with one line that names it"))


def test_the_schema_describes_the_installed_step(example: tuple[Path, dict[str, str]]) -> None:
    work, env = example
    schema = json.loads(autoclerk("schema", env=env).stdout)
    assert schema["x-custom-steps"] == ["type_keys"]
    assert schema["$defs"]["TypeKeysStep"]["description"].startswith("Type a value key by key")


def test_the_submitting_step_on_the_page_needs_a_lookup_and_explain_marks_it(
        example: tuple[Path, dict[str, str]]) -> None:
    work, env = example
    module = Path(env["PYTHONPATH"]) / "ourteam_steps" / "__init__.py"
    snippet = block_after("Declare `submits=True`")
    module.write_text(module.read_text() + "\n\nclass SendLetter(StepArgs):\n    locator: Locator\n\n\n" + snippet)
    points = next(Path(env["PYTHONPATH"]).glob("*.dist-info")) / "entry_points.txt"
    points.write_text(points.read_text() + "send_letter = ourteam_steps:SEND_LETTER\n")
    source = (work / WORKFLOW).read_text().replace('  - click: "#search"', '  - send_letter: {locator: "#search"}')
    (work / WORKFLOW).write_text(source)
    refused = autoclerk("validate", WORKFLOW, cwd=work, env=env)
    assert refused.returncode == 2
    assert refused.stderr.endswith("steps[2].send_letter: this step submits, so the workflow needs a 'lookup' block "
                                   "or 'at_most_once: true'\n")
    (work / WORKFLOW).write_text(source + "at_most_once: true\n")
    explained = autoclerk("explain", WORKFLOW, "--case", '{"case_ref": "CASE-000123"}', cwd=work, env=env)
    assert explained.returncode == 0, explained.stderr
    assert "  3     send_letter #search  [SUBMITS]" in explained.stdout.splitlines()
