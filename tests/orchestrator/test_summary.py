"""A run's summary says the same thing as text and as JSON: every count under the same name, with the same value."""

from __future__ import annotations

import io
import json
import re

from orchestrator import Summary


def test_the_text_and_the_json_summary_use_the_same_categories_and_values() -> None:
    summary = Summary("b1", "change-of-address", total=12, done=8, business_exception=2, failed=1, cancelled=1,
                      unfinished=0, rejected=4, duplicates=1, already_finished=0, processed=12, elapsed_s=10.3,
                      per_second=1.165)
    out = io.StringIO()
    summary.print_text(out)
    text, data = out.getvalue(), json.loads(summary.json_line())
    shown = {m.group(1): int(m.group(2)) for m in re.finditer(r"^  (\w+) +(\d+)(?:  |$)", text, re.M)}
    counts = {k: v for k, v in data.items() if isinstance(v, int) and k != "total"}
    assert shown == counts, "every count in the JSON line is in the text under its name, and nothing else is"
    assert f"total {data['total']} cases" in text and "elapsed_s 10.3" in text and "per_second 1.17" in text
    assert data["rejected"] == 4 and data["duplicates"] == 1  # each under its own name, never added together
