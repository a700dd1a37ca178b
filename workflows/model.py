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
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .inputs import InputField
from .steps import ClickStep, Step

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"


class System(BaseModel):
    """A target system the workflow works on. Its base URL comes from settings, never from the file.

    Example::

        portal:
          description: Legacy case management
          business_error: ".error-summary"   # the system's own validation message
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


class Workflow(BaseModel):
    """One workflow definition, as validated from its YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    version: int = Field(ge=1)
    description: str | None = None
    systems: dict[str, System] = Field(min_length=1)
    secrets: list[str] = Field(default_factory=list, description="Names of the secrets the steps may use.")
    input: dict[str, InputField] = Field(min_length=1, description="The typed fields of a case.")
    reference_field: str = Field(default="case_ref", description="The input field that identifies a case.")
    max_attempts: int = Field(default=3, ge=1, le=20, description="Attempts before a case is failed.")
    steps: list[Step] = Field(min_length=1)
    lookup: list[Step] | None = Field(
        default=None,
        description="Steps that find an earlier submission of the case; they set output.reference when found.",
    )
    at_most_once: bool = Field(
        default=False,
        description="With no lookup: a case whose submit may have happened goes to a person, never retried.",
    )

    @model_validator(mode="after")
    def _cross_checks(self) -> "Workflow":
        if self.reference_field not in self.input:
            raise ValueError(f"reference_field '{self.reference_field}' is not a field of the input schema")
        submits = any(isinstance(s, ClickStep) and s.click.submit for s in self.steps)
        if submits and self.lookup is None and not self.at_most_once:
            raise ValueError(
                "the workflow has a submitting step, so it needs a 'lookup' block or 'at_most_once: true'"
            )
        return self

    @property
    def has_submit(self) -> bool:
        """Whether a step changes the target system."""
        return any(isinstance(s, ClickStep) and s.click.submit for s in self.steps)


@dataclass(frozen=True)
class LoadedWorkflow:
    """A validated workflow with its source text; ``digest`` identifies this exact text.

    The ledger stores the source under its digest, so a worker on another host runs exactly the
    version that was handed off, without sharing files.
    """

    definition: Workflow
    source: str
    path: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]
