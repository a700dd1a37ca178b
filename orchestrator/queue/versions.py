"""Publishing a workflow and rolling one back: the one way to do each, used by ``autoclerk workflows
publish|rollback``, the Workflows page and ``POST /api/workflows`` (and ``…/rollback``); and the diff
between two publishes (``autoclerk workflows diff``, the page and the API).

Each is the ledger's publish (:class:`orchestrator.ledger.WorkflowStore`: the next publish number, the
version hand-offs use from now on) and its record in the audit trail. Batches already handed off keep the
exact version (digest) they were handed off with.
"""

from __future__ import annotations

import difflib
from typing import Any

from workflows import LoadedWorkflow

from ..ledger import Ledger


def publish_workflow(ledger: Ledger, loaded: LoadedWorkflow, by: str, file: str, *, origin: str) -> int:
    """Publish a validated workflow and record it in the audit trail; returns its publish number.

    Args:
        by: who publishes (a user name, or ``cli:USER``, recorded in the audit trail as ``USER``).
        origin: the client address, or ``cli``.

    Raises:
        WorkflowFileError: it is a part, which cannot be published.
    """
    number = ledger.workflows.publish(loaded, by, file)
    _record(ledger, loaded.definition.name, number, by, origin)
    return number


def rollback_workflow(ledger: Ledger, name: str, ref: str, by: str, reason: str, *, origin: str) -> tuple[int, dict[str, Any]]:
    """Publish the source of an earlier publish of ``name`` (a publish number or a digest prefix) again, as a
    new publish number, recorded in the audit trail with the reason.

    Returns:
        The new publish number, and the publish rolled back to.

    Raises:
        LedgerError: no reason, or ``ref`` names no single publish of ``name`` (one sentence says why).
    """
    number, target = ledger.workflows.rollback(name, ref, by, reason)
    _record(ledger, name, number, by, origin)
    return number, target


def _record(ledger: Ledger, name: str, number: int, by: str, origin: str) -> None:
    publish = next(p for p in ledger.workflows.versions(name) if p["number"] == number)
    rollback = publish["rolled_back_from"] is not None
    ledger.audit.record(by.removeprefix("cli:"), "workflow.rollback" if rollback else "workflow.publish", "workflow",
                        name, origin=origin, detail={
                            "number": number, "digest": publish["digest"], "version": publish["version"],
                            "file": publish["file"],
                            **({"to": publish["rolled_back_from"], "reason": publish["reason"]} if rollback else {})})


def version_diff(ledger: Ledger, name: str, first: str, second: str) -> str:
    """A unified diff (difflib) of the sources of two publishes of ``name``, each named by its publish number
    or a digest prefix; empty when the sources are the same. The parts a workflow calls are compared too
    (see :func:`readable_source`).

    Raises:
        LedgerError: a reference names no single publish of ``name``.
    """
    a, b = ledger.workflows.find_publish(name, first), ledger.workflows.find_publish(name, second)
    return "".join(difflib.unified_diff(
        readable_source(ledger.workflows.load(a["digest"])).splitlines(keepends=True),
        readable_source(ledger.workflows.load(b["digest"])).splitlines(keepends=True),
        fromfile=f"{name} publish {a['number']} (version {a['version']}, {a['digest'][:12]})",
        tofile=f"{name} publish {b['number']} (version {b['version']}, {b['digest'][:12]})"))


def readable_source(loaded: LoadedWorkflow, ref: str | None = None) -> str:
    """A version's YAML as its author wrote it, followed by each part it calls (each under a ``# ---- called:
    REF ----`` line), so a diff shows a change to a part where it is."""
    text = loaded.source if ref is None else f"# ---- called: {ref} ----\n{loaded.source}"
    if not text.endswith("\n"):
        text += "\n"
    return text + "".join(readable_source(called, f"{ref} > {inner}" if ref else inner)
                          for inner, called in sorted(loaded.calls.items()))
