"""Reading YAML safely while remembering where every value stood.

PyYAML's ``SafeLoader`` silently keeps the last of two duplicate keys and expands anchors without limit
(a "billion laughs" bomb explodes in pydantic, not in the loader). We compose the node graph ourselves,
so we can refuse duplicate keys and aliases with their line and column, and keep a map from every data
path to its position for the validation messages that follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from .errors import Problem, WorkflowFileError

MAX_FILE_BYTES = 256 * 1024

PathKey = tuple[str | int, ...]

_SAFE_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp"))


@dataclass(frozen=True)
class Position:
    """Where a value stood: the key's position (for mappings) and the value's position, 1-based."""

    key_line: int
    key_column: int
    line: int
    column: int


def format_path(path: PathKey) -> str:
    """Render ``("steps", 3, "fill", "value")`` as ``steps[3].fill.value``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Composer:
    def __init__(self, file: str) -> None:
        self.file = file
        self.positions: dict[PathKey, Position] = {}
        self._constructor = yaml.SafeLoader("")  # only used to turn scalar nodes into values

    def build(self, node: yaml.Node, path: PathKey, key_mark: yaml.Mark | None, seen: set[int]) -> Any:
        if id(node) in seen:
            raise self._problem(node.start_mark, path, "anchors and aliases are not allowed in workflow files")
        seen.add(id(node))
        if node.tag not in _SAFE_TAGS:
            raise self._problem(node.start_mark, path, f"the tag {node.tag} is not allowed")
        km = key_mark or node.start_mark
        self.positions[path] = Position(km.line + 1, km.column + 1, node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self._problem(key_node.start_mark, path, "a mapping key must be a plain word")
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise self._problem(key_node.start_mark, path, "merge keys (<<) are not allowed in workflow files")
                key = str(self._constructor.construct_object(key_node))
                if key in result:
                    raise self._problem(
                        key_node.start_mark, path + (key,), f"duplicate key '{key}' (it already appears above)"
                    )
                result[key] = self.build(value_node, path + (key,), key_node.start_mark, seen)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,), None, seen) for i, item in enumerate(node.value)]
        return self._constructor.construct_object(node)

    def _problem(self, mark: yaml.Mark, path: PathKey, message: str) -> WorkflowFileError:
        return WorkflowFileError([Problem(self.file, mark.line + 1, mark.column + 1, format_path(path), message)])


def load_yaml(text: str, file: str) -> tuple[Any, dict[PathKey, Position]]:
    """Parse one YAML document into plain data and a map of positions.

    Args:
        text: the document.
        file: the name used in error messages.

    Returns:
        ``(data, positions)`` where positions maps a data path to its :class:`Position`.

    Raises:
        WorkflowFileError: malformed YAML, a duplicate key, an alias or anchor, an unsafe tag,
            or a file over ``MAX_FILE_BYTES``.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise WorkflowFileError([Problem(file, 0, 0, "", f"the file is larger than {MAX_FILE_BYTES // 1024} KiB")])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        reason = exc.problem or exc.context or "malformed YAML"
        raise WorkflowFileError([Problem(file, line, col, "", f"malformed YAML: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise WorkflowFileError([Problem(file, 0, 0, "", f"malformed YAML: {exc}")]) from None
    if node is None:
        raise WorkflowFileError([Problem(file, 1, 1, "", "the file is empty; expected a workflow mapping")])
    composer = _Composer(file)
    data = composer.build(node, (), None, set())
    return data, composer.positions


def key_position(positions: dict[PathKey, Position], path: PathKey) -> tuple[int, int]:
    """Line and column of the key at ``path`` (or of the nearest enclosing value that has a position)."""
    pos = _nearest(positions, path)
    return (pos.key_line, pos.key_column) if pos else (0, 0)


def value_position(positions: dict[PathKey, Position], path: PathKey) -> tuple[int, int]:
    """Line and column of the value at ``path`` (or of the nearest enclosing value that has a position)."""
    pos = _nearest(positions, path)
    return (pos.line, pos.column) if pos else (0, 0)


def _nearest(positions: dict[PathKey, Position], path: PathKey) -> Position | None:
    while path not in positions and path:
        path = path[:-1]
    return positions.get(path)
