"""The step verbs of the workflow language, one pydantic model each, and the ``Step`` union.

Page steps (:mod:`.page`) act on the target system; flow steps (:mod:`.flow`) direct the work; custom
steps come from installed packages (:mod:`.registry`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .base import ConditionArgs, StepArgs, StepBase
from .flow import Assert, Call, Fail, Finish, ForEach, If, Retry, Set
from .page import Check, Choose, Click, Dialog, Evaluate, Extract, Fill, Goto, Press, Screenshot, Select, Uncheck, Upload, WaitFor
from .registry import BUILTIN_ARGS, CUSTOM_STEPS, ENTRY_POINT_GROUP, STEP_MODELS, CustomStep, StepPluginError, ensure_models, submits, uses_steps

Step = StepBase
"""One step (for type annotations): a one-key mapping from a verb in :data:`STEP_MODELS` to its arguments."""

PathKey = tuple[str | int, ...]


def nested(step: StepBase) -> Iterator[tuple[PathKey, list[Any]]]:
    """The step lists inside one step, with their paths relative to the step (``("if", "then")``)."""
    args = step.args
    if isinstance(args, If):
        yield (step.verb, "then"), args.then
        if args.else_ is not None:
            yield (step.verb, "else"), args.else_
    elif isinstance(args, (ForEach, Retry)):
        yield (step.verb, "steps"), args.steps


def walk(steps: list[Any], path: PathKey) -> Iterator[tuple[PathKey, StepBase]]:
    """Every step in ``steps`` and in the steps nested inside them, depth first, with its data path."""
    for index, step in enumerate(steps):
        here = path + (index,)
        yield here, step
        for inner, block in nested(step):
            yield from walk(block, here + inner)


__all__ = [
    "StepArgs", "StepBase", "ConditionArgs", "Step", "STEP_MODELS", "BUILTIN_ARGS", "CUSTOM_STEPS",
    "ENTRY_POINT_GROUP", "CustomStep", "StepPluginError", "ensure_models", "uses_steps", "submits", "nested", "walk",
    "Goto", "Fill", "Select", "Choose", "Check", "Uncheck", "Click", "Press", "Upload", "WaitFor", "Extract", "Dialog", "Evaluate",
    "Screenshot", "Assert", "Fail", "Finish", "Set", "If", "ForEach", "Call", "Retry",
]
