"""The language reference (``docs/workflow-reference.md``), generated from the models and their docstrings.

``autoclerk reference`` prints it; a test fails when the checked-in copy drifts from the models, so the
reference cannot fall behind the language.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from . import locators
from .inputs import InputField
from .model import Lookup, System, Workflow
from .steps import BUILTIN_ARGS, ensure_models
from .templating import FILTERS, ExpressionMarker, TemplateMarker

_FIELD_HELP = {
    "locator": "The element (see [Locators](#locators)).",
    "timeout_ms": "Overrides the step timeout for this step.",
    "to": "Where the value goes: `vars.NAME` (for later steps) or `output.NAME` (reported back).",
    "value": "The text to use (a template).",
    "then": "The steps run when the condition holds.",
    "else": "The steps run when it does not.",
    "steps": "The steps of the group.",
    "expr": "An expression that must be true: `case.amount > 100`.",
    "url": "The address, relative to the system's base URL (a template).",
    "label": "The option's visible text (a template).",
    "submit": "This step changes the target system (see `lookup` and `at_most_once`).",
    "description": "Free text for the people who read the file.",
}

INTRO = """# Workflow language reference

Generated from the models by `autoclerk reference`; do not edit by hand. The [tutorial](tutorial.md)
builds a workflow step by step; this page lists every field.

A workflow file is YAML: a header (name, version, target systems, secrets, env values, the input
schema), the `steps` a bot runs for each case, and a `lookup` that finds a case done by an earlier
attempt. Fields marked *template* are rendered for each case with `{{ … }}` (see
[Templates](#templates)); *expression* fields hold a bare expression such as `case.amount > 100`.
`autoclerk validate FILE` checks a file; `autoclerk explain FILE --case ROW` shows what one case would do.
"""


def reference_markdown() -> str:
    """The whole reference page as Markdown."""
    ensure_models()
    out = [INTRO]
    out += _model_section("The workflow file", Workflow, level=2)
    out += _model_section("Target systems (`systems.NAME`)", System, level=2)
    out += _model_section("The lookup (`lookup`)", Lookup, level=2)
    out += _model_section("Input fields (`input.NAME`)", InputField, level=2)
    out.append("## Steps\n")
    out.append("A step is a one-key mapping from its verb to its arguments. Verbs with a *short form* also take "
               "their main argument alone (`- click: \"#save\"`).\n")
    out.append("| Verb | What it does |\n|---|---|")
    for verb, model in BUILTIN_ARGS.items():
        out.append(f"| [`{verb}`](#{verb.replace('_', '')}) | {_summary(model)} |")
    out.append("")
    for verb, model in BUILTIN_ARGS.items():
        out += _model_section(f"`{verb}`", model, level=3, verb=verb)
    out.append("## Locators\n")
    out.append(_doc(locators).strip() + "\n")
    for locator in (locators.ByCss, locators.ByText, locators.ByRole, locators.ByLabel, locators.ByPlaceholder,
                    locators.ByTestId):
        out += _model_section(f"`{{{next(iter(locator.model_fields))}: …}}`", locator, level=3)
    out.append("## Templates\n")
    from . import templating

    out.append(_doc(templating).strip() + "\n")
    out.append("| Filter | Example |\n|---|---|")
    for name, function in FILTERS.items():
        out.append(f"| `{name}` | {(_doc(function) or '').strip()} |")
    out.append("")
    return "\n".join(out).rstrip() + "\n"


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "").replace("``", "`")


def _summary(model: type[BaseModel]) -> str:
    return _doc(model).split("\n\n")[0].replace("\n", " ")


def _model_section(title: str, model: type[BaseModel], level: int, verb: str | None = None) -> list[str]:
    doc = _doc(model)
    text, _, example = doc.partition("Example::")
    out = [f"{'#' * level} {title}\n", text.strip() + "\n"]
    short = getattr(model, "short_form", None)
    if verb and short:
        out.append(f"Short form: `- {verb}: <{short}>`.\n")
    out.append("| Field | Type | Default | Meaning |\n|---|---|---|---|")
    fields = sorted(model.model_fields.items(), key=lambda item: item[0] == "timeout_ms")  # the shared one last
    for name, info in fields:
        key = info.alias or name
        out.append(f"| `{key}` | {_type(info)} | {_default(info)} | {_help(key, info)} |")
    out.append("")
    if example.strip():
        out += ["Example:\n", "```yaml", inspect.cleandoc(example), "```", ""]
    return out


def _help(key: str, info: FieldInfo) -> str:
    return (info.description or _FIELD_HELP.get(key, "")).replace("|", "\\|").replace("\n", " ")


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        return f"`{value!r}`" if value else "empty"
    return "—" if info.default is None else f"`{str(info.default).lower() if isinstance(info.default, bool) else info.default}`"


def _type(info: FieldInfo) -> str:
    if any(isinstance(m, TemplateMarker) for m in info.metadata):
        return "template"
    if any(isinstance(m, ExpressionMarker) for m in info.metadata):
        return "expression"
    return _annotation(info.annotation)


def _annotation(annotation: Any) -> str:
    if annotation is None or annotation is type(None):
        return "none"
    metadata = getattr(annotation, "__metadata__", ())
    if any(isinstance(m, TemplateMarker) for m in metadata):
        return "template"
    if any(isinstance(m, ExpressionMarker) for m in metadata):
        return "expression"
    if annotation is locators.Locator or annotation == locators.Locator:
        return "locator"
    origin = get_origin(annotation)
    args = [a for a in get_args(annotation) if a is not type(None)]
    if origin is typing.Annotated:
        return _annotation(args[0])
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in get_args(annotation)) if len(get_args(annotation)) <= 8 else "ARIA role"
    if origin in (Union, getattr(__import__("types"), "UnionType", Union)):
        names = []
        for a in args:
            name = _annotation(a)
            if name not in names:
                names.append(name)
        if "locator" in names or any(n.startswith("By") for n in names):
            return "locator"
        return " or ".join(names)
    if origin is list:
        inner = _annotation(args[0]) if args else "any"
        return "steps" if inner in ("Step", "step") or "Step" in str(args[0]) else f"list of {inner}"
    if origin is dict:
        return f"mapping of name → {_annotation(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation.__name__
    if isinstance(annotation, typing.ForwardRef) or isinstance(annotation, str):
        return "steps"
    return {"str": "text", "int": "whole number", "bool": "true/false", "Decimal": "number"}.get(
        getattr(annotation, "__name__", ""), str(annotation))


