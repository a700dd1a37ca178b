"""The bot engine: one Playwright and one Chromium per worker process, a fresh context per transaction.

Playwright runs on its own asyncio loop in a background thread. Callers (Celery's pool threads) hand a
transaction to :meth:`BotEngine.run` and block until it ends, so several transactions are in flight in
one browser at once, each in its own isolated context, closed in ``finally``. A crashed page costs only
its context; a disconnected browser is relaunched for the next transaction.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError

from monitoring import LOCATOR_FALLBACKS, STEP_DURATION, redact_text
from workflows import EnvValues, LoadedWorkflow, Step, Workflow

from .chromium import LAUNCH_ARGS, OWNER_ENV, find_chromium
from .context import StepContext
from .errors import ApplicationError, BotError, BrowserGone, PageCrashed, StepTimeout
from .flow import run_steps

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
    """

    system_urls: Mapping[str, str] = field(default_factory=dict)
    chromium_path: str | None = None
    step_timeout_ms: int = 10_000
    navigation_timeout_ms: int = 15_000
    transaction_budget_s: float = 120.0
    artifacts_dir: Path | None = None
    files_dir: Path | None = None
    headless: bool = True


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


@dataclass
class BotResult:
    """What a successful run produced: the ``output.*`` values and the evidence ``screenshot`` steps kept."""

    output: dict[str, Any]
    artifacts: list[str] = field(default_factory=list)


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

    def __init__(self, config: BotConfig) -> None:
        self.config = config
        self.executable = find_chromium(config.chromium_path)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._browser_lock: asyncio.Lock | None = None

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

    async def _shutdown(self) -> None:
        if self._browser is not None:
            try:
                await self._browser.close()
            except PlaywrightError:
                pass
            self._browser = None
        if self._playwright is not None:
            await self._playwright.stop()
            self._playwright = None

    async def _get_browser(self) -> Browser:
        if self._browser_lock is None:
            self._browser_lock = asyncio.Lock()
        async with self._browser_lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._browser is not None:
                log.warning("browser disconnected; relaunching")
                try:
                    await self._browser.close()
                except PlaywrightError:
                    pass
            if self._playwright is None:
                self._playwright = await async_playwright().start()
            self._browser = await self._playwright.chromium.launch(
                executable_path=self.executable,
                headless=self.config.headless,
                args=list(LAUNCH_ARGS),
                env={**os.environ, OWNER_ENV: str(os.getpid())},
            )
            return self._browser

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
        future: Future[BotResult] = asyncio.run_coroutine_threadsafe(self._run(job, before_effect), loop)
        return future.result()

    async def _run(self, job: BotJob, before_effect: Callable[[], None]) -> BotResult:
        try:
            return await asyncio.wait_for(self._run_in_context(job, before_effect),
                                          timeout=self.config.transaction_budget_s)
        except asyncio.TimeoutError:
            raise StepTimeout(f"the transaction took longer than its budget of {self.config.transaction_budget_s:g} s") from None

    async def _run_in_context(self, job: BotJob, before_effect: Callable[[], None]) -> BotResult:
        browser = await self._get_browser()
        try:
            context = await browser.new_context(java_script_enabled=True, service_workers="block")
        except PlaywrightError as exc:
            raise BrowserGone(f"could not open a browser context ({_first_line(exc)})") from None
        loop = asyncio.get_running_loop()
        ctx: StepContext | None = None
        on_disconnect: Callable[[Any], None] | None = None
        definition = job.workflow.definition
        try:
            await self._block_resources(context, definition)
            page = await context.new_page()
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
                before_effect=lambda: asyncio.to_thread(before_effect),
                on_fallback=lambda verb, index: self._fallback(definition.name, verb, index),
                hooks=_MetricHooks(),
                evidence_dir=self._evidence_dir(job),
                files_dir=self.config.files_dir,
                failure=loop.create_future(),
            )
            bound = ctx
            page.on("crash", lambda _page: bound.fail(PageCrashed("the page crashed", step=bound.step_path)))
            on_disconnect = lambda _b: bound.fail(BrowserGone("the browser disconnected", step=bound.step_path))  # noqa: E731
            browser.on("disconnected", on_disconnect)
            try:
                await run_steps(ctx, job.steps, job.label)
            except PlaywrightError as exc:
                raise self._classify(exc, browser, ctx.step_path) from None
            return BotResult(output=dict(ctx.output), artifacts=list(ctx.artifacts))
        except BotError as exc:
            if ctx is not None:
                await self._evidence(ctx, job, exc)
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
        return (self.config.artifacts_dir / _safe(job.workflow.definition.name) / _safe(job.case_ref)
                / f"attempt-{job.attempt}")

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

    async def _evidence(self, ctx: StepContext, job: BotJob, exc: BotError) -> None:
        """Keep a screenshot (secret fields masked) and the page's HTML (secrets redacted) of a failed attempt."""
        folder = ctx.evidence_dir
        if folder is None or ctx.page.is_closed():
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            masks = [ctx.page.locator("input[type=password]"), *ctx.secret_locators]
            await asyncio.wait_for(ctx.page.screenshot(path=str(folder / "failure.png"), mask=masks, full_page=True),
                                   timeout=5)
            html = await asyncio.wait_for(ctx.page.content(), timeout=5)
            (folder / "failure.html").write_text(redact_text(html), encoding="utf-8")
            exc.evidence = [*ctx.artifacts, str(folder / "failure.png"), str(folder / "failure.html")]  # type: ignore[attr-defined]
        except (PlaywrightError, OSError, asyncio.TimeoutError) as err:
            log.warning("evidence not kept", case_ref=job.case_ref, error=type(err).__name__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:100] or "_"
