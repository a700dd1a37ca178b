"""Working transactions: claim them, reconcile an uncertain earlier submit, run the bot, record the outcome.

Plain functions, testable without Celery. A message carries several transaction ids; they are claimed
in chunks that grow while transactions finish quickly (a no-op or very fast bot: one database
transaction for a whole message) and stay at one for browser work (each outcome is recorded as soon as
it is known). A retry is scheduled in the ledger, never on the broker: the sweep publishes it when its
time comes, so no message is held for minutes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from bots import BotJob, BotResult, BusinessException, TargetServerError
from monitoring import (ATTEMPTS, RETRIES, STEP_RETRIES, TRANSACTION_DURATION, TRANSACTIONS, VERIFICATIONS, metrics_enabled, redact_text,
                        register_secret)
from workflows import CaseDataError, LoadedWorkflow, SecretValues, check_case, mask_text, secret_values
from workflows.evidence import LOOKUP, SECOND_RUN

from ..deadlines import maintenance_until
from ..errors import StaleAttempt
from ..ledger import HELD, LEDGER_UNREACHABLE, Claim, Outcome
from .breaker import waiting_message
from ..ledger.schema import PENDING
from .budgets import BudgetUnavailable, budget_held
from .faults import fault_point
from .preflight import missing_configuration
from .runtime import Runtime
from . import verification

log = structlog.get_logger(__name__)

FAST_S = 0.05
"""Transactions quicker than this are claimed and recorded in growing chunks."""
MAX_CHUNK = 1000
LOOKED_UP_IN_PLACE = "server error on a submit; the change is looked up in place"
"""The log event of an attempt whose submit met a 5xx, and which looks the change up before it ends."""
CIRCUIT_OPEN = "CircuitOpen"
"""The error class of a case deferred, unclaimed, because its target system's circuit breaker is open."""
LEDGER_WAIT_S = 30.0
"""How long a worker waits in place for an unreachable ledger before it hands its message back to the queue."""


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """Exponential backoff with jitter: a random delay between half and all of ``base * 2**(attempt-1)``, capped."""
    return random.uniform(base_s / 2, min(max_s, base_s * 2 ** (attempt - 1)))


def execute_many(runtime: Runtime, ids: Sequence[int]) -> list[Outcome]:
    """Run one attempt at each claimable transaction of ``ids``; return the outcomes recorded.

    Ids that are finished, paused or held by another live attempt are skipped. When the message's time
    budget runs out, the unclaimed rest goes back to the outbox for the sweep to publish again.
    """
    ledger, settings = runtime.ledger, runtime.settings
    started = time.monotonic()
    pending = list(dict.fromkeys(ids))
    chunk = runtime.claim_chunk  # how the last message went: fast work starts with large chunks
    recorded: list[Outcome] = []
    while pending:
        if time.monotonic() - started > settings.message_budget_s - settings.transaction_budget_s:
            ledger.outbox.put_back(pending)
            log.info("message budget spent; rest handed back", handed_back=len(pending))
            break
        take, pending = pending[:chunk], pending[chunk:]
        claims = _claim(runtime, take)
        if len(claims) < len(take):  # some may be done cases whose delayed verification is due
            _verify_due(runtime, take, claims)
        began = time.monotonic()
        outcomes = [o for o in (_attempt(runtime, claim) for claim in claims) if o is not None]
        stale = ledger.transactions.finish_many(outcomes)
        if outcomes:
            fault_point("after_commit")
        for outcome in outcomes:
            if outcome.claim in stale:
                log.warning("stale attempt's outcome refused", case_ref=outcome.claim.case_ref)
                continue
            recorded.append(outcome)
        _count([o for o in outcomes if o.claim not in stale])
        per_tx = (time.monotonic() - began) / max(1, len(claims))
        chunk = min(chunk * 2, MAX_CHUNK) if per_tx < FAST_S else 1
        runtime.claim_chunk = chunk
    structlog.contextvars.clear_contextvars()
    return recorded


def _claim(runtime: Runtime, ids: list[int]) -> list[Claim]:
    """Claim ``ids`` (those outside maintenance windows and open circuit breakers: the others' attempts and
    delayed verifications wait for their systems), waiting in place (up to
    :data:`LEDGER_WAIT_S`) while the ledger cannot answer: a PostgreSQL restart or a cut connection. Trying again claims nothing twice: a claim whose answer was lost
    either committed (its lease brings the rows back when it runs out) or did not happen.

    Raises:
        OperationalError, InterfaceError (:data:`LEDGER_UNREACHABLE`): still unreachable after the wait;
            the task hands the message back to the queue rather than acknowledging work it never claimed.
    """
    deadline = time.monotonic() + LEDGER_WAIT_S
    wait_s = 0.25
    while True:
        try:  # the gates read the ledger too: they wait with the claim (each is safe to run again)
            take = _outside_maintenance(runtime, ids) if runtime.maintenance else ids
            take = _outside_open_breakers(runtime, take)
            return runtime.ledger.transactions.claim_many(take, runtime.owner, runtime.settings.lease_s)
        except LEDGER_UNREACHABLE as exc:
            if time.monotonic() + wait_s > deadline:
                raise
            log.warning("ledger unreachable; claiming again shortly", error=type(exc).__name__, wait_s=wait_s)
            time.sleep(wait_s)
            wait_s = min(wait_s * 2, 4.0)


def _verify_due(runtime: Runtime, ids: list[int], claims: list[Claim]) -> None:
    """Run the delayed verifications due among the ids no attempt claimed (see ``verification.verify_later``)."""
    claimed = {claim.id for claim in claims}
    rest = [tx_id for tx_id in ids if tx_id not in claimed]
    for claim in runtime.ledger.verifications.claim_many(rest, runtime.owner, runtime.settings.lease_s):
        verification.verify_later(runtime, _tools(runtime, claim), claim)


def _tools(runtime: Runtime, claim: Claim) -> verification.AttemptTools:
    """What verifying one claim borrows from this module."""
    settings = runtime.settings
    return verification.AttemptTools(
        run=lambda job, before_effect: _run_bot(runtime, job, before_effect=before_effect),
        failed=lambda exc, loaded: _retry_or_fail(runtime, claim, exc, loaded),
        deferred=lambda exc: _deferred(runtime, claim, exc),
        detail=detail_of,
        backoff_s=lambda n: backoff_s(n, settings.retry_base_s, settings.retry_max_s))


def _outside_maintenance(runtime: Runtime, ids: list[int]) -> list[int]:
    """The ids whose target systems are outside their maintenance windows; the others are deferred, unclaimed
    and with no attempt spent, until their systems' windows end."""
    now = time.time()
    tz = runtime.settings.tz
    closed = {system: until for system, windows in runtime.maintenance.items()
              if (until := maintenance_until(windows, now, tz)) is not None}
    if not closed:
        return ids
    later: dict[tuple[float, str], dict[int, float]] = {}
    for tx_id, digest in runtime.ledger.transactions.digests(ids).items():
        down = sorted(system for system in _systems(runtime.workflow(digest)) if system in closed)
        if down:
            until = max(closed[system] for system in down)
            when = dt.datetime.fromtimestamp(until, tz).strftime("%a %d %b %H:%M")
            reason = (f"The target system {', '.join(down)} is in its maintenance window until {when}; "
                      "the case waits, with no attempt spent.")
            later.setdefault((until, reason), {})[tx_id] = until
    waiting: set[int] = set()
    for (until, reason), group in later.items():
        runtime.ledger.transactions.defer(group, reason)  # those another worker took meanwhile are left alone
        checks = runtime.ledger.verifications.postpone(group)  # done cases' delayed checks wait for the window too
        waiting.update(group)
        log.info("maintenance window: cases deferred", cases=len(group), checks=len(checks), until=until)
    return [tx_id for tx_id in ids if tx_id not in waiting]


def _outside_open_breakers(runtime: Runtime, ids: list[int]) -> list[int]:
    """The ids whose target systems' circuit breakers are closed; the others are deferred, unclaimed and with
    no attempt spent (no browser opens for them), until their breakers' next probe."""
    tripped = runtime.ledger.breakers.tripped() if ids else {}
    if not tripped:
        return ids
    systems = {tx_id: _systems(runtime.workflow(digest)) for tx_id, digest in runtime.ledger.transactions.digests(ids).items()}
    closed = runtime.breakers.closed_to(set().union(*systems.values()), tripped)
    if not closed:
        return ids
    later: dict[tuple[float, str], dict[int, float]] = {}
    for tx_id, used in systems.items():
        down = sorted(system for system in used if system in closed)
        if down:
            breaker = max((closed[system] for system in down), key=lambda b: b.probe_at or 0)
            until = breaker.probe_at or time.time()
            later.setdefault((until, waiting_message(breaker.system, breaker, runtime.settings)), {})[tx_id] = until
    waiting: set[int] = set()
    for (until, reason), group in later.items():
        runtime.ledger.transactions.defer(group, reason, error_class=CIRCUIT_OPEN)
        checks = runtime.ledger.verifications.postpone(group)  # no delayed check opens a browser on it either
        waiting.update(group)
        log.info("circuit breaker open: cases deferred", cases=len(group), checks=len(checks), until=until)
    return [tx_id for tx_id in ids if tx_id not in waiting]


def _attempt(runtime: Runtime, claim: Claim) -> Outcome | None:
    # Every log line of this attempt (the bot's too) carries these; the next attempt overwrites them.
    structlog.contextvars.bind_contextvars(batch=claim.batch_id, workflow=claim.workflow, case_ref=claim.case_ref,
                                           attempt=claim.attempt)
    started = time.monotonic()
    deaths = _deaths_forgiven(claim)
    claim = dataclasses.replace(claim, max_attempts=claim.max_attempts + deaths) if deaths else claim
    try:
        outcome = _masked(runtime, claim, _decide(runtime, claim))
        return dataclasses.replace(outcome, forgiven=outcome.forgiven + deaths) if deaths else outcome
    except StaleAttempt as exc:
        log.warning("stale attempt abandoned", reason=str(exc))
        return None
    finally:
        if metrics_enabled():
            TRANSACTION_DURATION.labels(claim.workflow).observe(time.monotonic() - started)


def _forgiven_before(claim: Claim) -> int:
    """How many of the case's attempts have been given back already as cut short by our own faults."""
    return sum(int(past.get("forgiven") or 0) for past in claim.history)


def _deaths_forgiven(claim: Claim) -> int:
    """The attempts right before this one that recorded no outcome (their worker died, or stalled past its lease)
    and are given back now, within :data:`FORGIVEN_FAULTS`. This attempt's outcome records them (``forgiven``),
    so the next one does not count them again; every decision of this attempt counts from the raised maximum."""
    last = max((int(past.get("attempt") or 0) for past in claim.history), default=0)
    spare, given = FORGIVEN_FAULTS - _forgiven_before(claim), 0
    for attempt in range(last + 1, claim.attempt):
        if given < spare and attempt <= claim.max_attempts + given:  # never a look after the last attempt
            given += 1
    return given


def _masked(runtime: Runtime, claim: Claim, outcome: Outcome) -> Outcome:
    """The outcome with the case's fields marked ``secret: true`` masked in its messages (a message can quote
    a value the bot looked for), before they reach the ledger and every view of it."""
    if outcome.error_message is None and outcome.error_detail is None:
        return outcome
    values = secret_values(runtime.workflow(claim.digest).definition.input, claim.payload)
    if not values:
        return outcome
    return dataclasses.replace(
        outcome, error_message=mask_text(outcome.error_message, values) if outcome.error_message else None,
        error_detail=mask_text(outcome.error_detail, values) if outcome.error_detail else None)


def _decide(runtime: Runtime, claim: Claim) -> Outcome:
    settings = runtime.settings
    loaded = runtime.workflow(claim.digest)
    workflow = loaded.definition
    lookup = workflow.lookup_steps
    if claim.attempt > claim.max_attempts:
        looks_left = claim.attempt <= claim.max_attempts + SETTLING_LOOKUPS
        if claim.verification == PENDING and not looks_left:
            # Submitted, and its check has now been cut short again and again (a check that kills its worker):
            # the case ends done, left unverified, rather than claimed for ever.
            log.warning("submitted; its check never finished; the case ends unverified")
            return Outcome(claim, "done", result_ref=claim.result_ref, output=claim.output, verification="unverified")
        if claim.verification != PENDING and not (claim.effect_attempt is not None and lookup and looks_left):
            return _exhausted(claim, loaded)
    try:
        case = check_case(workflow.input, claim.payload, 0)
    except CaseDataError as exc:
        return Outcome(claim, "business_exception", error_class="CaseDataError",
                       error_message=exc.message, error_detail=f"CaseDataError: {exc}")
    secrets = SecretValues(settings.secrets_file, on_read=register_secret)
    if claim.verification == PENDING:  # an earlier attempt submitted; only its verification is left
        return verification.verify_pending(_tools(runtime, claim), claim, loaded, case, secrets)

    uncertain = claim.effect_attempt is not None  # an earlier attempt may have submitted; the lookup settles it
    if claim.effect_attempt is not None or (lookup and workflow.lookup_when == "always"):
        # An earlier attempt may have submitted (or the workflow asks to look every time): find out before
        # doing anything that could submit again.
        if lookup:
            settled = _look(runtime, claim, loaded, case, secrets, uncertain=uncertain)
            if settled is not None:
                return settled
            uncertain = False
            if claim.attempt > claim.max_attempts:  # a look after the last attempt: it found nothing submitted
                return _not_submitted(claim)
        elif _a_person_settles(loaded):
            return _for_a_person(claim)

    job = BotJob(loaded, workflow.steps, case, claim.case_ref, claim.attempt, secrets,
                 screenshot_before_verify=workflow.verify is not None)

    def before_effect() -> None:
        nonlocal uncertain
        fault_point("stall_before_submit")
        runtime.ledger.transactions.mark_effect_started(claim)
        uncertain = True
        fault_point("before_submit")

    submit_failed: TargetServerError | None = None  # the 5xx that a look in place found nothing behind
    while True:
        try:
            result = _run_bot(runtime, job, before_effect=before_effect)
            if workflow.has_submit:
                fault_point("after_submit")
            break
        except StaleAttempt:
            raise
        except BudgetUnavailable as exc:
            if submit_failed is not None:  # this attempt submitted once already: it counts, as its 5xx did
                failed = _retry_or_fail(runtime, claim, submit_failed, loaded)
                return dataclasses.replace(failed, looked_in_place=True, error_detail=(
                    f"{failed.error_detail}; looked up in place and found nothing, then could not submit again: {exc}"))
            return _deferred(runtime, claim, exc)
        except BusinessException as exc:
            refused = Outcome(claim, "business_exception", error_class=exc.code, error_message=str(exc),
                              error_detail=detail_of(exc, loaded), evidence=getattr(exc, "evidence", None))
            return refused if submit_failed is None else _after_a_5xx(refused, submit_failed, loaded, AGAIN)
        except Exception as exc:  # noqa: BLE001 - unknown failures count as APPLICATION
            if submit_failed is not None:  # the second run failed too: its outcome tells of the first 5xx as well
                # The attempt made a submit that met a 5xx: it counts, even when the second run crashed.
                failed = _retry_or_fail(runtime, claim, exc, loaded, uncertain=uncertain, forgivable=False)
                return _after_a_5xx(failed, submit_failed, loaded, AGAIN)
            if not (uncertain and lookup and isinstance(exc, TargetServerError)):
                return _retry_or_fail(runtime, claim, exc, loaded, uncertain=uncertain)
            # The target system answered 5xx on or after the submit: the next attempt would look the change up
            # after a backoff. This attempt does it in place, once, so the case does not wait behind the queue.
            submit_failed = exc
            settled = _look_in_place(runtime, claim, loaded, case, secrets, exc)
            if settled is not None:
                return settled
            uncertain = False
            runtime.ledger.transactions.renew(claim, runtime.settings.lease_s)
            job = dataclasses.replace(job, folder=SECOND_RUN)  # its evidence does not overwrite the first run's
            log.info("nothing was submitted; submitting again in place")
    reference = result.output.get("reference")
    ended = verification.after_submit(_tools(runtime, claim), claim, loaded, case, secrets, Outcome(
        claim, "done", result_ref=str(reference) if reference is not None else None,
        output=result.output, evidence=result.artifacts or None))
    if submit_failed is not None and ended.state != "done":  # the second run's check: it tells of the 5xx too
        return _after_a_5xx(ended, submit_failed, loaded, "looked up in place, found nothing and submitted again; its check")
    return ended


def _run_bot(runtime: Runtime, job: BotJob, before_effect: Callable[[], None]) -> BotResult:
    """Run the bot, holding the budgets of the target systems it works on (when settings limit any)."""
    settings = runtime.settings
    if runtime.budgets is None:
        return runtime.engine.run(job, before_effect=before_effect)
    with budget_held(runtime.budgets, settings.system_limits, _systems(job.workflow), runtime.owner,
                     lease_s=settings.lease_s, wait_s=settings.budget_wait_s):
        return runtime.engine.run(job, before_effect=before_effect)


def _look(runtime: Runtime, claim: Claim, loaded: LoadedWorkflow, case: dict[str, Any], secrets: SecretValues, *,
          uncertain: bool, forgivable: bool = True) -> Outcome | None:
    """Run the workflow's lookup for a case that may have been submitted: the case's outcome when the lookup
    settles it (its record found, and verified as a submit is), or ends the attempt (a spent budget, a refusal,
    a failure); ``None`` when the target system holds no record of it, so nothing was submitted.
    ``forgivable``: a crash of the look may be given back (not when this attempt's own submit met a 5xx)."""
    workflow, steps = loaded.definition, loaded.definition.lookup_steps
    assert steps, "only a workflow with a lookup looks"
    label = "lookup" if isinstance(workflow.lookup, list) else "lookup.steps"
    try:
        found = _run_bot(runtime, BotJob(loaded, steps, case, claim.case_ref, claim.attempt, secrets,
                                         label=label, folder=LOOKUP), before_effect=lambda: None)
    except BudgetUnavailable as exc:
        return _deferred(runtime, claim, exc)
    except BusinessException as exc:
        return Outcome(claim, "business_exception", error_class="LookupRefused", error_detail=detail_of(exc, loaded),
                       error_message=f"the search for the case's record was refused: {exc}",
                       evidence=getattr(exc, "evidence", None))
    except Exception as exc:  # noqa: BLE001 - any other failure is APPLICATION
        return _retry_or_fail(runtime, claim, exc, loaded, uncertain=uncertain, forgivable=forgivable)
    reference = found.output.get("reference")
    if not reference:
        return None
    log.info("earlier submission found", reference=reference)
    return verification.after_submit(_tools(runtime, claim), claim, loaded, case, secrets,
                                     Outcome(claim, "done", result_ref=str(reference), output=found.output))


def _look_in_place(runtime: Runtime, claim: Claim, loaded: LoadedWorkflow, case: dict[str, Any],
                   secrets: SecretValues, exc: TargetServerError) -> Outcome | None:
    """After a 5xx on or after the submit: wait, hold the case longer, and look the change up within this attempt
    (see :func:`_look`). The wait is the backoff the retry would have been scheduled with plus one sweep
    interval: a target system still making the change has at least as long to finish it as before the next
    attempt's lookup when that attempt goes straight through the queue. The lease is renewed first, for the
    wait and the look.

    A look whose target system's budget is spent ends the attempt as the 5xx would have (it counts: a submit
    was made), not deferred with its attempt given back, so a case whose submits keep failing still ends.

    Raises:
        StaleAttempt: the case's lease ran out meanwhile (another attempt may hold it): nothing more is done.
    """
    settings = runtime.settings
    delay = backoff_s(claim.attempt, settings.retry_base_s, settings.retry_max_s) + settings.sweep_interval_s
    log.info(LOOKED_UP_IN_PLACE, error=str(exc), wait_s=round(delay, 2))
    if metrics_enabled():
        STEP_RETRIES.labels(claim.workflow, "submit_looked_up").inc()
    runtime.ledger.transactions.renew(claim, settings.lease_s + delay)
    time.sleep(delay)
    settled = _look(runtime, claim, loaded, case, secrets, uncertain=True, forgivable=False)
    if settled is not None and settled.error_class == "BudgetUnavailable" and settled.verification is None:
        return _retry_or_fail(runtime, claim, exc, loaded, uncertain=True)
    if settled is None or settled.state == "done":
        return settled
    then = f"the lookup found its record ({settled.result_ref}); its check" if settled.result_ref else "the lookup failed"
    return _after_a_5xx(settled, exc, loaded, f"looked up in place; {then}")


AGAIN = "looked up in place, found nothing and submitted again; that run failed"
"""How the detail of an attempt's second run tells what came before it."""


def _after_a_5xx(outcome: Outcome, first: TargetServerError, loaded: LoadedWorkflow, then: str) -> Outcome:
    """The outcome of a look in place, or of the second run after it, that did not end the case done: its detail
    (the submit's 5xx, ``then`` what followed, and the later failure) and its evidence begin with the submit's 5xx
    that led to them, so the case's history keeps both."""
    detail = f"after a server error on the submit ({detail_of(first, loaded)}), {then}"
    detail = f"{detail}: {outcome.error_detail}" if outcome.error_detail else detail
    evidence = [*(getattr(first, "evidence", None) or []), *(outcome.evidence or [])]
    return dataclasses.replace(outcome, error_detail=detail, evidence=evidence or None, looked_in_place=True)


def _systems(loaded: LoadedWorkflow) -> set[str]:
    """The target systems a workflow works on, those of the workflows it calls included."""
    found = set(loaded.definition.systems)
    for called in loaded.calls.values():
        found |= _systems(called)
    return found


def _deferred(runtime: Runtime, claim: Claim, exc: BudgetUnavailable) -> Outcome:
    """The target system's budget was spent: try again later, and this attempt does not count."""
    delay = backoff_s(1, runtime.settings.retry_base_s, runtime.settings.retry_max_s)
    log.info("budget spent; transaction deferred", reason=str(exc), retry_in_s=round(delay, 2))
    return Outcome(claim, "retry_scheduled", error_class="BudgetUnavailable", error_message=str(exc),
                   next_attempt_at=time.time() + delay, give_back_attempt=True)


PLAIN_MESSAGES = {
    "StepTimeout": "A page of the target system did not show what the bot expected in time.",
    "TargetServerError": "The target system answered with a server error.",
    "PageCrashed": "The browser page crashed while the bot worked on the case.",
    "SessionExpired": "The target system signed the bot out while it worked on the case.",
    "BrowserGone": "The browser closed while the bot worked on the case.",
    "SecretMissingError": "A secret the workflow needs is not set where the bot runs.",
    "EnvMissingError": "A setting the workflow needs is not set where the bot runs.",
}
"""What a caseworker reads for an application failure, by error class: what happened, in plain English.
The author's detail (the step, the locator, the exception's own words) goes in ``error_detail``."""
UNKNOWN_FAILURE = "The bot could not finish the case because of a technical problem."
MAY_HAVE_SUBMITTED = "It may already have been submitted: check the target system for it before doing it again."
"""What a caseworker reads when a failed case's submit may have reached the target system."""
COULD_NOT_FINISH_MAY_HAVE_SUBMITTED = ("The bot could not finish the case, and it may already have been submitted: "
                                       "check the target system for it before doing it again.")
"""The same, for a case whose last attempt ended with no outcome (its worker died or stalled past its lease)."""
NOT_SUBMITTED = "The bot then found no record of it in the target system, so it was not submitted."
"""What a caseworker reads when a look after the last attempt settled that the case was not submitted."""
NOT_COUNTED = "This attempt is not counted against the case's attempts: the problem was with the bot, not the case."
"""Added to what a caseworker reads of an attempt whose browser or page crashed, when it is given back."""
UNCERTAIN_SUBMIT = "UncertainSubmit"
SETTLING_LOOKUPS = 2
"""Attempts after the last one that only look for the record of a case that may have been submitted."""


def detail_of(exc: BaseException, loaded: LoadedWorkflow | None = None) -> str:
    """The author's view of an exception: the step it happened in (its path, verb and ``file:line``), its
    class and its own words."""
    step = getattr(exc, "step", None)
    text = redact_text(f"{type(exc).__name__}: {str(exc) or type(exc).__name__}")  # a secret read by the run, masked
    if not step:
        return text
    where = loaded.where(step) if loaded is not None else None
    return f"step {step}" + (f" ({where})" if where else "") + f": {text}"


def _a_person_settles(loaded: LoadedWorkflow) -> bool:
    """Whether a case that may have been submitted goes to a person's Exceptions inbox, whatever its attempt: an
    ``at_most_once`` workflow without a lookup (no bot can settle it, and none may submit it again)."""
    return loaded.definition.at_most_once and not loaded.definition.lookup_steps


def _for_a_person(claim: Claim) -> Outcome:
    """An ``at_most_once`` workflow without a lookup, whose case may have been submitted: a person checks, from
    the Exceptions inbox, whatever attempt it is."""
    return Outcome(claim, "business_exception", error_class=UNCERTAIN_SUBMIT,
                   error_message="an earlier attempt may have submitted this case and the workflow has no "
                                 "lookup; a person must check the target system")


def _exhausted(claim: Claim, loaded: LoadedWorkflow) -> Outcome:
    """A case claimed after its last attempt (that attempt's worker died or stalled past its lease), with no
    look at the target system left to make."""
    if claim.effect_attempt is None:
        return Outcome(claim, "failed", error_class="AttemptsExhausted",
                       error_message=f"attempt {claim.attempt - 1}, the last allowed, stopped without recording "
                                     "an outcome; no attempts are left")
    if _a_person_settles(loaded):
        return _for_a_person(claim)
    return Outcome(claim, "failed", error_class=UNCERTAIN_SUBMIT, error_message=COULD_NOT_FINISH_MAY_HAVE_SUBMITTED,
                   error_detail=f"attempt {claim.effect_attempt} began submitting; the case was attempted "
                                f"{claim.attempt - 1} times, and no lookup could settle whether the submit happened")


AFTER_THE_LAST = "after the last attempt: "
"""How the detail of a failed look after the last attempt begins."""
GIVEN_BACK = frozenset({"BudgetUnavailable", "TargetUnavailable", HELD})
"""Error classes of attempts that did not count (a spent budget, a system down, a missing setting)."""
OWN_FAULTS = frozenset({"BrowserGone", "PageCrashed"})
"""Error classes of attempts cut short by the bots' own machinery (the browser or its page crashed), not by the
case nor by the target system."""
FORGIVEN_FAULTS = 2
"""How many of a case's attempts cut short by our own faults do not count: attempts whose browser or page
crashed, and attempts that recorded no outcome (their worker died, or stalled past its lease). Beyond these
they count as any failure does, so a case that crashes its browser or kills its worker every time still ends."""


def _not_submitted(claim: Claim) -> Outcome:
    """A case whose last attempt may have submitted, after a look at the target system found no record of it:
    it ends as its last counted attempt failed (the looks after it, and attempts given back, are passed over)."""
    last: dict[str, Any] = next(
        (past for past in reversed(claim.history) if past.get("error_class") not in GIVEN_BACK
         and not (past.get("error_detail") or "").startswith(AFTER_THE_LAST)), {})
    note = "after the last attempt the lookup found no record of the case in the target system: nothing was submitted"
    return Outcome(claim, "failed", error_class=last.get("error_class") or "AttemptsExhausted",
                   error_message=f"{(last.get('error') or UNKNOWN_FAILURE).removesuffix(f' {NOT_COUNTED}')} "
                                 f"{NOT_SUBMITTED}",
                   error_detail=f"{last['error_detail']}; {note}" if last.get("error_detail") else note,
                   evidence=last.get("evidence") or None)


def _retry_or_fail(runtime: Runtime, claim: Claim, exc: BaseException, loaded: LoadedWorkflow, *,
                   uncertain: bool = False, forgivable: bool = True) -> Outcome:
    """What an APPLICATION failure makes of a case: held for its configuration, waiting for a system that is
    down, retried later, or failed once its attempts are used up.

    ``uncertain``: the case may have been submitted (this attempt or an earlier one began a submit, and no
    lookup settled it since). Such a case is not failed at its last attempt when the workflow has a lookup:
    up to :data:`SETTLING_LOOKUPS` more attempts only look for its record (and record it done when found,
    failed when not), so a case the target system holds never reaches a person as failed. Without a lookup,
    or when the looks fail too, it fails saying that it may have been submitted.

    ``forgivable``: a crash of the bots' own may be given back (:data:`FORGIVEN_FAULTS`); not for an attempt
    whose submit met a 5xx, which counts as that 5xx would have.
    """
    error_class = type(exc).__name__
    message, detail = PLAIN_MESSAGES.get(error_class, UNKNOWN_FAILURE), detail_of(exc, loaded)
    if claim.attempt > claim.max_attempts:  # a look after the last attempt: marked, so it is never taken for one
        detail = f"{AFTER_THE_LAST}{detail}"
    evidence = getattr(exc, "evidence", None)
    problems = missing_configuration(loaded, runtime.settings)  # asked only once an attempt failed: no cost when all is well
    if problems:
        # Not the case's fault nor the target system's: the case is held, keeps its attempt, and waits for an
        # operator to fix the configuration and resume its batch.
        log.warning("configuration missing; case held", problems="; ".join(problems))
        return Outcome(claim, "paused", error_class=HELD, evidence=evidence, give_back_attempt=True,
                       error_message="Held: the bots are not set up to run this workflow. "
                                     "Once that is fixed, resume the batch.",
                       error_detail=f"this worker cannot run the workflow: {'; '.join(problems)}. {detail}")
    down = runtime.breakers.after_failure(_systems(loaded))
    if down is not None:
        # The system itself is not answering: the case waits for it (at least until its breaker's next probe
        # when this failure or an earlier one opened it) and keeps its attempts.
        delay = backoff_s(claim.attempt, runtime.settings.retry_base_s, runtime.settings.retry_max_s)
        at = max(time.time() + delay, down.probe_at or 0.0)
        log.info("target system down; transaction waits", system=down.system, error_class=error_class,
                 retry_in_s=round(at - time.time(), 2), breaker=down.state)
        return Outcome(claim, "retry_scheduled", error_class="TargetUnavailable", evidence=evidence, error_detail=detail,
                       error_message=f"The target system '{down.system}' did not answer; the case waits for it without "
                                     "spending an attempt.",
                       next_attempt_at=at, give_back_attempt=True)
    limit, forgiven = claim.max_attempts, 0
    if (forgivable and error_class in OWN_FAULTS and claim.attempt <= claim.max_attempts  # never a look after the last
            and _forgiven_before(claim) + _deaths_forgiven(claim) < FORGIVEN_FAULTS):
        # The browser or its page crashed: not the case's doing, so this attempt does not count.
        limit, forgiven = limit + 1, 1
        message = f"{message} {NOT_COUNTED}"
        log.info("attempt cut short by the bots' own fault; it does not count", error_class=error_class)
    settle = uncertain and loaded.definition.lookup_steps and claim.attempt < limit + SETTLING_LOOKUPS
    if claim.attempt >= limit and not settle:
        if uncertain and _a_person_settles(loaded):
            return dataclasses.replace(_for_a_person(claim), error_detail=detail, evidence=evidence)
        if uncertain:
            message, error_class = f"{message} {MAY_HAVE_SUBMITTED}", UNCERTAIN_SUBMIT
            detail = f"{detail}; a submit had begun, and no lookup settled whether it reached the target system"
        return Outcome(claim, "failed", error_class=error_class, error_message=message, error_detail=detail,
                       evidence=evidence)
    delay = backoff_s(claim.attempt, runtime.settings.retry_base_s, runtime.settings.retry_max_s)
    if claim.attempt >= limit:
        log.info("last attempt failed after a submit began; the case's record is looked for", error_class=error_class,
                 retry_in_s=round(delay, 2))
    else:
        log.info("attempt failed; retry scheduled", error_class=error_class, retry_in_s=round(delay, 2))
    return Outcome(claim, "retry_scheduled", error_class=error_class, error_message=message, error_detail=detail,
                   evidence=evidence, next_attempt_at=time.time() + delay, forgiven=forgiven)


def _count(outcomes: Sequence[Outcome]) -> None:
    """Metrics and a log line for recorded outcomes (metrics added up per workflow and outcome)."""
    totals: Counter[tuple[str, str]] = Counter()
    retries: Counter[tuple[str, str]] = Counter()
    verified: Counter[tuple[str, str]] = Counter()
    for outcome in outcomes:
        if (result := verification.counted_result(outcome)) is not None:
            verified[(outcome.claim.workflow, result)] += 1
        if outcome.state == "paused":  # held for the configuration: neither a transaction's end nor a retry
            continue
        totals[(outcome.claim.workflow, outcome.state)] += 1
        if outcome.state == "retry_scheduled":  # error classes are exception class names: a bounded set
            retries[(outcome.claim.workflow, outcome.error_class or "unknown")] += 1
        log.info("transaction finished", case_ref=outcome.claim.case_ref, outcome=outcome.state,
                 error_class=outcome.error_class)
    if not metrics_enabled():
        return
    for (workflow, state), count in totals.items():
        if state == "retry_scheduled":
            ATTEMPTS.labels(workflow, "retry").inc(count)
            continue
        ATTEMPTS.labels(workflow, state).inc(count)
        TRANSACTIONS.labels(workflow, state).inc(count)
    for (workflow, error_class), count in retries.items():
        RETRIES.labels(workflow, error_class).inc(count)
    for (workflow, result), count in verified.items():
        VERIFICATIONS.labels(workflow, result).inc(count)
