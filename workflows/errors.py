"""Errors of the workflow language.

Grouped by what the caller must do::

    WorkflowError                 base of everything this package raises
    ├── WorkflowFileError         a workflow file is wrong: fix the file (carries every problem found)
    ├── CaseDataError             a case row does not fit the input schema: reject the row, keep the rest
    ├── CasesFileError            a cases file cannot be read at all: nothing from it is accepted
    └── TemplateRenderError       a template failed for one case at run time: a BUSINESS problem of that case

None of these messages contains a case value or a secret: they name files, lines, fields and rules.
"""

from __future__ import annotations

from dataclasses import dataclass


class WorkflowError(Exception):
    """Base class of every error raised by the ``workflows`` package."""


@dataclass(frozen=True)
class Problem:
    """One problem in a workflow file, with where it is.

    Args:
        file: the path as the user gave it.
        line: 1-based line, or 0 when the problem concerns the whole file.
        column: 1-based column, or 0 when unknown.
        path: the step path, e.g. ``steps[3].fill.value`` (empty for the file itself).
        message: what is wrong and what was expected.
    """

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class WorkflowFileError(WorkflowError):
    """A workflow file failed to load or validate; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class CaseDataError(WorkflowError):
    """One case row does not fit the workflow's input schema.

    Args:
        row: the 1-based data row number (the header is row 0), or the line number of a JSON line.
        field: the field concerned.
        reason: what was expected, precisely, for authors (never the rejected value itself).
        message: the same in plain words, a sentence a caseworker reads (no field key, no regular
            expression); the field and the reason when not given.
    """

    def __init__(self, row: int, field: str, reason: str, message: str | None = None) -> None:
        self.row, self.field, self.reason = row, field, reason
        self.message = message or f"{field}: {reason}"
        super().__init__(f"row {row}: {field}: {reason}")


class CasesFileError(WorkflowError):
    """A cases file cannot be read at all (missing, unreadable, wrong encoding, bad header)."""


class TemplateRenderError(WorkflowError):
    """A template could not be rendered for one case (for instance a value missing in that case)."""
