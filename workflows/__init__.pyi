"""The names :mod:`workflows` exports, for type checkers; ``__init__.py`` loads each on first use from this list."""

from .errors import (
    CaseDataError,
    CasesFileError,
    Problem,
    TemplateRenderError,
    WorkflowError,
    WorkflowFileError,
)
from .inputs import (
    FIELD_MASK,
    InputField,
    RuleBroken,
    check_case,
    field_errors,
    label_of,
    mask_case,
    mask_text,
    secret_fields,
    secret_values,
    to_json_value,
)
from .edit import add_fallback
from .loader import load_stored, load_workflow, parse_workflow
from .locators import Locator, alternatives, describe
from .model import LoadedWorkflow, Lookup, Needs, Session, System, Verify, Workflow
from .secrets import EnvMissingError, EnvValues, SecretMissingError, SecretValues
from .steps import STEP_MODELS, CustomStep, Step, StepArgs, StepPluginError, ensure_models, walk
from .templating import Expression, Template, case_fields_in, evaluate, render, secret_names_in

__all__ = [
    # loading
    "load_workflow",
    "parse_workflow",
    "load_stored",
    "LoadedWorkflow",
    "Needs",
    "Workflow",
    "System",
    "Session",
    "Lookup",
    "Verify",
    "Step",
    "STEP_MODELS",
    "ensure_models",
    "walk",
    "add_fallback",
    # extending
    "CustomStep",
    "StepArgs",
    "Template",
    "Expression",
    "Locator",
    "alternatives",
    "describe",
    # cases
    "InputField",
    "check_case",
    "field_errors",
    "label_of",
    "RuleBroken",
    "to_json_value",
    # secret case fields
    "FIELD_MASK",
    "secret_fields",
    "mask_case",
    "secret_values",
    "mask_text",
    # secrets and templates
    "SecretValues",
    "SecretMissingError",
    "EnvValues",
    "EnvMissingError",
    "render",
    "evaluate",
    "secret_names_in",
    "case_fields_in",
    # errors
    "WorkflowError",
    "WorkflowFileError",
    "StepPluginError",
    "Problem",
    "CaseDataError",
    "CasesFileError",
    "TemplateRenderError",
]
