"""Self-healing locators in real Chromium against the demo portal's ``drift`` knob, with the real ledger
(SQLite) as the healing store: each release the knob simulates ends as the policy says, and an approved
heal's locator works on the next run without healing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bots import BotConfig, BotEngine, BotJob, BusinessException, StepTimeout
from bots.processes import browser_processes
from demo_portal import PortalProcess
from monitoring import REGISTRY
from orchestrator.ledger import Heals, Ledger
from orchestrator.queue import approve_heal
from tests.bots.test_engine import case
from tests.bots.test_resilience import wait_until
from tests.conftest import EXAMPLE
from workflows import LoadedWorkflow, SecretValues, load_workflow, parse_workflow

LOADED = load_workflow(EXAMPLE)
CITY, POSTCODE, SUBMIT, READ_BACK = "steps[7].fill", "steps[8].fill", "steps[15].click", "steps[16].extract"


def by_class() -> LoadedWorkflow:
    """The example, reading the confirmation reference by its class (what the ``changed_classes`` drift breaks)."""
    source = EXAMPLE.read_text(encoding="utf-8").replace('extract: {locator: "#confirmation-ref"',
                                                          'extract: {locator: "strong.reference"')
    return parse_workflow(source, str(EXAMPLE))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.close()


@pytest.fixture
def engine(chromium: str, portal: PortalProcess, tmp_path: Path, ledger: Ledger) -> Iterator[BotEngine]:
    bot = BotEngine(BotConfig(system_urls={"portal": portal.url}, chromium_path=chromium,
                              artifacts_dir=tmp_path / "artifacts", step_timeout_ms=2500, navigation_timeout_ms=5000,
                              transaction_budget_s=60.0), healing=ledger.heals)
    yield bot
    marker = bot.marker
    bot.close()
    wait_until(lambda: not browser_processes(marker), 10, "the engine's browser processes to end")


def run(engine: BotEngine, loaded: LoadedWorkflow, ref: str, effects: list[str] | None = None) -> dict[str, Any]:
    assert engine.healer is not None
    store = engine.healer.store
    assert isinstance(store, Heals)
    store_workflow(store, loaded)  # a hand-off keeps the version it runs in the ledger
    job = BotJob(loaded, loaded.definition.steps, case(ref), ref, 1, SecretValues())
    return engine.run(job, before_effect=lambda: (effects if effects is not None else []).append(ref)).output


def store_workflow(store: Heals, loaded: LoadedWorkflow) -> None:
    from orchestrator.ledger import WorkflowStore

    WorkflowStore(store.engine).save(loaded)


def drift(portal: PortalProcess, name: str) -> None:
    httpx.put(f"{portal.url}/api/faults", json={"drift": name}).raise_for_status()


def recorded(ledger: Ledger, loaded: LoadedWorkflow, *steps: str) -> None:
    """A clean run recorded the steps' fingerprints (written off the step's path, so waited for)."""
    wait_until(lambda: all(ledger.heals.fingerprint(loaded.digest, step) for step in steps), 10, "the fingerprints")


def submitted(portal: PortalProcess) -> list[dict[str, Any]]:
    return httpx.get(f"{portal.url}/api/export").json()  # type: ignore[no-any-return]


def heals_metric(step: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("autoclerk_locator_heals_total",
                                     {"workflow": "change-of-address", "step": step, "outcome": outcome}) or 0.0


def test_a_clean_run_records_each_steps_fingerprint_once_in_the_ledger(
        engine: BotEngine, portal: PortalProcess, ledger: Ledger) -> None:
    run(engine, LOADED, "CASE-009001")
    recorded(ledger, LOADED, CITY, SUBMIT, READ_BACK)
    city = ledger.heals.fingerprint(LOADED.digest, CITY)
    assert city is not None
    assert {k: city[k] for k in ("tag", "role", "name", "label", "id", "field", "form")} == {
        "tag": "input", "role": "textbox", "name": "Town or city", "label": "Town or city", "id": "city",
        "field": "city", "form": "change-form"}
    assert city["position"] == 2 and city["nearby"] == "Town or city"
    submit = ledger.heals.fingerprint(LOADED.digest, SUBMIT)
    assert submit is not None and (submit["role"], submit["name"], submit["id"]) == ("button", "Submit change", "submit-change")
    read_back = ledger.heals.fingerprint(LOADED.digest, READ_BACK)
    assert read_back is not None and read_back["name"] == ""  # the reference read is case data: never kept
    assert read_back["nearby"] == "Confirmation reference:"
    assert engine.healer is not None
    writes = ledger.heals.fingerprint_writes()
    run(engine, LOADED, "CASE-009002")  # the second success of each step reads no fingerprint
    assert ledger.heals.fingerprint_writes() == writes and ledger.heals.list() == []


def test_a_renamed_id_is_healed_on_its_own_for_a_field_with_no_secret_and_recorded(
        engine: BotEngine, portal: PortalProcess, ledger: Ledger) -> None:
    run(engine, LOADED, "CASE-009101")
    recorded(ledger, LOADED, CITY)
    before = heals_metric(CITY, "healed")
    drift(portal, "renamed_id")
    output = run(engine, LOADED, "CASE-009102")
    assert output["reference"] == submitted(portal)[-1]["confirmation"]
    assert submitted(portal)[-1]["values"]["city"] == "Leeds"
    [heal] = ledger.heals.list()
    assert (heal["step"], heal["outcome"], heal["old_locator"], heal["new_locator"], heal["case_ref"]) == (
        CITY, "healed", "#city", "#town", "CASE-009102")
    assert heal["score"] >= 0.6 and heal["score"] - heal["runner_up"] >= 0.15
    assert heal["fingerprint"]["id"] == "city" and heal["candidate"]["id"] == "town"
    assert heal["screenshot"] and Path(heal["screenshot"]).stat().st_size > 0
    assert heals_metric(CITY, "healed") == before + 1
    # The next case finds the healed element at once, and is recorded as healed too.
    run(engine, LOADED, "CASE-009103")
    assert [h["case_ref"] for h in ledger.heals.list()] == ["CASE-009103", "CASE-009102"]
    # Approved, the locator is a fallback of the step: the next run needs no heal.
    approval = approve_heal(ledger, heal["id"], "cli:lead", "the portal renamed the field", origin="cli")
    assert '-  - fill: {locator: "#city"' in approval.diff and '+  - fill: {locator: ["#city", "#town"]' in approval.diff
    run(engine, approval.workflow, "CASE-009104")
    assert len(ledger.heals.list()) == 2


def test_a_field_moved_in_the_form_with_a_new_id_is_healed(
        engine: BotEngine, portal: PortalProcess, ledger: Ledger) -> None:
    run(engine, LOADED, "CASE-009201")
    recorded(ledger, LOADED, POSTCODE)
    drift(portal, "moved_field")
    run(engine, LOADED, "CASE-009202")
    assert submitted(portal)[-1]["values"]["postcode"] == "LS1 4AB"
    [heal] = ledger.heals.list()
    assert (heal["step"], heal["outcome"], heal["new_locator"]) == (POSTCODE, "healed", "#post-code")
    assert heal["candidate"]["position"] == 0 and heal["fingerprint"]["position"] == 3
    approval = approve_heal(ledger, heal["id"], "cli:lead", "the postcode moved", origin="cli")
    run(engine, approval.workflow, "CASE-009203")
    assert len(ledger.heals.list()) == 1


def test_changed_classes_heal_a_reading_step_on_its_own(
        engine: BotEngine, portal: PortalProcess, ledger: Ledger) -> None:
    loaded = by_class()
    run(engine, loaded, "CASE-009301")
    recorded(ledger, loaded, READ_BACK)
    drift(portal, "changed_classes")
    output = run(engine, loaded, "CASE-009302")
    assert output["reference"] == submitted(portal)[-1]["confirmation"]
    [heal] = ledger.heals.list()
    assert (heal["step"], heal["verb"], heal["outcome"], heal["old_locator"], heal["new_locator"]) == (
        READ_BACK, "extract", "healed", "strong.reference", "#confirmation-ref")
    approval = approve_heal(ledger, heal["id"], "cli:lead", "new classes", origin="cli")
    assert approval.workflow.definition.version == loaded.definition.version + 1
    assert run(engine, approval.workflow, "CASE-009303")["reference"] == submitted(portal)[-1]["confirmation"]
    assert len(ledger.heals.list()) == 1


def test_a_relabelled_submit_button_goes_to_a_person_with_the_proposal_and_works_once_approved(
        engine: BotEngine, portal: PortalProcess, ledger: Ledger) -> None:
    run(engine, LOADED, "CASE-009401")
    recorded(ledger, LOADED, SUBMIT)
    drift(portal, "relabelled_submit")
    effects: list[str] = []
    with pytest.raises(BusinessException) as raised:
        run(engine, LOADED, "CASE-009402", effects)
    assert raised.value.code == "heal_needs_approval" and raised.value.step == SUBMIT
    assert effects == [] and len(submitted(portal)) == 1  # nothing was submitted, not even announced
    [heal] = ledger.heals.list()
    assert (heal["outcome"], heal["old_locator"], heal["new_locator"], heal["approved_at"]) == (
        "proposed", "#submit-change", "#send-change", None)
    assert heal["fingerprint"]["name"] == "Submit change" and heal["candidate"]["name"] == "Send change"
    assert f"approve heal {heal['id']}" in str(raised.value) and "#send-change" in str(raised.value)
    assert heal["screenshot"] in raised.value.evidence  # type: ignore[attr-defined]
    assert ledger.heals.waiting() == {"change-of-address": 1}
    # Still not clicked on its own by the next case either.
    with pytest.raises(BusinessException):
        run(engine, LOADED, "CASE-009403", effects)
    assert effects == [] and len(submitted(portal)) == 1
    approval = approve_heal(ledger, heal["id"], "cli:lead", "the button was renamed in release 4.3", origin="cli")
    assert ledger.heals.waiting() == {}
    assert ledger.workflows.published_digest("change-of-address") == approval.workflow.digest
    run(engine, approval.workflow, "CASE-009404", effects)
    assert effects == ["CASE-009404"] and len(submitted(portal)) == 2
    assert len(ledger.heals.list()) == 2  # the two proposals; the approved version needed no heal
    [entry] = ledger.audit.records(action="heal.approve")
    detail = entry["detail"] if isinstance(entry["detail"], dict) else json.loads(entry["detail"])
    assert (detail["heal"], detail["new_locator"], detail["number"]) == (heal["id"], "#send-change", approval.number)


def test_two_near_identical_candidates_heal_nothing(engine: BotEngine, portal: PortalProcess, ledger: Ledger) -> None:
    run(engine, LOADED, "CASE-009501")
    recorded(ledger, LOADED, CITY)
    before = heals_metric(CITY, "refused")
    drift(portal, "twin_fields")
    with pytest.raises(StepTimeout, match="not healed: two elements are alike") as raised:
        run(engine, LOADED, "CASE-009502")
    assert raised.value.step == CITY
    assert ledger.heals.list() == [] and len(submitted(portal)) == 1
    assert heals_metric(CITY, "refused") == before + 1


def test_a_removed_field_heals_nothing(engine: BotEngine, portal: PortalProcess, ledger: Ledger) -> None:
    run(engine, LOADED, "CASE-009601")
    recorded(ledger, LOADED, CITY)
    drift(portal, "removed_field")
    with pytest.raises(StepTimeout, match="not healed: no element on the page is like it"):
        run(engine, LOADED, "CASE-009602")
    assert ledger.heals.list() == [] and len(submitted(portal)) == 1


def test_a_step_whose_fingerprint_was_never_recorded_is_not_healed(
        engine: BotEngine, portal: PortalProcess, ledger: Ledger) -> None:
    drift(portal, "renamed_id")
    with pytest.raises(StepTimeout, match="not healed: no fingerprint of its element was recorded yet"):
        run(engine, LOADED, "CASE-009701")
    assert ledger.heals.list() == []


def test_a_fresh_worker_heals_from_the_fingerprint_another_worker_kept_in_the_ledger(
        engine: BotEngine, chromium: str, portal: PortalProcess, ledger: Ledger, tmp_path: Path) -> None:
    run(engine, LOADED, "CASE-009801")
    recorded(ledger, LOADED, CITY)
    other = BotEngine(BotConfig(system_urls={"portal": portal.url}, chromium_path=chromium, step_timeout_ms=2500),
                      healing=ledger.heals)
    try:
        drift(portal, "renamed_id")
        run(other, LOADED, "CASE-009802")
    finally:
        other.close()
    [heal] = ledger.heals.list()
    assert (heal["new_locator"], heal["screenshot"]) == ("#town", None)  # no artifacts folder: no screenshot
