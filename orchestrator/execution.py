"""Working one transaction: claim it, reconcile an uncertain earlier submit, run the bot, record the outcome.

Plain functions, testable without Celery. The outcome decides what happens to the broker message:
it is always acknowledged once the ledger holds the outcome; a retry is a new message published after
the ledger says ``retry_scheduled`` (the sweep republishes it if that publish is lost).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import structlog

from bots import BotJob, BusinessException
from monitoring import ATTEMPTS, TRANSACTIONS, register_secret
from workflows import CaseDataError, SecretValues, check_case

from .errors import StaleAttempt
from .ledger import Claim
from .runtime import Runtime

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Decision:
    """What the task does after the attempt: nothing more, or publish a retry after ``retry_in_s``."""

    outcome: str
    retry_in_s: float | None = None


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """Exponential backoff with full jitter: a random delay up to ``base * 2**(attempt-1)``, capped."""
    return random.uniform(base_s / 2, min(max_s, base_s * 2 ** (attempt - 1)))


def execute(runtime: Runtime, tx_id: int) -> Decision:
    """Run one attempt at transaction ``tx_id`` and record its outcome in the ledger."""
    ledger, settings = runtime.ledger, runtime.settings
    claim = ledger.claim(tx_id, runtime.owner, settings.lease_s)
    if claim is None:
        return Decision("skipped")  # finished already, or another worker holds it
    structlog.contextvars.bind_contextvars(batch=claim.batch_id, workflow=claim.workflow, case_ref=claim.case_ref,
                                           attempt=claim.attempt)
    try:
        return _attempt(runtime, claim)
    except StaleAttempt as exc:
        log.warning("stale attempt abandoned", reason=str(exc))
        return Decision("stale")
    finally:
        structlog.contextvars.clear_contextvars()


def _attempt(runtime: Runtime, claim: Claim) -> Decision:
    ledger, settings = runtime.ledger, runtime.settings
    loaded = runtime.workflow(claim.digest)
    workflow = loaded.definition
    if claim.attempt > claim.max_attempts:
        return _terminal(runtime, claim, "failed", error_class="AttemptsExhausted",
                         error_message=f"the case was attempted {claim.attempt - 1} times without an outcome")
    try:
        case = check_case(workflow.input, claim.payload, 0)
    except CaseDataError as exc:
        return _terminal(runtime, claim, "business_exception", error_class="CaseDataError",
                         error_message=f"{exc.field}: {exc.reason}")
    secrets = SecretValues(settings.secrets_file, on_read=register_secret)
    engine = runtime.engine

    if claim.effect_attempt is not None:
        # An earlier attempt may have submitted: find out before doing anything that could submit again.
        if workflow.lookup:
            try:
                found = engine.run(BotJob(loaded, workflow.lookup, case, claim.case_ref, claim.attempt, secrets,
                                          label="lookup"), before_effect=lambda: None)
            except BusinessException as exc:
                return _terminal(runtime, claim, "business_exception", error_class="LookupRefused",
                                 error_message=f"the lookup of an earlier submission was refused: {exc}")
            except Exception as exc:  # noqa: BLE001 - any other failure is APPLICATION
                return _retry_or_fail(runtime, claim, exc)
            reference = found.output.get("reference")
            if reference:
                log.info("earlier submission found", reference=reference)
                return _terminal(runtime, claim, "done", result_ref=str(reference), output=found.output)
        elif workflow.at_most_once:
            return _terminal(runtime, claim, "business_exception", error_class="UncertainSubmit",
                             error_message="an earlier attempt may have submitted this case and the workflow has no "
                                           "lookup; a person must check the target system")

    job = BotJob(loaded, workflow.steps, case, claim.case_ref, claim.attempt, secrets)
    try:
        result = engine.run(job, before_effect=lambda: ledger.mark_effect_started(claim))
    except StaleAttempt:
        raise
    except BusinessException as exc:
        return _terminal(runtime, claim, "business_exception", error_class=exc.code, error_message=str(exc),
                         evidence=getattr(exc, "evidence", None))
    except Exception as exc:  # noqa: BLE001 - unknown failures count as APPLICATION
        return _retry_or_fail(runtime, claim, exc)
    reference = result.output.get("reference")
    return _terminal(runtime, claim, "done", result_ref=str(reference) if reference is not None else None,
                     output=result.output, evidence=result.artifacts or None)


def _retry_or_fail(runtime: Runtime, claim: Claim, exc: BaseException) -> Decision:
    error_class, message = type(exc).__name__, str(exc) or type(exc).__name__
    evidence = getattr(exc, "evidence", None)
    if claim.attempt >= claim.max_attempts:
        return _terminal(runtime, claim, "failed", error_class=error_class, error_message=message, evidence=evidence)
    delay = backoff_s(claim.attempt, runtime.settings.retry_base_s, runtime.settings.retry_max_s)
    runtime.ledger.finish(claim, "retry_scheduled", error_class=error_class, error_message=message,
                          evidence=evidence, next_attempt_at=time.time() + delay)
    ATTEMPTS.labels(claim.workflow, "retry").inc()
    log.info("attempt failed; retry scheduled", error_class=error_class, retry_in_s=round(delay, 2))
    return Decision("retry_scheduled", retry_in_s=delay)


def _terminal(runtime: Runtime, claim: Claim, state: str, **fields: object) -> Decision:
    runtime.ledger.finish(claim, state, **fields)  # type: ignore[arg-type]
    ATTEMPTS.labels(claim.workflow, state).inc()
    TRANSACTIONS.labels(claim.workflow, state).inc()
    log.info("transaction finished", outcome=state, error_class=fields.get("error_class"))
    return Decision(state)
