"""Loading a workflow file: YAML → validated :class:`Workflow`, with every problem located.

Every problem becomes one line ``file:line:column: steps[3].fill.value: message``; an unknown key or step
names the closest valid one. Called workflows (``call``) are loaded and checked with their caller, and
a call cycle or a missing file is a problem of the calling line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import Problem, WorkflowFileError
from .locators import _By
from .model import BUNDLE_KEY, LoadedWorkflow, Workflow
from .problems import closest, problems_of
from .source import PathKey, Position, format_path, key_position, load_yaml, value_position
from .steps import Call, Goto, Retry, StepBase, ensure_models, submits, walk
from .templating import ExpressionMarker, TemplateMarker, check_expression, check_template


@dataclass(frozen=True)
class _Called:
    """A called file, found by a resolver: its display name, identity (for cycles) and text."""

    name: str
    identity: str
    text: str
    resolver: "Resolver"


Resolver = Callable[[str], _Called]
"""Finds the file a ``call`` names (relative to the calling file); raises ``LookupError`` with a reason."""


def load_workflow(path: str | Path) -> LoadedWorkflow:
    """Read, parse and validate a workflow file and every workflow it calls.

    Raises:
        WorkflowFileError: with every problem found, each located by line and column.
    """
    name = str(path)
    text = _read(Path(path), name)
    return _parse(text, name, _disk_resolver(Path(path).parent, name), (_identity(Path(path)),))


def parse_workflow(text: str, file: str = "<workflow>", *, base_dir: str | Path | None = None) -> LoadedWorkflow:
    """Validate workflow source text; ``file`` names it in error messages.

    Args:
        text: the YAML source.
        file: the name used in error messages.
        base_dir: where called workflows are looked up (default: the folder of ``file``).
    """
    base = Path(base_dir) if base_dir is not None else Path(file).parent
    return _parse(text, file, _disk_resolver(base, file), (_identity(base / Path(file).name),))


def load_stored(text: str, label: str) -> LoadedWorkflow:
    """Load a workflow as the ledger stores it (:attr:`LoadedWorkflow.stored_text`), calls included."""
    if not text.startswith("{"):
        return _parse(text, label, _no_files, (label,))
    try:
        bundle = json.loads(text)
    except json.JSONDecodeError:
        raise WorkflowFileError([Problem(label, 0, 0, "", "the stored workflow bundle is not valid JSON")]) from None
    return _from_bundle(bundle, label)


def _from_bundle(bundle: Any, label: str) -> LoadedWorkflow:
    if not isinstance(bundle, dict) or bundle.get(BUNDLE_KEY) != 1 or not isinstance(bundle.get("source"), str):
        raise WorkflowFileError([Problem(label, 0, 0, "", "the stored workflow bundle has an unknown format")])
    return _parse(bundle["source"], label, _from_bundle_resolver(bundle, label), (label,))


def _from_bundle_resolver(bundle: dict[str, Any], label: str) -> Resolver:
    calls = bundle.get("calls") or {}

    def resolve(ref: str) -> _Called:
        if ref not in calls:
            raise LookupError("the stored bundle lacks this called workflow")
        inner = calls[ref]
        return _Called(f"{label}>{ref}", f"{label}>{ref}", inner["source"], _from_bundle_resolver(inner, f"{label}>{ref}"))

    return resolve


def _no_files(ref: str) -> _Called:
    raise LookupError("stored workflows cannot call files")


def _read(path: Path, name: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowFileError([Problem(name, 0, 0, "", "no such workflow file")]) from None
    except IsADirectoryError:
        raise WorkflowFileError([Problem(name, 0, 0, "", "is a directory, expected a workflow file")]) from None
    except UnicodeDecodeError:
        raise WorkflowFileError([Problem(name, 0, 0, "", "is not UTF-8 text")]) from None
    except OSError as exc:
        raise WorkflowFileError([Problem(name, 0, 0, "", f"cannot be read ({exc.strerror})")]) from None


def _identity(path: Path) -> str:
    return str(path.resolve())


def _disk_resolver(base: Path, caller: str) -> Resolver:
    def resolve(ref: str) -> _Called:
        path = base / ref
        name = os.path.normpath(os.path.join(os.path.dirname(caller), ref)) if caller else ref
        if not path.is_file():
            raise LookupError(f"no workflow file {ref} next to this one")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LookupError(f"{ref} cannot be read ({type(exc).__name__})") from None
        return _Called(name, _identity(path), text, _disk_resolver(path.parent, name))

    return resolve


# -- parsing ---------------------------------------------------------------------------------------------
def _parse(text: str, file: str, resolve: Resolver, stack: tuple[str, ...]) -> LoadedWorkflow:
    ensure_models()
    data, positions = load_yaml(text, file)
    if not isinstance(data, dict):
        raise WorkflowFileError([Problem(file, 1, 1, "", "expected a mapping with name, version, input and steps")])
    try:
        workflow = Workflow.model_validate(data)
    except ValidationError as exc:
        raise WorkflowFileError(problems_of(exc, data, positions, file)) from None
    checks = _Checks(workflow, positions, file)
    problems = list(checks.templates()) + list(checks.references())
    calls, call_problems = _load_calls(workflow, positions, file, resolve, stack)
    problems += call_problems
    step_lines = {f"{format_path(path)}.{step.verb}": value_position(positions, path)[0]
                  for path, step in workflow.all_steps()}
    loaded = LoadedWorkflow(definition=workflow, source=text, path=file, calls=calls, step_lines=step_lines)
    if not call_problems:
        problems += list(checks.effects(calls))
    if problems:
        problems.sort(key=lambda p: (p.file != file, p.file, p.line, p.column))
        raise WorkflowFileError(problems)
    return loaded


def _load_calls(workflow: Workflow, positions: dict[PathKey, Position], file: str, resolve: Resolver,
                stack: tuple[str, ...]) -> tuple[dict[str, LoadedWorkflow], list[Problem]]:
    calls: dict[str, LoadedWorkflow] = {}
    problems: list[Problem] = []
    for path, step in workflow.all_steps():
        if not isinstance(step.args, Call):
            continue
        ref = step.args.workflow
        where = path + ("call", "workflow")
        line, column = value_position(positions, where)
        problem = _problem_at(file, line, column, where)
        if ref in calls:
            problems += _argument_problems(step.args, calls[ref].definition, positions, file, path)
            continue
        try:
            called = resolve(ref)
        except LookupError as exc:
            problems.append(problem(f"cannot call {ref}: {exc}"))
            continue
        if called.identity in stack:
            names = [os.path.basename(s) for s in stack[stack.index(called.identity):]] + [os.path.basename(called.name)]
            problems.append(problem(f"call cycle: {' → '.join(names)}"))
            continue
        try:
            loaded = _parse(called.text, called.name, called.resolver, stack + (called.identity,))
        except WorkflowFileError as exc:
            problems.append(problem(f"the called workflow {ref} has {len(exc.problems)} problem(s), listed with its name"))
            problems += exc.problems
            continue
        calls[ref] = loaded
        problems += _argument_problems(step.args, loaded.definition, positions, file, path)
    return calls, problems


def _argument_problems(call: Call, called: Workflow, positions: dict[PathKey, Position], file: str,
                       path: PathKey) -> Iterator[Problem]:
    for name in call.with_:
        if name not in called.input:
            where = path + ("call", "with", name)
            line, column = key_position(positions, where)
            hint = closest(name, list(called.input))
            expected = f"did you mean '{hint}'?" if hint else (
                f"expected one of {', '.join(called.input)}" if called.input else "it takes no arguments")
            yield Problem(file, line, column, format_path(where),
                          f"{call.workflow} has no input field '{name}'; {expected}")
    missing = [name for name, spec in called.input.items() if spec.required and name not in call.with_]
    if missing:
        where = path + ("call",)
        line, column = value_position(positions, where)
        names = ", ".join(f"'{name}'" for name in missing)
        yield Problem(file, line, column, format_path(where),
                      f"{call.workflow} needs the argument{'s' if len(missing) > 1 else ''} {names} in 'with'")


def _problem_at(file: str, line: int, column: int, path: PathKey) -> Callable[[str], Problem]:
    return lambda message: Problem(file, line, column, format_path(path), message)


class _Checks:
    """The checks that need the whole validated workflow: templates, names, and where effects may happen."""

    def __init__(self, workflow: Workflow, positions: dict[PathKey, Position], file: str) -> None:
        self.workflow = workflow
        self.positions = positions
        self.file = file

    def _problem(self, path: PathKey, message: str, key: bool = False) -> Problem:
        line, column = (key_position if key else value_position)(self.positions, path)
        return Problem(self.file, line, column, format_path(path), message)

    def templates(self) -> Iterator[Problem]:
        wf = self.workflow
        fields, secrets, env = wf.input, set(wf.secrets), set(wf.env)  # the fields' types check filter arguments
        for path, step in wf.all_steps():
            args = step.args
            for name, info in type(args).model_fields.items():
                kind = _field_kind(info)
                if kind is None:
                    continue
                key = info.alias or name
                check = check_expression if kind == "expression" else check_template
                for where, text in _strings(getattr(args, name), path + (step.verb, key)):
                    for message in check(text, fields, secrets, env):
                        yield self._problem(where, message)

    def references(self) -> Iterator[Problem]:
        wf = self.workflow
        if not wf.part and not wf.input:
            yield self._problem(("input",), "the input schema is empty; a workflow that is handed off needs at "
                                "least its reference field (or 'part: true' if it is only called)", key=True)
        elif not wf.part and wf.reference_field not in wf.input:
            where = ("reference_field",) if ("reference_field",) in self.positions else ("input",)
            hint = closest(wf.reference_field, list(wf.input))
            yield self._problem(where, f"the reference field '{wf.reference_field}' is not a field of the input schema"
                                + (f"; did you mean '{hint}'?" if hint else ""))
        systems = self.workflow.systems
        if wf.session is not None:
            if not wf.part:
                yield self._problem(("session",), "only a part ('part: true') that signs in may declare a session",
                                    key=True)
            if wf.session.system not in systems:
                hint = closest(wf.session.system, list(systems))
                yield self._problem(("session", "system"), f"unknown system '{wf.session.system}'; "
                                    + (f"did you mean '{hint}'?" if hint else f"expected one of {', '.join(systems)}"))
        for path, step in self.workflow.all_steps():
            args = step.args
            if isinstance(args, Goto) and args.system is not None and args.system not in systems:
                hint = closest(args.system, list(systems))
                yield self._problem(path + ("goto", "system"), f"unknown system '{args.system}'; "
                                    + (f"did you mean '{hint}'?" if hint else f"expected one of {', '.join(systems)}"))
            if isinstance(args, Goto) and args.system is None and len(systems) > 1:
                yield self._problem(path + ("goto",), f"the workflow has {len(systems)} systems; say which with 'system:'")

    def effects(self, calls: dict[str, LoadedWorkflow]) -> Iterator[Problem]:
        """Where a submit may happen: never inside a retry group, a lookup or a verification, and never without a lookup."""
        def effect(step: StepBase) -> bool:
            return submits(step) or (isinstance(step.args, Call) and calls[step.args.workflow].submits)

        wf = self.workflow
        for path, step in wf.all_steps():
            if isinstance(step.args, Retry):
                for inner_path, inner in walk(step.args.steps, path + ("retry", "steps")):
                    if effect(inner):
                        yield self._problem(inner_path + (inner.verb,), "a retry group may not hold a submitting step: "
                                            "a submit is never repeated blindly")
            if path[0] == "lookup" and effect(step):
                yield self._problem(path + (step.verb,), "a lookup only looks: it may not hold a submitting step")
            if path[0] == "verify" and effect(step):
                yield self._problem(path + (step.verb,), "a verification only reads the record back: it may not "
                                    "hold a submitting step")
        if wf.session is not None:
            for path, step in walk(wf.steps, ("steps",)):
                if effect(step):
                    yield self._problem(path + (step.verb,), "a sign-in part with a session may not submit: its "
                                        "steps are skipped when the session is reused")
        if not wf.part and wf.lookup is None and not wf.at_most_once:
            for path, step in walk(wf.steps, ("steps",)):
                if effect(step):
                    what = "this call submits" if isinstance(step.args, Call) else "this step submits"
                    yield self._problem(path + (step.verb,), f"{what}, so the workflow needs a 'lookup' block "
                                        "or 'at_most_once: true'")
                    break


def _field_kind(info: Any) -> str | None:
    """``template`` / ``expression`` for a field holding them (directly or inside a locator), else ``None``."""
    from typing import get_args

    def has(annotation: Any, marker: type) -> bool:
        if any(isinstance(m, marker) for m in getattr(annotation, "__metadata__", ())):
            return True
        if marker is TemplateMarker and isinstance(annotation, type) and issubclass(annotation, _By):
            return True  # a locator model: its strings are templates
        return any(has(arg, marker) for arg in get_args(annotation))

    if any(isinstance(m, ExpressionMarker) for m in info.metadata) or has(info.annotation, ExpressionMarker):
        return "expression"
    if any(isinstance(m, TemplateMarker) for m in info.metadata) or has(info.annotation, TemplateMarker):
        return "template"
    return None


def _strings(value: Any, path: PathKey) -> Iterator[tuple[PathKey, str]]:
    """The strings inside a field's value (a string, a list, a mapping, a locator model), with their paths."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, path + (index,))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, path + (key,))
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _strings(getattr(value, name), path + (name,))
