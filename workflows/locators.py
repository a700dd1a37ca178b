"""Locators: how a step names the element it works on.

A locator is a Playwright selector string (CSS, or an engine-prefixed one such as ``text=Save``), or a
mapping that says *how* to find the element the way a person would describe it::

    locator: "#postcode"                                  # CSS
    locator: {label: "Postcode"}                          # the field labelled "Postcode"
    locator: {role: button, name: "Save address"}         # the button whose accessible name is "Save address"
    locator: {text: "Change address"}                     # the element showing this text
    locator: {placeholder: "Search by reference"}
    locator: {test_id: "save"}                            # data-testid="save"
    locator: [{label: "Postcode"}, "#postcode"]           # alternatives, tried in the order written

With alternatives, the first one showing on the page is used; when that is not the first one written the
bot counts a *locator fallback*, so authors learn that the page changed before the workflow breaks.
Every string in a locator is a template (``{"text": "{{ case.case_ref }}"}``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from .templating import Template

AriaRole = Literal[
    "alert", "alertdialog", "application", "article", "banner", "blockquote", "button", "caption", "cell",
    "checkbox", "code", "columnheader", "combobox", "complementary", "contentinfo", "definition", "deletion",
    "dialog", "directory", "document", "emphasis", "feed", "figure", "form", "generic", "grid", "gridcell",
    "group", "heading", "img", "insertion", "link", "list", "listbox", "listitem", "log", "main", "marquee",
    "math", "meter", "menu", "menubar", "menuitem", "menuitemcheckbox", "menuitemradio", "navigation", "none",
    "note", "option", "paragraph", "presentation", "progressbar", "radio", "radiogroup", "region", "row",
    "rowgroup", "rowheader", "scrollbar", "search", "searchbox", "separator", "slider", "spinbutton", "status",
    "strong", "subscript", "superscript", "switch", "tab", "table", "tablist", "tabpanel", "term", "textbox",
    "time", "timer", "toolbar", "tooltip", "tree", "treegrid", "treeitem",
]


class _By(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ByCss(_By):
    """The elements matching a CSS selector."""

    css: Template


class ByText(_By):
    """The element showing this text (a substring, case-insensitive, unless ``exact``)."""

    text: Template
    exact: bool = False


class ByRole(_By):
    """The element with this ARIA role and, optionally, this accessible name: how assistive technology sees it."""

    role: AriaRole
    name: Template | None = None
    exact: bool = False


class ByLabel(_By):
    """The form field whose ``<label>`` (or ``aria-label``) reads this text."""

    label: Template
    exact: bool = False


class ByPlaceholder(_By):
    """The input whose placeholder reads this text."""

    placeholder: Template
    exact: bool = False


class ByTestId(_By):
    """The element whose ``data-testid`` attribute has this value."""

    test_id: Template


_KINDS: dict[str, type[_By]] = {
    "css": ByCss, "text": ByText, "role": ByRole, "label": ByLabel, "placeholder": ByPlaceholder, "test_id": ByTestId,
}

LOCATOR_KEYS = frozenset(name for model in _KINDS.values() for name in model.model_fields)
"""The keys a locator mapping may have (``css``, ``text``, ``role``, ``name``, …)."""

LOCATOR_HELP = "a selector text, a mapping with one of css, text, role, label, placeholder or test_id, or a list of those"


def _kind_of(value: Any) -> str | None:
    if isinstance(value, str):
        return "by:selector"
    if isinstance(value, _By):
        return next(f"by:{k}" for k, m in _KINDS.items() if isinstance(value, m))
    if isinstance(value, dict):
        kinds = [k for k in _KINDS if k in value]
        return f"by:{kinds[0]}" if len(kinds) == 1 else None
    return None


if TYPE_CHECKING:  # the union below is built from _KINDS at run time, which a type checker cannot follow
    LocatorSpec = Union[Template, ByCss, ByText, ByRole, ByLabel, ByPlaceholder, ByTestId]
else:
    LocatorSpec = Annotated[
        Union[
            Annotated[Template, Tag("by:selector")],
            *(Annotated[model, Tag(f"by:{kind}")] for kind, model in _KINDS.items()),
        ],
        Discriminator(_kind_of, custom_error_type="bad_locator", custom_error_message=f"a locator is {LOCATOR_HELP}"),
    ]
"""One way to find an element."""


def _one_or_list(value: Any) -> str:
    return "locator:list" if isinstance(value, list) else "locator:one"


Locator = Annotated[
    Union[
        Annotated[LocatorSpec, Tag("locator:one")],
        Annotated[list[LocatorSpec], Field(min_length=1, max_length=10), Tag("locator:list")],
    ],
    Discriminator(_one_or_list),
]
"""One way to find an element, or an ordered list of alternatives tried in turn."""


def alternatives(locator: "Locator") -> list["str | _By"]:
    """The alternatives of a locator, in the order written (one for a single locator)."""
    return list(locator) if isinstance(locator, list) else [locator]


def describe(spec: "str | _By") -> str:
    """A short human description of one alternative, for messages and ``explain``."""
    if isinstance(spec, str):
        return spec
    parts = [f"{k}={v!r}" for k, v in spec.model_dump(exclude_defaults=True).items()]
    return "{" + ", ".join(parts) + "}"
