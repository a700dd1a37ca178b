"""Signed-in sessions kept per worker: sign in once per target system, reuse it, sign in again when it expires.

A sign-in part declares its ``session`` (see ``workflows.model.Session``). When a transaction calls it,
the keeper gives the transaction's fresh context the cookies of the worker's session for that system
and opens the ``resume`` page; only when there is no session yet, or the system shows its sign-in page
there, do the part's steps run, and the cookies they leave become the worker's session. One transaction
signs in at a time per system, so transactions starting together share one sign-in instead of racing.

The cookies live in this process's memory only: never on disk, in a log or in the ledger.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urljoin

import structlog
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from monitoring import SESSIONS
from workflows import EnvValues, LoadedWorkflow, Session, alternatives

from .context import StepContext
from .errors import SessionExpired, StepTimeout, TargetServerError
from .server_errors import load_again

log = structlog.get_logger(__name__)


@dataclass
class _Held:
    """One kept session: the cookies, and the part that made it (to tell its sign-in page)."""

    cookies: list[Any]
    session: Session
    part: LoadedWorkflow
    case: dict[str, Any]


@dataclass
class SessionKeeper:
    """The signed-in sessions of one bot engine, by system and sign-in arguments. Used on the engine's loop."""

    _held: dict[str, _Held] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    @staticmethod
    def key(session: Session, case: dict[str, Any]) -> str:
        """Sessions are told apart by system and by the part's arguments (another user is another session)."""
        return session.system + "\x00" + json.dumps(case, sort_keys=True, default=str)

    async def sign_in(self, ctx: StepContext, part: LoadedWorkflow, case: dict[str, Any],
                      run_steps: Callable[[], Awaitable[None]]) -> None:
        """Leave ``ctx.page`` signed in to the part's system: reuse the kept session, or run the sign-in steps."""
        session = part.definition.session
        assert session is not None
        key = self.key(session, case)
        held = self._held.get(key)
        if held is not None and await self._resume(ctx, held):
            SESSIONS.labels(part.definition.name, "reused").inc()
            return
        async with self._locks.setdefault(key, asyncio.Lock()):
            newer = self._held.get(key)
            if newer is not None and newer is not held and await self._resume(ctx, newer):
                SESSIONS.labels(part.definition.name, "reused").inc()  # another transaction signed in meanwhile
                return
            if newer is not None:
                self._held.pop(key, None)
                SESSIONS.labels(part.definition.name, "expired").inc()
                log.info("session expired; signing in again", system=session.system)
            await run_steps()
            self._held[key] = _Held(await ctx.page.context.cookies(), session, part, case)
            SESSIONS.labels(part.definition.name, "signed_in").inc()
            log.info("signed in", system=session.system)

    async def _resume(self, ctx: StepContext, held: _Held) -> bool:
        """Open the resume page with the kept cookies; ``False`` when the system asks for a sign-in there."""
        session = held.session
        base = ctx.system_urls.get(session.system)
        if not base:
            return False
        await ctx.page.context.add_cookies(held.cookies)
        url = urljoin(base.rstrip("/") + "/", session.resume.lstrip("/"))
        try:
            try:
                response = await ctx.race(ctx.page.goto(url, timeout=ctx.navigation_timeout_ms,
                                                        wait_until="domcontentloaded"))
            except PlaywrightTimeout:
                raise StepTimeout(f"the signed-in page {session.resume} did not open within {ctx.navigation_timeout_ms} ms",
                                  step=ctx.step_path) from None
            if response is not None and response.status >= 500:
                raise TargetServerError(f"the target system answered {response.status}", step=ctx.step_path,
                                        url=response.url, method="GET", began_in=ctx.signals.step)
        except TargetServerError as exc:
            await load_again(ctx, exc)  # the resume page submits nothing: loaded again in place, or this raises
        return not await self._shows_sign_in(ctx, held)

    async def _shows_sign_in(self, ctx: StepContext, held: _Held) -> bool:
        inner = _as_part(ctx, held)
        for spec in alternatives(held.session.signed_out):
            try:
                if await inner.locate(spec).count():
                    return True
            except PlaywrightError:
                return False
        return False

    async def check_expired(self, ctx: StepContext) -> SessionExpired | None:
        """After a failed step: whether the page is a kept session's sign-in page (the session expired
        mid-transaction). The session is dropped, and the caller retries the transaction."""
        if ctx.page.is_closed():
            return None
        for key, held in list(self._held.items()):
            if await self._shows_sign_in(ctx, held):
                if self._held.get(key) is held:
                    del self._held[key]
                    SESSIONS.labels(held.part.definition.name, "expired").inc()
                return SessionExpired(f"the {held.session.system} session expired during the transaction; "
                                      "it signs in again on the next attempt", step=ctx.step_path)
        return None


def _as_part(ctx: StepContext, held: _Held) -> StepContext:
    """The step context as the sign-in part sees it (its locators render from its own arguments)."""
    return replace(ctx, workflow=held.part, case=held.case, vars={}, output={},
                   env=EnvValues(held.part.definition.env))
