"""Templates in workflow files: a sandboxed Jinja subset, checked before any case is run.

Templates come only from reviewed workflow files. Case values are passed in as data and are never
compiled, so a case whose address reads ``{{ 7*7 }}`` is typed into the form exactly like that.
The checks at validation time (syntax, no ``_``-names, known roots, known case fields and secrets) are
the first line of defence; Jinja's immutable sandbox is the second.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import TemplateRenderError

ROOTS = ("case", "vars", "secrets", "output")


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
    env.globals.clear()  # no range(), lipsum(), cycler(), …: data in, text out
    return env


_ENV = _environment()


def is_template(text: str) -> bool:
    """Whether a string holds template syntax at all (plain strings skip rendering)."""
    return "{{" in text or "{%" in text or "{#" in text


def check_template(text: str, case_fields: set[str], secret_names: set[str]) -> list[str]:
    """Return the problems of one template (empty when it is fine).

    Args:
        text: the template source from a workflow file.
        case_fields: the names of the workflow's input fields.
        secret_names: the names of the secrets the workflow declares.
    """
    try:
        tree = _ENV.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return [f"template syntax error: {exc.message}"]
    problems: list[str] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if isinstance(node, nodes.Name):
            if node.ctx == "load" and node.name not in ROOTS:
                problems.append(f"unknown name '{node.name}' in template; expected one of {', '.join(ROOTS)}")
            continue
        attr = node.attr if isinstance(node, nodes.Getattr) else _const(node.arg)
        if isinstance(attr, str) and attr.startswith("_"):
            problems.append(f"access to '{attr}' is not allowed in templates (names starting with _ are private)")
            continue
        if isinstance(node.node, nodes.Name) and isinstance(attr, str):
            root = node.node.name
            if root == "case" and attr not in case_fields:
                problems.append(f"the template uses case.{attr}, but the input schema has no field '{attr}'")
            if root == "secrets" and attr not in secret_names:
                problems.append(f"the template uses secrets.{attr}, but the workflow declares no secret '{attr}'")
    return problems


def _const(node: nodes.Node) -> Any:
    return node.value if isinstance(node, nodes.Const) else None


@lru_cache(maxsize=4096)
def _compiled(text: str) -> jinja2.Template:
    return _ENV.from_string(text)


def render(text: str, context: Mapping[str, Any]) -> str:
    """Render one template with ``case``, ``vars``, ``secrets`` and ``output`` in ``context``.

    Raises:
        TemplateRenderError: an undefined value or a sandbox violation; the message names the cause,
            never a value.
    """
    if not is_template(text):
        return text
    try:
        return _compiled(text).render(**context)
    except jinja2.UndefinedError as exc:
        raise TemplateRenderError(f"template value missing: {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateRenderError(f"template refused by the sandbox: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateRenderError(f"template failed: {type(exc).__name__}") from None


def secret_names_in(text: str) -> Iterator[str]:
    """The secret names a template refers to (``secrets.NAME``)."""
    if not is_template(text):
        return
    for node in _ENV.parse(text).find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "secrets":
            yield node.attr
