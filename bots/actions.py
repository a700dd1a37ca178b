"""Executing workflow steps on a Playwright page, one async function per verb.

Every wait is a condition wait raced against three ways a page can fail: the target system's own
validation message (a business exception), a 5xx answer to a navigation, and a renderer crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator as PwLocator
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from workflows import System, render, secret_names_in
from workflows.steps import (
    Check,
    Click,
    Extract,
    Fill,
    Goto,
    Select,
    Uncheck,
    WaitFor,
    _Args,
)

from .errors import ApplicationError, BusinessException, StepTimeout, TargetServerError


@dataclass
class StepContext:
    """What the steps of one transaction share: data to render from, the page's failure signals, timeouts."""

    page: Page
    case: dict[str, Any]
    secrets: Any
    system_urls: dict[str, str]
    systems: dict[str, System]
    step_timeout_ms: int
    navigation_timeout_ms: int
    before_effect: Callable[[], Awaitable[None]]
    vars: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    secret_selectors: list[str] = field(default_factory=list)
    failure: asyncio.Future[BaseException] | None = None
    step_path: str = ""

    def render(self, text: str) -> str:
        return render(text, {"case": self.case, "vars": self.vars, "secrets": self.secrets, "output": self.output})

    def timeout(self, args: _Args) -> int:
        return args.timeout_ms or self.step_timeout_ms

    def fail(self, exc: BaseException) -> None:
        """Signal a page-level failure to whatever step is waiting (first signal wins)."""
        if self.failure is not None and not self.failure.done():
            self.failure.set_result(exc)

    @property
    def business_error(self) -> str | None:
        selectors = [s.business_error for s in self.systems.values() if s.business_error]
        return ", ".join(selectors) if selectors else None


def _selectors(ctx: StepContext, spec: str | list[str]) -> list[str]:
    """A locator spec (one selector or ordered alternatives) rendered for this case."""
    return [ctx.render(s) for s in ([spec] if isinstance(spec, str) else spec)]


async def _race(ctx: StepContext, awaitable: Awaitable[Any]) -> Any:
    """Await ``awaitable`` unless the page fails first; raise the page's failure then."""
    task = asyncio.ensure_future(awaitable)
    assert ctx.failure is not None
    done, _ = await asyncio.wait({task, ctx.failure}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        return task.result()
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, PlaywrightError):
        pass
    raise ctx.failure.result()


async def _visible(ctx: StepContext, spec: str | list[str], timeout_ms: int) -> PwLocator:
    """Wait until the element (or the first of its alternatives) is visible; the system's message wins."""
    selectors = _selectors(ctx, spec)
    page = ctx.page
    target = page.locator(selectors[0])
    for alternative in selectors[1:]:
        target = target.or_(page.locator(alternative))
    error_selector = ctx.business_error
    combined = target.or_(page.locator(error_selector)) if error_selector else target
    try:
        await _race(ctx, combined.first.wait_for(state="visible", timeout=timeout_ms))
    except PlaywrightTimeout:
        raise StepTimeout(f"no element matching {selectors[0]!r} within {timeout_ms} ms", step=ctx.step_path) from None
    if error_selector:
        error = page.locator(error_selector).first
        if await error.is_visible():
            message = " ".join((await error.inner_text()).split())
            raise BusinessException(message or "the target system refused the case", step=ctx.step_path)
    if len(selectors) == 1:
        return page.locator(selectors[0]).first
    for selector in selectors:  # the first alternative that is showing
        candidate = page.locator(selector).first
        if await candidate.is_visible():
            return candidate
    return target.first


async def goto(ctx: StepContext, args: Goto) -> None:
    if args.system:
        base = ctx.system_urls.get(args.system)
    elif len(ctx.systems) == 1:
        base = ctx.system_urls.get(next(iter(ctx.systems)))
    else:
        base = None
    if not base:
        raise ApplicationError(f"no base URL is configured for system '{args.system or next(iter(ctx.systems))}'",
                               step=ctx.step_path)
    url = urljoin(base.rstrip("/") + "/", ctx.render(args.url).lstrip("/"))
    timeout_ms = args.timeout_ms or ctx.navigation_timeout_ms
    try:
        response = await _race(ctx, ctx.page.goto(url, timeout=timeout_ms, wait_until="domcontentloaded"))
    except PlaywrightTimeout:
        raise StepTimeout(f"navigation did not finish within {timeout_ms} ms", step=ctx.step_path) from None
    if response is not None and response.status >= 500:
        raise TargetServerError(f"the target system answered {response.status}", step=ctx.step_path)


async def fill(ctx: StepContext, args: Fill) -> None:
    element = await _visible(ctx, args.locator, ctx.timeout(args))
    if any(True for _ in secret_names_in(args.value)):
        ctx.secret_selectors.append(_selectors(ctx, args.locator)[0])
    await element.fill(ctx.render(args.value), timeout=ctx.timeout(args))


async def select(ctx: StepContext, args: Select) -> None:
    element = await _visible(ctx, args.locator, ctx.timeout(args))
    if args.value is not None:
        option: dict[str, str] = {"value": ctx.render(args.value)}
    else:
        option = {"label": ctx.render(args.label or "")}
    try:
        await element.select_option(**option, timeout=ctx.timeout(args))
    except PlaywrightTimeout:
        raise BusinessException(f"the list has no option {next(iter(option))}={next(iter(option.values()))!r}",
                                code="no_such_option", step=ctx.step_path) from None


async def check(ctx: StepContext, args: Check) -> None:
    element = await _visible(ctx, args.locator, ctx.timeout(args))
    await element.check(timeout=ctx.timeout(args))


async def uncheck(ctx: StepContext, args: Uncheck) -> None:
    element = await _visible(ctx, args.locator, ctx.timeout(args))
    await element.uncheck(timeout=ctx.timeout(args))


async def click(ctx: StepContext, args: Click) -> None:
    element = await _visible(ctx, args.locator, ctx.timeout(args))
    if args.submit:
        await ctx.before_effect()
    await _race(ctx, element.click(timeout=ctx.timeout(args)))


async def wait_for(ctx: StepContext, args: WaitFor) -> None:
    await _visible(ctx, args.locator, ctx.timeout(args))


async def extract(ctx: StepContext, args: Extract) -> None:
    if args.optional:
        if not any([await ctx.page.locator(s).count() for s in _selectors(ctx, args.locator)]):
            return  # absent: leave the name unset
    element = await _visible(ctx, args.locator, ctx.timeout(args))
    if args.attribute:
        value = await element.get_attribute(args.attribute)
    elif await element.evaluate("e => e instanceof HTMLInputElement || e instanceof HTMLTextAreaElement"):
        value = await element.input_value()
    else:
        value = " ".join((await element.inner_text()).split())
    scope, name = args.to.split(".", 1)
    (ctx.output if scope == "output" else ctx.vars)[name] = value


EXECUTORS: dict[str, Callable[[StepContext, Any], Awaitable[None]]] = {
    "goto": goto,
    "fill": fill,
    "select": select,
    "check": check,
    "uncheck": uncheck,
    "click": click,
    "wait_for": wait_for,
    "extract": extract,
}
