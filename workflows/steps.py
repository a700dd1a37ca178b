"""The step verbs of the workflow language, one pydantic model each.

A step is written as a one-key mapping whose key is the verb::

    - fill: {locator: "#postcode", value: "{{ case.postcode }}"}
    - click: "button[type=submit]"          # short form: the locator alone

Fields typed :data:`Template` are rendered from the case at run time; everything else is literal.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator


class TemplateMarker:
    """Metadata marking a string field as a template (checked at validation, rendered per case)."""


Template = Annotated[str, TemplateMarker()]
Locator = Union[Template, list[Template]]
"""A Playwright selector (CSS, ``text=…``, ``role=button[name="…"]``, ``internal:label=…``) or an ordered
list of alternatives tried in turn."""


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    short_form: ClassVar[str | None] = None
    """The field that ``verb: "value"`` (the short form) fills, if the verb has one."""

    timeout_ms: int | None = Field(default=None, gt=0, le=600_000, description="Overrides the step timeout.")

    @model_validator(mode="before")
    @classmethod
    def _expand_short_form(cls, value: Any) -> Any:
        if cls.short_form and isinstance(value, (str, list)):
            return {cls.short_form: value}
        return value


class Goto(_Args):
    """Open a page of the target system. ``url`` is relative to the system's base URL."""

    url: Template
    system: str | None = Field(default=None, description="Which system's base URL; defaults to the only one.")
    short_form = "url"


class Fill(_Args):
    """Type a value into a text field, replacing what was there."""

    locator: Locator
    value: Template


class Select(_Args):
    """Choose an option of a ``<select>``, by its value or its visible label (exactly one)."""

    locator: Locator
    value: Template | None = None
    label: Template | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "Select":
        if (self.value is None) == (self.label is None):
            raise ValueError("give exactly one of 'value' or 'label'")
        return self


class Check(_Args):
    """Tick a checkbox or choose a radio button."""

    locator: Locator
    short_form = "locator"


class Uncheck(_Args):
    """Untick a checkbox."""

    locator: Locator
    short_form = "locator"


class Click(_Args):
    """Click an element. ``submit: true`` marks the click that changes the target system (irreversible)."""

    locator: Locator
    submit: bool = False
    short_form = "locator"


class WaitFor(_Args):
    """Wait until an element is visible."""

    locator: Locator
    short_form = "locator"


class Extract(_Args):
    """Read an element's text (or an attribute) into ``vars.NAME`` or ``output.NAME``.

    With ``optional: true`` a missing element leaves the name unset instead of failing the step.
    """

    locator: Locator
    to: str = Field(pattern=r"^(vars|output)\.[A-Za-z_][A-Za-z0-9_]*$")
    attribute: str | None = None
    optional: bool = False


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def verb(self) -> str:
        return next(iter(type(self).model_fields))

    @property
    def args(self) -> _Args:
        return getattr(self, self.verb)  # type: ignore[no-any-return]


class GotoStep(_Step):
    goto: Goto


class FillStep(_Step):
    fill: Fill


class SelectStep(_Step):
    select: Select


class CheckStep(_Step):
    check: Check


class UncheckStep(_Step):
    uncheck: Uncheck


class ClickStep(_Step):
    click: Click


class WaitForStep(_Step):
    wait_for: WaitFor


class ExtractStep(_Step):
    extract: Extract


STEP_MODELS: dict[str, type[_Step]] = {
    "goto": GotoStep,
    "fill": FillStep,
    "select": SelectStep,
    "check": CheckStep,
    "uncheck": UncheckStep,
    "click": ClickStep,
    "wait_for": WaitForStep,
    "extract": ExtractStep,
}


def _verb_of(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        verb = next(iter(value))
        return verb if verb in STEP_MODELS else None
    if isinstance(value, _Step):
        return value.verb
    return None


Step = Annotated[
    Union[tuple(Annotated[model, Tag(verb)] for verb, model in STEP_MODELS.items())],  # type: ignore[misc]
    Discriminator(
        _verb_of,
        custom_error_type="unknown_step",
        custom_error_message="unknown step",
    ),
]
"""One step: a one-key mapping from a verb in :data:`STEP_MODELS` to its arguments."""

StepKind = Literal["goto", "fill", "select", "check", "uncheck", "click", "wait_for", "extract"]
