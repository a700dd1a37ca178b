"""Every case's result and every batch's reconciliation, on both ledger backends: the two sums hold for a
file with every kind of row, results stream with the API's keys, secret fields never show, a CSV cell
cannot become a formula, and an xlsx export too large for a sheet is refused with one line."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable
from pathlib import Path

import pytest

from orchestrator import Ledger
from orchestrator.errors import UsageError
from orchestrator.ledger import Outcome
from orchestrator.queue import RESULT_KEYS, case_results, export_results, hand_off, reconcile, rejections_csv_chunks
from orchestrator.queue import results as results_module
from workflows import FIELD_MASK, parse_workflow

WORKFLOW = parse_workflow("""
name: benefit-claim
version: 2
systems: {portal: {}}
input:
  case_ref: {type: string, pattern: "^C-[0-9]{3}$"}
  nino: {type: string, secret: true}
  note: {type: string, required: false, max_length: 20}
steps:
  - goto: {system: portal, url: /}
""", "claim.yaml")


class Publisher:
    """Stands in for the broker: takes every message."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def publish(self, ids: Iterable[int]) -> None:
        self.ledger.outbox.mark_published(list(ids))


def write(path: Path, rows: list[str]) -> Path:
    path.write_text("case_ref,nino,note\n" + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


def finish(ledger: Ledger, refs_and_outcomes: dict[str, Outcome | str]) -> None:
    """Work the named cases to the given outcome (a state, or an :class:`Outcome` builder's fields)."""
    ids = {ledger.cases.by_ref("benefit-claim", ref)["id"]: what for ref, what in refs_and_outcomes.items()}  # type: ignore[index]
    for claim in ledger.transactions.claim_many(list(ids), "test", 60):
        what = ids[claim.id]
        if isinstance(what, str):
            what = Outcome(claim, what, result_ref="REF-1" if what == "done" else None)
        ledger.transactions.finish_many([Outcome(claim, what.state, result_ref=what.result_ref, output=what.output,
                                                 error_class=what.error_class, error_message=what.error_message,
                                                 error_detail=what.error_detail)])


def test_a_file_with_every_kind_of_row_reconciles_to_its_input(ledger: Ledger, tmp_path: Path) -> None:
    publisher = Publisher(ledger)
    first = hand_off(ledger, publisher, WORKFLOW, write(tmp_path / "first.csv", [  # type: ignore[arg-type]
        "C-001,AB123456C,", "C-002,AB123456D,", "C-003,AB123456E,"]))
    finish(ledger, {"C-001": "done"})  # C-002 and C-003 stay unfinished: the next file takes them over
    second = write(tmp_path / "second.csv", [
        "C-010,AB000001A,good",
        "C-011,AB000002A,good",
        "C-12,AB000003A,bad reference",          # breaks the pattern
        "C-010,AB000001A,good",                  # repeats a row of this file
        "",                                      # blank line
        ",,",                                    # blank row
        "C-013,AB000004A," + "x" * 21,           # too long
        "C-014,AB000005A,too,many",              # more values than columns
        "C-001,AB123456C,",                      # finished in the first batch: not run again
        "C-002,AB123456D,",                      # unfinished in the first batch: taken over
    ])
    receipt = hand_off(ledger, publisher, WORKFLOW, second)  # type: ignore[arg-type]
    assert receipt.accepted == 2 and receipt.resumed == 1
    finish(ledger, {"C-010": "done", "C-011": "business_exception"})

    report = reconcile(ledger, receipt.batch_id)
    assert report is not None
    assert report.rows_read == 10 == report.accepted + report.rejected_total
    assert report.accepted == 3
    assert report.rejected == {"invalid": 2, "duplicate": 1, "blank": 2, "unreadable": 1, "already_finished": 1}
    assert report.outcomes == {"done": 1, "handed back to a person": 1, "failed": 0, "cancelled": 0}
    assert report.in_progress == 1 and report.balanced
    assert report.input_sha256 == hashlib.sha256(second.read_bytes()).hexdigest()
    assert report.workflow_version == 2 and report.handed_off_by is None
    lines = report.lines()
    assert "rows read 10 = accepted 3 + rejected 7" in lines
    assert "accepted 3 = done 1 + handed back to a person 1 + failed 0 + cancelled 0 + still in progress 1" in lines
    assert lines[-1] == "both sums hold"

    earlier = reconcile(ledger, first.batch_id)
    assert earlier is not None and earlier.balanced
    assert earlier.accepted == 3 and earlier.moved_to_later_batch == 1 and earlier.in_progress == 1
    assert json.loads(json.dumps(earlier.as_json()))["balanced"] is True
    assert reconcile(ledger, "no-such-batch") is None


def test_results_have_the_api_keys_stream_in_order_and_mask_secret_fields(ledger: Ledger, tmp_path: Path) -> None:
    receipt = hand_off(ledger, Publisher(ledger), WORKFLOW, write(tmp_path / "cases.csv", [  # type: ignore[arg-type]
        "C-001,QQ123456C,", "C-002,QQ654321C,", "C-003,QQ111111C,"]))
    finish(ledger, {"C-001": "done"})
    claim = ledger.transactions.claim_many([ledger.cases.by_ref("benefit-claim", "C-002")["id"]], "t", 60)[0]  # type: ignore[index]
    ledger.transactions.finish_many([Outcome(
        claim, "business_exception", error_class="business_rule", output={"searched": "QQ654321C"},
        error_message="No claimant has the number QQ654321C", error_detail="step steps[1].assert: no match")])

    results = list(case_results(ledger, receipt.batch_id))
    assert [list(r) for r in results] == [list(RESULT_KEYS)] * 3
    assert [r["case_ref"] for r in results] == ["C-001", "C-002", "C-003"]
    assert results[0]["state"] == "done" and results[0]["result_ref"] == "REF-1"
    refused = results[1]
    assert refused["error_message"] == f"No claimant has the number {FIELD_MASK}"
    assert refused["output"] == {"searched": FIELD_MASK} and refused["error_detail"] == "step steps[1].assert: no match"
    assert [r["case_ref"] for r in case_results(ledger, receipt.batch_id, state="queued")] == ["C-003"]

    for fmt in ("csv", "jsonl"):
        out = tmp_path / f"results.{fmt}"
        assert export_results(ledger, receipt.batch_id, fmt, out) == 3
        assert "QQ654321C" not in out.read_text()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "results.csv").read_text())))
    assert list(rows[0]) == list(RESULT_KEYS) and rows[1]["output"] == json.dumps({"searched": FIELD_MASK}, ensure_ascii=False)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["case_ref"] for line in lines] == ["C-001", "C-002", "C-003"]

    xlsx = tmp_path / "results.xlsx"
    assert export_results(ledger, receipt.batch_id, "xlsx", xlsx) == 3
    assert xlsx.read_bytes()[:2] == b"PK"  # a zip: the workbook


def test_a_csv_cell_that_would_be_a_formula_is_quoted_as_text(ledger: Ledger, tmp_path: Path) -> None:
    receipt = hand_off(ledger, Publisher(ledger), WORKFLOW, write(tmp_path / "cases.csv", ["C-001,AB1,"]))  # type: ignore[arg-type]
    claim = ledger.transactions.claim_many([ledger.cases.by_ref("benefit-claim", "C-001")["id"]], "t", 60)[0]  # type: ignore[index]
    ledger.transactions.finish_many([Outcome(claim, "business_exception", error_message="=HYPERLINK(\"x\")")])
    out = io.StringIO()
    export_results(ledger, receipt.batch_id, "csv", out)
    assert next(csv.DictReader(io.StringIO(out.getvalue())))["error_message"] == "'=HYPERLINK(\"x\")"


def test_an_xlsx_export_larger_than_a_sheet_is_refused_with_one_line(ledger: Ledger, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    receipt = hand_off(ledger, Publisher(ledger), WORKFLOW, write(tmp_path / "cases.csv", [  # type: ignore[arg-type]
        "C-001,AB123456C,", "C-002,AB123456D,"]))
    monkeypatch.setattr(results_module, "XLSX_MAX_CASES", 1)
    with pytest.raises(UsageError, match=r"has 2 cases, more than an xlsx sheet holds \(2 rows with the header\); "
                                         r"export it with --format csv"):
        export_results(ledger, receipt.batch_id, "xlsx", tmp_path / "r.xlsx")
    assert not (tmp_path / "r.xlsx").exists()


def test_the_refused_rows_stream_as_csv_a_page_at_a_time_with_formulas_quoted(ledger: Ledger) -> None:
    batch = ledger.batches.create("benefit-claim", "d1", "cases.csv")
    ledger.batches.record_rejections(batch, [(n, "nino", f"=bad {n}" if n == 2 else f"row {n} is wrong", "invalid")
                                             for n in range(1, 6)])
    chunks = list(rejections_csv_chunks(ledger, batch, page=2))
    assert len(chunks) == 3  # two rows a chunk, the last one short: written as they are read
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    assert rows[0] == ["row", "field", "reason"] and [r[0] for r in rows[1:]] == ["1", "2", "3", "4", "5"]
    assert rows[2] == ["2", "nino", "'=bad 2"]
