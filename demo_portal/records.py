"""The demo portal's data: cases that exist, the rules a change of address must pass, and submissions.

Every well-formed reference (``CASE-`` and six digits) names an existing case whose holder is derived
from the number, so any generated batch finds its cases without seeding a database. The rules are the
legacy system's own and stricter than a workflow's input schema: they are where business exceptions
come from.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import re
import threading
from dataclasses import dataclass, field

CASE_REF = re.compile(r"^CASE-\d{6}$")
POSTCODE = re.compile(r"^([A-Z]{1,2})[0-9][0-9A-Z]? [0-9][A-Z]{2}$")
KNOWN_POSTCODE_AREAS = frozenset(
    "AB B BA BD BN BS CB CF CH CV DE E EC EH G GL L LS M ME N NE NG NW OX PL PO S SE SO SW W WC YO".split()
)
COUNTRIES = {"GB-ENG": "England", "GB-SCT": "Scotland", "GB-WLS": "Wales", "GB-NIR": "Northern Ireland"}
CONTACT_METHODS = {"email": "Email", "post": "Post", "phone": "Telephone"}
FIRST = ["Amira", "Ben", "Chloe", "Dev", "Ewa", "Finn", "Grace", "Hamid", "Isla", "Jonas", "Keira", "Liam"]
LAST = ["Okafor", "Smith", "Nowak", "Patel", "Jones", "Murphy", "Khan", "Evans", "Brown", "Walsh", "Ali", "Reid"]


@dataclass(frozen=True)
class Case:
    ref: str
    holder: str
    address: str
    opened: dt.date


def find_case(ref: str) -> Case | None:
    """The case with this reference, or ``None`` (malformed references find nothing)."""
    ref = ref.strip().upper()
    if not CASE_REF.match(ref):
        return None
    n = int(hashlib.sha256(ref.encode()).hexdigest()[:8], 16)
    holder = f"{FIRST[n % len(FIRST)]} {LAST[(n // 12) % len(LAST)]}"
    address = f"{n % 200 + 1} Station Road, Leeds LS{n % 20 + 1} {n % 9 + 1}AB"
    opened = dt.date(2015, 1, 1) + dt.timedelta(days=n % 3000)
    return Case(ref, holder, address, opened)


@dataclass
class Submission:
    confirmation: str
    case_ref: str
    your_ref: str
    values: dict[str, str]
    submitted_at: str
    lost: bool = False
    """Confirmed to the clerk but never stored (the ``lose_rate`` knob): only its confirmation page knows it."""

    def as_json(self) -> dict[str, object]:
        return {
            "confirmation": self.confirmation,
            "case_ref": self.case_ref,
            "your_ref": self.your_ref,
            "values": self.values,
            "submitted_at": self.submitted_at,
        }


FORM_FIELDS = (
    "address_line1",
    "address_line2",
    "city",
    "postcode",
    "country",
    "contact_method",
    "effective_date",
    "consent",
    "notes",
    "your_ref",
)


def loses(your_ref: str, rate: float) -> bool:
    """Whether the portal, with the ``lose_rate`` knob at ``rate``, loses the change submitted under this "Your
    reference": the same answer every time (a share ``rate`` of references, chosen by their SHA-256)."""
    if rate <= 0:
        return False
    point = int.from_bytes(hashlib.sha256(f"lose:{your_ref}".encode()).digest()[:8], "big") / 2**64
    return point < rate


def validate_change(form: dict[str, str], today: dt.date | None = None) -> dict[str, str]:
    """The legacy system's rules for a change of address; returns ``{field: message}`` for each failure."""
    today = today or dt.date.today()
    errors: dict[str, str] = {}
    if not form.get("address_line1", "").strip():
        errors["address_line1"] = "Enter the first line of the address"
    elif len(form["address_line1"]) > 60:
        errors["address_line1"] = "Address line 1 must be 60 characters or fewer"
    if not form.get("city", "").strip():
        errors["city"] = "Enter a town or city"
    postcode = form.get("postcode", "").strip().upper()
    match = POSTCODE.match(postcode)
    if not match:
        errors["postcode"] = "Enter a real postcode, like LS1 4AB"
    elif match.group(1) not in KNOWN_POSTCODE_AREAS:
        errors["postcode"] = "Postcode not recognised in the address directory"
    if form.get("country") not in COUNTRIES:
        errors["country"] = "Select a country"
    if form.get("contact_method") not in CONTACT_METHODS:
        errors["contact_method"] = "Select how the customer wants to be contacted"
    try:
        effective = dt.date.fromisoformat(form.get("effective_date", ""))
    except ValueError:
        errors["effective_date"] = "Enter the date the change takes effect"
    else:
        if effective < today - dt.timedelta(days=30) or effective > today + dt.timedelta(days=365):
            errors["effective_date"] = "The change must take effect within the last 30 days or the next 12 months"
    if form.get("consent") != "yes":
        errors["consent"] = "Confirm that the customer asked for this change"
    if len(form.get("notes", "")) > 500:
        errors["notes"] = "Notes must be 500 characters or fewer"
    return errors


@dataclass
class SubmissionStore:
    """Accepted submissions, kept in memory for the life of the portal process (thread-safe)."""

    _items: list[Submission] = field(default_factory=list)
    _by_case: dict[str, list[Submission]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def add(self, case_ref: str, form: dict[str, str], *, lose: bool = False) -> Submission:
        with self._lock:
            number = next(self._counter)
            confirmation = f"CHG-{number:08d}"
            values = {k: form.get(k, "") for k in FORM_FIELDS if k != "your_ref"}
            values["postcode"] = values["postcode"].strip().upper()
            sub = Submission(
                confirmation,
                case_ref,
                form.get("your_ref", ""),
                values,
                dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
                lost=lose,
            )
            self._items.append(sub)  # a lost one too: its confirmation number is spent, its page shows
            if not lose:
                self._by_case.setdefault(case_ref, []).append(sub)
            return sub

    def for_case(self, case_ref: str) -> list[Submission]:
        with self._lock:
            return list(self._by_case.get(case_ref, []))

    def by_confirmation(self, confirmation: str) -> Submission | None:
        with self._lock:
            if not confirmation.startswith("CHG-") or not confirmation[4:].isdigit():
                return None
            index = int(confirmation[4:]) - 1
            return self._items[index] if 0 <= index < len(self._items) else None

    def export(self) -> list[dict[str, object]]:
        with self._lock:
            return [s.as_json() for s in self._items if not s.lost]
