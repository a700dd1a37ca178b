"""Steps that act on the page: navigate, type, choose, click, press, upload, wait, read, dialogs, screenshots."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from ..evidence import is_the_bots_own
from ..locators import Locator
from ..templating import Template
from .base import TARGET_PATTERN, StepArgs


class Goto(StepArgs):
    """Open a page of a target system. ``url`` is relative to the system's base URL, which comes from settings.

    Example::

        - goto: /cases?q={{ case.case_ref }}
        - goto: {url: /login, system: portal}
    """

    url: Template
    system: str | None = Field(default=None, description="Which system's base URL; defaults to the only one.")
    short_form = "url"

    @field_validator("url")
    @classmethod
    def _a_page(cls, url: str) -> str:
        scheme = url.strip().split(":", 1)[0].lower() if ":" in url.split("/", 1)[0] else ""
        if scheme in ("javascript", "data", "vbscript"):
            raise ValueError(f"a goto opens a page of a target system, not a '{scheme}:' address; to run a script "
                             "in the page, use evaluate")
        return url


class Fill(StepArgs):
    """Type a value into a text field, replacing what was there.

    Example::

        - fill: {locator: {label: Postcode}, value: "{{ case.postcode | upper }}"}
    """

    locator: Locator
    value: Template


class Select(StepArgs):
    """Choose an option of a ``<select>`` by its value or by its visible label (exactly one).

    An option the list does not have is a business exception: the case asks for something the system
    does not offer.

    Example::

        - select: {locator: "#contact", label: "By email"}
    """

    locator: Locator
    value: Template | None = None
    label: Template | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "Select":
        if (self.value is None) == (self.label is None):
            raise ValueError("give exactly one of 'value' or 'label'")
        return self


class Choose(StepArgs):
    """Pick from a type-and-pick widget (an autocomplete, a combobox, select2 and the like): type ``text``,
    wait for the list of options, click the option whose accessible name is ``option`` (by default, the
    text typed).

    ``locator`` is the text box, or the element that opens the widget: the step clicks it and types into
    whatever text box then has the focus. A ``<select>`` that a widget library has replaced stands for the
    widget's own combobox (the one around it, or just after it), so ``{label: …}`` finds the widget by its
    field's label. For an ``<input list=…>`` (a ``<datalist>``), whose popup cannot be clicked, the step
    types the text and then sets the field to the matching option of its list.

    The name matches as a part, in any case, unless ``exact: true``; when several options match, the one
    whose whole name it is wins. No matching option is a business exception (``no_such_option``), and so
    are several equally good ones (``ambiguous_option``): the bot never guesses. The step waits for the
    option up to its timeout, but stops sooner when the list has shown, held no such option and not
    changed for a second. When no list shows at all, the step times out (the case is tried again).

    Example::

        - choose: {locator: {label: Claimant}, text: "{{ case.surname }}", option: "{{ case.claimant_name }}"}
        - choose: {role: combobox, name: Country, text: Fra, option: France, exact: true}
    """

    locator: Locator = Field(description="The text box, or the element that opens the widget.")
    text: Template = Field(description="What to type into the widget (a template).")
    option: Template | None = Field(default=None, description="The accessible name of the option to pick (a "
                                                              "template); by default, the text typed.")
    exact: bool = Field(default=False, description="`true`: the option's whole name, case and all; otherwise a "
                                                   "part of it, in any case.")


class Check(StepArgs):
    """Tick a checkbox or choose a radio button.

    Example::

        - check: {label: "The customer agreed to the change"}
    """

    locator: Locator
    short_form = "locator"


class Uncheck(StepArgs):
    """Untick a checkbox.

    Example::

        - uncheck: "#newsletter"
    """

    locator: Locator
    short_form = "locator"


class Click(StepArgs):
    """Click an element. ``submit: true`` marks the click that changes the target system.

    A workflow with a submitting click must say how to recognise a case that was already done (a
    ``lookup`` block) or declare ``at_most_once: true``.

    Example::

        - click: {role: link, name: "Change address"}
        - click: {locator: "#save", submit: true}
    """

    locator: Locator
    submit: bool = False
    short_form = "locator"


class Evaluate(StepArgs):
    """Run a JavaScript function of the workflow file in the page: the escape hatch for what no verb does
    (a page whose own script is broken, a widget with no accessible handle).

    ``script`` is a function that takes one object; ``args`` are rendered for the case and passed as that
    object. Case values are passed only as arguments, never written into the script: ``validate`` refuses
    a template in ``script``. What the function returns (JSON values; a Promise is awaited) can be kept
    in ``to``. An exception thrown by the script is an application failure (the case is tried again);
    ``submit: true`` marks a script that changes the target system.

    Example::

        - evaluate:
            script: "(args) => document.querySelector('#ref').dataset.value + args.suffix"
            args: {suffix: "{{ case.case_ref }}"}
            to: vars.reference
    """

    script: str = Field(min_length=1, max_length=20000,
                        description="A JavaScript function of one argument (the rendered `args`), e.g. `(args) => …`.")
    args: dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")], Template] = Field(
        default_factory=dict, description="Named arguments, rendered for the case and passed as one object.")
    to: str | None = Field(default=None, pattern=TARGET_PATTERN, description="Where to keep what the function returns.")
    submit: bool = False
    short_form = "script"

    @field_validator("script")
    @classmethod
    def _no_template(cls, script: str) -> str:
        if "{{" in script or "{%" in script:
            raise ValueError("the script may not hold a template: pass case values in 'args' and read them from the "
                             "function's argument")
        stripped = script.strip()
        if not (stripped.startswith(("(", "async", "function")) or "=>" in stripped.split("\n", 1)[0]):
            raise ValueError("the script must be a function of one argument, e.g. \"(args) => args.ref\"")
        return script


class Press(StepArgs):
    """Press a key (``Enter``, ``Tab``, ``Escape``, ``Control+A``) in an element, or on the page when no locator is given.

    Example::

        - press: {locator: "#search", key: Enter}
    """

    key: str = Field(pattern=r"^[A-Za-z0-9+]{1,40}$|^.$")
    locator: Locator | None = None
    submit: bool = Field(default=False, description="This key press changes the target system (see click).")
    short_form = "key"


class Upload(StepArgs):
    """Attach one or more files to a file input. Paths are relative to the files folder in settings,
    and a path that leaves that folder is refused.

    Example::

        - upload: {locator: "#attachment", files: "{{ case.evidence_file }}"}
    """

    locator: Locator
    files: Template | list[Template] = Field(description="A path, or a list of paths, of the files to attach.")


class WaitFor(StepArgs):
    """Wait until something is true: an element is in a state, the address matches, a text shows, or the
    network has been idle. Exactly one of ``locator``, ``url``, ``text`` or ``network_idle``.

    Example::

        - wait_for: "#results"                        # the element is visible
        - wait_for: {locator: ".spinner", state: hidden}
        - wait_for: {url: "**/confirmation/*"}
        - wait_for: {text: "Address changed"}
        - wait_for: {network_idle: true}
    """

    locator: Locator | None = None
    state: Literal["visible", "hidden", "attached", "detached"] = "visible"
    url: Template | None = Field(default=None, description="A glob the page's address must match.")
    text: Template | None = Field(default=None, description="Text that must show on the page.")
    network_idle: bool = False
    short_form = "locator"

    @model_validator(mode="after")
    def _exactly_one(self) -> "WaitFor":
        given = [n for n in ("locator", "url", "text") if getattr(self, n) is not None] + (
            ["network_idle"] if self.network_idle else [])
        if len(given) != 1:
            raise ValueError("give exactly one of 'locator', 'url', 'text' or 'network_idle: true'")
        return self


class Extract(StepArgs):
    """Read from the page into ``vars.NAME`` (for later steps) or ``output.NAME`` (reported back).

    ``read`` says what: ``text`` (the element's visible text), ``value`` (a form field's value),
    ``attribute`` (with ``attribute: NAME``), ``table`` (a ``<table>``'s rows as a list of mappings keyed
    by the column headings in snake_case), ``list`` (the texts of every matching element) or ``count``
    (how many elements match). ``auto``, the default, reads a field's value or else its text.
    With ``optional: true`` a missing element leaves the name unset instead of failing the step.

    Example::

        - extract: {locator: "#confirmation-ref", to: output.reference}
        - extract: {locator: "#history", read: table, to: vars.history}
    """

    locator: Locator
    to: str = Field(pattern=TARGET_PATTERN)
    read: Literal["auto", "text", "value", "attribute", "table", "list", "count"] = "auto"
    attribute: str | None = Field(default=None, pattern=r"^[A-Za-z_:][-A-Za-z0-9_:.]*$")
    optional: bool = False

    @model_validator(mode="after")
    def _attribute_with_read(self) -> "Extract":
        if self.read == "attribute" and not self.attribute:
            raise ValueError("read: attribute needs 'attribute: NAME'")
        if self.attribute and self.read not in ("auto", "attribute"):
            raise ValueError(f"'attribute' does not go with read: {self.read}")
        return self

    @property
    def reads(self) -> str:
        """What is read, with ``auto`` resolved to ``attribute`` when one is named."""
        return "attribute" if self.attribute else self.read


class Dialog(StepArgs):
    """Decide what to do with the next JavaScript ``alert``, ``confirm`` or ``prompt`` (put it before the
    step that opens it). Dialogs no step expects are dismissed.

    Example::

        - dialog: accept
        - click: "#delete"                 # opens "Are you sure?"
        - dialog: {action: accept, prompt_text: "{{ case.case_ref }}", to: vars.question}
    """

    action: Literal["accept", "dismiss"]
    prompt_text: Template | None = Field(default=None, description="What to type into a prompt before accepting it.")
    to: str | None = Field(default=None, pattern=TARGET_PATTERN, description="Store the dialog's message here.")
    short_form = "action"


class Screenshot(StepArgs):
    """Keep a screenshot of the page as evidence (secret fields masked), named after ``name``.

    The names the bot gives its own evidence (``failure``, ``verify-before``, ``verify-after``, ``heal-`` and a
    number) are refused: the step's picture would replace the bot's.

    Example::

        - screenshot: before-submit
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,60}$")
    full_page: bool = True
    short_form = "name"

    @field_validator("name")
    @classmethod
    def _not_the_bots_own(cls, name: str) -> str:
        if is_the_bots_own(name):
            raise ValueError(f"'{name}' is the name of a screenshot the bot takes itself; give this one another name")
        return name
