"""Turning pydantic's validation errors into located, readable problems.

pydantic reports ``steps.3.fill.fill.value`` with union tags and type names inside; authors need
``file:12:9: steps[3].fill.value: missing required field 'value'`` and, for a misspelt key or step, the
closest valid name.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from .errors import Problem
from .locators import _KINDS, LOCATOR_HELP
from .model import Workflow
from .source import PathKey, Position, format_path, key_position, value_position
from .steps import STEP_MODELS

_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "none", "list", "dict"})


def problems_of(exc: ValidationError, data: Any, positions: dict[PathKey, Position], file: str) -> list[Problem]:
    """One :class:`Problem` per distinct error of ``exc``, sorted by position."""
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        path = _data_path(tuple(error["loc"]), data)
        kind = error["type"]
        value = _at(data, path)
        if kind == "extra_forbidden":
            line, column = key_position(positions, path)
        elif kind == "missing":
            line, column = value_position(positions, path[:-1])
        elif kind == "unknown_step" and isinstance(value, dict) and len(value) == 1:
            line, column = key_position(positions, path + (next(iter(value)),))
        else:
            line, column = value_position(positions, path)
        problems.append(Problem(file, line, column, format_path(path), _message(error, path, data)))
    problems.sort(key=lambda p: (p.line, p.column))
    return _dedupe(_without_explained_missing(problems))


def _without_explained_missing(problems: list[Problem]) -> list[Problem]:
    """Drop "missing field 'value'" where the same mapping has "unknown field 'valu'; did you mean 'value'?"."""
    explained = {(p.path.rsplit(".", 1)[0], p.message.rsplit("'", 2)[-2]) for p in problems
                 if p.message.startswith("unknown field") and "did you mean" in p.message}
    return [p for p in problems
            if not (p.message.startswith("missing required field")
                    and (p.path.rsplit(".", 1)[0], p.message.split("'")[1]) in explained)]


def closest(word: str, options: list[str]) -> str | None:
    """The option most like ``word``, if one is close enough to be a likely typo."""
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _data_path(loc: tuple[Any, ...], data: Any) -> PathKey:
    """The path in the file's data: pydantic's union tags and type names dropped."""
    out: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        if index and part == loc[index - 1] and part in STEP_MODELS and not (isinstance(node, dict) and part in node):
            continue  # the discriminator tag repeats the verb
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and len(node) == 1 and part in STEP_MODELS:
            continue  # the discriminator tag
        elif isinstance(part, str) and _is_field_name(part):
            out.append(part)
            node = None
    return tuple(out)


def _is_field_name(part: str) -> bool:
    return not (":" in part or "[" in part or part.startswith("function-") or part in _TYPE_NAMES
                or any(c.isupper() for c in part))


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
        hint = closest(field, allowed)
        if hint:
            return f"unknown field '{field}'; did you mean '{hint}'?"
        return f"unknown field '{field}'" + (f"; expected one of {', '.join(sorted(allowed))}" if allowed else "")
    if kind == "unknown_step":
        value = _at(data, path)
        verbs = list(STEP_MODELS)
        if isinstance(value, dict) and len(value) == 1:
            verb = str(next(iter(value)))
            hint = closest(verb, verbs)
            return f"unknown step '{verb}'" + (f"; did you mean '{hint}'?" if hint else f"; expected one of {', '.join(verbs)}")
        if isinstance(value, dict) and len(value) > 1:
            return f"a step has exactly one verb, found {len(value)} keys ({', '.join(map(str, value))}); indent the arguments under the verb"
        return f"a step must be a mapping with exactly one verb ({', '.join(verbs)})"
    if kind == "bad_locator":
        value = _at(data, path)
        if isinstance(value, dict):
            kinds = [k for k in _KINDS if k in value]
            if len(kinds) > 1:
                return f"a locator mapping has one way to find the element, found {', '.join(kinds)}"
            unknown = next((str(k) for k in value if k not in _KINDS), None)
            hint = closest(unknown, list(_KINDS)) if unknown else None
            if hint:
                return f"unknown locator kind '{unknown}'; did you mean '{hint}'?"
        return f"a locator is {LOCATOR_HELP}"
    if kind == "missing":
        return f"missing required field '{path[-1]}'"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        return f"must match {error['ctx']['pattern']}"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(error["ctx"]["expected"]))
        if len(options) <= 8:
            return f"must be one of {error['ctx']['expected']}".replace("'", "")
        hint = closest(str(error["input"]), options)
        return f"'{error['input']}' is not one of the {len(options)} allowed values" + (
            f"; did you mean '{hint}'?" if hint else "")
    return str(error["msg"]).lower()


def _allowed_keys(parent: PathKey, data: Any) -> list[str]:
    """The field names (as written in files) valid at ``parent``, found by walking the models along the path."""
    model: type[BaseModel] | None = Workflow
    skip_key = False  # the next part is a key of a dict field (an input field's name, a system's name)
    node: Any = data
    for part in parent:
        node = node[part] if isinstance(node, (dict, list)) and _has(node, part) else None  # type: ignore[index]
        if model is None:
            return []
        if isinstance(part, int):
            continue
        if skip_key:
            skip_key = False
            continue
        fields = _fields(model)
        if part in fields:
            annotation = fields[str(part)].annotation
            skip_key = get_origin(annotation) is dict
            model = _model_of(annotation, node)
        elif part in STEP_MODELS:
            model = _model_of(STEP_MODELS[str(part)].model_fields[str(part)].annotation, node)
        else:
            return []
    return list(_fields(model)) if model else []


def _has(node: Any, part: Any) -> bool:
    return (isinstance(node, dict) and part in node) or (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    return {info.alias or name: info for name, info in model.model_fields.items()}


def _model_of(annotation: Any, node: Any) -> type[BaseModel] | None:
    """The model an annotation validates ``node`` with (a locator mapping picks its kind by its key)."""
    if isinstance(node, dict):
        kinds = [k for k in _KINDS if k in node]
        if len(kinds) == 1 and _mentions(annotation, _KINDS[kinds[0]]):
            return _KINDS[kinds[0]]
        mapping = _mapping_model(annotation)  # a field written as a list or as a mapping (lookup, verify)
        if mapping is not None:
            return mapping
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg, node)
        if found is not None:
            return found
    return None


def _mapping_model(annotation: Any) -> type[BaseModel] | None:
    """The model of the annotation that a mapping is validated with, not looking inside lists."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (list, dict):
        return None
    for arg in get_args(annotation):
        found = _mapping_model(arg)
        if found is not None:
            return found
    return None


def _mentions(annotation: Any, model: type[BaseModel]) -> bool:
    return annotation is model or any(_mentions(arg, model) for arg in get_args(annotation))


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[int, int, str, str]] = set()
    out = []
    for p in problems:
        key = (p.line, p.column, p.path, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
