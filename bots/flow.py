"""Running steps: the dispatcher, and the flow verbs (assert, fail, set, if, for_each, call, retry).

:func:`run_steps` is the one loop every step list goes through (the workflow's steps, its lookup, the
branches of an ``if``, a loop's body, a called workflow): it names the step being run, turns
template and secret problems into the right exception class, and lets hooks time each step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import structlog
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from workflows import CaseDataError, EnvValues, alternatives, check_case, secret_values
from workflows.secrets import EnvMissingError, SecretMissingError
from workflows.errors import TemplateRenderError
from workflows.steps import (CUSTOM_STEPS, Assert, Call, ConditionArgs, Fail, Finish, ForEach, If, Retry, Set, StepBase,
                             nested, submits)

from . import actions, server_errors
from .context import StepContext, wait_until
from .errors import ApplicationError, BotError, BusinessException, BrowserGone, PageCrashed, TargetServerError


async def run_steps(ctx: StepContext, steps: list[StepBase], label: str) -> None:
    """Run ``steps`` in order; ``label`` is their path (``steps``, ``lookup``, ``steps[4].if.then``).

    Raises:
        BusinessException: the case goes back to a person.
        ApplicationError: another attempt may succeed (Playwright errors are classified by the engine).
    """
    for index, step in enumerate(steps):
        path = f"{label}[{index}].{step.verb}"
        ctx.step_path, ctx.step_verb, ctx.step_args = path, step.verb, step.args
        ctx.signals.step, ctx.signals.submitting = path, False
        structlog.contextvars.bind_contextvars(step=path)  # every log line of the step names it
        started, ok = time.monotonic(), False
        try:
            await _run_step(ctx, step)
            ok = True
        except Finished:
            ok = True
            raise
        except BotError:
            raise
        except TemplateRenderError as exc:
            raise BusinessException(str(exc), code="template", step=path) from None
        except (SecretMissingError, EnvMissingError) as exc:
            raise ApplicationError(str(exc), step=path) from None
        finally:
            if ctx.hooks is not None and not nested_step(step):
                ctx.hooks.step_finished(ctx.workflow.definition.name, step.verb, time.monotonic() - started, ok)
            if ctx.on_step is not None:
                await ctx.on_step(ctx, path, time.monotonic() - started, ok)
        ctx.step_path, ctx.step_verb = path, step.verb


async def _run_step(ctx: StepContext, step: StepBase) -> None:
    """Run one step; a page that answered 5xx and may be sent again is loaded again in place (a step holding
    other steps leaves that to them, and a submitting step is never retried in place)."""
    while True:
        try:
            await _executor(step.verb)(ctx, step.args)
            return
        except TargetServerError as exc:
            if nested_step(step) or submits(step) or not server_errors.can_load_again(exc):
                raise
            if not await server_errors.load_again(ctx, exc):
                return


def nested_step(step: StepBase) -> bool:
    """Whether the step holds other steps (its time is theirs, so hooks do not count it twice)."""
    return any(True for _ in nested(step)) or step.verb == "call"


# -- conditions ----------------------------------------------------------------------------------------
async def holds(ctx: StepContext, args: ConditionArgs) -> bool:
    """Whether a condition holds now (or, with ``within_ms``, becomes true within it; ``timeout_ms`` is the
    older spelling of the same)."""
    kind, value = args.condition
    if kind == "expr":
        return bool(ctx.evaluate(value))
    wait_ms = args.within_ms or args.timeout_ms
    page = ctx.page
    if kind == "url":
        pattern = ctx.render(value)
        if actions.matches_url(page.url, pattern) or not wait_ms:
            return actions.matches_url(page.url, pattern)
        try:
            await ctx.race(page.wait_for_url(lambda url: actions.matches_url(url, pattern), timeout=wait_ms, wait_until="commit"))
            return True
        except PlaywrightTimeout:
            return False
    if kind == "text":
        locators = [page.get_by_text(ctx.render(value))]
        state = "visible"
    else:
        locators = [ctx.locate(spec) for spec in alternatives(value)]
        state = "visible" if kind == "visible" else "hidden"
    if wait_ms:
        target = locators[0]
        for other in locators[1:]:
            target = target.or_(other)
        try:
            await ctx.race(wait_until(target, state, wait_ms))
        except PlaywrightTimeout:
            pass
    showing = False
    for locator in locators:  # any match showing: the first in page order may be a hidden box before it
        if await locator.filter(visible=True).count() > 0:
            showing = True
            break
    return showing if state == "visible" else not showing


# -- flow verbs ------------------------------------------------------------------------------------------
async def assert_(ctx: StepContext, args: Assert) -> None:
    if not await holds(ctx, args):
        raise BusinessException(ctx.render(args.message), code=args.code, step=ctx.step_path)


async def fail(ctx: StepContext, args: Fail) -> None:
    message = ctx.render(args.message)
    if args.kind == "application":
        raise ApplicationError(message, step=ctx.step_path)
    raise BusinessException(message, code=args.code, step=ctx.step_path)


class Finished(Exception):
    """A ``finish`` step ran: the case (or, in a called part, the part) ends here, as done. Not an error:
    :func:`call` and the engine catch it; ``retry`` lets it through."""

    def __init__(self, output: dict[str, Any], reason: str | None, step: str) -> None:
        super().__init__(reason or "finished")
        self.output, self.reason, self.step = output, reason, step


async def finish(ctx: StepContext, args: Finish) -> None:
    raise Finished({name: ctx.render(template) for name, template in args.output.items()}, args.reason, ctx.step_path)


async def set_(ctx: StepContext, args: Set) -> None:
    value = ctx.render(args.value) if args.value is not None else ctx.evaluate(args.expr or "")
    scope, name = args.to.split(".", 1)
    (ctx.output if scope == "output" else ctx.vars)[name] = value


async def if_(ctx: StepContext, args: If) -> None:
    path = ctx.step_path
    if await holds(ctx, args):
        await run_steps(ctx, args.then, f"{path}.then")
    elif args.else_:
        await run_steps(ctx, args.else_, f"{path}.else")


async def for_each(ctx: StepContext, args: ForEach) -> None:
    path = ctx.step_path
    items = ctx.evaluate(args.items)
    if items is None:
        items = []
    if isinstance(items, (str, bytes, dict)) or not hasattr(items, "__iter__"):
        raise BusinessException(f"for_each needs a list, and {args.items} is not one", code="not_a_list", step=path)
    items = list(items)
    if len(items) > args.max_items:
        raise BusinessException(f"{args.items} has {len(items)} items, more than max_items {args.max_items}",
                                code="too_many_items", step=path)
    for number, item in enumerate(items, start=1):
        ctx.vars[args.as_] = item
        ctx.vars[f"{args.as_}_number"] = number
        await run_steps(ctx, args.steps, f"{path}[{number}]")


async def call(ctx: StepContext, args: Call) -> None:
    path = ctx.step_path
    called = ctx.workflow.calls[args.workflow]
    raw = {name: ctx.render(template) for name, template in args.with_.items()}
    try:
        case = check_case(called.definition.input, raw, 0)
    except CaseDataError as exc:
        raise BusinessException(f"the call to {args.workflow} got a bad '{exc.field}': {exc.reason}",
                                code="bad_call_argument", step=path) from None
    ctx.secret_values.update(secret_values(called.definition.input, case))  # the shared set: the caller masks them too
    inner = replace(ctx, workflow=called, case=case, vars={}, output={},
                    env=EnvValues(called.definition.env))
    async def steps() -> None:  # artifacts, masks and secret values are shared with the caller
        try:
            await run_steps(inner, called.definition.steps, f"{path}>{args.workflow}")
        except Finished as finished:  # a finish in a part ends the part, not the case
            inner.output.update(finished.output)

    if called.definition.session is not None and ctx.sessions is not None:
        await ctx.sessions.sign_in(inner, called, case, steps)
    else:
        await steps()
    if args.to:
        scope, name = args.to.split(".", 1)
        (ctx.output if scope == "output" else ctx.vars)[name] = dict(inner.output)


async def retry(ctx: StepContext, args: Retry) -> None:
    path = ctx.step_path
    for attempt in range(1, args.attempts + 1):
        try:
            await run_steps(ctx, args.steps, f"{path}.steps")
            return
        except BusinessException:
            raise
        except (ApplicationError, PlaywrightError) as exc:
            if isinstance(exc, (PageCrashed, BrowserGone)):
                raise  # the page or browser is gone: only a new attempt of the whole case can help
            if attempt == args.attempts:
                raise
            await asyncio.sleep(args.delay_ms / 1000)


# -- dispatch ---------------------------------------------------------------------------------------------
EXECUTORS: dict[str, Callable[[StepContext, Any], Awaitable[None]]] = {
    "goto": actions.goto,
    "fill": actions.fill,
    "select": actions.select,
    "choose": actions.choose,
    "check": actions.check,
    "uncheck": actions.uncheck,
    "click": actions.click,
    "press": actions.press,
    "upload": actions.upload,
    "wait_for": actions.wait_for,
    "extract": actions.extract,
    "dialog": actions.dialog,
    "screenshot": actions.screenshot,
    "evaluate": actions.evaluate,
    "assert": assert_,
    "fail": fail,
    "finish": finish,
    "set": set_,
    "if": if_,
    "for_each": for_each,
    "call": call,
    "retry": retry,
}
"""The executor of every built-in verb; custom steps bring their own ``run``."""


def _executor(verb: str) -> Callable[[StepContext, Any], Awaitable[None]]:
    found = EXECUTORS.get(verb)
    if found is not None:
        return found
    return CUSTOM_STEPS[verb].run
