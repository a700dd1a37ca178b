"""Loading a workflow file: YAML → validated :class:`Workflow`, with every problem located.

Every problem becomes one line ``file:line:column: steps[3].fill.value: message``; an unknown key or step
names the closest valid one.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import Problem, WorkflowFileError
from .model import LoadedWorkflow, Workflow
from .source import PathKey, Position, format_path, load_yaml
from .steps import STEP_MODELS, TemplateMarker
from .templating import check_template


def load_workflow(path: str | Path) -> LoadedWorkflow:
    """Read, parse and validate a workflow file.

    Raises:
        WorkflowFileError: with every problem found, each located by line and column.
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowFileError([Problem(name, 0, 0, "", "no such workflow file")]) from None
    except IsADirectoryError:
        raise WorkflowFileError([Problem(name, 0, 0, "", "is a directory, expected a workflow file")]) from None
    except UnicodeDecodeError:
        raise WorkflowFileError([Problem(name, 0, 0, "", "is not UTF-8 text")]) from None
    except OSError as exc:
        raise WorkflowFileError([Problem(name, 0, 0, "", f"cannot be read ({exc.strerror})")]) from None
    return parse_workflow(text, name)


def parse_workflow(text: str, file: str = "<workflow>") -> LoadedWorkflow:
    """Validate workflow source text; ``file`` names it in error messages."""
    data, positions = load_yaml(text, file)
    if not isinstance(data, dict):
        raise WorkflowFileError([Problem(file, 1, 1, "", "expected a mapping with name, version, input and steps")])
    try:
        workflow = Workflow.model_validate(data)
    except ValidationError as exc:
        raise WorkflowFileError(_problems(exc, data, positions, file)) from None
    template_problems = list(_template_problems(workflow, positions, file))
    if template_problems:
        raise WorkflowFileError(template_problems)
    return LoadedWorkflow(definition=workflow, source=text, path=file)


def _problems(exc: ValidationError, data: Any, positions: dict[PathKey, Position], file: str) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        path = _data_path(tuple(error["loc"]), data)
        kind = error["type"]
        message = _message(error, path, data)
        if kind == "extra_forbidden":
            line, column = _key_position(positions, path)
        elif kind == "missing":
            line, column = _value_position(positions, path[:-1])
        elif kind == "unknown_step" and isinstance(_at(data, path), dict) and len(_at(data, path)) == 1:
            line, column = _key_position(positions, path + (next(iter(_at(data, path))),))
        else:
            line, column = _value_position(positions, path)
        problems.append(Problem(file, line, column, format_path(path), message))
    problems.sort(key=lambda p: (p.line, p.column))
    return _dedupe(problems)


def _data_path(loc: tuple[Any, ...], data: Any) -> PathKey:
    """Drop the union tags pydantic inserts (``steps.3.fill.fill.value`` → ``steps[3].fill.value``)."""
    out: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        if index and part == loc[index - 1] and part in STEP_MODELS:
            continue  # the discriminator tag repeats the verb
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and len(node) == 1 and part in STEP_MODELS:
            continue  # the discriminator tag
        elif isinstance(part, str) and not part.startswith(("function-", "list[", "dict[")):
            out.append(part)
            node = None
    return tuple(out)


def _at(data: Any, path: PathKey) -> Any:
    node = data
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _message(error: Any, path: PathKey, data: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        field = str(path[-1])
        allowed = _allowed_keys(path[:-1], data)
        hint = _closest(field, allowed)
        return f"unknown field '{field}'" + (f"; did you mean '{hint}'?" if hint else f"; expected one of {', '.join(sorted(allowed))}" if allowed else "")
    if kind == "unknown_step":
        value = _at(data, path)
        if isinstance(value, dict) and len(value) == 1:
            verb = str(next(iter(value)))
            hint = _closest(verb, list(STEP_MODELS))
            return f"unknown step '{verb}'" + (f"; did you mean '{hint}'?" if hint else f"; expected one of {', '.join(STEP_MODELS)}")
        return f"a step must be a mapping with exactly one verb ({', '.join(STEP_MODELS)})"
    if kind == "missing":
        return f"missing required field '{path[-1]}'"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        return f"must match {error['ctx']['pattern']}"
    return str(error["msg"]).lower()


def _allowed_keys(parent: PathKey, data: Any) -> list[str]:
    """The field names valid at ``parent``, found by walking the models along the path."""
    from typing import get_origin

    model: type[BaseModel] | None = Workflow
    skip_key = False  # the next part is a key of a dict field (an input field's name, a system's name)
    for part in parent:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        if skip_key:
            skip_key = False
            continue
        if part in model.model_fields:
            annotation = model.model_fields[str(part)].annotation
            skip_key = get_origin(annotation) is dict
            model = _model_of(annotation)
        elif part in STEP_MODELS:
            model = _model_of(STEP_MODELS[str(part)].model_fields[str(part)].annotation)
        else:
            return []
    return list(model.model_fields) if model else []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _closest(word: str, options: list[str]) -> str | None:
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _key_position(positions: dict[PathKey, Position], path: PathKey) -> tuple[int, int]:
    pos = _nearest(positions, path)
    return (pos.key_line, pos.key_column) if pos else (0, 0)


def _value_position(positions: dict[PathKey, Position], path: PathKey) -> tuple[int, int]:
    pos = _nearest(positions, path)
    return (pos.line, pos.column) if pos else (0, 0)


def _nearest(positions: dict[PathKey, Position], path: PathKey) -> Position | None:
    while path not in positions and path:
        path = path[:-1]
    return positions.get(path)


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[int, int, str, str]] = set()
    out = []
    for p in problems:
        key = (p.line, p.column, p.path, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _template_problems(workflow: Workflow, positions: dict[PathKey, Position], file: str):  # type: ignore[no-untyped-def]
    fields = set(workflow.input)
    secrets = set(workflow.secrets)
    for block in ("steps", "lookup"):
        for index, step in enumerate(getattr(workflow, block) or []):
            args = step.args
            for name, info in type(args).model_fields.items():
                value = getattr(args, name)
                if not _is_template_field(info):
                    continue
                items = [(None, value)] if isinstance(value, str) else list(enumerate(value or []))
                for item_index, text in items:
                    path: PathKey = (block, index, step.verb, name)
                    if item_index is not None:
                        path += (item_index,)
                    for message in check_template(text, fields, secrets):
                        line, column = _value_position(positions, path)
                        yield Problem(file, line, column, format_path(path), message)


def _is_template_field(info: Any) -> bool:
    """Whether a field holds templates: ``Template`` itself, or a union/list of them (``Locator``)."""
    from typing import get_args

    def has_marker(annotation: Any) -> bool:
        if any(isinstance(m, TemplateMarker) for m in getattr(annotation, "__metadata__", ())):
            return True
        return any(has_marker(arg) for arg in get_args(annotation))

    return any(isinstance(m, TemplateMarker) for m in info.metadata) or has_marker(info.annotation)
