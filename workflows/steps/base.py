"""What every step shares: the argument base class, the step wrapper and conditions.

A step is written as a one-key mapping whose key is the verb; the value holds the verb's arguments::

    - fill: {locator: {label: Postcode}, value: "{{ case.postcode }}"}
    - click: "button[type=submit]"          # short form: the single most important argument alone
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..locators import LOCATOR_KEYS, Locator
from ..templating import Expression, Template

TARGET_PATTERN = r"^(vars|output)\.[A-Za-z][A-Za-z0-9_]*$"
"""Where a step may store a value: ``vars.NAME`` (for later steps) or ``output.NAME`` (reported back)."""


class StepArgs(BaseModel):
    """Base of every verb's arguments, including custom steps'. Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)

    short_form: ClassVar[str | None] = None
    """The field that ``verb: "value"`` (the short form) fills, if the verb has one."""

    timeout_ms: int | None = Field(default=None, gt=0, le=600_000, description="Overrides the step timeout for this step.")

    @model_validator(mode="before")
    @classmethod
    def _expand_short_form(cls, value: Any) -> Any:
        if value is None:
            return value
        if not isinstance(value, dict):
            return {cls.short_form: value} if cls.short_form else value
        if "locator" in cls.model_fields and "locator" not in value:
            # `click: {role: button, name: Save, submit: true}`: the locator's keys beside the step's own.
            keys = [k for k in value if k in LOCATOR_KEYS and k not in cls.model_fields]
            if keys:
                rest = {k: v for k, v in value.items() if k not in keys}
                return {"locator": {k: value[k] for k in keys}, **rest}
        return value


class StepBase(BaseModel):
    """A step: one field, named by the verb, holding that verb's :class:`StepArgs`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def verb(self) -> str:
        return next(iter(type(self).model_fields))

    @property
    def args(self) -> StepArgs:
        return getattr(self, self.verb)  # type: ignore[no-any-return]


class ConditionArgs(StepArgs):
    """A condition: exactly one of ``expr``, ``visible``, ``hidden``, ``url`` or ``text``.

    An element or page condition is checked once, at once: it does not wait. With ``within_ms`` the step
    waits up to that long for the condition to hold (an element to appear, or to disappear with
    ``hidden``; the address to match; the text to show), and goes on as soon as it does. After a click
    that loads a new page, give ``within_ms`` or a ``wait_for`` first, or the old page is checked.
    """

    expr: Expression | None = Field(default=None, description="An expression that must be true: `case.amount > 100`.")
    visible: Locator | None = Field(default=None, description="The element is showing.")
    hidden: Locator | None = Field(default=None, description="The element is not showing (or not there at all).")
    url: Template | None = Field(default=None, description="The page's address matches this glob: `*/cases/*`.")
    text: Template | None = Field(default=None, description="The page shows this text.")
    within_ms: int | None = Field(default=None, gt=0, le=600_000,
                                  description="Wait up to this long for the condition to hold; without it, it is "
                                              "checked once, at once.")

    @model_validator(mode="after")
    def _exactly_one_condition(self) -> "ConditionArgs":
        given = [n for n in ("expr", "visible", "hidden", "url", "text") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one condition: expr, visible, hidden, url or text"
                             + (f" (got {', '.join(given)})" if given else ""))
        return self

    @property
    def condition(self) -> tuple[str, Any]:
        """The condition's kind and its value."""
        for name in ("expr", "visible", "hidden", "url", "text"):
            value = getattr(self, name)
            if value is not None:
                return name, value
        raise AssertionError("unreachable: validated to hold one condition")
