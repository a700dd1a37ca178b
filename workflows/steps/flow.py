"""Steps that direct the work: checks, explicit exceptions, variables, branches, loops, calls and retries.

The nested step lists are typed ``list["Step"]``; :mod:`.registry` resolves ``Step`` once the custom
steps are known.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from ..templating import Expression, Template
from .base import TARGET_PATTERN, ConditionArgs, StepArgs

if TYPE_CHECKING:  # at run time ``Step`` is the union that registry.ensure_models builds
    from .base import StepBase as Step

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"


class Assert(ConditionArgs):
    """Check that something holds; when it does not, the case goes back to a person with ``message``.

    Example::

        - assert: {expr: "vars.status == 'Open'", message: "The case is closed in the portal"}
        - assert: {visible: "#eligible", message: "Not eligible", code: not_eligible}
    """

    message: Template
    code: str = Field(default="assertion_failed", pattern=NAME_PATTERN)


class Fail(StepArgs):
    """End the transaction on purpose: ``business`` hands the case to a person, ``application`` retries it.

    Example::

        - fail: {message: "Cases abroad are done by hand", code: abroad}
    """

    message: Template
    code: str = Field(default="failed", pattern=NAME_PATTERN)
    kind: Literal["business", "application"] = "business"
    short_form = "message"


class Finish(StepArgs):
    """End the case here, as done: the steps after it do not run. ``output`` sets outputs first, for
    example the reference a search found, which becomes the case's reference; ``reason`` says why, for the
    log and ``explain``. It may sit anywhere, inside ``if`` too. In a part (``part: true``) it ends the
    part and returns to the caller, with the part's outputs.

    Example::

        - if:
            visible: "#existing-record"
            then:
              - extract: {locator: "#existing-record .ref", to: vars.found}
              - finish: {reason: "the record is already there", output: {reference: "{{ vars.found }}"}}
    """

    reason: str | None = Field(default=None, max_length=500, description="Why the case ends here (plain text, for "
                                                                         "the log and explain).")
    output: dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")], Template] = Field(
        default_factory=dict, description="Outputs to set before finishing (`reference` is the case's reference).")
    short_form = "reason"


class Set(StepArgs):
    """Store a value for later steps: a rendered ``value`` (text) or an ``expr`` (any type).

    Example::

        - set: {to: vars.full_name, value: "{{ case.first_name }} {{ case.last_name }}"}
        - set: {to: vars.total, expr: "case.amount * 2"}
    """

    to: str = Field(pattern=TARGET_PATTERN)
    value: Template | None = None
    expr: Expression | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "Set":
        if (self.value is None) == (self.expr is None):
            raise ValueError("give exactly one of 'value' or 'expr'")
        return self


class If(ConditionArgs):
    """Run ``then`` when the condition holds, else ``else`` (optional).

    Example::

        - if:
            expr: "case.contact == 'email'"
            then:
              - fill: {locator: "#email", value: "{{ case.email }}"}
            else:
              - check: "#by-post"
    """

    then: list["Step"] = Field(min_length=1)
    else_: list["Step"] | None = Field(default=None, alias="else")


class ForEach(StepArgs):
    """Run ``steps`` once for each item of a list (from the case or an earlier ``extract``).

    The item is ``vars.<as>`` and its position (from 1) ``vars.<as>_number``. Loops are bounded by
    ``max_items``: a longer list is a business exception, not a runaway bot.

    Example::

        - for_each:
            items: case.dependants
            as: dependant
            steps:
              - fill: {locator: "#name", value: "{{ vars.dependant }}"}
    """

    items: Expression
    as_: str = Field(default="item", alias="as", pattern=NAME_PATTERN)
    steps: list["Step"] = Field(min_length=1)
    max_items: int = Field(default=100, ge=1, le=10_000)


class Call(StepArgs):
    """Run another workflow file's steps (a shared sign-in, a common search) with arguments as its case.

    The path is relative to this file. ``with`` gives the called workflow's input fields; they are
    checked against its input schema. The called workflow's ``output`` can be kept in ``to``.

    Example::

        - call: {workflow: sign_in.yaml, with: {user: "{{ env.portal_user }}"}}
    """

    workflow: str = Field(pattern=r"^[^\x00]{1,250}\.ya?ml$")
    with_: dict[str, Template] = Field(default_factory=dict, alias="with")
    to: str | None = Field(default=None, pattern=TARGET_PATTERN)
    short_form = "workflow"


class Retry(StepArgs):
    """Run ``steps`` again when they fail for a technical reason (a timeout, a 5xx page), up to ``attempts``
    times, waiting ``delay_ms`` between tries. Business exceptions are not retried, and a group may not
    hold a submitting step: a submit is never repeated blindly.

    Example::

        - retry:
            attempts: 3
            steps:
              - goto: /reports/today
              - wait_for: "#report"
    """

    attempts: int = Field(default=3, ge=2, le=10)
    delay_ms: int = Field(default=1000, ge=0, le=60_000)
    steps: list["Step"] = Field(min_length=1)
