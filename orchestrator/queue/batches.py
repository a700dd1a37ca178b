"""Operating a batch: pause, resume, cancel, or retry its failed cases. The one way to do it, used by
``autoclerk batches …``, the batch page's buttons and ``POST /api/batches/{id}/{action}``.

The ledger is the source of truth: the action is one database transaction there. What it releases
(``resume``, ``retry-failed``) is published at once when a publisher is given and the broker answers;
otherwise the next sweep (of a worker, the service or ``autoclerk run``) publishes it, so nothing is lost
to a broker that is down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import BrokerError
from ..ledger import Ledger
from .publisher import Publisher

ACTIONS = ("pause", "resume", "cancel", "retry-failed")
"""What an operator can do to a batch, as the CLI, the pages and the API name it."""

DONE = {"pause": "paused", "resume": "resumed", "cancel": "cancelled", "retry-failed": "re-queued"}
"""Each action in the past tense, for the line or the banner that reports it."""

AUDIT_ACTIONS = {"pause": "batch.pause", "resume": "batch.resume", "cancel": "batch.cancel",
                 "retry-failed": "batch.requeue"}
"""Each action's name in the audit trail."""

RELEASES_WORK = frozenset({"resume", "retry-failed"})


@dataclass(frozen=True)
class BatchOperation:
    """What an action did to a batch.

    Attributes:
        count: transactions held (pause), released (resume), cancelled (cancel) or re-queued (retry-failed).
        published: how many due transactions were published at once (``None``: none were tried).
        not_published: why publishing at once failed (the next sweep publishes them), or ``None``.
    """

    batch_id: str
    action: str
    count: int
    published: int | None = None
    not_published: str | None = None


def operate_batch(ledger: Ledger, batch_id: str, action: str, *, by: str, origin: str = "cli",
                  publisher: Publisher | None = None, states: Sequence[str] = ("failed",),
                  attempts: int = 3) -> BatchOperation:
    """Apply ``action`` to the batch in the ledger, record it in the audit trail, then publish what it
    released when ``publisher`` is given.

    Args:
        action: one of :data:`ACTIONS`.
        by: who acts (a user name; on the command line the operating-system user).
        origin: where from: the client address, or ``cli``.
        states: for ``retry-failed``: the states re-queued (``failed``, and ``cancelled`` if asked).
        attempts: for ``retry-failed``: the attempts each re-queued transaction gets.

    Raises:
        ValueError: ``action`` is not one of :data:`ACTIONS`.
        LedgerError: there is no such batch.
    """
    if action == "pause":
        count = ledger.batches.pause(batch_id)
    elif action == "resume":
        count = ledger.batches.resume(batch_id)
    elif action == "cancel":
        count = ledger.batches.cancel(batch_id)
    elif action == "retry-failed":
        count = ledger.batches.requeue(batch_id, tuple(states), extra_attempts=attempts)
    else:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    detail: dict[str, object] = {"count": count}
    if action == "retry-failed":
        detail.update(states=list(states), attempts=attempts)
    ledger.audit.record(by, AUDIT_ACTIONS[action], "batch", batch_id, origin=origin, detail=detail)
    if publisher is None or action not in RELEASES_WORK:
        return BatchOperation(batch_id, action, count)
    return BatchOperation(batch_id, action, count, *publish_released(publisher, batch_id))


def publish_released(publisher: Publisher, batch_id: str) -> tuple[int | None, str | None]:
    """Publish what an operator's action made due in a batch: ``(how many, None)``, or ``(None, why not)``
    when the broker is down (the next sweep publishes them then)."""
    try:
        return publisher.sweep(batch_id), None
    except BrokerError as exc:
        return None, str(exc)
