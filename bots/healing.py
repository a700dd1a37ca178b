"""Self-healing locators, accountable: fingerprints recorded off the hot path, and the policy of what heals.

When a step finds its element, :meth:`Healer.found` counts the success; on a step's first success in this
process and then every ``refresh_every`` successes it reads the element's fingerprint (one call into the
page) and hands it to the :class:`HealingStore` in a background thread. Every other success costs a
dictionary update.

When every locator of a step fails, :meth:`Healer.heal` scores the page's elements against the recorded
fingerprint (:func:`bots.fingerprint.score`). It heals only when exactly one candidate reaches
``threshold`` and beats the next by at least ``margin``. Then the policy decides:

- a reading step (``extract``, ``wait_for``, ``assert``) and a field filled with no secret (``fill``,
  ``select``, ``choose``, ``check``, ``uncheck``) heal on their own: the step goes on with the candidate,
  and the heal is recorded;
- any other step (a click, a submit, a key press, an upload) does not: the case goes to a person as a
  business exception (code ``heal_needs_approval``) with the proposed locator, the fingerprint it
  replaces, a screenshot marking the candidate, and the score.

Every heal (made or proposed) goes to the store with the case, the step, the old and new locator, the
score and the screenshot. The bots know no database: the orchestrator passes the store in (see
:class:`orchestrator.queue.heals.LedgerHealingStore`); :class:`MemoryHealingStore` keeps them in memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import structlog
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator as PwLocator

from monitoring import HEALS
from workflows.evidence import heal_shot

from .errors import BusinessException
from .fingerprint import CANDIDATES_JS, FINGERPRINT_JS, Fingerprint, score

if TYPE_CHECKING:
    from .context import StepContext

log = structlog.get_logger(__name__)

READING = frozenset({"extract", "wait_for", "assert"})
"""Steps that only read the page: they heal on their own."""
FILLING = frozenset({"fill", "select", "choose", "check", "uncheck"})
"""Steps that fill a field: they heal on their own unless the value is a secret."""


@dataclass(frozen=True)
class Heal:
    """One heal, made (``healed``) or waiting for a person (``proposed``).

    ``old_locator`` is the step's locator as written (its alternatives joined by `` or ``), ``new_locator``
    the CSS selector of the candidate; ``fingerprint`` and ``candidate`` are the recorded element's and the
    candidate's fingerprints; ``runner_up`` is the next candidate's score (0 when there was none).
    """

    workflow: str
    digest: str
    step: str
    verb: str
    case_ref: str
    attempt: int
    outcome: Literal["healed", "proposed"]
    old_locator: str
    new_locator: str
    score: float
    runner_up: float
    fingerprint: dict[str, Any]
    candidate: dict[str, Any]
    screenshot: str | None = None


class HealingStore(Protocol):
    """Where fingerprints and heals are kept (the ledger, in a worker). Called from a worker thread."""

    def fingerprint(self, digest: str, step: str) -> dict[str, Any] | None:
        """The recorded fingerprint of a step of a workflow version, or ``None``."""

    def record_fingerprint(self, workflow: str, digest: str, step: str, fingerprint: dict[str, Any]) -> None:
        """Keep (or refresh) the fingerprint of a step of a workflow version."""

    def record_heal(self, heal: Heal) -> int:
        """Keep a heal; returns its id."""


@dataclass
class MemoryHealingStore:
    """A :class:`HealingStore` in memory (unit tests, benchmarks without a ledger)."""

    fingerprints: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    heals: list[Heal] = field(default_factory=list)
    writes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fingerprint(self, digest: str, step: str) -> dict[str, Any] | None:
        return self.fingerprints.get((digest, step))

    def record_fingerprint(self, workflow: str, digest: str, step: str, fingerprint: dict[str, Any]) -> None:
        with self._lock:
            self.fingerprints[(digest, step)] = fingerprint
            self.writes += 1

    def record_heal(self, heal: Heal) -> int:
        with self._lock:
            self.heals.append(heal)
            return len(self.heals)


@dataclass(frozen=True)
class Verdict:
    """What the scoring found: the best candidate (selector and fingerprint), its score and the next one's,
    and, when it may not be used, why (a sentence for the step's error message)."""

    selector: str | None
    candidate: dict[str, Any]
    best: float
    runner_up: float
    refused: str | None


def judge(recorded: Fingerprint, candidates: list[dict[str, Any]], threshold: float, margin: float) -> Verdict:
    """Score ``candidates`` (``{"selector", "fingerprint"}`` mappings) against ``recorded``: the best one is
    usable when it reaches ``threshold`` and beats the next by ``margin`` (ties go to page order, so the
    verdict is the same every time)."""
    ranked = sorted(((score(recorded, Fingerprint.of(c["fingerprint"])), i) for i, c in enumerate(candidates)),
                    key=lambda pair: (-pair[0], pair[1]))
    if not ranked:
        return Verdict(None, {}, 0.0, 0.0, "the page shows no element like it")
    best, index = ranked[0]
    runner_up = ranked[1][0] if len(ranked) > 1 else 0.0
    chosen = candidates[index]
    refused = None
    if best < threshold:
        refused = f"no element on the page is like it (best score {best:.2f}, {threshold:.2f} needed)"
    elif best - runner_up < margin:
        refused = f"two elements are alike (scores {best:.2f} and {runner_up:.2f})"
    return Verdict(chosen["selector"], dict(chosen["fingerprint"]), best, runner_up, refused)


def may_heal_alone(ctx: "StepContext") -> bool:
    """Whether the step being run may heal without a person: a reading step, or a field filled with no secret."""
    verb, args = ctx.step_verb, ctx.step_args
    if verb in READING:
        return True
    if verb not in FILLING:
        return False
    values = [getattr(args, name, None) for name in ("value", "label", "text", "option")]
    return not any(isinstance(value, str) and ctx.names_secret(value) for value in values)


class Healer:
    """Fingerprints and heals for one bot engine; used on the engine's loop only.

    Args:
        store: where fingerprints and heals are kept.
        refresh_every: successes of a step between two readings of its fingerprint.
        threshold: the score a candidate needs to heal (0 to 1).
        margin: how far it must beat the next candidate.
    """

    def __init__(self, store: HealingStore, *, refresh_every: int = 200, threshold: float = 0.6,
                 margin: float = 0.15) -> None:
        self.store = store
        self.refresh_every = max(1, refresh_every)
        self.threshold = threshold
        self.margin = margin
        self._successes: dict[tuple[str, str], int] = {}
        self._known: dict[tuple[str, str], Fingerprint | None] = {}
        self._writes: set[asyncio.Future[None]] = set()
        self._shots = itertools.count(1)
        self._healed: dict[tuple[str, str], Heal] = {}

    # -- fingerprints ------------------------------------------------------------------------------------
    async def found(self, ctx: "StepContext", element: PwLocator) -> None:
        """A step found its element: read and keep its fingerprint when due (first success, then every N)."""
        key = (ctx.job_workflow[1], ctx.step_path)
        count = self._successes.get(key, 0)
        self._successes[key] = count + 1
        if count % self.refresh_every:
            return
        try:
            data = await element.evaluate(FINGERPRINT_JS)
        except PlaywrightError:
            return  # the element went away meanwhile: the next success reads it
        if ctx.secret_values:  # the words around a field may be the case's: its secrets never leave the page
            data.update({name: ctx.mask(str(data.get(name) or "")) for name in ("name", "label", "nearby")})
        self._known[key] = Fingerprint.of(data)
        write = asyncio.ensure_future(asyncio.to_thread(self.store.record_fingerprint, ctx.job_workflow[0],
                                                        key[0], key[1], data))
        self._writes.add(write)
        write.add_done_callback(self._written)

    def _written(self, write: asyncio.Future[None]) -> None:
        self._writes.discard(write)
        if not write.cancelled() and write.exception() is not None:
            log.warning("fingerprint not kept", error=type(write.exception()).__name__)

    async def recorded(self, ctx: "StepContext") -> Fingerprint | None:
        """The step's recorded fingerprint: this process's, else the store's (read once)."""
        key = (ctx.job_workflow[1], ctx.step_path)
        if key not in self._known:
            data = await asyncio.to_thread(self.store.fingerprint, *key)
            self._known[key] = Fingerprint.of(data) if data else None
        return self._known[key]

    # -- healing -----------------------------------------------------------------------------------------
    def healed_before(self, ctx: "StepContext") -> str | None:
        """The selector this process healed the step to on its own before (tried after the step's locators)."""
        found = self._healed.get((ctx.job_workflow[1], ctx.step_path))
        return found.new_locator if found is not None else None

    async def reused(self, ctx: "StepContext", old_locator: str) -> None:
        """The step found its element only through an earlier heal: recorded again, with this case."""
        earlier = self._healed[(ctx.job_workflow[1], ctx.step_path)]
        heal = dataclasses.replace(earlier, case_ref=ctx.case_ref, attempt=ctx.attempt, old_locator=ctx.mask(old_locator),
                                   screenshot=None)
        heal_id = await asyncio.to_thread(self.store.record_heal, heal)
        HEALS.labels(heal.workflow, heal.step, "healed").inc()
        log.warning("locator healed", heal=heal_id, new_locator=heal.new_locator, score=heal.score, again=True)

    async def heal(self, ctx: "StepContext", old_locator: str) -> tuple[PwLocator | None, str]:
        """Find the step's lost element by its fingerprint.

        Returns:
            The healed element and ``""`` when it may be used; ``None`` and why not otherwise.

        Raises:
            BusinessException: a unique candidate was found for a step that may not heal alone (code
                ``heal_needs_approval``): the case goes to a person with the proposal.
        """
        old_locator = ctx.mask(old_locator)  # rendered for the case: a secret case value never reaches the ledger
        recorded = await self.recorded(ctx)
        if recorded is None:
            return None, "not healed: no fingerprint of its element was recorded yet"
        candidates = await ctx.page.evaluate(CANDIDATES_JS, recorded.tag)
        verdict = judge(recorded, candidates, self.threshold, self.margin)
        workflow = ctx.job_workflow[0]
        if verdict.refused or verdict.selector is None:
            HEALS.labels(workflow, ctx.step_path, "refused").inc()
            log.warning("locator not healed", reason=verdict.refused, best=verdict.best, runner_up=verdict.runner_up)
            return None, f"not healed: {verdict.refused}"
        element = ctx.page.locator(verdict.selector).first
        alone = may_heal_alone(ctx)
        heal = Heal(workflow=workflow, digest=ctx.job_workflow[1], step=ctx.step_path, verb=ctx.step_verb,
                    case_ref=ctx.case_ref, attempt=ctx.attempt, outcome="healed" if alone else "proposed",
                    old_locator=old_locator, new_locator=verdict.selector, score=verdict.best,
                    runner_up=verdict.runner_up, fingerprint=recorded.as_dict(), candidate=verdict.candidate,
                    screenshot=await self._mark(ctx, element))
        heal_id = await asyncio.to_thread(self.store.record_heal, heal)
        HEALS.labels(workflow, ctx.step_path, heal.outcome).inc()
        log.warning("locator healed" if alone else "locator heal proposed", heal=heal_id, new_locator=verdict.selector,
                    score=verdict.best, runner_up=verdict.runner_up)
        if alone:
            self._healed[(heal.digest, heal.step)] = heal
        else:
            raise BusinessException(
                f"The page has changed: no element matches {old_locator}. The element {verdict.selector} looks like it "
                f"(score {verdict.best:.2f}), but a '{ctx.step_verb}' step is not healed without a person: approve heal "
                f"{heal_id} ('autoclerk heals approve {heal_id}') and hand the case in again",
                code="heal_needs_approval", step=ctx.step_path)
        return element, ""

    async def _mark(self, ctx: "StepContext", element: PwLocator) -> str | None:
        """A screenshot with the candidate outlined (secrets masked as in all evidence), or ``None``."""
        if ctx.evidence_dir is None:
            return None
        ctx.evidence_dir.mkdir(parents=True, exist_ok=True)
        path = ctx.evidence_dir / f"{heal_shot(next(self._shots))}.png"
        masks = [ctx.page.locator("input[type=password]"), *ctx.secret_locators]
        try:
            await element.evaluate("e => { e.dataset.autoclerkOutline = e.style.outline;"
                                   " e.style.outline = '4px solid #d4351c'; e.style.outlineOffset = '2px'; }")
            await ctx.page.screenshot(path=str(path), mask=masks, full_page=True, timeout=5000)
            await element.evaluate("e => { e.style.outline = e.dataset.autoclerkOutline || '';"
                                   " e.style.outlineOffset = ''; delete e.dataset.autoclerkOutline; }")
        except PlaywrightError as exc:
            log.warning("heal screenshot not kept", error=type(exc).__name__)
            return None
        ctx.artifacts.append(str(path))
        return str(path)
