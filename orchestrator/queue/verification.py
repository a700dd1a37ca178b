"""Verifying a submit: read the target system's record back, in a fresh browser context, and compare.

A workflow's ``verify`` steps run after its submit succeeded (or after a lookup found the record), for the
cases its ``sample`` picks by reference:

- they pass: the case ends ``done`` and ``verified``;
- an assertion fails (the record is missing or wrong): the case is a business exception
  (``VerifyFailed``, ``verify_failed``) handed to a person with the evidence (the screenshots before and
  after, the compared fields); nothing is submitted again;
- they cannot run (the system is down, a timeout): the attempt is retried as any application failure is,
  but the case keeps its result and is marked ``pending``, so its next attempt runs the verification
  only, never the submit again.

With ``delay_s`` above 0 the case ends ``done`` and ``unverified`` at once, due for verification later: the
sweep publishes it when due and :func:`verify_later` runs it on the case as it stands.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from collections.abc import Callable

import structlog

from bots import BotJob, BotResult, BusinessException
from monitoring import VERIFICATIONS, metrics_enabled, register_secret
from workflows import LoadedWorkflow, SecretValues, Verify, check_case, mask_text, secret_values

from ..ledger import Claim, Outcome
from ..ledger.schema import PENDING, VERIFY_FAILED
from .budgets import BudgetUnavailable
from .faults import fault_point
from .runtime import Runtime

log = structlog.get_logger(__name__)

FAILED_MESSAGE = "The target system does not hold what the bot submitted: {reason}. The bot did not submit again."
CANNOT_RUN = "The case was submitted, but the check that reads it back could not run; it is tried again without submitting."


@dataclasses.dataclass(frozen=True)
class AttemptTools:
    """What a verification borrows from running an attempt (``execution``, which calls this module): running
    a bot job under the system budgets, and what an application failure or a spent budget makes of a case."""

    run: Callable[[BotJob, Callable[[], None]], BotResult]
    """Run a job (its ``before_effect`` given), holding the target systems' budgets."""
    failed: Callable[[BaseException, LoadedWorkflow], Outcome]
    """The outcome of an APPLICATION failure: retried later, waiting for a system that is down, or failed."""
    deferred: Callable[[BudgetUnavailable], Outcome]
    """The outcome of an attempt whose target system's budget was spent (the attempt does not count)."""
    detail: Callable[[BaseException, LoadedWorkflow], str]
    """The author's view of an exception (the step, its ``file:line``)."""
    backoff_s: Callable[[int], float]
    """The delay before the n-th try again."""


def _read_only() -> None:
    raise BusinessException("a verification step tried to change the target system; verifications only read",
                            code="verify_submits")


def _job(loaded: LoadedWorkflow, verify: Verify, claim: Claim, case: dict[str, Any], secrets: SecretValues,
         output: dict[str, Any] | None) -> BotJob:
    return BotJob(loaded, list(verify.steps), case, claim.case_ref, claim.attempt, secrets,
                  label=loaded.definition.verify_label, output=output or {}, verification=verify)


def after_submit(tools: AttemptTools, claim: Claim, loaded: LoadedWorkflow, case: dict[str, Any], secrets: SecretValues,
                 done: Outcome) -> Outcome:
    """How a case whose submit succeeded (``done``) ends once its verification, if any, has run."""
    verify = loaded.definition.verification
    if verify is None:
        return done
    if not verify.samples(claim.case_ref):
        return dataclasses.replace(done, verification="unverified")
    if verify.delay_s > 0:
        return dataclasses.replace(done, verification="unverified", verify_due_at=time.time() + verify.delay_s)
    return _verify_now(tools, claim, loaded, verify, case, secrets, done)


def verify_pending(tools: AttemptTools, claim: Claim, loaded: LoadedWorkflow, case: dict[str, Any],
                   secrets: SecretValues) -> Outcome:
    """A case whose submit succeeded in an earlier attempt and whose verification could not run: verify only."""
    verify = loaded.definition.verification
    done = Outcome(claim, "done", result_ref=claim.result_ref, output=claim.output)
    if verify is None:  # cannot happen for a version that marked it pending; end it as submitted
        return dataclasses.replace(done, verification="unverified")
    log.info("submitted earlier; verifying only")
    return _verify_now(tools, claim, loaded, verify, case, secrets, done)


def _verify_now(tools: AttemptTools, claim: Claim, loaded: LoadedWorkflow, verify: Verify, case: dict[str, Any],
                secrets: SecretValues, done: Outcome) -> Outcome:
    kept = list(done.evidence or [])
    job = _job(loaded, verify, claim, case, secrets, done.output)

    def submitted(outcome: Outcome, evidence: list[str]) -> Outcome:  # kept, so the next attempt verifies only
        return dataclasses.replace(outcome, result_ref=done.result_ref, output=done.output, verification=PENDING,
                                   evidence=evidence or None)

    fault_point("stall_before_verify")
    try:
        result = tools.run(job, _read_only)
    except BudgetUnavailable as exc:
        return submitted(tools.deferred(exc), kept)
    except BusinessException as exc:
        evidence = kept + list(getattr(exc, "evidence", None) or [])
        log.warning("verification failed; case handed to a person", reason=str(exc))
        return Outcome(claim, "business_exception", error_class=VERIFY_FAILED,
                       error_message=FAILED_MESSAGE.format(reason=str(exc).rstrip(".")),
                       error_detail=tools.detail(exc, loaded), evidence=evidence or None,
                       result_ref=done.result_ref, output=done.output, verification="verify_failed")
    except Exception as exc:  # noqa: BLE001 - could not run: an APPLICATION failure, retried verifying only
        failed = tools.failed(exc, loaded)
        evidence = kept + list(failed.evidence or [])
        if failed.state == "failed":
            # The attempts are used up, but the case was submitted: it ends done, not failed (a person would do
            # it again), and its check is left to the delayed verifications, as a sampled-later case's is.
            log.warning("verification could not run on the last attempt; the case ends submitted and is checked later",
                        error_class=failed.error_class)
            return dataclasses.replace(done, verification="unverified", evidence=evidence or None,
                                       verify_due_at=time.time() + tools.backoff_s(1))
        return dataclasses.replace(submitted(failed, evidence),
                                   error_message=f"{CANNOT_RUN} {failed.error_message or ''}".strip())
    log.info("verified")
    return dataclasses.replace(done, verification="verified", evidence=(kept + result.artifacts) or None)


def counted_result(outcome: Outcome) -> str | None:
    """The ``result`` label of ``autoclerk_verifications_total`` an outcome adds to, or ``None`` when no
    verification ran (or it waited for a budget without running)."""
    if outcome.verification in ("verified", "verify_failed"):
        return outcome.verification
    if outcome.verification == PENDING and outcome.error_class != "BudgetUnavailable":
        return "error"
    return None


def verify_later(runtime: Runtime, tools: AttemptTools, claim: Claim) -> str | None:
    """Run a delayed verification a worker took (:meth:`~orchestrator.ledger.Verifications.claim_many`) and
    record how it ended: ``verified``, ``verify_failed`` (handed to a person) or ``error`` (due again later,
    until the case's ``max_attempts`` such errors, after which it stays ``unverified``). Returns the
    result, or ``None`` when another worker took the case over meanwhile."""
    ledger, settings = runtime.ledger, runtime.settings
    structlog.contextvars.bind_contextvars(batch=claim.batch_id, workflow=claim.workflow, case_ref=claim.case_ref,
                                           attempt=claim.attempt)
    loaded = runtime.workflow(claim.digest)
    verify = loaded.definition.verification
    earlier = (ledger.transactions.get(claim.id) or {}).get("evidence")
    kept = list(json.loads(earlier)) if earlier else []
    if verify is None:
        return "error" if ledger.verifications.finish(claim, "error", error_message="the workflow has no verify") else None
    values = secret_values(loaded.definition.input, claim.payload)

    def masked(text: str | None) -> str | None:
        return mask_text(text, values) if text and values else text

    try:
        case = check_case(loaded.definition.input, claim.payload, 0)
        secrets = SecretValues(settings.secrets_file, on_read=register_secret)
        result = tools.run(_job(loaded, verify, claim, case, secrets, claim.output), _read_only)
    except BusinessException as exc:
        outcome = "verify_failed"
        evidence = kept + list(getattr(exc, "evidence", None) or [])
        recorded = ledger.verifications.finish(claim, outcome, evidence=evidence,
                                               error_message=masked(FAILED_MESSAGE.format(reason=str(exc).rstrip("."))),
                                               error_detail=masked(tools.detail(exc, loaded)))
        log.warning("delayed verification failed; case handed to a person", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - could not run: due again later
        outcome = "error"
        errors = ledger.verifications.errors(claim) + 1
        again = time.time() + tools.backoff_s(errors) if errors < claim.max_attempts else None
        recorded = ledger.verifications.finish(claim, outcome, due_again_at=again, error_message=CANNOT_RUN,
                                               error_detail=masked(tools.detail(exc, loaded)))
        log.info("delayed verification could not run", error_class=type(exc).__name__, again=again is not None)
    else:
        outcome = "verified"
        recorded = ledger.verifications.finish(claim, outcome, evidence=kept + result.artifacts)
        log.info("delayed verification passed")
    if not recorded:
        return None
    if metrics_enabled():
        VERIFICATIONS.labels(claim.workflow, outcome).inc()
    return outcome
