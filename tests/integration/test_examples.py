"""The example workflows in real Chromium against the demo portal: together they use every step type."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest

from bots import BotConfig, BotEngine, BotJob, BusinessException
from demo_portal import PortalProcess
from tests.conftest import ROOT
from workflows import STEP_MODELS, SecretValues, check_case, load_workflow
from workflows.steps import BUILTIN_ARGS

EXAMPLES = ROOT / "workflows" / "examples"
NOTE = load_workflow(EXAMPLES / "add_case_note.yaml")
ADDRESS = load_workflow(EXAMPLES / "change_of_address.yaml")


def verbs_of(loaded) -> set[str]:  # type: ignore[no-untyped-def]
    used = {step.verb for _, step in loaded.definition.all_steps()}
    for called in loaded.calls.values():
        used |= verbs_of(called)
    return used


def test_the_example_workflows_together_use_every_built_in_step_type() -> None:
    assert verbs_of(NOTE) | verbs_of(ADDRESS) == set(BUILTIN_ARGS)
    assert set(BUILTIN_ARGS) <= set(STEP_MODELS)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "visit-report.pdf").write_bytes(b"%PDF-1.4 visit report\n" * 40)
    return folder


@pytest.fixture
def engine(chromium: str, portal: PortalProcess, tmp_path: Path, files: Path):  # type: ignore[no-untyped-def]
    bot = BotEngine(BotConfig(system_urls={"portal": portal.url}, chromium_path=chromium,
                              artifacts_dir=tmp_path / "artifacts", files_dir=files, step_timeout_ms=5000))
    yield bot
    bot.close()


def note_case(ref: str, **overrides: object) -> dict:
    row = {"case_ref": ref, "category": "phone", "text": "Customer rang about the refund", "received": "2026-03-05",
           "attachment": "", "notify": "no", "topics": "refund;bank details", **overrides}
    return check_case(NOTE.definition.input, row, 1)


def run(engine: BotEngine, case: dict, steps: str = "steps"):  # type: ignore[no-untyped-def]
    effects: list[str] = []
    result = engine.run(BotJob(NOTE, getattr(NOTE.definition, steps), case, case["case_ref"], 1, SecretValues(),
                               label=steps), before_effect=lambda: effects.append("submit"))
    return result, effects


def test_a_note_is_saved_with_formatted_text_topics_and_the_attachment_then_read_back(
        engine: BotEngine, portal: PortalProcess) -> None:
    result, effects = run(engine, note_case("CASE-000201", category="visit", attachment="visit-report.pdf",
                                            notify="yes"))
    notes = httpx.get(f"{portal.url}/api/notes").json()
    assert effects == ["submit"]
    assert [n["reference"] for n in notes] == [result.output["reference"]]
    note = notes[0]
    assert note["text"] == "[LEEDS] 05.03.2026 Customer rang about the refund #REFUND #BANK DETAILS"
    assert note["category"] == "visit" and note["notify_customer"] is True and note["your_ref"] == "CASE-000201"
    assert [a["name"] for a in note["attachments"]] == ["visit-report.pdf"]
    assert result.output["notes_on_case"] == 1
    assert any(path.endswith("before-save.png") and Path(path).stat().st_size > 0 for path in result.artifacts)
    found, effects = run(engine, note_case("CASE-000201"), "lookup")
    assert found.output == {"reference": result.output["reference"]} and effects == []


def test_the_else_branch_unticks_the_copy_and_an_env_value_changes_the_header(
        engine: BotEngine, portal: PortalProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOCLERK_ENV_OFFICE", "york")
    run(engine, note_case("CASE-000202", topics=""))
    note = httpx.get(f"{portal.url}/api/notes").json()[0]
    assert note["notify_customer"] is False
    assert note["text"] == "[york] 05.03.2026 Customer rang about the refund"


def test_a_closed_case_fails_its_assert_and_goes_back_to_a_person_without_submitting(
        engine: BotEngine, portal: PortalProcess) -> None:
    with pytest.raises(BusinessException) as caught:
        run(engine, note_case("CASE-000017"))
    assert caught.value.code == "case_closed"
    assert str(caught.value) == "The case is closed in CMS; notes cannot be added"
    assert caught.value.step == "steps[7].assert"
    assert httpx.get(f"{portal.url}/api/notes").json() == []


def test_a_visit_without_its_report_is_failed_on_purpose_with_the_workflows_code(
        engine: BotEngine, portal: PortalProcess) -> None:
    with pytest.raises(BusinessException) as caught:
        run(engine, note_case("CASE-000203", category="visit"))
    assert caught.value.code == "report_missing"
    assert caught.value.step == "steps[8].if.then[0].fail"
    assert httpx.get(f"{portal.url}/api/notes").json() == []


def test_an_attachment_outside_the_files_folder_is_refused_before_anything_is_sent(
        engine: BotEngine, portal: PortalProcess, files: Path) -> None:
    (files.parent / "secret.txt").write_text("not for the portal")
    case = note_case("CASE-000206") | {"attachment": "../secret.txt"}  # bypasses the schema on purpose
    with pytest.raises(BusinessException) as caught:
        run(engine, case)
    assert caught.value.code == "file_outside_folder"
    assert httpx.get(f"{portal.url}/api/notes").json() == []


def test_the_change_of_address_runs_through_the_shared_sign_in_part(engine: BotEngine, portal: PortalProcess) -> None:
    row = {"case_ref": "CASE-000207", "address_line1": "1 High Street", "city": "Leeds", "postcode": "LS1 4AB",
           "country": "GB-ENG", "contact_method": "email", "effective_date": dt.date.today().isoformat()}
    case = check_case(ADDRESS.definition.input, row, 1)
    result = engine.run(BotJob(ADDRESS, ADDRESS.definition.steps, case, "CASE-000207", 1, SecretValues()),
                        before_effect=lambda: None)
    export = httpx.get(f"{portal.url}/api/export").json()
    assert result.output == {"reference": export[0]["confirmation"]}


def test_a_case_already_noted_finishes_early_with_that_note_and_submits_nothing(
        engine: BotEngine, portal: PortalProcess) -> None:
    first, effects = run(engine, note_case("CASE-000208"))
    assert effects == ["submit"]
    again, effects = run(engine, note_case("CASE-000208"))  # as a new ledger would: the steps, not the lookup
    assert effects == [] and again.output == {"reference": first.output["reference"]}
    assert len(httpx.get(f"{portal.url}/api/notes").json()) == 1


def test_a_follow_up_is_picked_from_the_type_and_pick_field_by_part_of_a_name(
        engine: BotEngine, portal: PortalProcess) -> None:
    run(engine, note_case("CASE-000209", follow_up="okaf"))
    assert httpx.get(f"{portal.url}/api/notes").json()[0]["follow_up"] == "Tom Okafor"
    with pytest.raises(BusinessException) as caught:
        run(engine, note_case("CASE-000210", follow_up="Nobody Here"))
    assert caught.value.code == "no_such_option" and httpx.get(f"{portal.url}/api/notes").json()[1:] == []
