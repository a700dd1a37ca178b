"""Generating demo cases for the change-of-address workflow as CSV.

A few percent of the cases are well-formed (they pass the workflow's input schema) but break a rule of
the portal, so the portal rejects them and the bot hands them back to a person: that is where the demo's
business exceptions come from.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

from .records import COUNTRIES, CONTACT_METHODS, KNOWN_POSTCODE_AREAS

COLUMNS = ["case_ref", "address_line1", "address_line2", "city", "postcode", "country",
           "contact_method", "effective_date", "notes"]
STREETS = ["High Street", "Mill Lane", "Church Road", "Victoria Road", "Park Avenue", "Queen Street", "Kings Way"]
TOWNS = ["Leeds", "Bristol", "Cardiff", "Glasgow", "Newcastle", "Norwich", "Plymouth", "York", "Oxford"]


def generate_cases(path: str | Path, count: int, *, invalid_rate: float = 0.05, seed: int = 7,
                   start: int = 1, today: dt.date | None = None) -> int:
    """Write ``count`` cases to ``path``; return how many the portal will reject.

    Invalid cases carry a postcode whose area the portal does not know, or an effective date long past.
    Case references run from ``CASE-{start:06d}`` upwards.
    """
    rng = random.Random(seed)
    today = today or dt.date.today()
    areas = sorted(KNOWN_POSTCODE_AREAS)
    invalid = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for n in range(start, start + count):
            bad = rng.random() < invalid_rate
            area = rng.choice(areas)
            effective = today + dt.timedelta(days=rng.randint(0, 60))
            postcode = f"{area}{rng.randint(1, 9)} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
            if bad:
                invalid += 1
                if rng.random() < 0.5:
                    postcode = f"ZZ{rng.randint(1, 9)} {rng.randint(1, 9)}XX"
                else:
                    effective = today - dt.timedelta(days=rng.randint(90, 400))
            writer.writerow({
                "case_ref": f"CASE-{n:06d}",
                "address_line1": f"{rng.randint(1, 250)} {rng.choice(STREETS)}",
                "address_line2": rng.choice(["", "", f"Flat {rng.randint(1, 30)}"]),
                "city": rng.choice(TOWNS),
                "postcode": postcode,
                "country": rng.choice(sorted(COUNTRIES)),
                "contact_method": rng.choice(sorted(CONTACT_METHODS)),
                "effective_date": effective.isoformat(),
                "notes": rng.choice(["", "Customer phoned", "Letter received 3 days ago", "Moved for work"]),
            })
    return invalid
