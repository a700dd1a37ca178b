"""The language reference (``docs/workflow-reference.md``), generated from the models and their docstrings.

``autoclerk reference`` prints it; a test fails when the checked-in copy drifts from the models, so the
reference cannot fall behind the language.
"""

from __future__ import annotations

import inspect
import re
import typing
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from . import locators
from .inputs import InputField
from .model import Lookup, Session, System, Verify, Workflow
from .steps import BUILTIN_ARGS, ConditionArgs, ensure_models, flow, page
from .templating import FILTERS, ExpressionMarker, TemplateMarker

_FIELD_HELP: dict[str, str] = {
    "locator": "The element (see [Locators](#locators)).",
    "timeout_ms": "Overrides the step timeout for this step.",
    "to": "Where the value goes: `vars.NAME` (for later steps) or `output.NAME` (reported back).",
    "steps": "The steps of the group.",
    "submit": "This step changes the target system (see `lookup` and `at_most_once`).",
    "description": "Free text for the people who read the file.",
}
"""What a field means, by its key, for fields that carry no description: only texts that are right for
every model with a field of that key."""

_MODEL_FIELD_HELP: dict[tuple[type[BaseModel], str], str] = {
    (page.Goto, "url"): "The address, relative to the system's base URL (a template).",
    (page.Fill, "value"): "The text to type (a template).",
    (page.Select, "value"): "The option's `value` attribute (a template).",
    (page.Select, "label"): "The option's visible text (a template).",
    (page.Press, "key"): "The key as Playwright names it (`Enter`, `Tab`, `Escape`, `ArrowDown`, `Control+A`), "
                         "or one character.",
    (page.Press, "locator"): "The element to press the key in (it gets the focus first); without it, the key goes "
                             "to the page.",
    (page.WaitFor, "locator"): "The element to wait for (see [Locators](#locators)).",
    (page.WaitFor, "state"): "With `locator`: `visible` (one match is showing), `hidden` (none is showing, or none "
                             "is there), `attached` (one is in the page, showing or not) or `detached` (none is).",
    (page.WaitFor, "network_idle"): "`true`: wait until the page has made no network request for 500 ms.",
    (page.Extract, "read"): "What to read (see above).",
    (page.Extract, "attribute"): "The attribute to read; with `read: auto` it makes the step read it.",
    (page.Extract, "optional"): "`true`: when no element matches at that moment (checked once, without waiting), "
                                "the name is left unset and the step succeeds.",
    (page.Dialog, "action"): "`accept` (OK) or `dismiss` (Cancel).",
    (page.Screenshot, "name"): "The file name, without `.png`, in the attempt's evidence folder (its `lookup/` "
                               "subfolder in a lookup, `run-2/` in a second run of the steps within the attempt).",
    (page.Screenshot, "full_page"): "`false`: only the part of the page in the window.",
    (flow.Assert, "message"): "What the person the case goes back to reads (a template).",
    (flow.Assert, "code"): "A short name for the reason, kept as the case's error class.",
    (flow.Fail, "message"): "The case's message (a template).",
    (flow.Fail, "code"): "A short name for the reason, kept as the case's error class (business only).",
    (flow.Fail, "kind"): "`business`: the case goes back to a person; `application`: it is tried again, up to "
                         "`max_attempts`.",
    (flow.Set, "value"): "The text to store (a template).",
    (flow.Set, "expr"): "An expression whose value is stored, of any type: `case.amount * 2`.",
    (flow.If, "then"): "The steps run when the condition holds.",
    (flow.If, "else"): "The steps run when it does not.",
    (flow.ForEach, "items"): "The list: `case.dependants`, or a list an earlier `extract` stored in `vars`.",
    (flow.ForEach, "as"): "The item's name: `vars.<as>`, its position (from 1) `vars.<as>_number`.",
    (flow.ForEach, "max_items"): "The longest list the loop takes; a longer one is a business exception.",
    (flow.Call, "workflow"): "The workflow file to run, relative to this one.",
    (flow.Call, "with"): "The called workflow's input fields, by name (templates).",
    (flow.Call, "to"): "Where the called workflow's outputs go, as one mapping: `vars.NAME` or `output.NAME`.",
    (flow.Retry, "attempts"): "How many times the steps run at most, the first included.",
    (flow.Retry, "delay_ms"): "The pause between two tries.",
    (ConditionArgs, "timeout_ms"): "The older spelling of `within_ms`.",
    (locators.ByCss, "css"): "A CSS selector (a template).",
    (locators.ByText, "text"): "The text the element shows (a template).",
    (locators.ByText, "exact"): "`true`: the whole text, case and all; otherwise a part of it, in any case.",
    (locators.ByRole, "role"): "The ARIA role: `button`, `link`, `textbox`, `combobox`, `option`, `row`…",
    (locators.ByRole, "name"): "The accessible name: a button's or a link's text, a field's label (a template).",
    (locators.ByRole, "exact"): "`true`: the whole name, case and all; otherwise a part of it, in any case.",
    (locators.ByLabel, "label"): "The text of the field's `<label>` or `aria-label` (a template).",
    (locators.ByLabel, "exact"): "`true`: the whole label, case and all; otherwise a part of it, in any case.",
    (locators.ByPlaceholder, "placeholder"): "The placeholder text (a template).",
    (locators.ByPlaceholder, "exact"): "`true`: the whole placeholder, case and all; otherwise a part of it, in any "
                                       "case.",
    (locators.ByTestId, "test_id"): "The value of the element's `data-testid` attribute (a template).",
    (InputField, "type"): "What the value must be; a row whose value is not is rejected at hand-off.",
    (InputField, "required"): "`false`: the field may be left empty.",
    (InputField, "min_length"): "The fewest characters a text value may have.",
    (InputField, "max_length"): "The most characters a text value may have.",
    (InputField, "minimum"): "The smallest value of an `integer` or `decimal` field.",
    (InputField, "maximum"): "The largest value of an `integer` or `decimal` field.",
}
"""What a field means in one model (and the models based on it), by ``(model, key)``: for a field whose
model carries no description, or whose inherited description is wrong for this model. An entry wins over
the field's own description, so it must not shadow one the model itself declares (a test checks)."""

_SECTIONS: dict[type[BaseModel], str] = {
    Workflow: "The workflow file",
    System: "Target systems (`systems.NAME`)",
    Lookup: "The lookup (`lookup`)",
    Verify: "The verification (`verify`)",
    Session: "The session of a sign-in part (`session`)",
    InputField: "Input fields (`input.NAME`)",
}
"""The models with a section of their own, and its heading: a field of that type, and a description that
says "see `Name`", link to it."""

_CONDITIONS = """\
When a wait runs out, the condition is false (`if` runs `else`, `assert` hands the case back): it is not
a timeout. With alternatives, one of them showing counts as showing. `expr` is evaluated once.
"""
"""Added after the condition's own docstring (``ConditionArgs``), which says whether and how it waits."""

_SECRETS = """\
## Secrets and env values

A workflow names the secrets it needs (`secrets: [portal_password]`) and uses them as
`{{ secrets.portal_password }}`; their values are never in the file. A bot reads a secret from the
environment variable `AUTOCLERK_SECRET_` + the name in upper case (`AUTOCLERK_SECRET_PORTAL_PASSWORD`), or
else from the secrets file named by `AUTOCLERK_SECRETS_FILE`: a JSON object from secret name (as the
workflow writes it) to value. The environment wins when both have it.

```json
{"portal_password": "s3cret", "archive_token": "…"}
```

Env values are ordinary configuration, such as an office code, and may appear in logs and in `explain`.
A workflow declares them with a default (`env: {office: HQ}`) or without one (`env: {office: null}`:
it must be set), and uses them as `{{ env.office }}`. A bot reads `AUTOCLERK_ENV_` + the name in upper
case (`AUTOCLERK_ENV_OFFICE`), else the default. [Settings](settings.md#secrets-and-env-values) says where
to set them, and what happens when one is missing.
"""

INTRO = """# Workflow language reference

Generated from the models by `autoclerk reference`; do not edit by hand. The [tutorial](tutorial.md)
builds a workflow step by step; this page lists every field.

A workflow file is YAML: a header (name, version, target systems, secrets, env values, the input
schema), the `steps` a bot runs for each case, a `lookup` that finds a case done by an earlier
attempt, and a `verify` block that reads the record back after the submit. Fields marked *template* are rendered for each case with `{{ … }}` (see
[Templates](#templates)); *expression* fields hold a bare expression such as `case.amount > 100`.
`autoclerk validate FILE` checks a file; `autoclerk explain FILE --case ROW` shows what one case would do.
Verbs your team adds in Python are [custom steps](custom-steps.md): they are not listed here, and
`autoclerk schema` describes the ones installed.
"""


def reference_markdown() -> str:
    """The whole reference page as Markdown."""
    ensure_models()
    out = [INTRO]
    for model, title in _SECTIONS.items():
        out += _model_section(title, model, level=2)
    out.append(_SECRETS)
    out.append("## Steps\n")
    out.append("A step is a one-key mapping from its verb to its arguments. Verbs with a *short form* also take "
               "their main argument alone (`- click: \"#save\"`).\n")
    out.append("| Verb | What it does |\n|---|---|")
    for verb, model in BUILTIN_ARGS.items():
        out.append(f"| [`{verb}`](#{anchor(f'`{verb}`')}) | {_summary(model)} |")
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


def anchor(heading: str) -> str:
    """The anchor GitHub makes for a heading: its text in lower case, without anything but letters, digits,
    spaces, hyphens and underscores (underscores stay), each space a hyphen.

    Example: ``anchor("`wait_for`")`` is ``wait_for``; ``anchor("The lookup (`lookup`)")`` is
    ``the-lookup-lookup``.
    """
    text = heading.strip().lower()
    return "".join(c for c in text if c.isalnum() or c in " -_").replace(" ", "-")


def _doc(obj: Any) -> str:
    # reST's "text::" before an indented example: Markdown shows an indented block as code anyway
    return re.sub(r"::\n\n", ":\n\n", inspect.cleandoc(obj.__doc__ or "").replace("``", "`"))


def _summary(model: type[BaseModel]) -> str:
    return _doc(model).split("\n\n")[0].replace("\n", " ")


def _model_section(title: str, model: type[BaseModel], level: int, verb: str | None = None) -> list[str]:
    doc = _doc(model)
    text, _, example = doc.partition("Example:\n")
    out = [f"{'#' * level} {title}\n", text.strip() + "\n"]
    if issubclass(model, ConditionArgs):
        out += [_doc(ConditionArgs).strip() + "\n", _CONDITIONS]
    short = getattr(model, "short_form", None)
    if verb and short:
        out.append(f"Short form: `- {verb}: <{short}>`.\n")
    out.append("| Field | Type | Default | Meaning |\n|---|---|---|---|")
    fields = sorted(model.model_fields.items(), key=lambda item: item[0] == "timeout_ms")  # the shared one last
    for name, info in fields:
        key = info.alias or name
        out.append(f"| `{key}` | {_type(info)} | {_default(info)} | {_help(model, key, info)} |")
    out.append("")
    if example.strip():
        out += ["Example:\n", "```yaml", inspect.cleandoc(example), "```", ""]
    return out


def _field_help(model: type[BaseModel], key: str) -> str | None:
    """The entry of ``_MODEL_FIELD_HELP`` for this key of this model or of the nearest model it is based on."""
    for base in model.__mro__:
        if (base, key) in _MODEL_FIELD_HELP:
            return _MODEL_FIELD_HELP[base, key]
    return None


def _help(model: type[BaseModel], key: str, info: FieldInfo) -> str:
    text = _field_help(model, key) or info.description or _FIELD_HELP.get(key, "")
    for target, title in _SECTIONS.items():  # "see `Session`" → a link to its section
        text = text.replace(f"see `{target.__name__}`", f"see [{target.__name__}](#{anchor(title)})")
    text = _bare_names(text)
    return text.replace("|", "\\|").replace("\n", " ")


def _bare_names(text: str) -> str:
    """``AUTOCLERK_ENV_<NAME>`` outside backticks in code style, so that Markdown does not read ``<NAME>``
    as an HTML tag and drop it."""
    parts = re.split(r"(`[^`]*`)", text)  # the odd parts are code already
    return "".join(part if index % 2 else re.sub(r"\bAUTOCLERK_[A-Z_]*(?:<[A-Z]+>)?", r"`\g<0>`", part)
                   for index, part in enumerate(parts))


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
        title = _SECTIONS.get(annotation)
        return f"[{annotation.__name__}](#{anchor(title)})" if title else annotation.__name__
    if isinstance(annotation, typing.ForwardRef) or isinstance(annotation, str):
        return "steps"
    return {"str": "text", "int": "whole number", "bool": "true/false", "Decimal": "number"}.get(
        getattr(annotation, "__name__", ""), str(annotation))


