"""Retention on both ledger backends: a prune moves the right cases, their history and their evidence into a
readable archive with secret fields masked, and every count (status, batch page, reconciliation, gauges)
stays the same; an erasure removes a case's personal data and evidence and keeps its outcome; the CLI's
mistakes are one line."""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from bots import evidence_folder
from orchestrator import Ledger, LedgerError
from orchestrator.ledger import Outcome
from orchestrator.ledger.schema import batches, transactions
from orchestrator.queue import LedgerCollector, erase_case, hand_off, progress_report, prune_ledger, reconcile
from tests.conftest import autoclerk
from workflows import FIELD_MASK, parse_workflow

WORKFLOW = parse_workflow("""
name: benefit-claim
version: 2
systems: {portal: {}}
input:
  case_ref: {type: string, pattern: "^C-[0-9]{3}$"}
  nino: {type: string, secret: true}
steps:
  - goto: {system: portal, url: /}
""", "claim.yaml")
DAY = 86400.0


class Publisher:
    """Stands in for the broker: takes every message."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def publish(self, ids: Iterable[int]) -> None:
        self.ledger.outbox.mark_published(list(ids))


def hand(ledger: Ledger, path: Path, rows: list[str]) -> str:
    path.write_text("case_ref,nino\n" + "".join(row + "\n" for row in rows), encoding="utf-8")
    return hand_off(ledger, Publisher(ledger), WORKFLOW, path).batch_id  # type: ignore[arg-type]


def work(ledger: Ledger, ref: str, state: str, evidence: list[str] | None = None) -> int:
    tx = ledger.cases.by_ref("benefit-claim", ref)["id"]  # type: ignore[index]
    claim = ledger.transactions.claim(tx, "w1", 60)
    assert claim is not None
    nino = claim.payload["nino"]
    ledger.transactions.finish_many([Outcome(
        claim, state, result_ref="R-1" if state == "done" else None, output={"seen": nino},
        error_class="business_rule" if state != "done" else None,
        error_message=f"No claimant has the number {nino}" if state != "done" else None,
        error_detail="step steps[1]" if state != "done" else None, evidence=evidence,
        verification="verified" if state == "done" else None)])
    return tx


def age(ledger: Ledger, days: float) -> None:
    """Move every case's outcome and every batch's hand-off ``days`` into the past."""
    with ledger.engine.begin() as conn:
        conn.execute(update(transactions).values(updated_at=transactions.c.updated_at - days * DAY))
        conn.execute(update(batches).values(created_at=batches.c.created_at - days * DAY))


def figures(ledger: Ledger, batch_ids: list[str]) -> dict[str, Any]:
    """Every count a person or a scraper reads: status, batch pages, reconciliations, gauges."""
    report = progress_report(ledger, 100, 600, limit=20)
    gauges = LedgerCollector(ledger, 100, cache_s=0).figures()
    return {"status": [(b["id"], b["total"], b["finished"], b["counts"]) for b in report["batches"]],
            "completed": report["completed"], "ledger": report["ledger_counts"],
            "pages": {b: ledger.reports.counts(b) for b in batch_ids},
            "reconciliations": {b: reconcile(ledger, b).as_json() for b in batch_ids},  # type: ignore[union-attr]
            "gauges": (gauges["counts"], gauges["completed"], gauges["batches"])}


@pytest.fixture
def old_and_new(ledger: Ledger, tmp_path: Path) -> dict[str, Any]:
    """An old finished batch (done, failed, an exception dealt with, an exception still open, evidence on
    disk, refused rows), an old batch still in work, and a new finished batch."""
    ledger.workflows.publish(WORKFLOW, "olga", "claim.yaml")
    artifacts = tmp_path / "artifacts"
    folder = evidence_folder(artifacts, "benefit-claim", "C-002") / "attempt-1"
    folder.mkdir(parents=True)
    (folder / "failure.png").write_bytes(b"\x89PNG screenshot")
    (folder / "failure.html").write_text("<p>AB000002A</p>", encoding="utf-8")
    old = hand(ledger, tmp_path / "old.csv", ["C-001,AB000001A", "C-002,AB000002A", "C-003,AB000003A",
                                              "C-004,AB000004A", "C-99,bad", "C-001,AB000001A"])
    work(ledger, "C-001", "done")
    work(ledger, "C-002", "failed", [str(folder / "failure.png"), str(folder / "failure.html")])
    dealt = work(ledger, "C-003", "business_exception")
    assert ledger.cases.resolve(dealt, "closed", "olga", "claimant AB000003A moved abroad")
    work(ledger, "C-004", "business_exception")  # still waits for a person
    working = hand(ledger, tmp_path / "working.csv", ["C-010,AB000010A", "C-011,AB000011A"])
    work(ledger, "C-010", "done")  # C-011 is still queued: this batch is in work
    age(ledger, 500)
    new = hand(ledger, tmp_path / "new.csv", ["C-020,AB000020A"])
    work(ledger, "C-020", "done")
    assert ledger.batches.get(old)["state"] == ledger.batches.get(new)["state"] == "finished"  # type: ignore[index]
    return {"old": old, "working": working, "new": new, "artifacts": artifacts, "folder": folder}


def read_archive(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_a_prune_archives_finished_cases_with_their_history_and_evidence_and_every_count_stays(
        ledger: Ledger, old_and_new: dict[str, Any], tmp_path: Path) -> None:
    ids = [old_and_new[k] for k in ("old", "working", "new")]
    before = figures(ledger, ids)
    assert before["completed"] == 3  # C-001, C-010 and C-020, verified: the target counts them
    cutoff = time.time() - 400 * DAY
    preview = prune_ledger(ledger, finished_before=cutoff, archive_dir=None, artifacts_dir=old_and_new["artifacts"],
                           dry_run=True)
    assert figures(ledger, ids) == before and old_and_new["folder"].is_dir()

    summary = prune_ledger(ledger, finished_before=cutoff, archive_dir=tmp_path / "archive",
                           artifacts_dir=old_and_new["artifacts"], chunk=2)
    assert summary.by_state == Counter({"done": 1, "failed": 1, "business_exception": 1}) == preview.by_state
    assert (summary.events, summary.case_actions, summary.evidence_files) == (preview.events, preview.case_actions, 2)
    assert summary.batch_rejections == 0 == preview.batch_rejections  # the open exception keeps the batch's rows
    assert figures(ledger, ids) == before, "totals, reconciliations and gauges count what was pruned"

    left = {ref for ref in ("C-001", "C-002", "C-003", "C-004", "C-010", "C-011", "C-020")
            if ledger.cases.by_ref("benefit-claim", ref)}
    assert left == {"C-004", "C-010", "C-011", "C-020"}, "open exceptions, batches in work and new cases stay"
    assert not evidence_folder(old_and_new["artifacts"], "benefit-claim", "C-002").exists()

    assert summary.archive is not None and summary.archive.name.startswith("autoclerk-prune-")
    records = read_archive(summary.archive)
    assert records[0]["table"] == "prune" and records[0]["ledger_id"] == ledger.ledger_id
    by_table = Counter(r["table"] for r in records[1:])
    assert by_table == {"transactions": 3, "transaction_events": summary.events, "case_actions": 1, "evidence": 1}
    cases = {r["row"]["case_ref"]: r["row"] for r in records if r["table"] == "transactions"}
    failed = cases["C-002"]
    assert failed["payload"] == {"case_ref": "C-002", "nino": FIELD_MASK} and failed["state"] == "failed"
    assert failed["output"] == {"seen": FIELD_MASK} and "AB000002A" not in json.dumps(records)
    assert failed["history"][-1]["error"] == f"No claimant has the number {FIELD_MASK}"
    action = next(r["row"] for r in records if r["table"] == "case_actions")
    assert action["note"] == f"claimant {'AB000003A'} moved abroad".replace("AB000003A", FIELD_MASK)
    (copied,) = [r["row"] for r in records if r["table"] == "evidence"]
    assert sorted(Path(f).name for f in copied["files"]) == ["failure.html", "failure.png"]
    assert (summary.archive.parent / copied["files"][-1]).read_bytes() == b"\x89PNG screenshot"

    again = prune_ledger(ledger, finished_before=cutoff, archive_dir=tmp_path / "archive",
                         artifacts_dir=old_and_new["artifacts"])
    assert again.cases == 0 and again.archive is None and figures(ledger, ids) == before


def test_a_wholly_pruned_batch_loses_its_refused_rows_and_its_reconciliation_still_holds(
        ledger: Ledger, old_and_new: dict[str, Any], tmp_path: Path) -> None:
    open_one = ledger.cases.by_ref("benefit-claim", "C-004")["id"]  # type: ignore[index]
    assert ledger.cases.resolve(open_one, "done_by_hand", "olga", None)
    with ledger.engine.begin() as conn:  # dealt with long ago
        conn.execute(update(transactions).where(transactions.c.id == open_one).values(updated_at=time.time() - 500 * DAY))
    old = old_and_new["old"]
    before = reconcile(ledger, old).as_json()  # type: ignore[union-attr]
    assert before["rejected_by_kind"] == {"invalid": 1, "duplicate": 1} and before["balanced"]
    summary = prune_ledger(ledger, finished_before=time.time() - 400 * DAY, archive_dir=None,
                           artifacts_dir=old_and_new["artifacts"])
    assert summary.cases == 4 and summary.batch_rejections == 2 and summary.archive is None
    assert ledger.reports.rejections(old) == [] and ledger.retention.cases_left(old) == 0
    assert reconcile(ledger, old).as_json() == before  # type: ignore[union-attr]
    assert ledger.retention.pruned(old) == 4 and ledger.batches.get(old) is not None


def test_an_erasure_removes_data_output_errors_and_evidence_and_keeps_the_outcome(
        ledger: Ledger, old_and_new: dict[str, Any]) -> None:
    tx = ledger.cases.by_ref("benefit-claim", "C-002")["id"]  # type: ignore[index]
    before = ledger.cases.get(tx)
    assert erase_case(ledger, tx, "olga", "subject access request 77", old_and_new["artifacts"])
    case = ledger.cases.get(tx)
    assert case is not None and before is not None
    assert case["payload"] == {} and case["output"] is None and case["evidence"] == []
    assert case["error_message"] is None and case["error_detail"] is None
    assert [a["error"] for a in case["history"]] == [None] and case["history"][0]["evidence"] == []
    for kept in ("state", "attempts", "error_class", "batch_id", "case_ref", "created_at", "result_ref"):
        assert case[kept] == before[kept]
    assert case["history"][0]["outcome"] == "failed" and case["history"][0]["error_class"] == "business_rule"
    assert not old_and_new["folder"].exists()
    assert [(a["action"], a["username"], a["note"]) for a in case["actions"]] == [
        ("erased", "olga", "subject access request 77")]
    assert ledger.reports.counts(old_and_new["old"])["failed"] == 1

    assert not erase_case(ledger, tx, "olga", "asked twice", old_and_new["artifacts"]), "erasing twice changes nothing"
    assert ledger.cases.get(tx)["actions"] == case["actions"]  # type: ignore[index]
    with pytest.raises(LedgerError, match="^case C-002's data was erased, so it cannot run again$"):
        ledger.cases.retry(tx, "olga", attempts=1)
    assert ledger.cases.get(tx)["state"] == "failed"  # type: ignore[index]

    dealt = ledger.cases.by_ref("benefit-claim", "C-003")["id"]  # type: ignore[index]
    assert erase_case(ledger, dealt, "olga", "request 78", old_and_new["artifacts"])
    assert [a["note"] for a in ledger.cases.get(dealt)["actions"]] == [None, "request 78"]  # type: ignore[index]


def test_a_case_still_in_work_is_not_erased(ledger: Ledger, old_and_new: dict[str, Any]) -> None:
    tx = ledger.cases.by_ref("benefit-claim", "C-011")["id"]  # type: ignore[index]
    before = ledger.cases.get(tx)
    with pytest.raises(LedgerError) as refused:
        erase_case(ledger, tx, "olga", "request", old_and_new["artifacts"])
    assert str(refused.value) == ("case C-011 is queued: it is still in work, so its data cannot be erased yet; "
                                  "erase it once it has an outcome (or cancel it first)")
    assert ledger.cases.get(tx) == before


def test_the_cli_prunes_erases_and_says_each_mistake_in_one_line(ledger: Ledger, old_and_new: dict[str, Any],
                                                                  tmp_path: Path) -> None:
    flags = ["--ledger", ledger.url]
    env = {"AUTOCLERK_ARTIFACTS_DIR": str(old_and_new["artifacts"])}
    for args, message in [
        (["ledger", "prune", "--finished-before", "400d"],
         "pruning deletes cases from the ledger: give --archive DIR to keep them in an archive, or --no-archive "
         "to delete them without one"),
        (["ledger", "prune", "--finished-before", "last year", "--archive", str(tmp_path)],
         "--finished-before must be an age in days such as 400d, or a date such as 2025-01-31, not 'last year'"),
        (["cases", "erase", "C-011", "--workflow", "benefit-claim", "--reason", "request"],
         "case C-011 is queued: it is still in work, so its data cannot be erased yet; erase it once it has an "
         "outcome (or cancel it first)"),
        (["cases", "erase", "C-999", "--workflow", "benefit-claim", "--reason", "request"],
         f"workflow benefit-claim has no case C-999 in the ledger at {ledger.url}"),
    ]:
        done = autoclerk(*args, *flags, env=env)
        assert (done.returncode, done.stderr) == (2, f"autoclerk: error: {message}\n"), args

    dry = autoclerk("ledger", "prune", "--finished-before", "400d", "--dry-run", "--json", *flags, env=env)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) | {"finished_before": None} == {
        "finished_before": None, "dry_run": True, "archive": None, "evidence_dir": None, "batches": 1, "cases": 3,
        "by_state": {"business_exception": 1, "done": 1, "failed": 1}, "events": 6, "case_actions": 1,
        "batch_rejections": 0, "evidence_files": 2}
    done = autoclerk("ledger", "prune", "--finished-before", "400d", "--archive", str(tmp_path / "a"), *flags, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pruned 3 cases finished before ") and "(business exception 1, done 1, failed 1)" \
        in done.stdout and f"archive {tmp_path / 'a'}" in done.stdout
    erased = autoclerk("cases", "erase", "C-020", "--workflow", "benefit-claim", "--reason", "request 9", *flags, env=env)
    assert erased.stdout == "case C-020 (benefit-claim): its personal data is erased; its outcome is kept\n"
    again = autoclerk("cases", "erase", "C-020", "--workflow", "benefit-claim", "--reason", "request 9", *flags, env=env)
    assert again.stdout == "case C-020 (benefit-claim): already erased; nothing changed\n"
    # The prune and the erasure are in the audit trail (the reason, never the data); the refusals and the
    # second erasure, which changed nothing, are not.
    trail = [(r["action"], r["origin"]) for r in ledger.audit.records() if r["action"] in ("ledger.prune", "case.erase")]
    assert trail == [("ledger.prune", "cli"), ("case.erase", "cli")]
    erasure = ledger.audit.records(action="case.erase")[0]
    assert erasure["detail"] == {"reason": "request 9", "case_ref": "C-020", "workflow": "benefit-claim"}
    assert "cli:" not in erasure["actor"]  # the same user name as every other command-line record
    ledger.audit.verify()
    if ledger.engine.dialect.name == "postgresql":
        refused = autoclerk("ledger", "backup", str(tmp_path / "copy.db"), *flags)
        assert (refused.returncode, refused.stderr) == (2, "autoclerk: error: 'ledger backup' copies a SQLite ledger; "
                                                           "back up a postgresql ledger with pg_dump -Fc (see "
                                                           "docs/operations.md)\n")


def test_a_sqlite_backup_is_a_whole_ledger_whose_waiting_cases_are_published_again(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        ledger.workflows.publish(WORKFLOW, "olga", "claim.yaml")
        batch = hand(ledger, tmp_path / "cases.csv", ["C-001,AB000001A", "C-002,AB000002A"])
        work(ledger, "C-001", "done")
        assert ledger.outbox.due(batch) == []  # C-002's message is with the broker
        done = autoclerk("ledger", "backup", str(tmp_path / "copy.db"), "--ledger", ledger.url)
        assert done.returncode == 0 and done.stdout.startswith(f"backed up the ledger {ledger.url} to "), done.stderr
        again = autoclerk("ledger", "backup", str(tmp_path / "copy.db"), "--ledger", ledger.url)
        assert (again.returncode, again.stderr) == (
            2, f"autoclerk: error: the backup file {tmp_path / 'copy.db'} already exists; name a new file\n")
    finally:
        ledger.close()
    copy = Ledger(f"sqlite:///{tmp_path / 'copy.db'}")
    try:
        assert copy.ledger_id == ledger.ledger_id and copy.reports.counts(batch) == ledger.reports.counts(batch)
        assert copy.outbox.due(batch) == [copy.cases.by_ref("benefit-claim", "C-002")["id"]]  # type: ignore[index]
    finally:
        copy.close()
