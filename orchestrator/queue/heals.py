"""Approving a heal: the healed locator becomes a fallback of its step in a new published version.

The one way to approve, used by ``autoclerk heals approve``. The version changed is the one hand-offs of
the workflow use now (or, for a workflow never published, the version the heal happened in); the new
version is that source with the healed selector added as the step's last locator alternative and
``version`` raised by one (:func:`workflows.edit.add_fallback`), published as the next publish number
and recorded in the audit trail. Batches already handed off keep the version they were handed off with;
new hand-offs use the new one.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from workflows import LoadedWorkflow, add_fallback, load_stored

from ..errors import LedgerError
from ..ledger import Ledger
from .versions import readable_source


@dataclass(frozen=True)
class Approval:
    """An approved heal: the heal, the publish number of the new version, its source and the diff."""

    heal: dict[str, Any]
    number: int
    workflow: LoadedWorkflow
    diff: str


def approve_heal(ledger: Ledger, heal_id: int, by: str, reason: str, *, origin: str) -> Approval:
    """Add a heal's locator to its step as a fallback and publish that as a new version, audited.

    Args:
        by: who approves (a user name, or ``cli:USER``, recorded in the audit trail as ``USER``).
        reason: why (required: the audit trail keeps it).
        origin: the client address, or ``cli``.

    Raises:
        LedgerError: no reason, no such heal, or it was approved already.
        WorkflowFileError: the step cannot take the alternative (it is in a called part, or its locator is
            written as a block mapping); the message says what to do.
    """
    if not reason.strip():
        raise LedgerError("an approval needs a reason (--reason)")
    heal = ledger.heals.get(heal_id)
    if heal["approved_at"] is not None:
        raise LedgerError(f"heal {heal_id} was approved already by {heal['approved_by']} (publish "
                          f"{heal['publish_number']} of workflow {heal['workflow']})")
    base = ledger.workflows.load_published(heal["workflow"]) or ledger.workflows.load(heal["digest"])
    label = f"<heal {heal_id}>"
    source = add_fallback(base.source, heal["step"], heal["new_locator"], label)
    stored = json.dumps({**json.loads(base.stored_text), "source": source}) if base.calls else source
    new = load_stored(stored, label)
    number = ledger.workflows.publish(new, by, label, reason=reason.strip())
    ledger.heals.mark_approved(heal_id, by.removeprefix("cli:"), reason.strip(), number)
    ledger.audit.record(by.removeprefix("cli:"), "heal.approve", "workflow", heal["workflow"], origin=origin, detail={
        "heal": heal_id, "step": heal["step"], "old_locator": heal["old_locator"],
        "new_locator": heal["new_locator"], "score": heal["score"], "number": number, "digest": new.digest,
        "version": new.definition.version, "reason": reason.strip()})
    diff = "".join(difflib.unified_diff(
        readable_source(base).splitlines(keepends=True), readable_source(new).splitlines(keepends=True),
        fromfile=f"{heal['workflow']} version {base.definition.version} ({base.digest[:12]})",
        tofile=f"{heal['workflow']} version {new.definition.version}, publish {number} ({new.digest[:12]})"))
    return Approval(heal=heal, number=number, workflow=new, diff=diff)
