"""Verified transactions in real Chromium, through RabbitMQ and real workers, against the demo portal: a
portal that confirms changes it never stores (``lose_rate``) has every lost record caught and handed back
as ``verify_failed`` with its evidence; a sampled and a delayed verification; and a verification that
cannot run (the portal down) retried without a second submit."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from demo_portal import PortalProcess, generate_cases
from demo_portal.records import loses
from orchestrator import Ledger
from tests.conftest import EXAMPLE, autoclerk, wait_for_consumers
from tests.faults.oracle import last_json
from tests.faults.rig import FAST, FaultRig, fault_rig
from workflows import load_workflow

PASSWORD = "demo-password"


class Rig(FaultRig):
    """The fault suite's rig, reading the verification columns back."""

    def cases_by_ref(self) -> dict[str, dict]:
        with sqlite3.connect(self.ledger_path, timeout=30) as db:
            db.row_factory = sqlite3.Row
            return {row["case_ref"]: dict(row) for row in db.execute("select * from transactions")}

    def submits(self) -> dict[str, int]:
        """How many attempts of each case recorded that they may submit (``effect_started``)."""
        with sqlite3.connect(self.ledger_path, timeout=30) as db:
            return dict(db.execute(
                "select t.case_ref, count(*) from transaction_events e join transactions t on t.id = e.transaction_id "
                "where e.state = 'effect_started' group by t.case_ref"))

    def run(self, workflow: Path, cases: Path) -> dict:
        result = autoclerk("run", str(workflow), "--cases", str(cases), *self.common, "--json", cwd=self.tmp,
                           env={**FAST, "AUTOCLERK_ARTIFACTS_DIR": str(self.tmp / "artifacts")})
        assert result.returncode == 0, result.stderr[-3000:] + self.worker_logs()[-3000:]
        return last_json(result.stdout)

    def export(self) -> list[dict]:
        return httpx.get(f"{self.portal.url}/api/export").json()

    def counts_agree(self) -> None:
        """The counts the workers kept as they went (by state, and toward the target) equal a real count."""
        ledger = Ledger(f"sqlite:///{self.ledger_path}")
        try:
            assert ledger.counters.mismatches() == {}
            assert ledger.counters.whole().get("verified", 0) == sum(
                row["state"] == "done" and row["verification"] == "verified" for row in self.cases_by_ref().values())
        finally:
            ledger.close()


@pytest.fixture
def rig(tmp_path: Path, rabbitmq: str, portal: PortalProcess, chromium: str) -> Iterator[Rig]:
    with fault_rig(tmp_path, rabbitmq, portal, kind=Rig) as made:
        yield made


def faults(portal: PortalProcess, **knobs: object) -> None:
    httpx.put(f"{portal.url}/api/faults", json=knobs).raise_for_status()


def variant(tmp: Path, verify_head: str) -> Path:
    """The example workflow with its ``verify`` list turned into ``{<verify_head>, steps: [...]}``."""
    text = EXAMPLE.read_text()
    head, _, steps = text.partition("\nverify:\n")
    indented = "\n".join(("  " + line) if line.strip() else line for line in steps.splitlines())
    path = tmp / "change_of_address.yaml"
    path.write_text(f"{head}\nverify:\n{verify_head}\n  steps:\n{indented}\n")
    (tmp / "sign_in.yaml").write_text((EXAMPLE.parent / "sign_in.yaml").read_text())
    return path


def test_every_record_the_portal_loses_is_caught_and_handed_back_and_every_other_case_is_verified(rig: Rig) -> None:
    cases = rig.tmp / "cases.csv"
    generate_cases(cases, 20, invalid_rate=0.0, seed=22, start=960)
    refs = [f"CASE-{n:06d}" for n in range(960, 980)]
    lost = {ref for ref in refs if loses(ref, 0.05)}
    assert lost == {"CASE-000964", "CASE-000971"}, "the knob loses the same cases every time"
    faults(rig.portal, lose_rate=0.05)
    rig.start_worker()
    wait_for_consumers(rig.broker, 1)

    summary = rig.run(EXAMPLE, cases)

    assert (summary["verified"], summary["unverified"], summary["verify_failed"]) == (18, 0, 2)
    assert (summary["done"], summary["business_exception"], summary["failed"]) == (18, 2, 0)
    rows = rig.cases_by_ref()
    for ref in lost:
        row = rows[ref]
        assert (row["state"], row["verification"], row["error_class"]) == ("business_exception", "verify_failed",
                                                                             "VerifyFailed")
        assert "not in the case's history" in row["error_message"] and "did not submit again" in row["error_message"]
        evidence = [Path(p) for p in json.loads(row["evidence"])]
        names = {p.name for p in evidence}
        assert {"verify-before.png", "verify-after.png", "verify-fields.json", "failure.png"} <= names
        assert all(p.stat().st_size > 0 for p in evidence)
        fields = json.loads(next(p for p in evidence if p.name == "verify-fields.json").read_text())
        assert set(fields["expected"]) == {"case_ref", "address_line1", "city", "postcode"}
        assert fields["read"] == {"output.reference": row["result_ref"]}  # nothing found in the history
        for path in evidence:
            if path.suffix in (".json", ".html"):
                assert PASSWORD not in path.read_text(), f"the portal password reached {path.name}"
    for ref in set(refs) - lost:
        assert (rows[ref]["state"], rows[ref]["verification"]) == ("done", "verified")
        assert "verify-after.png" in rows[ref]["evidence"]
    assert rig.submits() == {ref: 1 for ref in refs}, "every case submitted exactly once"
    assert sorted(e["case_ref"] for e in rig.export()) == sorted(set(refs) - lost)

    shown = autoclerk("status", "--ledger", f"sqlite:///{rig.ledger_path}", "--json")
    report = last_json(shown.stdout)
    assert (report["verified"], report["unverified"], report["verify_failed"]) == (18, 0, 2)
    batch = report["batches"][0]["id"]
    reconciled = autoclerk("batches", "reconcile", batch, "--ledger", f"sqlite:///{rig.ledger_path}", "--json")
    assert reconciled.returncode == 0, reconciled.stderr
    assert {k: last_json(reconciled.stdout)[k] for k in ("verified", "unverified", "verify_failed")} == \
        {"verified": 18, "unverified": 0, "verify_failed": 2}
    rig.counts_agree()


def test_a_sampled_and_delayed_verification_leaves_cases_unverified_until_the_sweep_verifies_the_sample(
        rig: Rig) -> None:
    workflow = variant(rig.tmp, "  sample: 0.5\n  delay_s: 3")
    verify = load_workflow(workflow).definition.verification
    assert verify is not None and (verify.sample, verify.delay_s) == (0.5, 3)
    cases = rig.tmp / "cases.csv"
    generate_cases(cases, 6, invalid_rate=0.0, seed=23, start=1400)
    refs = [f"CASE-{n:06d}" for n in range(1400, 1406)]
    sampled = {ref for ref in refs if verify.samples(ref)}
    assert 0 < len(sampled) < len(refs)
    rig.start_worker()
    wait_for_consumers(rig.broker, 1)

    summary = rig.run(workflow, cases)

    assert (summary["done"], summary["verified"], summary["unverified"], summary["verify_failed"]) == (6, 0, 6, 0)
    rig.wait(lambda: sum(r["verification"] == "verified" for r in rig.cases_by_ref().values()) == len(sampled), 120,
             "the sweep verified the sampled cases")
    rows = rig.cases_by_ref()
    assert {ref for ref, row in rows.items() if row["verification"] == "verified"} == sampled
    assert all(rows[ref]["verification"] == "unverified" and rows[ref]["verify_due_at"] is None
               for ref in set(refs) - sampled), "cases outside the sample are never due"
    assert all(row["state"] == "done" and row["verify_due_at"] is None for row in rows.values())
    assert rig.submits() == {ref: 1 for ref in refs}
    shown = last_json(autoclerk("status", "--ledger", f"sqlite:///{rig.ledger_path}", "--json").stdout)
    assert (shown["verified"], shown["unverified"], shown["verify_failed"]) == (len(sampled), 6 - len(sampled), 0)
    # the target counts the verified ones only, and its rate counts the sweep's verifications as they passed
    assert shown["completed"] == len(sampled) and shown["per_second"] > 0, shown
    ledger = Ledger(f"sqlite:///{rig.ledger_path}")
    try:
        changes = [state for state, _, _ in ledger.transactions.state_changes(rows[min(sampled)]["id"])]
    finally:
        ledger.close()
    assert changes[-2:] == ["done", "verified"], changes
    rig.counts_agree()


def test_a_verification_that_cannot_run_is_retried_without_submitting_again(rig: Rig) -> None:
    cases = rig.tmp / "cases.csv"
    generate_cases(cases, 1, invalid_rate=0.0, seed=24, start=1500)
    worker = rig.start_worker(fault="stall_before_verify")
    wait_for_consumers(rig.broker, 1)
    with rig.run_in_background(cases) as run:
        rig.wait(rig.marker.exists, 120, "the worker reached the verification after its submit")
        assert [e["case_ref"] for e in rig.export()] == ["CASE-001500"], "the submit happened"
        faults(rig.portal, error_rate=1.0)  # the portal is down while the verification runs
        os.killpg(worker.pid, signal.SIGCONT)
        rig.wait(lambda: rig.cases_by_ref()["CASE-001500"]["verification"] == "pending", 60,
                 "the verification failed to run and the case waits, its submit kept")
        row = rig.cases_by_ref()["CASE-001500"]
        assert row["state"] in ("retry_scheduled", "in_progress") and row["result_ref"], row
        faults(rig.portal, error_rate=0.0)
        summary = rig.finish(run)
    row = rig.cases_by_ref()["CASE-001500"]
    assert (row["state"], row["verification"]) == ("done", "verified")
    assert (summary["verified"], summary["verify_failed"]) == (1, 0)
    assert rig.submits() == {"CASE-001500": 1}, "the retry verified only"
    assert [e["case_ref"] for e in rig.export()] == ["CASE-001500"], "exactly one record in the portal"
    assert "submitted earlier; verifying only" in rig.worker_logs()
    rig.counts_agree()


def test_the_operations_page_shows_verified_cases_beside_the_submitted_ones_and_those_not_kept(
        tmp_path: Path, portal: PortalProcess, chromium: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    from bots import launch_options
    from tests.conftest import ROOT
    from tests.integration.handoff_rig import handoff_server, sign_in

    cases = tmp_path / "cases.csv"
    generate_cases(cases, 8, invalid_rate=0.0, seed=25, start=1000)
    lost = {f"CASE-{n:06d}" for n in range(1000, 1008) if loses(f"CASE-{n:06d}", 0.05)}
    assert lost == {"CASE-001003", "CASE-001004"}
    faults(portal, lose_rate=0.05)
    with handoff_server(tmp_path, portal) as server:
        with server.api("alice") as api, open(cases, "rb") as fh:
            receipt = api.post("/api/batches", params={"workflow": "change-of-address"}, files={"file": fh}).json()
        finished = server.wait_for_batch(receipt["batch_id"])
        assert finished["counts"]["done"] == 6 and finished["counts"]["business_exception"] == 2, finished
        with server.api("olga") as api:
            target = api.get("/api/operations").json()["target"]
            reconciled = api.get(f"/api/batches/{receipt['batch_id']}/reconciliation").json()
        assert (target["verified"], target["unverified"], target["verify_failed"]) == (6, 0, 2)
        assert target["completed"] == 6, "the target counts the verified cases, never the lost records"
        assert (reconciled["verified"], reconciled["unverified"], reconciled["verify_failed"]) == (6, 0, 2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, **launch_options())
            page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
            sign_in(page, server, "olga")
            page.goto(f"{server.url}/operations")
            expect(page.locator("#verified")).to_have_text("6")
            expect(page.get_by_text("A confirmation page alone does not count.")).to_be_visible()
            expect(page.locator("#unverified")).to_have_text("0")
            expect(page.locator("#verify-failed")).to_have_text("2")
            expect(page.get_by_text("read back missing or wrong, handed to a person")).to_be_visible()
            if os.environ.get("AUTOCLERK_UPDATE_SCREENSHOTS"):
                page.screenshot(path=str(ROOT / "docs" / "images" / "handoff" / "operations-verified.png"))
            browser.close()
