"""The workflow file: header, target systems, input schema, steps and the idempotency declaration.

Example (``workflows/examples/change_of_address.yaml`` is a complete one)::

    name: change-of-address
    version: 1
    systems:
      portal: {business_error: ".error-summary"}
    secrets: [portal_password]
    input:
      case_ref: {type: string, pattern: "^CASE-[0-9]{6}$"}
    steps:
      - goto: /login
      - click: {locator: "#submit", submit: true}
    lookup:
      - extract: {locator: "#last-change", to: output.reference, optional: true}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from .inputs import InputField
from .locators import Locator
from .templating import case_fields_in
from .steps import StepBase, submits, uses_steps, walk

if TYPE_CHECKING:
    from .steps import Step  # noqa: F401 - resolved by steps.registry.ensure_models

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
SECRET_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


class System(BaseModel):
    """A target system the workflow works on. Its base URL comes from settings, never from the file.

    Example::

        portal:
          description: Legacy case management
          business_error: ".error-summary"   # the system's own validation message
          block_resources: [image, font, media]
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str | None = None
    business_error: str | None = Field(
        default=None,
        description="Selector of the system's validation message; when it shows, the case goes back to a person.",
    )
    block_resources: list[str] = Field(
        default_factory=list,
        description="Resource types the bot does not load from this system (image, font, media, stylesheet).",
    )


class Session(BaseModel):
    """Declares that a part signs in to a target system, so that a bot signs in once and reuses the session.

    A worker keeps the session (its cookies) per system and per set of call arguments. The next ``call`` of
    the part opens ``resume`` with those cookies instead of running the sign-in steps; when the system shows
    ``signed_out`` there (the session expired), or later in a transaction, the bot signs in again.

    Example::

        session:
          system: portal
          resume: /cases                 # a page only a signed-in user sees
          signed_out: "#login-form"      # what the system shows when it wants a sign-in
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str = Field(description="The target system the part signs in to.")
    resume: str = Field(pattern=r"^/", description="The path a reused session starts from (under the system's base URL).")
    signed_out: Locator = Field(description="An element of the system's sign-in page: when it shows, the session is gone.")


@uses_steps
class Lookup(BaseModel):
    """The steps that find a case's record in the target system, and when they run.

    A lookup only reads: it sets ``output.reference`` when it finds the record, and a case it finds ends
    done with that reference, without running ``steps`` (nothing is submitted). The plain list form
    (``lookup: [steps]``) means ``when: retry``.

    - ``retry`` protects against the one double submission a bot can cause itself: an attempt that may
      have submitted (the browser died, the lease ran out) is never followed by a second submit before
      the lookup has looked. A submit that answers 5xx is looked up the same way, within its attempt, before
      that attempt submits again. An operator's deliberate "run again" also runs it first. It does **not**
      protect against a record made outside this ledger: a case done by hand, or handed off again on a
      new ledger.
    - ``always`` runs it before every attempt, the first one included: re-running a file on a new ledger,
      cases that people may already have done by hand, or a second system feeding the same target. It
      costs one search per attempt.

    Example::

        lookup:
          when: always
          steps:
            - goto: /cases?ref={{ case.case_ref }}
            - extract: {locator: "#last-change", to: output.reference, optional: true}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: Literal["retry", "always"] = Field(
        default="retry",
        description="`retry`: before an attempt that follows one that may have submitted (and before an operator's "
                    "run again); `always`: before every attempt, the first included.")
    steps: list["Step"] = Field(min_length=1, description="Read-only steps; they set output.reference when the record is found.")


def _lookup_form(value: Any) -> str:
    """Which form a ``lookup`` is written in, so that a mistake is reported for that form only."""
    return "Lookup" if isinstance(value, (dict, Lookup)) else "Steps"


@uses_steps
class Verify(BaseModel):
    """The steps that read the target system's record back after a successful submit, and which cases they check.

    They run in a fresh browser context once the submit succeeded, and only read: they find the record (by
    the reference, say) and ``assert`` that its fields are the case's. A case they check ends ``verified``; an
    assertion that fails hands the case to a person (``verify_failed``) with the evidence, and nothing is
    submitted again; a verification that cannot run (the system is down) is tried again later, the submit
    not repeated. The plain list form (``verify: [steps]``) means ``sample: 1`` and ``delay_s: 0``.

    Example::

        verify:
          sample: 0.1          # one case in ten, the same ones on every run (chosen by reference)
          delay_s: 0           # above 0: a sweep runs the verification that many seconds later
          steps:
            - goto: /cases/{{ case.case_ref }}
            - extract: {locator: "#postcode", to: vars.postcode}
            - assert: {expr: "vars.postcode == case.postcode", message: "The portal does not hold the new postcode"}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample: float = Field(default=1.0, gt=0, le=1,
                          description="The share of cases verified (0 < sample ≤ 1), chosen deterministically by reference.")
    delay_s: float = Field(default=0, ge=0, le=30 * 86400,
                           description="Seconds after the submit the verification runs; above 0 a sweep runs it "
                                       "later, and the case is `unverified` until then.")
    steps: list["Step"] = Field(min_length=1, description="Read-only steps that read the record back and assert.")

    def samples(self, case_ref: str) -> bool:
        """Whether the case with this reference is verified: the same answer on every run and every worker."""
        if self.sample >= 1:
            return True
        point = int.from_bytes(hashlib.sha256(case_ref.encode()).digest()[:8], "big") / 2**64
        return point < self.sample

    def case_fields(self) -> list[str]:
        """The case fields the verify steps name (what a verification compares), each once, in order."""
        names: list[str] = []
        for _, step in walk(self.steps, ("verify", "steps")):
            for text in _texts(step.args.model_dump(exclude_none=True)):
                names += [name for name in _case_fields(text) if name not in names]
        return names


def _case_fields(text: str) -> list[str]:
    """The case fields a template, or a bare expression (``expr``, ``if``), names."""
    found = list(case_fields_in(text))
    if found or "case" not in text:
        return found
    try:
        return list(case_fields_in("{{ (" + text + ") }}"))
    except jinja2.TemplateSyntaxError:  # not an expression: text that says "case"
        return []


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _verify_form(value: Any) -> str:
    """Which form a ``verify`` is written in, so that a mistake is reported for that form only."""
    return "Verify" if isinstance(value, (dict, Verify)) else "Steps"


@uses_steps
class Workflow(BaseModel):
    """One workflow definition, as validated from its YAML file.

    Example::

        name: change-of-address
        version: 3
        description: Change a customer's postal address in the case portal.
        systems: {portal: {business_error: ".error-summary"}}
        secrets: [portal_password]
        env: {office: "HQ"}
        input:
          case_ref: {type: string}
        steps:
          - goto: /cases/{{ case.case_ref }}
        at_most_once: true
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="Lower-case name; with the version it identifies the workflow.")
    version: int = Field(ge=1, description="Raise it whenever the steps change.")
    description: str | None = None
    part: bool = Field(
        default=False,
        description="Only ever run through `call` from another workflow: needs no reference field and is never handed off.",
    )
    session: Session | None = Field(
        default=None,
        description="For a sign-in part: the session it opens is kept and reused (see `Session`).",
    )
    systems: dict[str, System] = Field(min_length=1, description="The target systems, by the names steps use.")
    secrets: list[Annotated[str, Field(pattern=SECRET_NAME_PATTERN)]] = Field(
        default_factory=list, description="Names of the secrets the steps may use (`secrets.NAME`).")
    env: dict[Annotated[str, Field(pattern=SECRET_NAME_PATTERN)], str | None] = Field(
        default_factory=dict,
        description="Environment values the steps may use (`env.NAME`): read from `AUTOCLERK_ENV_<NAME>`, else this default.",
    )
    input: dict[str, InputField] = Field(default_factory=dict, description="The typed fields of a case.")
    reference_field: str = Field(default="case_ref", description="The input field that identifies a case.")
    max_attempts: int = Field(default=3, ge=1, le=20, description=(
        "Attempts before a case is failed. Attempts the bots' own machinery cut short (their browser or page "
        "crashed, their worker died or stalled) do not count, up to 2 per case: each raises the case's maximum by one."))
    steps: list["Step"] = Field(min_length=1, description="What the bot does for each case, in order.")
    lookup: Annotated[Annotated[list["Step"], Tag("Steps")] | Annotated[Lookup, Tag("Lookup")],
                      Discriminator(_lookup_form)] | None = Field(
        default=None,
        description="Steps that find the case's record in the target system (they set output.reference when "
                    "found), as a list (run before a retry, and after a 5xx on a submit) or as `{when: retry | always, steps: […]}` (see `Lookup`).",
    )
    at_most_once: bool = Field(
        default=False,
        description="With no lookup: a case whose submit may have happened goes to a person, never retried.",
    )
    verify: Annotated[Annotated[list["Step"], Tag("Steps")] | Annotated[Verify, Tag("Verify")],
                      Discriminator(_verify_form)] | None = Field(
        default=None,
        description="Read-only steps that read the record back after a successful submit and assert it holds the "
                    "case's values, as a list (every case, at once) or as `{sample: 0.1, delay_s: 0, steps: […]}` "
                    "(see `Verify`).",
    )


    @field_validator("input")
    @classmethod
    def _no_reserved_names(cls, value: dict[str, InputField]) -> dict[str, InputField]:
        reserved = [name for name in value if name.startswith("_")]
        if reserved:
            raise ValueError(f"the input field '{reserved[0]}' starts with '_'; names starting with '_' are reserved "
                             "for columns Autoclerk reads itself, such as _deadline")
        return value

    @property
    def lookup_steps(self) -> list[StepBase] | None:
        """The lookup's steps, whichever form the file uses (``None`` when there is no lookup)."""
        if isinstance(self.lookup, Lookup):
            return list(self.lookup.steps)
        return list(self.lookup) if self.lookup is not None else None

    @property
    def lookup_when(self) -> str | None:
        """When the lookup runs: ``retry``, ``always``, or ``None`` when there is no lookup."""
        if self.lookup is None:
            return None
        return self.lookup.when if isinstance(self.lookup, Lookup) else "retry"

    @property
    def verification(self) -> Verify | None:
        """The ``verify`` block in its full form, whichever form the file uses (``None`` when there is none)."""
        if self.verify is None or isinstance(self.verify, Verify):
            return self.verify
        return Verify(steps=list(self.verify))

    @property
    def verify_label(self) -> str:
        """How the bot names the verify steps in errors: ``verify`` or ``verify.steps``, as the file writes them."""
        return "verify.steps" if isinstance(self.verify, Verify) else "verify"

    def all_steps(self) -> Iterator[tuple[tuple[str | int, ...], StepBase]]:
        """Every step of ``steps``, ``lookup`` and ``verify``, nested ones included, with its data path."""
        yield from walk(self.steps, ("steps",))
        if isinstance(self.lookup, Lookup):
            yield from walk(self.lookup.steps, ("lookup", "steps"))
        else:
            yield from walk(self.lookup or [], ("lookup",))
        if isinstance(self.verify, Verify):
            yield from walk(self.verify.steps, ("verify", "steps"))
        else:
            yield from walk(self.verify or [], ("verify",))

    @property
    def has_submit(self) -> bool:
        """Whether a step of this file (not of the workflows it calls) changes the target system."""
        return any(submits(step) for _, step in walk(self.steps, ("steps",)))


BUNDLE_KEY = "autoclerk_bundle"


@dataclass(frozen=True)
class Needs:
    """What a workflow takes from where it runs: secret names, env values (name → default, ``None`` when
    it must be set) and target system names. Names only, never a value."""

    secrets: frozenset[str]
    env: dict[str, str | None]
    systems: frozenset[str]


@dataclass(frozen=True)
class LoadedWorkflow:
    """A validated workflow with its source text and the workflows it calls, each validated too.

    ``calls`` maps each ``call: {workflow: …}`` path, as written, to the called workflow. ``stored_text``
    is what the ledger keeps (the source, or a bundle of every source when the workflow calls others) and
    ``digest`` identifies exactly that text, so a worker on another host runs exactly the version that was
    handed off, without sharing files.
    """

    definition: Workflow
    source: str
    path: str
    calls: Mapping[str, "LoadedWorkflow"] = field(default_factory=dict)
    step_lines: Mapping[str, int] = field(default_factory=dict, compare=False)
    """The line of each step in its file, by the path a bot names it with (``steps[4].if.then[0].fail``)."""

    def where(self, step_path: str) -> str | None:
        """``file:line`` of the step a bot names by ``step_path``, following calls into the parts they run
        (``steps[0].call>sign_in.yaml[3].click``), or ``name vN, line L`` for a workflow loaded from the
        ledger; ``None`` when it cannot be told."""
        first, *inner = step_path.split(">")
        current: LoadedWorkflow = self
        path = first
        for segment in inner:
            ref, bracket, rest = segment.partition("[")
            if ref not in current.calls or not bracket:
                return None
            current, path = current.calls[ref], f"steps[{rest}"
        line = current.step_lines.get(path)
        if not line:
            return None
        if current.path.startswith("<"):  # loaded from the ledger: no file name, so name the workflow version
            return f"{current.definition.name} v{current.definition.version}, line {line}"
        return f"{current.path}:{line}"

    @property
    def stored_text(self) -> str:
        if not self.calls:
            return self.source
        return json.dumps(self._bundle(), sort_keys=True, ensure_ascii=False)

    def _bundle(self) -> dict[str, Any]:
        return {BUNDLE_KEY: 1, "source": self.source,
                "calls": {ref: called._bundle() for ref, called in sorted(self.calls.items())}}

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.stored_text.encode()).hexdigest()[:16]

    def needs(self) -> Needs:
        """What running it takes from its surroundings, its called workflows included: the secrets, the env
        values (name → default, ``None``: must be set) and the target systems it names."""
        secrets, env, systems = set(self.definition.secrets), dict(self.definition.env), set(self.definition.systems)
        for called in self.calls.values():
            inner = called.needs()
            secrets |= inner.secrets
            systems |= inner.systems
            for name, default in inner.env.items():
                env[name] = default if env.get(name, default) is not None else None
        return Needs(frozenset(secrets), env, frozenset(systems))

    @property
    def submits(self) -> bool:
        """Whether running it may change a target system, through its own steps or a called workflow's."""
        return self.definition.has_submit or any(called.submits for called in self.calls.values())
