"""Editing a workflow's YAML the way its author would: one value changed in place, the rest of the text
(comments, layout, quoting, key order) left as written.

Used when a person approves a healed locator (``autoclerk heals approve``): the healed selector becomes
the last alternative of the step's locator, and the workflow's ``version`` goes up by one.
"""

from __future__ import annotations

import json
import re

import yaml

from .errors import Problem, WorkflowFileError

_PART = re.compile(r"([A-Za-z_]+)|\[(\d+)\]")


def step_keys(step: str) -> list[str | int]:
    """The data path of a step named as errors name it: ``steps[3].if.then[0].fill`` gives
    ``["steps", 3, "if", "then", 0, "fill"]``."""
    return [int(index) if index else name for name, index in _PART.findall(step)]


def add_fallback(text: str, step: str, locator: str, file: str = "<workflow>") -> str:
    """``text`` with ``locator`` (a selector) added as the step's last locator alternative, and ``version``
    raised by one.

    A single locator becomes a flow list (``"#a"`` → ``["#a", "#b"]``); a list gets one more item, in
    its own style. Nothing else in the text changes.

    Raises:
        WorkflowFileError: the step is not in this file (it runs in a called part), has no locator, or
            writes its locator as a block mapping (the message says to add the alternative by hand).
    """
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    node = root
    keys = step_keys(step)
    if "call" in keys[:-1]:
        raise _problem(file, 1, step, "the step runs in a called part: add the alternative to the part's own file")
    for key in keys:
        node = _child(node, key)
        if node is None:
            raise _problem(file, 1, step, "the file has no such step")
    assert node is not None
    if isinstance(node, yaml.MappingNode):
        verb_value, node = node, _child(node, "locator")
        if node is None:
            raise _problem(file, verb_value.start_mark.line + 1, step, "the step has no locator")
    new = json.dumps(locator)
    start, end = node.start_mark.index, node.end_mark.index
    if isinstance(node, yaml.SequenceNode):
        if node.flow_style:
            close = text.rindex("]", start, end)
            edited = f"{text[:close].rstrip()}, {new}{text[close:]}"
        else:
            last = node.value[-1]
            indent = " " * (last.start_mark.column - 2)
            edited = f"{text[:last.end_mark.index]}\n{indent}- {new}{text[last.end_mark.index:]}"
    elif isinstance(node, yaml.MappingNode) and not node.flow_style:
        raise _problem(file, node.start_mark.line + 1, step, "the locator is written as a block mapping: add the "
                       f"alternative {new} to it by hand")
    else:
        edited = f"{text[:start]}[{text[start:end]}, {new}]{text[end:]}"
    return bump_version(edited, file)


def bump_version(text: str, file: str = "<workflow>") -> str:
    """``text`` with its top-level ``version`` raised by one, in place."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    node = _child(root, "version")
    if not isinstance(node, yaml.ScalarNode) or not str(node.value).isdigit():
        raise _problem(file, 1, "version", "the workflow has no whole-number version to raise")
    return f"{text[:node.start_mark.index]}{int(node.value) + 1}{text[node.end_mark.index:]}"


def _child(node: yaml.Node | None, key: str | int) -> yaml.Node | None:
    if isinstance(key, int):
        return node.value[key] if isinstance(node, yaml.SequenceNode) and key < len(node.value) else None
    if isinstance(node, yaml.MappingNode):
        return next((value for name, value in node.value if isinstance(name, yaml.ScalarNode) and name.value == key), None)
    return None


def _problem(file: str, line: int, step: str, message: str) -> WorkflowFileError:
    return WorkflowFileError([Problem(file, line, 1, step, message)])
