"""How far the ledger is toward the target, how fast it moves, and every batch's counts (``autoclerk status``,
the operations page and its API).

Everything comes from the durable ledger, so the figures survive any process restart. A confirmation page is
not proof: ``completed`` is the number of transactions ``verified`` (done by a bot, and the record read back
from the target system found right), and the rate and projection count verifications. Beside it,
``unverified`` counts the done ones submitted but not checked (outside the verify sample, not yet due, or
the workflow has no ``verify``) and ``verify_failed`` those read back wrong (handed to a person): all three
from :meth:`~orchestrator.ledger.Reports.verification`. Cases handed back to a person, failed or cancelled are
shown per batch but do not count toward the target.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from ..ledger import TERMINAL
from ..settings import Settings


def target_figures(progress: dict[str, Any], verification: dict[str, int], target: int, now: float) -> dict[str, Any]:
    """From ``Ledger.reports.progress`` and ``Ledger.reports.verification``: completed (the verified
    transactions: a confirmation page is not proof, so the target counts only the records read back and found
    right), remaining, the recent rate of verifications per second, and the projected completion time (Unix
    time; ``now`` once reached, ``None`` when nothing was verified in the window)."""
    elapsed = progress["window_elapsed_s"]
    rate = progress["verified_recent"] / elapsed if elapsed > 0 else 0.0
    completed = verification["verified"]
    remaining = max(target - completed, 0)
    projected = now if remaining == 0 else (now + remaining / rate if rate > 0 else None)
    return {"completed": completed, "remaining": remaining, "per_second": rate, "projected": projected}


def read_target(ledger: Any, target: int, window_s: float, now: float) -> dict[str, Any]:
    """The target's figures read from the ledger, the one read behind ``status``, the operations page and the
    gauges: ``counts`` (the ledger by state), ``verification`` (done cases by verification) and
    :func:`target_figures`' completed, remaining, per_second and projected."""
    progress = ledger.reports.progress(window_s, now)
    verification = ledger.reports.verification()
    return {"counts": progress["counts"], "verification": verification,
            **target_figures(progress, verification, target, now)}


def progress_report(ledger: Any, target: int, window_s: float, limit: int) -> dict[str, Any]:
    """The figures ``status`` prints: target, completed (verified), the recent rate of verifications, the
    projection and the batches, with the done cases ``verified``, ``unverified`` and the ``verify_failed`` ones."""
    now = dt.datetime.now(dt.timezone.utc)
    figures = read_target(ledger, target, window_s, now.timestamp())
    projected = figures["projected"]
    rows = []
    for batch in ledger.batches.recent(limit):
        counts = batch["counts"]
        rows.append({"id": batch["id"], "workflow": batch["workflow"], "state": batch["state"],
                     "finished_at": batch["finished_at"],
                     "created_at": dt.datetime.fromtimestamp(batch["created_at"], dt.timezone.utc).isoformat(timespec="seconds"),
                     "total": sum(counts.values()), "finished": sum(counts[s] for s in TERMINAL), "counts": counts})
    return {"target": target, "completed": figures["completed"], "remaining": figures["remaining"],
            "fraction": round(figures["completed"] / target, 6), "per_second": round(figures["per_second"], 3),
            "rate_window_s": window_s,
            "projected_completion": None if projected is None else
            dt.datetime.fromtimestamp(projected, dt.timezone.utc).isoformat(timespec="seconds"),
            "ledger_counts": figures["counts"], "batches": rows, **figures["verification"]}


def operations_figures(ledger: Any, settings: Settings, broker_depths: dict[str, float] | None) -> dict[str, Any]:
    """What the operations page shows and ``GET /api/operations`` returns: the target's progress, throughput
    per minute over the last hour, waiting, paused, running and failed transactions, the broker's queue
    depths (``None`` when embedded), the live workers, the newest batches, the cases held for a missing
    setting by workflow (``held``), the unfinished cases at risk and past their deadline by workflow
    (``deadlines``: ``{workflow: {"at_risk": n, "breached": n}}``), and the target systems whose circuit
    breaker is open or half-open (``breakers``: ``[{"system", "state", "failures", "opened_at", "probe_at",
    "probe_until", "reason"}]``)."""
    report = progress_report(ledger, settings.target_transactions, settings.rate_window_s, limit=20)
    counts = report["ledger_counts"]
    series = ledger.reports.throughput(window_s=3600, bucket_s=60)
    return {"target": report, "series": series, "waiting": counts["queued"] + counts["retry_scheduled"],
            "paused": counts["paused"], "in_progress": counts["in_progress"], "failed": counts["failed"],
            "broker": broker_depths, "workers": ledger.heartbeats.workers(), "batches": report["batches"],
            "held": ledger.reports.held(), "deadlines": ledger.reports.deadlines(settings.deadline_margin_s),
            "deadline_margin": settings.deadline_margin,
            "breakers": [dataclasses.asdict(b) for _, b in sorted(ledger.breakers.tripped().items())]}
