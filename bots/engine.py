"""The bot engine: one Playwright and one Chromium per worker process, a fresh context per transaction.

Playwright runs on its own asyncio loop in a background thread. Callers (Celery's pool threads) hand a
transaction to :meth:`BotEngine.run` and block until it ends, so several transactions are in flight in
one browser at once, each in its own isolated context, closed in ``finally``. A crashed page costs only
its context; a disconnected browser is relaunched for the next transaction. The browser is also
recycled after ``recycle_after`` transactions or above ``browser_memory_mb``: new transactions go to a
fresh browser while the old one finishes the ones it holds. Sign-in sessions are kept per system (see
``session.py``), and the engine ends orphaned browsers of dead workers when it starts.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError

from monitoring import (BOTS_BUSY, BROWSER_RESTARTS, LOCATOR_FALLBACKS, PAGE_CRASHES, STEP_DURATION, TARGET_WAIT,
                        metrics_enabled, redact_text)
from workflows import EnvValues, LoadedWorkflow, Step, Verify, Workflow, secret_values
from workflows.evidence import VERIFY, VERIFY_BEFORE, attempt_folder

from .chromium import OWNER_ENV, find_chromium, launch_options
from .context import PageSignals, StepContext
from .errors import ApplicationError, BotError, BrowserGone, BusinessException, PageCrashed, StepTimeout, TargetServerError
from .evidence import evidence_folder, keep_evidence, prune_artifacts
from .flow import Finished, run_steps
from .healing import Healer, HealingStore
from .processes import browser_processes, memory_mb, owner_marker, reap, reap_detached
from .server_errors import note_retry, wait_s
from .session import SessionKeeper
from .verification import keep_screenshot, keep_verification

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class BotConfig:
    """How bots run. Built by the orchestrator from its settings.

    Attributes:
        system_urls: base URL of each target system, by the name workflows use.
        chromium_path: the executable, or ``None`` to find Debian's.
        step_timeout_ms: the longest one step waits for its element.
        navigation_timeout_ms: the longest a page load may take.
        transaction_budget_s: the longest a whole transaction may take.
        artifacts_dir: where evidence (failed attempts, ``screenshot`` steps) is written (``None``: none is kept).
        files_dir: the folder ``upload`` steps may take files from (``None``: uploads are refused).
        headless: run without a window.
        reuse_sessions: sign in once per system and keep the session (``False``: sign in every transaction).
        recycle_after: transactions a browser runs before a fresh one replaces it.
        browser_memory_mb: memory of the browser's processes above which it is replaced.
        trace: keep a Playwright trace of each failed attempt (off by default: traces hold typed values).
        artifacts_retention_days: evidence older than this is deleted (when the engine starts, then hourly).
        server_error_retries: how many times a 5xx is retried in place, within the attempt (``server_errors.py``):
            a page that submits nothing is loaded again, or, before any submit, the steps start again.
        server_error_wait_s: the base of the jittered wait before each of those (it doubles each time).
        fingerprint_refresh_every: successes of a step between two readings of its element's fingerprint
            (see ``healing.py``; used only when the engine is given a healing store).
    """

    system_urls: Mapping[str, str] = field(default_factory=dict)
    chromium_path: str | None = None
    step_timeout_ms: int = 10_000
    navigation_timeout_ms: int = 15_000
    transaction_budget_s: float = 120.0
    artifacts_dir: Path | None = None
    files_dir: Path | None = None
    headless: bool = True
    reuse_sessions: bool = True
    recycle_after: int = 1000
    browser_memory_mb: float = 1500.0
    trace: bool = False
    artifacts_retention_days: float = 30.0
    server_error_retries: int = 3
    server_error_wait_s: float = 0.5
    fingerprint_refresh_every: int = 200


@dataclass(frozen=True)
class BotJob:
    """One transaction for a bot: which steps to run on which case.

    ``steps`` is the workflow's ``steps`` or its ``lookup``; ``label`` names them in errors.
    """

    workflow: LoadedWorkflow
    steps: list[Step]
    case: dict[str, Any]
    case_ref: str
    attempt: int
    secrets: Mapping[str, str]
    label: str = "steps"
    on_step: Callable[[StepContext, str, float, bool], Awaitable[None]] | None = None
    """Told after each step, nested ones included (the context, the step's path, its seconds, whether it
    succeeded): ``autoclerk try`` prints each step and takes a screenshot after it."""
    output: Mapping[str, Any] | None = None
    """The outputs the steps start with (a verification sees the submit's, ``output.reference`` among them)."""
    screenshot_before_verify: bool = False
    """Keep a screenshot of the page the steps end on (``verify-before.png``): the submit's run of a workflow
    that verifies."""
    verification: Verify | None = None
    """The job is this verification: its evidence (``verify-after.png`` and the compared fields, see
    ``bots.verification``) is kept whether it passes or fails, in the attempt's ``verify/`` folder."""
    folder: str | None = None
    """A subfolder of the attempt's evidence folder for this run, when the attempt runs more than once (the
    lookup of a case that may have been submitted: ``lookup/``; a second run after it: ``run-2/``), so no run's
    evidence overwrites another's."""


@dataclass
class BotResult:
    """What a successful run produced: the ``output.*`` values and the evidence ``screenshot`` steps kept."""

    output: dict[str, Any]
    artifacts: list[str] = field(default_factory=list)


@dataclass(eq=False)
class _Browser:
    """One launched browser, the transactions it holds, and whether it still takes new ones."""

    browser: Browser
    used: int = 0
    active: int = 0
    retiring: bool = False


class _MetricHooks:
    """Step durations into Prometheus (labels: workflow and verb only)."""

    def step_finished(self, workflow: str, verb: str, seconds: float, ok: bool) -> None:
        STEP_DURATION.labels(workflow, verb).observe(seconds)


class BotEngine:
    """One browser per process, a fresh context per transaction; thread-safe.

    Example::

        engine = BotEngine(BotConfig(system_urls={"portal": "http://127.0.0.1:8080"}))
        try:
            result = engine.run(job, before_effect=lambda: None)
        finally:
            engine.close()
    """

    def __init__(self, config: BotConfig, healing: HealingStore | None = None) -> None:
        """Args:
            config: how bots run.
            healing: where step fingerprints and heals are kept; ``None``: none are recorded, nothing heals.
        """
        self.config = config
        self.healer = Healer(healing, refresh_every=config.fingerprint_refresh_every) if healing is not None else None
        self.executable = find_chromium(config.chromium_path)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._playwright: Playwright | None = None
        self._current: _Browser | None = None
        self._browser_lock: asyncio.Lock | None = None
        self.sessions = SessionKeeper()
        self.marker = ""
        self.launches = 0
        self._pruned_at = 0.0

    # -- lifecycle -------------------------------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self.marker = owner_marker()  # after fork: this process's own
                reap()  # browsers left behind by workers killed on this host
                self._thread = threading.Thread(target=run, name="autoclerk-bot-loop", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def close(self) -> None:
        """Close the browser and Playwright and stop the loop thread (idempotent)."""
        with self._start_lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=30)
        except Exception as exc:  # noqa: BLE001 - closing must not fail the caller
            log.warning("bot engine close failed", error=type(exc).__name__)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not loop.is_running():
            loop.close()
        reap(self.marker)  # whatever of ours did not close in time

    async def _shutdown(self) -> None:
        current, self._current = self._current, None
        if current is not None:
            await _close(current.browser)
        if self._playwright is not None:
            await self._playwright.stop()
            self._playwright = None

    def browser_pids(self) -> list[int]:
        """The PIDs of this engine's browser processes (all of Chromium's helpers included)."""
        return list(browser_processes(self.marker)) if self.marker else []

    async def _acquire(self) -> _Browser:
        """The browser for a new transaction: the current one, or a fresh one when it is gone or due to recycle."""
        if self._browser_lock is None:
            self._browser_lock = asyncio.Lock()
        async with self._browser_lock:
            current = self._current
            reason = self._replace_reason(current)
            if reason is not None:
                if current is not None:
                    current.retiring = True
                    BROWSER_RESTARTS.labels(reason).inc()
                    log.warning("browser replaced", reason=reason, transactions=current.used)
                    if current.active == 0 or reason == "disconnected":
                        await _close(current.browser)
                    if reason == "disconnected":  # its helpers, re-parented to init, can outlive it
                        reap_detached(self.marker)
                if self._playwright is None:
                    self._playwright = await async_playwright().start()
                browser = await self._playwright.chromium.launch(
                    executable_path=self.executable,
                    headless=self.config.headless,
                    **launch_options(),
                    env={**os.environ, OWNER_ENV: self.marker},
                )
                self.launches += 1
                current = self._current = _Browser(browser)
            assert current is not None
            current.used += 1
            current.active += 1
            return current

    def _replace_reason(self, current: _Browser | None) -> str | None:
        if current is None:
            return "first"
        if not current.browser.is_connected():
            return "disconnected"
        if current.used >= self.config.recycle_after:
            return "recycled"
        if current.used % 50 == 0:  # now and then: whatever else a dead browser left behind, and the memory
            reap_detached(self.marker)
            if memory_mb(self.browser_pids()) > self.config.browser_memory_mb:
                return "memory"
        return None

    async def _release(self, slot: _Browser) -> None:
        slot.active -= 1
        # A retiring browser takes no new transaction, so the last one out closes it, even while its
        # successor is still launching (and it is still ``_current``): waiting for that leaked a browser.
        if slot.retiring and slot.active == 0:
            await _close(slot.browser)

    # -- running ---------------------------------------------------------------------------------------
    def run(self, job: BotJob, before_effect: Callable[[], None]) -> BotResult:
        """Run one transaction and block until it ends.

        Args:
            job: the steps and the case.
            before_effect: called (in a worker thread) right before a submitting step; it records that
                the effect may happen, and raises to abort when this attempt no longer owns the case.

        Raises:
            BusinessException: the case goes back to a person.
            ApplicationError: another attempt may succeed.
        """
        loop = self._ensure_loop()
        # The caller's log context (batch, workflow, case, attempt) goes with the transaction to the loop's thread.
        bound = structlog.contextvars.get_contextvars()
        future: Future[BotResult] = asyncio.run_coroutine_threadsafe(self._run(job, before_effect, bound), loop)
        if not metrics_enabled():
            return future.result()
        BOTS_BUSY.inc()
        try:
            return future.result()
        finally:
            BOTS_BUSY.dec()

    async def _run(self, job: BotJob, before_effect: Callable[[], None], bound: Mapping[str, Any]) -> BotResult:
        structlog.contextvars.bind_contextvars(**bound)  # this task's own context: no other transaction sees it
        try:
            return await asyncio.wait_for(self._run_in_context(job, before_effect),
                                          timeout=self.config.transaction_budget_s)
        except asyncio.TimeoutError:
            raise StepTimeout(f"the transaction took longer than its budget of {self.config.transaction_budget_s:g} s") from None

    async def _run_in_context(self, job: BotJob, before_effect: Callable[[], None]) -> BotResult:
        """Run the job in a fresh context. A 5xx that reaches here before any submit, and was not already loaded
        again in place (a POST, a page a nested step met), starts the steps again in another fresh context after a
        jittered wait, up to ``server_error_retries`` times."""
        self._prune()
        limit, name = self.config.server_error_retries, job.workflow.definition.name
        restarts = 0
        while True:
            signals = PageSignals(workflow=name)

            def restartable(exc: BotError, signals: PageSignals = signals) -> bool:
                return (isinstance(exc, TargetServerError) and not exc.retried_in_place and not signals.effect_started
                        and restarts < limit)

            slot = await self._acquire()
            try:
                return await self._run_in_browser(slot.browser, job, before_effect, signals, restartable)
            except TargetServerError as exc:
                if not restartable(exc):
                    raise
                restarts += 1
                delay = wait_s(restarts, self.config.server_error_wait_s)
                note_retry(name, "steps started again", exc, restarts, limit, delay)
            finally:
                await self._release(slot)
            await asyncio.sleep(delay)

    async def _run_in_browser(self, browser: Browser, job: BotJob, before_effect: Callable[[], None],
                              signals: PageSignals, restartable: Callable[[BotError], bool]) -> BotResult:
        try:
            context = await browser.new_context(java_script_enabled=True, service_workers="block")
        except PlaywrightError as exc:
            raise BrowserGone(f"could not open a browser context ({_first_line(exc)})") from None
        loop = asyncio.get_running_loop()
        signals.failure = loop.create_future()

        async def effect() -> None:  # set first: a submit that may have begun is never retried in place
            signals.submitting = signals.effect_started = True
            await asyncio.to_thread(before_effect)

        ctx: StepContext | None = None
        on_disconnect: Callable[[Any], None] | None = None
        definition = job.workflow.definition
        try:
            try:
                await self._block_resources(context, definition)
                page = await context.new_page()
            except PlaywrightError as exc:
                raise self._classify(exc, browser, "") from None
            page.set_default_timeout(self.config.step_timeout_ms)
            page.set_default_navigation_timeout(self.config.navigation_timeout_ms)
            ctx = StepContext(
                page=page,
                workflow=job.workflow,
                case=job.case,
                secrets=job.secrets,
                env=EnvValues(definition.env),
                system_urls=dict(self.config.system_urls),
                step_timeout_ms=self.config.step_timeout_ms,
                navigation_timeout_ms=self.config.navigation_timeout_ms,
                before_effect=effect,
                on_fallback=lambda verb, index: self._fallback(definition.name, verb, index),
                hooks=_MetricHooks() if metrics_enabled() else None,
                evidence_dir=self._evidence_dir(job),
                files_dir=self.config.files_dir,
                signals=signals,
                server_error_retries=self.config.server_error_retries,
                server_error_wait_s=self.config.server_error_wait_s,
                sessions=self.sessions if self.config.reuse_sessions else None,
                secret_values=set(secret_values(definition.input, job.case)),
                on_step=job.on_step,
                output=dict(job.output or {}),
                healer=self.healer,
                case_ref=job.case_ref,
                attempt=job.attempt,
                job_workflow=(definition.name, job.workflow.digest) if self.healer is not None else ("", ""),
            )
            bound = ctx

            def crashed(_page: Any) -> None:
                PAGE_CRASHES.inc()
                bound.fail(PageCrashed("the page crashed", step=bound.step_path))

            def requested(request: Any) -> None:  # which step each page load began in (and whether it submits)
                try:
                    if request.is_navigation_request() and request.frame == page.main_frame:
                        signals.began[request] = (signals.step, signals.submitting)
                except PlaywrightError:  # a navigation whose frame is not there yet is not the page's own
                    pass

            def answered(response: Any) -> None:  # a 5xx page, wherever a step led (goto, a click, a redirect)
                if response.status >= 500 and response.frame == page.main_frame and response.request.is_navigation_request():
                    began_in, method, submitting = signals.origin(response.request)
                    bound.fail(TargetServerError(f"the target system answered {response.status}", step=bound.step_path,
                                                 url=response.url, method=method, began_in=began_in,
                                                 submitting=submitting))

            def loaded(request: Any) -> None:  # how long the target system took to answer a page load
                if request.is_navigation_request() and (end := request.timing.get("responseEnd", -1)) >= 0:
                    TARGET_WAIT.labels(definition.name).observe(end / 1000)

            def script_failed(error: Any) -> None:  # the page's own JavaScript threw
                _note_page_error(bound, f"script error: {_first_line(error)}")

            def console(message: Any) -> None:
                if message.type == "error":
                    _note_page_error(bound, f"console error: {' '.join(str(message.text).split())[:300]}")

            page.on("crash", crashed)
            page.on("request", requested)
            page.on("response", answered)
            page.on("pageerror", script_failed)
            page.on("console", console)
            if metrics_enabled():
                page.on("requestfinished", loaded)
            on_disconnect = lambda _b: bound.fail(BrowserGone("the browser disconnected", step=bound.step_path))  # noqa: E731
            browser.on("disconnected", on_disconnect)
            if self.config.trace:
                await context.tracing.start(screenshots=True, snapshots=True)
            try:
                await run_steps(ctx, job.steps, job.label)
            except Finished as finished:  # a finish step: the case is done, the steps after it skipped
                ctx.output.update(finished.output)
                log.info("case finished early", at=finished.step, reason=finished.reason)
            except PlaywrightError as exc:
                raise self._classify(exc, browser, ctx.step_path) from None
            except StepTimeout as exc:
                expired = await self.sessions.check_expired(ctx)
                if expired is None and ctx.page_errors:  # a broken page script is the likely cause: say so
                    exc.args = (f"{exc.args[0]}; the page's own script failed before it ({ctx.page_errors[-1]})",
                                *exc.args[1:])
                raise expired or exc from None
            if job.screenshot_before_verify:
                await keep_screenshot(ctx, VERIFY_BEFORE)
            if job.verification is not None:
                await keep_verification(ctx, job.verification)
            return BotResult(output=dict(ctx.output), artifacts=list(ctx.artifacts))
        except BotError as exc:  # the one way a job's failure leaves the engine
            if ctx is not None:
                _mask_message(exc, ctx)
                if job.verification is not None and isinstance(exc, BusinessException):
                    await keep_verification(ctx, job.verification)  # what the failed comparison saw
                if not restartable(exc):  # the steps start again in place: no evidence of a failed attempt yet
                    await keep_evidence(ctx, exc, trace=self.config.trace)
            raise
        finally:
            if on_disconnect is not None:
                browser.remove_listener("disconnected", on_disconnect)
            try:
                await context.close()
            except PlaywrightError:
                pass

    def _evidence_dir(self, job: BotJob) -> Path | None:
        if self.config.artifacts_dir is None:
            return None
        folder = evidence_folder(self.config.artifacts_dir, job.workflow.definition.name, job.case_ref) / attempt_folder(job.attempt)
        if job.folder:
            folder = folder / job.folder
        return folder / VERIFY if job.verification is not None else folder

    @staticmethod
    def _fallback(workflow: str, verb: str, index: int) -> None:
        LOCATOR_FALLBACKS.labels(workflow, verb).inc()
        log.warning("locator fell back to an alternative", step_type=verb, alternative=index + 1)

    @staticmethod
    def _classify(exc: PlaywrightError, browser: Browser, step: str) -> ApplicationError:
        if not browser.is_connected():
            return BrowserGone("the browser disconnected", step=step)
        text = _first_line(exc)
        if "crash" in text.lower():
            return PageCrashed("the page crashed", step=step)
        return ApplicationError(f"browser error: {redact_text(text)}", step=step)

    async def _block_resources(self, context: BrowserContext, workflow: Workflow) -> None:
        blocked = {kind for system in workflow.systems.values() for kind in system.block_resources}
        if not blocked:
            return

        async def handler(route: Any) -> None:
            if route.request.resource_type in blocked:
                await route.abort()
            else:
                await route.continue_()

        await context.route("**/*", handler)

    def _prune(self) -> None:
        """Delete evidence past its retention, when the engine starts and then hourly."""
        if self.config.artifacts_dir is None or (self._pruned_at and time.monotonic() - self._pruned_at < 3600):
            return
        self._pruned_at = time.monotonic()
        prune_artifacts(self.config.artifacts_dir, self.config.artifacts_retention_days)


async def _close(browser: Browser) -> None:
    try:
        await browser.close()
    except PlaywrightError:
        pass


MAX_PAGE_ERRORS = 50
"""The page errors kept per attempt (a page that logs an error in a loop must not fill memory)."""


def _note_page_error(ctx: StepContext, text: str) -> None:
    if len(ctx.page_errors) < MAX_PAGE_ERRORS:
        ctx.page_errors.append(f"{ctx.step_path or 'before the first step'}: {text}")


def _mask_message(exc: BotError, ctx: StepContext) -> None:
    """Mask the case's secret values in the message, in place: class, ``step``, ``code`` and ``evidence`` stay.

    A message may carry a rendered value (an ``assert``'s message, the target system's own validation
    text, a browser error naming the address it could not open).
    """
    if ctx.secret_values:
        exc.args = tuple(ctx.mask(arg) if isinstance(arg, str) else arg for arg in exc.args)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
