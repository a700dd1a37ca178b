"""Case notes in the demo portal: a second kind of work, with attachments, a confirm dialog and a notes table.

A case is *Closed* when its number is a multiple of 17 (a closed case takes no notes: the portal says so,
and the example workflow checks for it first). A note needs text and a category; a visit note needs an
attached visit report.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from dataclasses import dataclass, field

CATEGORIES = {"correspondence": "Correspondence", "phone": "Phone call", "visit": "Home visit"}
MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024


def case_status(ref: str) -> str:
    """``Open`` or ``Closed``: every 17th case is closed."""
    return "Closed" if int(ref[-6:]) % 17 == 0 else "Open"


@dataclass
class Note:
    reference: str
    case_ref: str
    your_ref: str
    category: str
    text: str
    notify_customer: bool
    attachments: list[dict[str, object]]
    saved_at: str
    follow_up: str = ""

    def as_json(self) -> dict[str, object]:
        return {"reference": self.reference, "case_ref": self.case_ref, "your_ref": self.your_ref,
                "category": self.category, "text": self.text, "notify_customer": self.notify_customer,
                "attachments": self.attachments, "saved_at": self.saved_at, "follow_up": self.follow_up}


STAFF = ("Ahmed Ali", "Jane Smith", "Priya Shah", "Tom Okafor", "Wendy Marsh")
"""Who a note's follow-up can go to: the form's type-and-pick field offers them as you type."""


def validate_note(form: dict[str, str], attachments: list[dict[str, object]], status: str) -> dict[str, str]:
    """The portal's rules for a note; returns ``{field: message}`` for each failure."""
    errors: dict[str, str] = {}
    if status != "Open":
        errors["form"] = "This case is closed; notes cannot be added"
    if not form.get("text", "").strip():
        errors["text"] = "Enter the note"
    elif len(form["text"]) > 1000:
        errors["text"] = "A note must be 1000 characters or fewer"
    if form.get("category") not in CATEGORIES:
        errors["category"] = "Select a category"
    elif form["category"] == "visit" and not attachments:
        errors["attachments"] = "Attach the visit report"
    if any(int(str(a["size"])) > MAX_ATTACHMENT_BYTES for a in attachments):
        errors["attachments"] = "Each attachment must be 2 MB or smaller"
    if form.get("follow_up") and form["follow_up"] not in STAFF:
        errors["follow_up"] = "Choose who follows it up from the list"
    return errors


@dataclass
class NoteStore:
    """Saved notes, in memory for the life of the portal process (thread-safe)."""

    _items: list[Note] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def add(self, case_ref: str, form: dict[str, str], attachments: list[dict[str, object]]) -> Note:
        with self._lock:
            note = Note(f"NOTE-{next(self._counter):08d}", case_ref, form.get("your_ref", ""), form["category"],
                        form["text"], form.get("notify_customer") == "yes", attachments,
                        dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"), form.get("follow_up", ""))
            self._items.append(note)
            return note

    def for_case(self, case_ref: str) -> list[Note]:
        with self._lock:
            return [n for n in self._items if n.case_ref == case_ref]

    def by_reference(self, reference: str) -> Note | None:
        with self._lock:
            return next((n for n in self._items if n.reference == reference), None)

    def export(self) -> list[dict[str, object]]:
        with self._lock:
            return [n.as_json() for n in self._items]
