"""Server errors retried in place: a page that answered 5xx is loaded again within the same attempt,
after a short jittered wait, a bounded number of times, so the case does not go back to the queue.

What is safe to send again decides how:

- a page request that submits nothing (a GET, and its navigation did not begin in a submitting step) is
  loaded again where it failed (:func:`load_again`): the step that led to it is then done, or the step
  that met the error runs again on the page;
- any other 5xx before the transaction's first submit (a sign-in form's POST, a page of a part) starts the
  transaction's steps again in a fresh browser context (the engine does it);
- a 5xx on or after a submitting step is never sent again: the effect may have happened. The orchestrator
  looks the change up with the workflow's lookup (once within the attempt, after a retry's wait) and submits
  again only when the target system holds no record of it.
"""

from __future__ import annotations

import asyncio
import random

import structlog
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from monitoring import STEP_RETRIES, metrics_enabled

from .context import StepContext
from .errors import StepTimeout, TargetServerError

log = structlog.get_logger(__name__)

REASON = "server_error"
"""The ``reason`` label of ``autoclerk_step_retries_total`` for a 5xx retried in place."""


def wait_s(retry: int, base_s: float) -> float:
    """The jittered wait before the ``retry``-th try again: between half and all of ``base_s * 2**(retry-1)``."""
    top = base_s * 2 ** (retry - 1)
    return random.uniform(top / 2, top)


def note_retry(workflow: str, how: str, exc: TargetServerError, retry: int, limit: int, delay_s: float) -> None:
    """Count one retry in place (metric and log line). The address is not logged: it may hold case data."""
    if metrics_enabled():
        STEP_RETRIES.labels(workflow, REASON).inc()
    log.info("server error retried in place", how=how, error=str(exc), began_in=exc.began_in, retry=retry,
             retries=limit, wait_s=round(delay_s, 2))


def can_load_again(exc: TargetServerError) -> bool:
    """Whether the request that answered 5xx may be sent again as it is: a GET no submitting step sent."""
    return exc.url is not None and exc.method == "GET" and not exc.submitting


async def load_again(ctx: StepContext, exc: TargetServerError) -> bool:
    """Load the page that answered 5xx again, in place, until it answers or ``ctx.server_error_retries`` are spent.

    Returns:
        Whether the step that met the error must run again: its navigation began in an earlier step (a click
        whose page failed while the next step waited), so that step has not done its work yet.

    Raises:
        TargetServerError: the request may not be sent again, or the page kept answering 5xx.
        StepTimeout: the page did not load within the navigation timeout.
    """
    signals = ctx.signals
    again = exc.began_in is not None and exc.began_in != signals.step
    for retry in range(1, ctx.server_error_retries + 1):
        if not can_load_again(exc):
            raise exc
        assert exc.url is not None
        delay = wait_s(retry, ctx.server_error_wait_s)
        note_retry(signals.workflow, "page loaded again", exc, retry, ctx.server_error_retries, delay)
        await asyncio.sleep(delay)
        signals.rearm()
        try:
            response = await ctx.race(ctx.page.goto(exc.url, timeout=ctx.navigation_timeout_ms,
                                                    wait_until="domcontentloaded"))
        except TargetServerError as failed:
            exc = failed
            continue
        except PlaywrightTimeout:
            raise StepTimeout(f"a page that answered a server error did not load again within "
                              f"{ctx.navigation_timeout_ms} ms", step=ctx.step_path) from None
        except PlaywrightError as failed:  # the failed page was still arriving when it was asked for again
            if "interrupted by another navigation" not in str(failed):
                raise
            continue
        if response is not None and response.status >= 500:
            exc = TargetServerError(f"the target system answered {response.status}", step=ctx.step_path,
                                    url=response.url, method="GET", began_in=signals.step)
            continue
        return again
    exc.retried_in_place = ctx.server_error_retries > 0
    raise exc
