"""The declarative workflow language: YAML files validated by pydantic models.

Pure: it imports neither Celery nor Playwright. ``bots`` executes what this package describes.
"""

from .errors import (
    CaseDataError,
    CasesFileError,
    Problem,
    TemplateRenderError,
    WorkflowError,
    WorkflowFileError,
)
from .inputs import InputField, check_case, to_json_value
from .loader import load_workflow, parse_workflow
from .model import LoadedWorkflow, System, Workflow
from .secrets import SecretMissingError, SecretValues
from .steps import STEP_MODELS, Step
from .templating import render, secret_names_in

__all__ = [
    # loading
    "load_workflow",
    "parse_workflow",
    "LoadedWorkflow",
    "Workflow",
    "System",
    "Step",
    "STEP_MODELS",
    # cases
    "InputField",
    "check_case",
    "to_json_value",
    # secrets and templates
    "SecretValues",
    "SecretMissingError",
    "render",
    "secret_names_in",
    # errors
    "WorkflowError",
    "WorkflowFileError",
    "Problem",
    "CaseDataError",
    "CasesFileError",
    "TemplateRenderError",
]
