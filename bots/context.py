"""The step context: what the steps of one transaction share, and how they find elements.

Every wait is a condition wait raced against the ways a page can fail: the target system's own
validation message (a business exception), a renderer crash and a disconnected browser.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator as PwLocator
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from workflows import (LoadedWorkflow, Locator, System, alternatives, case_fields_in, describe, evaluate, mask_text,
                       render, secret_fields, secret_names_in)
from workflows.locators import ByCss, ByLabel, ByPlaceholder, ByRole, ByTestId, ByText

from .errors import BusinessException, StepTimeout

if TYPE_CHECKING:
    from .healing import Healer


@dataclass
class PageSignals:
    """What the page's listeners and the steps of one transaction tell each other; one object shared by the
    contexts of the called parts too (a part's context is a copy of its caller's, and this is not copied).

    Attributes:
        failure: resolves with the page's failure (a crash, a disconnect, a 5xx page); replaced by a fresh
            future when a 5xx page is loaded again in place.
        step: the path of the step running now.
        submitting: a submitting step has called ``before_effect`` and no step has started since.
        effect_started: a submitting step has called ``before_effect`` in this transaction.
        began: for each navigation request of the main frame, the step it began in and whether that step
            was submitting.
        workflow: the transaction's workflow (the label of its metrics, whichever part runs).
    """

    failure: asyncio.Future[BaseException] | None = None
    step: str = ""
    submitting: bool = False
    effect_started: bool = False
    began: dict[Any, tuple[str, bool]] = field(default_factory=dict)
    workflow: str = ""

    def origin(self, request: Any) -> tuple[str | None, str | None, bool]:
        """Where a navigation request began: the step, the method of the first request of its redirect chain,
        and whether any request of the chain was sent by a submitting step."""
        step, method, submitting = None, None, False
        while request is not None:
            began = self.began.get(request)
            if began is not None:
                step, submitting = began[0], submitting or began[1]
            method = request.method
            request = request.redirected_from
        return step, method, submitting

    def rearm(self) -> None:
        """A fresh ``failure`` future, after a 5xx page was dealt with in place."""
        if self.failure is not None and self.failure.done():
            self.failure = asyncio.get_running_loop().create_future()


class StepHooks(Protocol):
    """Cross-cutting behaviour around every step (metrics, logs): told the verb, the time taken and success."""

    def step_finished(self, workflow: str, verb: str, seconds: float, ok: bool) -> None: ...


@dataclass
class StepContext:
    """One transaction's shared state: the page, the data templates render from, timeouts and hooks.

    Custom steps receive it as ``ctx``: ``ctx.render(text)`` renders a template, ``await ctx.element(locator,
    timeout_ms)`` waits for an element and returns it, ``await ctx.before_effect()`` must precede a change
    to the target system.
    """

    page: Page
    workflow: LoadedWorkflow
    case: dict[str, Any]
    secrets: Any
    env: Mapping[str, str]
    system_urls: dict[str, str]
    step_timeout_ms: int
    navigation_timeout_ms: int
    before_effect: Callable[[], Awaitable[None]]
    on_fallback: Callable[[str, int], None] = lambda verb, index: None
    hooks: StepHooks | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    secret_locators: list[PwLocator] = field(default_factory=list)
    secret_values: set[str] = field(default_factory=set)
    """The transaction's secret case values (``secret: true`` fields: the job's, and each called workflow's
    once it is called), masked in error messages and the saved page. Shared with called workflows' contexts."""
    artifacts: list[str] = field(default_factory=list)
    on_step: Callable[["StepContext", str, float, bool], Awaitable[None]] | None = None
    """Told after each step (see ``BotJob.on_step``)."""
    page_errors: list[str] = field(default_factory=list)
    """The page's own script errors and console errors during this attempt (``step: message``), oldest first."""
    evidence_dir: Path | None = None
    files_dir: Path | None = None
    signals: PageSignals = field(default_factory=PageSignals)
    """Shared with the page's listeners and the contexts of called parts (see :class:`PageSignals`)."""
    server_error_retries: int = 0
    """How many times a page that answered 5xx is loaded again in place (``server_errors.py``)."""
    server_error_wait_s: float = 0.5
    """The base of the jittered wait before each of those loads."""
    step_path: str = ""
    step_verb: str = ""
    sessions: Any = None
    """The worker's kept sign-in sessions (a ``SessionKeeper``), or ``None`` to sign in every time."""
    step_args: Any = None
    """The arguments of the step being run (the healing policy reads them)."""
    healer: "Healer | None" = None
    """The engine's healer (see ``healing.py``), or ``None``: no fingerprints, no healing."""
    case_ref: str = ""
    attempt: int = 0
    job_workflow: tuple[str, str] = ("", "")
    """The name and digest of the workflow version the transaction runs (a called part's steps included):
    what fingerprints and heals are kept under."""

    @property
    def systems(self) -> dict[str, System]:
        return dict(self.workflow.definition.systems)

    def data(self) -> dict[str, Any]:
        return {"case": self.case, "vars": self.vars, "secrets": self.secrets, "output": self.output, "env": self.env}

    def render(self, text: str) -> str:
        """Render a template of the workflow file for this case."""
        return render(text, self.data())

    def evaluate(self, expression: str) -> Any:
        """Evaluate an expression of the workflow file for this case."""
        return evaluate(expression, self.data())

    def names_secret(self, template: str) -> bool:
        """Whether a template names a declared secret or a secret case field of this workflow: the element
        its value goes into is then masked in screenshots (add it to ``secret_locators``)."""
        if any(True for _ in secret_names_in(template)):
            return True
        return not secret_fields(self.workflow.definition.input).isdisjoint(case_fields_in(template))

    def mask(self, text: str) -> str:
        """``text`` with the transaction's secret case values masked (see ``workflows.mask_text``)."""
        return mask_text(text, self.secret_values)

    def timeout(self, args: Any) -> int:
        return getattr(args, "timeout_ms", None) or self.step_timeout_ms

    @property
    def failure(self) -> asyncio.Future[BaseException] | None:
        """Resolves with the page's failure (see :attr:`PageSignals.failure`)."""
        return self.signals.failure

    def fail(self, exc: BaseException) -> None:
        """Signal a page-level failure to whatever step is waiting (first signal wins)."""
        failure = self.signals.failure
        if failure is not None and not failure.done():
            failure.set_result(exc)

    @property
    def business_error(self) -> str | None:
        selectors = [s.business_error for s in self.systems.values() if s.business_error]
        return ", ".join(selectors) if selectors else None

    # -- finding elements ----------------------------------------------------------------------------
    def locate(self, spec: Any) -> PwLocator:
        """One alternative of a locator, rendered for this case, as a Playwright locator."""
        page, r = self.page, self.render
        if isinstance(spec, str):
            return page.locator(r(spec))
        if isinstance(spec, ByCss):
            return page.locator(r(spec.css))
        if isinstance(spec, ByText):
            return page.get_by_text(r(spec.text), exact=spec.exact)
        if isinstance(spec, ByRole):
            name = r(spec.name) if spec.name is not None else None
            return page.get_by_role(spec.role, name=name, exact=spec.exact if name is not None else None)
        if isinstance(spec, ByLabel):
            return page.get_by_label(r(spec.label), exact=spec.exact)
        if isinstance(spec, ByPlaceholder):
            return page.get_by_placeholder(r(spec.placeholder), exact=spec.exact)
        if isinstance(spec, ByTestId):
            return page.get_by_test_id(r(spec.test_id))
        raise TypeError(f"not a locator: {type(spec).__name__}")

    def described(self, specs: list[Any]) -> str:
        """The alternatives of a locator as an error names them: rendered for this case (the value looked for,
        not the template), each alternative tried."""
        shown = []
        for spec in specs:
            try:
                if isinstance(spec, str):
                    rendered: Any = self.render(spec)
                else:
                    rendered = spec.model_copy(update={name: self.render(value) for name, value in spec
                                                       if isinstance(value, str) and name != "role"})
            except Exception:  # noqa: BLE001 - a template that cannot render here: name it as written
                rendered = spec
            shown.append(describe(rendered))
        return " or ".join(shown)

    async def race(self, awaitable: Awaitable[Any]) -> Any:
        """Await ``awaitable`` unless the page fails first; raise the page's failure then."""
        task = asyncio.ensure_future(awaitable)
        failure = self.signals.failure
        assert failure is not None
        done, _ = await asyncio.wait({task, failure}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, PlaywrightError):
            pass
        raise failure.result()

    async def element(self, locator: Locator, timeout_ms: int | None = None, state: str = "visible") -> PwLocator:
        """Wait until the element (or the first of its alternatives) is in ``state``; the system's message wins.

        Raises:
            BusinessException: the target system showed its validation message instead.
            StepTimeout: nothing matched within the timeout.
        """
        timeout_ms = timeout_ms or self.step_timeout_ms
        specs = alternatives(locator)
        candidates = [self.locate(spec) for spec in specs]
        healed = self.healer.healed_before(self) if self.healer is not None else None
        if healed is not None:  # this process healed the step before: its candidate is one more alternative
            candidates.append(self.page.locator(healed))
        target = candidates[0]
        for alternative in candidates[1:]:
            target = target.or_(alternative)
        error_selector = self.business_error if state == "visible" else None
        combined = target.or_(self.page.locator(error_selector)) if error_selector else target
        try:
            await self.race(wait_until(combined, state, timeout_ms))
        except PlaywrightTimeout:
            message = f"no element matching {self.described(specs)} within {timeout_ms} ms"
            if self.healer is not None and state in ("visible", "attached"):
                element, why = await self.healer.heal(self, self.described(specs))
                if element is not None:
                    return element
                message = f"{message}; {why}"
            raise StepTimeout(message, step=self.step_path) from None
        if error_selector:
            await self.raise_business_error()
        found, used = candidates[0].first, 0
        if len(candidates) > 1 and state == "visible":
            for index, candidate in enumerate(candidates):  # the first alternative that is showing
                if await candidate.first.is_visible():
                    if 0 < index < len(specs):
                        self.on_fallback(self.step_verb, index)
                    found, used = candidate.first, index
                    break
            else:
                found = target.first
        elif healed is not None and state == "attached" and not await candidates[0].count():
            used = len(specs)
            for index, candidate in enumerate(candidates[1:len(specs)], start=1):
                if await candidate.count():
                    used = index
                    break
            found = candidates[used].first
        if self.healer is not None and state in ("visible", "attached"):
            if used == len(specs):  # the healed alternative
                await self.healer.reused(self, self.described(specs))
            else:
                await self.healer.found(self, found)
        return found

    async def race_business_error(self, awaitable: Awaitable[Any], timeout_ms: int) -> Any:
        """Await ``awaitable`` (a wait for an address, a text, the network) while watching for the target
        system's validation message: when the message shows first, the case is handed back at once instead
        of waiting out the timeout.

        Raises:
            BusinessException: the system showed its message first.
        """
        selector = self.business_error
        if not selector:
            return await self.race(awaitable)
        waiting = asyncio.ensure_future(awaitable)
        refusal = asyncio.ensure_future(wait_until(self.page.locator(selector), "visible", timeout_ms))
        try:
            done, _ = await self.race(asyncio.wait({waiting, refusal}, return_when=asyncio.FIRST_COMPLETED))
            if waiting in done:
                return waiting.result()
            if refusal.exception() is None:
                await self.raise_business_error()
            return await waiting  # the message box could not be watched: wait for what was asked
        finally:
            for task in (waiting, refusal):
                if not task.done():
                    task.cancel()
                    try:
                        await task
                    except (asyncio.CancelledError, PlaywrightError):
                        pass
                elif not task.cancelled():
                    # Retrieved here, so that a failure the page's own (a crash) overtook is not reported at
                    # garbage collection ("Task exception was never retrieved"), whose traceback formatting
                    # may run inside another thread's compile and break CPython 3.11's AST state.
                    task.exception()

    async def raise_business_error(self) -> None:
        """Raise the target system's validation message as a business exception, if it is showing."""
        selector = self.business_error
        if not selector:
            return
        error = self.page.locator(selector).first
        if await error.is_visible():
            message = await system_message(error)
            raise BusinessException(message or "The system refused the case without saying why", step=self.step_path)


# The system's own message in its error box, without the box's heading: GOV.UK-style summaries (and most
# others) put a heading ("There is a problem") over a list of messages. Run in the page, on the error box.
_SYSTEM_MESSAGE_JS = """box => {
  const said = el => (el.innerText || el.textContent || '').split(/\\s+/).join(' ').trim();
  const items = [...box.querySelectorAll('li')].map(said).filter(Boolean);
  if (items.length) return items.join('; ');
  const copy = box.cloneNode(true);
  copy.querySelectorAll('h1, h2, h3, h4, h5, h6, legend, [class*="__title"], [class*="-title"], [role="heading"]')
      .forEach(el => el.remove());
  const first = copy.firstElementChild;
  // a bold first line with more text after it is a heading too: <b>There is a problem</b> Postcode not known
  if (first && ['B', 'STRONG'].includes(first.tagName) && said(copy) !== said(first)
      && (copy.textContent || '').trim().startsWith((first.textContent || '').trim())) first.remove();
  return (copy.textContent || '').split(/\\s+/).join(' ').trim();
}"""


async def system_message(error: PwLocator) -> str:
    """The text of the target system's error box as its own message: the box's list items joined with
    "; ", or else its text without its heading.

    Example: ``<div class="govuk-error-summary"><h2>There is a problem</h2><ul><li>Postcode not
    recognised</li></ul></div>`` gives ``Postcode not recognised``.
    """
    message = await error.evaluate(_SYSTEM_MESSAGE_JS)
    return str(message or "") or " ".join((await error.inner_text()).split())


def wait_until(locator: PwLocator, state: str, timeout_ms: int) -> Awaitable[None]:
    """Wait on a locator that may match several elements (alternatives, the system's hidden error box).

    ``visible``: one matching element is showing; ``hidden``: none is showing; ``attached``/``detached``:
    one is / none is in the page. (``.first`` alone would watch only the first match in page order,
    which may be a hidden error box placed before the form.)
    """
    if state == "visible":
        return locator.filter(visible=True).first.wait_for(state="visible", timeout=timeout_ms)
    if state == "hidden":
        return locator.filter(visible=True).first.wait_for(state="detached", timeout=timeout_ms)
    return locator.first.wait_for(state=state, timeout=timeout_ms)  # type: ignore[arg-type]
