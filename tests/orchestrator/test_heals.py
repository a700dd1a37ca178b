"""Heals in the ledger (both backends), their approval as a new published version, and ``autoclerk heals``
run as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bots import Heal
from orchestrator import Ledger, Runtime, load_settings
from orchestrator.errors import LedgerError
from orchestrator.queue import approve_heal
from tests.conftest import EXAMPLE, ROOT
from workflows import WorkflowFileError, add_fallback, load_workflow

LOADED = load_workflow(EXAMPLE)
SUBMIT = "steps[15].click"


def proposal(case_ref: str = "CASE-000001", **changes: object) -> Heal:
    values: dict[str, object] = dict(
        workflow="change-of-address", digest=LOADED.digest, step=SUBMIT, verb="click", case_ref=case_ref, attempt=1,
        outcome="proposed", old_locator="#submit-change", new_locator="#send-change", score=0.67, runner_up=0.09,
        fingerprint={"tag": "button", "name": "Submit change"}, candidate={"tag": "button", "name": "Send change"},
        screenshot="/tmp/heal-1.png")
    values.update(changes)
    return Heal(**values)  # type: ignore[arg-type]


def test_fingerprints_are_kept_once_per_version_and_step_and_refreshed_in_place(ledger: Ledger) -> None:
    assert ledger.heals.fingerprint(LOADED.digest, SUBMIT) is None
    ledger.heals.record_fingerprint("change-of-address", LOADED.digest, SUBMIT, {"tag": "button", "id": "a"})
    ledger.heals.record_fingerprint("change-of-address", LOADED.digest, SUBMIT, {"tag": "button", "id": "b"})
    ledger.heals.record_fingerprint("change-of-address", "other-digest", SUBMIT, {"tag": "button", "id": "c"})
    assert ledger.heals.fingerprint(LOADED.digest, SUBMIT) == {"tag": "button", "id": "b"}
    assert len(ledger.heals.fingerprint_writes()) == 2


def test_heals_are_listed_newest_first_and_proposals_wait_once_per_step_and_locator(ledger: Ledger) -> None:
    first = ledger.heals.record_heal(proposal("CASE-000001"))
    second = ledger.heals.record_heal(proposal("CASE-000002"))
    ledger.heals.record_heal(proposal("CASE-000003", outcome="healed", step="steps[7].fill", verb="fill",
                                      old_locator="#city", new_locator="#town"))
    ledger.heals.record_heal(proposal("CASE-000004", workflow="add-case-note"))
    assert [h["case_ref"] for h in ledger.heals.list("change-of-address")] == ["CASE-000003", "CASE-000002", "CASE-000001"]
    assert ledger.heals.get(first)["fingerprint"] == {"tag": "button", "name": "Submit change"}
    assert second > first
    assert ledger.heals.waiting() == {"change-of-address": 1, "add-case-note": 1}
    with pytest.raises(LedgerError, match="there is no heal 999"):
        ledger.heals.get(999)


def test_approving_a_heal_publishes_the_locator_as_a_fallback_audited_and_answers_every_case_that_proposed_it(
        ledger: Ledger) -> None:
    ledger.workflows.publish(LOADED, "cli:author", str(EXAMPLE))
    heal_id = ledger.heals.record_heal(proposal("CASE-000001"))
    ledger.heals.record_heal(proposal("CASE-000002"))
    with pytest.raises(LedgerError, match="needs a reason"):
        approve_heal(ledger, heal_id, "cli:lead", "  ", origin="cli")
    approval = approve_heal(ledger, heal_id, "cli:lead", "release 4.3 renamed the button", origin="cli")
    assert approval.number == 2 and approval.workflow.definition.version == LOADED.definition.version + 1
    assert ledger.workflows.published_digest("change-of-address") == approval.workflow.digest
    step = approval.workflow.definition.steps[15]
    assert [getattr(a, "css", a) for a in step.args.locator] == ["#submit-change", "#send-change"]  # type: ignore[union-attr]
    assert '+  - click: {locator: ["#submit-change", "#send-change"], submit: true}' in approval.diff
    assert "+version: 2" in approval.diff
    assert approval.workflow.calls.keys() == LOADED.calls.keys()  # the part it calls goes with it
    assert ledger.heals.waiting() == {}
    assert {h["publish_number"] for h in ledger.heals.list()} == {2}
    [record] = ledger.audit.records(action="heal.approve")
    assert record["actor"] == "lead"
    with pytest.raises(LedgerError, match="approved already by lead"):
        approve_heal(ledger, heal_id, "cli:lead", "again", origin="cli")


def test_add_fallback_changes_only_the_locator_and_the_version_of_the_authors_text() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    edited = add_fallback(text, "steps[2].click", "#find")
    changed = [(a, b) for a, b in zip(text.splitlines(), edited.splitlines()) if a != b]
    assert changed == [("version: 1", "version: 2"), ('  - click: "#search"', '  - click: ["#search", "#find"]')]
    listed = add_fallback(text, "steps[1].fill", "#ref")
    assert '  - fill: {locator: ["#search-ref", {label: Case reference}, "#ref"], value: "{{ case.case_ref }}"}' in listed
    block = "name: x\nversion: 3\nsteps:\n  - fill:\n      locator:\n        - '#a'\n        - '#b'\n      value: v\n"
    assert add_fallback(block, "steps[0].fill", "#c") == block.replace("version: 3", "version: 4").replace(
        "        - '#b'\n", "        - '#b'\n        - \"#c\"\n")
    with pytest.raises(WorkflowFileError, match="called part"):
        add_fallback(text, "steps[0].call>sign_in.yaml[4].wait_for", "#x")
    with pytest.raises(WorkflowFileError, match="no such step"):
        add_fallback(text, "steps[99].click", "#x")


def autoclerk(*args: str, ledger_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTOCLERK_LEDGER_URL": ledger_url}
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=ROOT)


def test_heals_list_and_approve_on_the_command_line_write_the_authors_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger(url)
    try:
        ledger.workflows.publish(LOADED, "cli:author", str(EXAMPLE))
        heal_id = ledger.heals.record_heal(proposal())
        ledger.heals.record_heal(proposal(workflow="add-case-note"))
    finally:
        ledger.close()
    listed = autoclerk("heals", "list", "--workflow", "change-of-address", "--json", ledger_url=url)
    assert listed.returncode == 0, listed.stderr
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["id"], row["step"], row["old_locator"], row["new_locator"], row["outcome"]) == (
        heal_id, SUBMIT, "#submit-change", "#send-change", "proposed")
    assert "waiting for approval" in autoclerk("heals", "list", ledger_url=url).stdout
    folder = tmp_path / "flows"
    folder.mkdir()
    for name in ("change_of_address.yaml", "sign_in.yaml"):
        (folder / name).write_text((EXAMPLE.parent / name).read_text(encoding="utf-8"), encoding="utf-8")
    authors = folder / "change_of_address.yaml"
    missing = autoclerk("heals", "approve", str(heal_id), ledger_url=url)
    assert missing.returncode != 0 and "--reason" in missing.stderr
    unknown = autoclerk("heals", "approve", "77", "--reason", "x", ledger_url=url)
    assert unknown.returncode != 0 and unknown.stderr.strip().splitlines() == [
        "autoclerk: error: there is no heal 77 (see 'autoclerk heals list')"]
    approved = autoclerk("heals", "approve", str(heal_id), "--reason", "renamed in 4.3", "--write", str(authors),
                         ledger_url=url)
    assert approved.returncode == 0, approved.stderr
    assert '+  - click: {locator: ["#submit-change", "#send-change"], submit: true}' in approved.stdout
    assert f"approved heal {heal_id}: published change-of-address version 2 as publish 2" in approved.stdout
    written = authors.read_text(encoding="utf-8")
    assert written.startswith("# Change of address: the procedure")  # the author's comments stay
    assert load_workflow(authors).definition.version == 2
    reopened = Ledger(url)
    try:
        assert reopened.workflows.load_published("change-of-address").source == written  # type: ignore[union-attr]
        assert reopened.heals.get(heal_id)["reason"] == "renamed in 4.3"
    finally:
        reopened.close()


@pytest.mark.parametrize("healing", [True, False])
def test_a_workers_engine_keeps_fingerprints_and_heals_in_its_ledger_unless_healing_is_off(
        tmp_path: Path, chromium: str, healing: bool) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    runtime = Runtime(load_settings(ledger_url=ledger.url, chromium_path=chromium, healing=healing,
                                    fingerprint_refresh_every=50), ledger)
    try:
        engine = runtime.engine
        assert engine.config.fingerprint_refresh_every == 50  # type: ignore[union-attr]
        healer = engine.healer  # type: ignore[union-attr]
        assert (healer.store is ledger.heals) if healing else healer is None
    finally:
        runtime.close()
        ledger.close()
