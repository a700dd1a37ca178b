"""Workflow versions and the audit trail in the ledger, on both backends: every publish numbered, diffs and
rollbacks by number or digest prefix; an append-only hash chain whose edited row ``verify`` names, whose cut
tail the recorded head catches, and which stays one unbroken chain under appends from several processes."""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import delete, update

from orchestrator import AuditChainBroken, Ledger, LedgerError
from orchestrator.ledger.schema import audit_log
from orchestrator.queue import operate_batch, publish_workflow, rollback_workflow, version_diff
from workflows import parse_workflow

WORKFLOW = """name: echo
version: {version}
systems:
  portal: {{}}
input:
  case_ref: {{type: string, max_length: 128}}
steps:
  - fail: {{message: "Cannot do {path}"}}
"""


def echo(version: int, path: str = "a"):  # type: ignore[no-untyped-def]
    return parse_workflow(WORKFLOW.format(version=version, path=path), "echo.yaml")


def test_every_publish_gets_the_next_number_and_a_rollback_republishes_an_earlier_source(ledger: Ledger) -> None:
    one, two = echo(1, "a"), echo(2, "b")
    assert publish_workflow(ledger, one, "arthur", "echo.yaml", origin="cli") == 1
    assert publish_workflow(ledger, two, "arthur", "echo.yaml", origin="10.0.0.7") == 2
    assert ledger.workflows.published_digest("echo") == two.digest
    number, target = rollback_workflow(ledger, "echo", "1", "olga", "version 2 types into the wrong box", origin="cli")
    assert (number, target["number"]) == (3, 1)
    assert ledger.workflows.published_digest("echo") == one.digest
    rows = ledger.workflows.versions("echo")
    assert [(r["number"], r["digest"], r["version"], r["published_by"]) for r in rows] == [
        (1, one.digest, 1, "arthur"), (2, two.digest, 2, "arthur"), (3, one.digest, 1, "olga")]
    assert (rows[2]["rolled_back_from"], rows[2]["reason"]) == (1, "version 2 types into the wrong box")
    actions = [(r["actor"], r["action"], r["object_id"], r["origin"]) for r in ledger.audit.records()]
    assert actions == [("arthur", "workflow.publish", "echo", "cli"), ("arthur", "workflow.publish", "echo", "10.0.0.7"),
                       ("olga", "workflow.rollback", "echo", "cli")]


def test_a_version_is_named_by_number_or_digest_prefix_and_a_wrong_one_is_one_sentence(ledger: Ledger) -> None:
    one, two = echo(1, "a"), echo(2, "b")
    publish_workflow(ledger, one, "arthur", "echo.yaml", origin="cli")
    publish_workflow(ledger, two, "arthur", "echo.yaml", origin="cli")
    diff = version_diff(ledger, "echo", "1", two.digest[:10])
    assert "-version: 1" in diff and "+version: 2" in diff and '-  - fail: {message: "Cannot do a"}' in diff and '+  - fail: {message: "Cannot do b"}' in diff
    assert version_diff(ledger, "echo", "2", "2") == ""
    with pytest.raises(LedgerError, match=r"^workflow echo has no publish 7 \(publish numbers 1 to 2, or a digest prefix\)$"):
        ledger.workflows.find_publish("echo", "7")
    with pytest.raises(LedgerError, match="^workflow nothing has never been published$"):
        ledger.workflows.find_publish("nothing", "1")
    common = next(n for n in range(32) if one.digest[:n] != two.digest[:n]) - 1
    if common >= 4:  # the two digests share a prefix long enough to name a version: it is ambiguous
        with pytest.raises(LedgerError, match="fits 2 versions"):
            ledger.workflows.find_publish("echo", one.digest[:common])
    with pytest.raises(LedgerError, match=r"^'a' is neither a publish number of workflow echo \(1 to 2\) nor a digest "
                                          r"prefix of at least 4 characters$"):
        ledger.workflows.find_publish("echo", "a")
    with pytest.raises(LedgerError, match="a rollback needs a reason"):
        rollback_workflow(ledger, "echo", "1", "olga", "  ", origin="cli")
    with pytest.raises(LedgerError, match="^publish 2 of workflow echo has the source in use now; nothing to roll back to"):
        rollback_workflow(ledger, "echo", two.digest[:8], "olga", "by mistake", origin="cli")
    assert len(ledger.workflows.versions("echo")) == 2


def test_operator_actions_are_recorded_with_the_user_and_the_chain_verifies(ledger: Ledger) -> None:
    batch = ledger.batches.create("wf", "d1", "cases.csv")
    ledger.batches.add_cases(batch, "wf", 1, "d1", 1, [("REF-1", {"case_ref": "REF-1"})])
    operate_batch(ledger, batch, "pause", by="olga", origin="10.1.2.3")
    operate_batch(ledger, batch, "resume", by="olga", origin="10.1.2.3")
    records = ledger.audit.records(actor="olga", action="batch.")
    assert [(r["action"], r["object_id"], r["origin"], r["detail"]) for r in records] == [
        ("batch.pause", batch, "10.1.2.3", {"count": 1}), ("batch.resume", batch, "10.1.2.3", {"count": 1})]
    head = ledger.audit.verify()
    assert head == ledger.audit.head() and head.seq == 2 and len(head.hash) == 64


def test_an_edited_row_is_named_by_verify(ledger: Ledger) -> None:
    for n in range(5):
        ledger.audit.record("olga", "batch.pause", "batch", f"b{n}", origin="cli", detail={"count": n})
    with ledger.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(actor="mallory"))
    with pytest.raises(AuditChainBroken, match=r"^audit record 3 was changed after it was written") as broken:
        ledger.audit.verify()
    assert broken.value.seq == 3


def test_a_cut_tail_is_caught_by_the_head_recorded_earlier(ledger: Ledger) -> None:
    for n in range(6):
        ledger.audit.record("olga", "case.retry", "case", n, origin="cli")
    known = ledger.audit.verify()
    with ledger.engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq > 4))
    assert ledger.audit.verify().seq == 4  # a shorter chain is still a chain ...
    with pytest.raises(AuditChainBroken, match=r"^audit record 5 is missing: the chain ends at 4, but a head at 6"):
        ledger.audit.verify(expected=known)  # ... but not the one whose head was recorded
    with ledger.engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 2))
    with pytest.raises(AuditChainBroken, match=r"^audit record 2 is missing \(the next record is 3\)"):
        ledger.audit.verify()


def _append(url: str, who: str, count: int) -> None:
    ledger = Ledger(url)
    try:
        for n in range(count):
            ledger.audit.record(who, "case.retry", "case", n, origin="cli")
    finally:
        ledger.close()


def test_appends_from_several_processes_keep_one_unbroken_chain(ledger: Ledger) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_append, args=(ledger.url, f"p{i}", 25)) for i in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    head = ledger.audit.verify()
    assert head.seq == 100 == ledger.audit.count()
    assert sorted({r["actor"] for r in ledger.audit.records()}) == ["p0", "p1", "p2", "p3"]
