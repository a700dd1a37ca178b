"""An operator's actions on one case: retry a failed case, cancel a waiting one, or deliberately run a
finished case again (with a reason). The one way to do them, used by ``autoclerk cases retry|cancel|rerun``,
the case page and ``POST /api/cases/{id}/retry|cancel|rerun``.

Each is one conditional change in the ledger, recorded with who did it, when and why (the case's
actions), and a record in the audit trail. What it sends back to work is published at once when a publisher is given and the broker
answers; otherwise the next sweep publishes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ledger import Ledger
from .batches import publish_released
from .publisher import Publisher

CASE_ACTIONS = ("retry", "cancel", "rerun")
"""What an operator can do to one case, as the CLI, the pages and the API name it."""

CASE_ACTION_DONE = {"retry": "sent back to the bots", "cancel": "cancelled", "rerun": "sent to run again"}
"""Each action's result, for the line or the banner that reports it."""


@dataclass(frozen=True)
class CaseAction:
    """What an action did to a case.

    Attributes:
        published: how many of the batch's due transactions were published at once (``None``: none tried).
        not_published: why publishing at once failed (the next sweep publishes them), or ``None``.
    """

    tx_id: int
    action: str
    batch_id: str
    published: int | None = None
    not_published: str | None = None


def act_on_case(ledger: Ledger, tx_id: int, action: str, by: str, *, reason: str | None = None, attempts: int = 3,
                publisher: Publisher | None = None, origin: str = "cli") -> CaseAction:
    """Apply ``action`` to case ``tx_id`` in the ledger, then publish what it sent back to work.

    Args:
        action: one of :data:`CASE_ACTIONS`.
        by: who acts (a user name, or ``cli:USER``), recorded with the action and in the audit trail (where
            ``cli:USER`` is recorded as ``USER`` from the origin ``cli``).
        origin: where from: the client address, or ``cli``.
        reason: why; required for ``rerun``, kept as the note of the others.
        attempts: for ``retry`` and ``rerun``: the attempts the case gets.

    Raises:
        ValueError: ``action`` is not one of :data:`CASE_ACTIONS`.
        LedgerError: there is no such case, its state does not allow the action, or a rerun has no reason.
    """
    if action == "retry":
        batch_id = ledger.cases.retry(tx_id, by, attempts=attempts, note=reason)
    elif action == "cancel":
        batch_id = ledger.cases.cancel(tx_id, by, note=reason)
    elif action == "rerun":
        batch_id = ledger.cases.rerun(tx_id, by, reason or "", attempts=attempts)
    else:
        raise ValueError(f"action must be one of {', '.join(CASE_ACTIONS)}, not {action!r}")
    ledger.audit.record(by.removeprefix("cli:"), f"case.{action}", "case", tx_id, origin=origin,
                        detail={"batch": batch_id, "reason": reason, **({} if action == "cancel" else {"attempts": attempts})})
    if publisher is None or action == "cancel":
        return CaseAction(tx_id, action, batch_id)
    return CaseAction(tx_id, action, batch_id, *publish_released(publisher, batch_id))
