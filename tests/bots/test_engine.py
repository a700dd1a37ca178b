"""The bot engine in real Chromium against the demo portal: done, handed back, and a 5xx classified."""

from __future__ import annotations

import datetime as dt

from pathlib import Path

import httpx
import pytest

from bots import BotConfig, BotEngine, BotJob, BusinessException, TargetServerError
from demo_portal import PortalProcess
from tests.conftest import EXAMPLE
from workflows import SecretValues, check_case, load_workflow

LOADED = load_workflow(EXAMPLE)
WORKFLOW = LOADED.definition


def case(ref: str, **overrides: str) -> dict:
    row = {"case_ref": ref, "address_line1": "1 High Street", "city": "Leeds", "postcode": "LS1 4AB",
           "country": "GB-SCT", "contact_method": "phone", "effective_date": dt.date.today().isoformat(),
           "notes": "moved", **overrides}
    return check_case(WORKFLOW.input, row, 1)


@pytest.fixture
def engine(chromium: str, portal: PortalProcess, tmp_path):  # type: ignore[no-untyped-def]
    bot = BotEngine(BotConfig(system_urls={"portal": portal.url}, chromium_path=chromium, artifacts_dir=tmp_path,
                              step_timeout_ms=5000))
    yield bot
    bot.close()


def job(c: dict, steps: str = "steps") -> BotJob:
    return BotJob(LOADED, getattr(WORKFLOW, steps), c, c["case_ref"], 1, SecretValues(), label=steps)


def test_a_valid_case_is_submitted_once_with_every_field_and_its_reference_read_back(
        engine: BotEngine, portal: PortalProcess) -> None:
    effects: list[str] = []
    result = engine.run(job(case("CASE-000101")), before_effect=lambda: effects.append("submit"))
    export = httpx.get(f"{portal.url}/api/export").json()
    assert effects == ["submit"]
    assert result.output == {"reference": export[0]["confirmation"]}
    assert export[0]["values"] | {"consent": "yes"} == export[0]["values"]
    assert export[0]["values"]["country"] == "GB-SCT" and export[0]["values"]["contact_method"] == "phone"
    assert export[0]["your_ref"] == "CASE-000101"
    found = engine.run(job(case("CASE-000101"), "lookup"), before_effect=lambda: None)
    assert found.output == {"reference": export[0]["confirmation"]}


def test_the_portals_validation_message_hands_the_case_back_with_evidence(engine: BotEngine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BusinessException, match="Postcode not recognised in the address directory") as caught:
        engine.run(job(case("CASE-000102", postcode="ZZ9 9XX")), before_effect=lambda: None)
    evidence = caught.value.evidence  # type: ignore[attr-defined]
    assert any(p.endswith(".png") for p in evidence)
    html = next(p for p in evidence if p.endswith(".html"))
    assert "demo-password" not in Path(html).read_text()


def test_a_5xx_answer_is_an_application_error(engine: BotEngine, portal: PortalProcess) -> None:
    httpx.put(f"{portal.url}/api/faults", json={"error_rate": 1.0})
    with pytest.raises(TargetServerError, match="answered 503"):
        engine.run(job(case("CASE-000103")), before_effect=lambda: None)


def test_a_lookup_finds_nothing_for_a_case_never_submitted(engine: BotEngine) -> None:
    assert engine.run(job(case("CASE-000104"), "lookup"), before_effect=lambda: None).output == {}


def test_every_log_line_of_a_transaction_names_its_batch_workflow_case_attempt_and_step(engine: BotEngine) -> None:
    import io
    import json

    import structlog

    from monitoring import configure_logging

    stream = io.StringIO()
    configure_logging(json=True, level="INFO", stream=stream)
    structlog.contextvars.bind_contextvars(batch="b-77", workflow="change-of-address", case_ref="CASE-000105", attempt=2)
    try:
        engine.run(job(case("CASE-000105")), before_effect=lambda: None)
    finally:
        structlog.contextvars.clear_contextvars()
        configure_logging(level="WARNING")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    signed_in = next(line for line in lines if line["event"] == "signed in")
    assert {k: signed_in[k] for k in ("batch", "workflow", "case_ref", "attempt")} == {
        "batch": "b-77", "workflow": "change-of-address", "case_ref": "CASE-000105", "attempt": 2}
    assert signed_in["step"].startswith("steps[0].call")  # the sign-in part, called from the first step
