"""The step verbs: the built-in ones, custom steps from installed packages, and the ``Step`` union.

Custom steps are a Python extension point. A package declares an entry point in the group
``autoclerk.steps`` whose object is a :class:`CustomStep`::

    # pyproject.toml of the team's package
    [project.entry-points."autoclerk.steps"]
    stamp_date = "ourteam.steps:STAMP_DATE"

    # ourteam/steps.py
    class StampDate(StepArgs):
        locator: Locator
        format: str = "%d.%m.%Y"

    async def stamp_date(ctx, args: StampDate) -> None:
        await ctx.element(args.locator).fill(datetime.date.today().strftime(args.format))

    STAMP_DATE = CustomStep(verb="stamp_date", args=StampDate, run=stamp_date)

The verb is then validated, checked (templates, positions, closest-name hints), described in the JSON
Schema and run like a built-in one. The models are completed once, on first use, after the installed
custom steps are known (:func:`ensure_models`).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Annotated, Any, TypeVar, Union

from pydantic import BaseModel, Discriminator, Tag, create_model

from ..errors import WorkflowError
from . import flow, page
from .base import StepArgs, StepBase

ENTRY_POINT_GROUP = "autoclerk.steps"

BUILTIN_ARGS: dict[str, type[StepArgs]] = {
    "goto": page.Goto,
    "fill": page.Fill,
    "select": page.Select,
    "choose": page.Choose,
    "check": page.Check,
    "uncheck": page.Uncheck,
    "click": page.Click,
    "press": page.Press,
    "upload": page.Upload,
    "wait_for": page.WaitFor,
    "extract": page.Extract,
    "dialog": page.Dialog,
    "screenshot": page.Screenshot,
    "evaluate": page.Evaluate,
    "assert": flow.Assert,
    "fail": flow.Fail,
    "finish": flow.Finish,
    "set": flow.Set,
    "if": flow.If,
    "for_each": flow.ForEach,
    "call": flow.Call,
    "retry": flow.Retry,
}
"""Every built-in verb and its arguments model."""


class StepPluginError(WorkflowError):
    """An installed custom step cannot be used: fix or remove the package that provides it."""


@dataclass(frozen=True)
class CustomStep:
    """A step type provided by another package through the ``autoclerk.steps`` entry point group.

    Args:
        verb: the key authors write (lower case, ``a-z0-9_``), not one of the built-in verbs.
        args: its arguments model, a subclass of :class:`StepArgs` (``Template`` fields are checked
            and rendered like the built-in ones' through ``ctx.render``).
        run: ``async run(ctx, args)``, called by the bot with its step context.
        submits: the step changes the target system (the workflow then needs a ``lookup`` or
            ``at_most_once``, and ``ctx.before_effect()`` must be awaited before the change).
    """

    verb: str
    args: type[StepArgs]
    run: Callable[[Any, Any], Awaitable[None]]
    submits: bool = False


STEP_MODELS: dict[str, type[StepBase]] = {}
"""Every verb (built-in and custom) → its step model; filled by :func:`ensure_models`."""

CUSTOM_STEPS: dict[str, CustomStep] = {}
"""The custom steps found among the installed packages' entry points."""

_lock = threading.Lock()
_ready = False
_step_namespace: dict[str, Any] = {}
_dependents: list[type[BaseModel]] = []


def _step_model(verb: str, args: type[StepArgs]) -> type[StepBase]:
    name = "".join(part.title() for part in verb.split("_")) + "Step"
    return create_model(name, __base__=StepBase, __doc__=args.__doc__, **{verb: (args, ...)})  # type: ignore[call-overload,no-any-return]


def _discover() -> dict[str, CustomStep]:
    found: dict[str, CustomStep] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            step = point.load()
        except Exception as exc:  # noqa: BLE001 - any import failure of a third-party package
            raise StepPluginError(f"custom step '{point.name}' ({point.value}) cannot be imported: "
                                  f"{type(exc).__name__}: {exc}") from None
        if not isinstance(step, CustomStep):
            raise StepPluginError(f"custom step '{point.name}' ({point.value}) is not a workflows.CustomStep")
        if not (isinstance(step.args, type) and issubclass(step.args, StepArgs)):
            raise StepPluginError(f"custom step '{step.verb}': its args model must subclass workflows.StepArgs")
        if step.verb in BUILTIN_ARGS or step.verb in found:
            raise StepPluginError(f"custom step '{step.verb}' ({point.value}) reuses the name of another step")
        if not step.verb.replace("_", "").isalnum() or not step.verb.islower() or not step.verb[0].isalpha():
            raise StepPluginError(f"custom step '{step.verb}': a verb is lower case letters, digits and _")
        found[step.verb] = step
    return found


def _verb_of(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        verb = next(iter(value))
        return verb if verb in STEP_MODELS else None
    if isinstance(value, StepBase):
        return value.verb
    return None


def ensure_models() -> None:
    """Complete the models once: discover custom steps, build the ``Step`` union, resolve nested steps.

    Raises:
        StepPluginError: an installed custom step is broken.
    """
    global _ready
    if _ready:
        return
    with _lock:
        if _ready:
            return
        CUSTOM_STEPS.update(_discover())
        args = {**BUILTIN_ARGS, **{verb: step.args for verb, step in CUSTOM_STEPS.items()}}
        STEP_MODELS.update({verb: _step_model(verb, model) for verb, model in args.items()})
        step: Any = Annotated[  # a union of models known only now: built at run time, beyond a type checker
            Union[tuple(Annotated[model, Tag(verb)] for verb, model in STEP_MODELS.items())],  
            Discriminator(_verb_of, custom_error_type="unknown_step", custom_error_message="unknown step"),
        ]
        _step_namespace["Step"] = step
        completed: list[type[BaseModel]] = [flow.If, flow.ForEach, flow.Retry, *STEP_MODELS.values(), *_dependents]
        for model in completed:
            model.model_rebuild(force=True, _types_namespace=_step_namespace)
        _ready = True


M = TypeVar("M", bound=type[BaseModel])


def uses_steps(model: M) -> M:
    """Class decorator for a model outside this package whose fields hold ``Step`` (the ``Workflow``):
    :func:`ensure_models` completes it with the others, so this package never imports it back."""
    with _lock:
        _dependents.append(model)
        if _ready:
            model.model_rebuild(force=True, _types_namespace=_step_namespace)
    return model


def submits(step: StepBase) -> bool:
    """Whether this one step (not its nested steps) changes the target system."""
    args = step.args
    if isinstance(args, (page.Click, page.Press, page.Evaluate)):
        return args.submit
    custom = CUSTOM_STEPS.get(step.verb)
    return bool(custom and custom.submits)


