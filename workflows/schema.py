"""The JSON Schema of workflow files, generated from the models, for editor completion and CI checks.

``autoclerk schema`` prints it; ``workflows/schema.json`` is the checked-in copy (a test fails when it
drifts from the models). Point an editor at it, e.g. with the YAML language server's modeline
``# yaml-language-server: $schema=../schema.json``.
"""

from __future__ import annotations

import json
from typing import Any

from .model import Workflow
from .steps import CUSTOM_STEPS, STEP_MODELS, ensure_models

SCHEMA_ID = "https://autoclerk.dev/schema/workflow.json"


def workflow_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a workflow file, custom steps included when installed."""
    ensure_models()
    schema = Workflow.model_json_schema(by_alias=True)
    _allow_short_forms(schema["$defs"])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Autoclerk workflow",
        **({"x-custom-steps": sorted(CUSTOM_STEPS)} if CUSTOM_STEPS else {}),
        **schema,
    }


def schema_text() -> str:
    """The schema as the checked-in file holds it (stable key order, trailing newline)."""
    return json.dumps(workflow_schema(), indent=2, ensure_ascii=False) + "\n"


def _allow_short_forms(defs: dict[str, Any]) -> None:
    """``click: "#save"`` is valid: a verb with a short form also accepts its main field's value alone."""
    for verb, step in STEP_MODELS.items():
        args = step.model_fields[verb].annotation
        short = getattr(args, "short_form", None)
        step_def = defs.get(step.__name__)
        args_def = defs.get(getattr(args, "__name__", ""))
        if not short or step_def is None or args_def is None:
            continue
        field = dict(args_def["properties"][short])
        field.pop("title", None)
        step_def["properties"][verb] = {"anyOf": [step_def["properties"][verb], field]}
