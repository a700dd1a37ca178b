"""The closing summary of a batch run: counts by outcome, time, throughput, as text and as one JSON line."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from ..ledger import ACTIVE, TERMINAL
from .handoff import Receipt


CATEGORIES = (
    ("done", ""),
    ("verified", "done, and the record read back from the target system was right"),
    ("unverified", "done (submitted), not checked: not in the verify sample, not yet due, or no verify"),
    ("verify_failed", "submitted, but the record read back was wrong: handed back to a person"),
    ("business_exception", "handed back to a person"),
    ("failed", "attempts used up (exit 5)"),
    ("cancelled", ""),
    ("unfinished", "not yet done (exit 1; run the same command again to resume)"),
    ("rejected", "rows refused at hand-off, not queued (see above)"),
    ("duplicates", "rows repeating a case reference, not queued"),
    ("already_finished", "finished by an earlier hand-off, not processed again"),
    ("processed", "cases that reached an outcome in this run"),
)
"""The counts a summary prints, by their JSON names, with what each means."""


@dataclass
class Summary:
    """How a batch ended. ``total`` counts every case of the file the ledger holds (rejected rows aside)."""

    batch_id: str
    workflow: str
    total: int
    done: int
    business_exception: int
    failed: int
    cancelled: int
    unfinished: int
    rejected: int
    duplicates: int
    already_finished: int
    processed: int
    elapsed_s: float
    per_second: float
    verified: int = 0
    unverified: int = 0
    verify_failed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, receipt: Receipt, counts: dict[str, int], elapsed_s: float,
           verification: dict[str, int] | None = None) -> "Summary":
        """The summary of a batch from its counts by state and its verification counts
        (:meth:`~orchestrator.ledger.Reports.verification`)."""
        before = receipt.already_finished
        processed = sum(counts[s] for s in TERMINAL)
        unfinished = sum(counts[s] for s in ACTIVE)
        return cls(
            batch_id=receipt.batch_id,
            workflow=receipt.workflow,
            total=receipt.waiting + sum(before.values()),
            done=counts["done"] + before.get("done", 0),
            business_exception=counts["business_exception"] + before.get("business_exception", 0),
            failed=counts["failed"] + before.get("failed", 0),
            cancelled=counts["cancelled"] + before.get("cancelled", 0),
            unfinished=unfinished,
            rejected=receipt.rejected,
            duplicates=receipt.duplicates,
            already_finished=sum(before.values()),
            processed=processed,
            elapsed_s=round(elapsed_s, 3),
            per_second=round(processed / elapsed_s, 3) if elapsed_s > 0 else 0.0,
            verified=(verification or {}).get("verified", 0),
            unverified=(verification or {}).get("unverified", 0),
            verify_failed=(verification or {}).get("verify_failed", 0),
        )

    @property
    def accounted(self) -> bool:
        """Every case of the batch reached a terminal state."""
        return self.unfinished == 0

    def print_text(self, out: TextIO) -> None:
        """The summary as text: the same categories, under the same names, as :meth:`json_line`."""
        lines = [f"Batch {self.batch_id} ({self.workflow}): total {self.total} cases"]
        for name, meaning in CATEGORIES:
            lines.append(f"  {name:<20} {getattr(self, name):>8}  {meaning}".rstrip())
        lines.append(f"  elapsed_s {self.elapsed_s:.1f}, per_second {self.per_second:.2f} (transactions processed)")
        for key, value in self.extra.items():
            lines.append(f"  {key}: {value}")
        out.write("\n".join(lines) + "\n")

    def json_line(self) -> str:
        data = asdict(self)
        data.update(data.pop("extra"))
        return json.dumps(data, sort_keys=True)
