"""Flow steps and page conditions in real Chromium against the demo portal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bots import ApplicationError, BotConfig, BotEngine, BotJob, BusinessException, StepTimeout
from demo_portal import PortalProcess
from monitoring import REGISTRY
from tests.conftest import ROOT
from workflows import SecretValues, check_case, parse_workflow

HEADER = """
name: flow-check
version: 1
systems: {portal: {business_error: ".error-summary"}}
input: {case_ref: {type: string}}
at_most_once: true
steps:
  - call: sign_in.yaml
"""


def run(engine: BotEngine, steps: str) -> dict:
    loaded = parse_workflow(HEADER + steps, "flow.yaml", base_dir=ROOT / "workflows" / "examples")
    case = check_case(loaded.definition.input, {"case_ref": "CASE-000301"}, 1)
    job = BotJob(loaded, loaded.definition.steps, case, "CASE-000301", 1, SecretValues())
    return engine.run(job, before_effect=lambda: None).output


@pytest.fixture
def engine(chromium: str, portal: PortalProcess, tmp_path: Path):  # type: ignore[no-untyped-def]
    bot = BotEngine(BotConfig(system_urls={"portal": portal.url}, chromium_path=chromium, artifacts_dir=tmp_path,
                              step_timeout_ms=3000))
    yield bot
    bot.close()


def test_page_conditions_choose_branches_and_waits_see_elements_go(engine: BotEngine) -> None:
    output = run(engine, """
  - goto: /cases/CASE-000301
  - if: {visible: "#no-history", then: [{set: {to: output.history, value: none}}], else: [{set: {to: output.history, value: some}}]}
  - if: {hidden: "#change-address", then: [{set: {to: output.link, value: hidden}}], else: [{set: {to: output.link, value: shown}}]}
  - if: {url: "*/cases/CASE-*", then: [{set: {to: output.on_case, expr: "true"}}]}
  - if: {text: "Change history", then: [{extract: {locator: "#holder", read: text, to: output.holder}}]}
  - extract: {locator: {role: link}, read: list, to: output.links}
  - goto: /cases/CASE-000301/address
  - fill: {locator: {label: Town or city}, value: Leeds}
  - extract: {locator: {label: Town or city}, read: value, to: output.city}
  - wait_for: {locator: "#no-such-thing", state: hidden}
""")
    assert output["history"] == "none" and output["link"] == "shown" and output["on_case"] is True
    assert output["holder"] and output["city"] == "Leeds"
    assert output["links"] == ["Change address", "Add a note"]


def test_a_failed_assert_on_the_page_is_a_business_exception_with_the_rendered_message(engine: BotEngine) -> None:
    with pytest.raises(BusinessException) as caught:
        run(engine, """
  - goto: /cases/CASE-000301
  - assert: {visible: {text: Closed, exact: true}, message: "{{ case.case_ref }} is not closed", code: still_open}
""")
    assert (str(caught.value), caught.value.code, caught.value.step) == ("CASE-000301 is not closed", "still_open",
                                                                         "steps[2].assert")


def test_a_retry_group_runs_again_after_a_technical_failure_and_then_gives_up(engine: BotEngine) -> None:
    def waits() -> float:
        return REGISTRY.get_sample_value("autoclerk_step_duration_seconds_count",
                                         {"workflow": "flow-check", "step_type": "wait_for"}) or 0.0

    before = waits()
    with pytest.raises(StepTimeout) as caught:
        run(engine, """
  - retry:
      attempts: 3
      delay_ms: 10
      steps:
        - wait_for: {locator: "#never-there", timeout_ms: 200}
""")
    assert caught.value.step == "steps[1].retry.steps[0].wait_for"
    assert waits() - before == 3  # three tries (the sign-in part's wait_for counts under its own workflow)


def test_a_loop_over_a_longer_list_than_allowed_is_handed_back(engine: BotEngine) -> None:
    with pytest.raises(BusinessException) as caught:
        run(engine, """
  - set: {to: vars.many, expr: "[1, 2, 3]"}
  - for_each: {items: vars.many, max_items: 2, steps: [{set: {to: vars.x, value: "{{ vars.item }}"}}]}
""")
    assert caught.value.code == "too_many_items"


PART = """
name: look-first
version: 1
part: true
systems: {portal: {}}
steps:
  - set: {to: output.first, value: one}
  - finish: {output: {second: two}}
  - set: {to: output.third, value: three}
"""


def test_finish_ends_the_case_done_with_its_outputs_and_in_a_part_only_the_part(
        engine: BotEngine, tmp_path: Path) -> None:
    examples = ROOT / "workflows" / "examples"
    (tmp_path / "sign_in.yaml").write_text((examples / "sign_in.yaml").read_text())
    (tmp_path / "look_first.yaml").write_text(PART)
    loaded = parse_workflow(HEADER + """
  - call: {workflow: look_first.yaml, to: vars.part}
  - set: {to: output.from_part, expr: "vars.part"}
  - for_each:
      items: "[1, 2, 3]"
      as: n
      steps:
        - retry:
            attempts: 2
            steps:
              - set: {to: output.seen, expr: "vars.n"}
              - if:
                  expr: "vars.n == 2"
                  then:
                    - finish: {reason: enough, output: {reference: "REF-{{ case.case_ref }}-{{ vars.n }}"}}
  - set: {to: output.after, value: "never"}
""", "flow.yaml", base_dir=tmp_path)
    case = check_case(loaded.definition.input, {"case_ref": "CASE-000301"}, 1)
    output = engine.run(BotJob(loaded, loaded.definition.steps, case, "CASE-000301", 1, SecretValues()),
                        before_effect=lambda: None).output
    assert output == {"from_part": {"first": "one", "second": "two"}, "seen": 2, "reference": "REF-CASE-000301-2"}


def test_a_wait_for_an_address_hands_the_case_back_as_soon_as_the_system_shows_its_message(engine: BotEngine) -> None:
    # The step may wait a minute; the portal refuses the postcode at once, and that is what the case gets.
    with pytest.raises(BusinessException) as caught:
        run(engine, f"""
  - goto: /cases/CASE-000301/address
  - fill: {{locator: "#address_line1", value: "1 High Street"}}
  - fill: {{locator: "#city", value: Leeds}}
  - fill: {{locator: "#postcode", value: "ZZ9 9XX"}}
  - select: {{locator: "#country", value: GB-ENG}}
  - check: "#contact-email"
  - fill: {{locator: "#effective_date", value: "{dt.date.today().isoformat()}"}}
  - check: "#consent"
  - click: "#submit-change"
  - wait_for: {{url: "*/confirmation*", timeout_ms: 120000}}
""")
    assert "Postcode not recognised" in str(caught.value) and caught.value.step == "steps[10].wait_for"
    assert not isinstance(caught.value.__context__, Exception), "handed back at once, not after the wait timed out"


def test_a_step_that_finds_nothing_names_the_value_it_looked_for_not_the_template(engine: BotEngine) -> None:
    with pytest.raises(StepTimeout) as caught:
        run(engine, """
  - goto: /cases/CASE-000301
  - click: {locator: [{role: option, name: "{{ case.case_ref }}-x"}, "#missing-{{ case.case_ref }}"], timeout_ms: 500}
""")
    assert str(caught.value) == ("no element matching {role='option', name='CASE-000301-x'} or #missing-CASE-000301 "
                                 "within 500 ms")


def test_evaluate_runs_the_workflows_function_in_the_page_with_the_case_as_arguments(engine: BotEngine) -> None:
    output = run(engine, """
  - goto: /cases/CASE-000301
  - evaluate:
      script: "(args) => document.querySelector('#holder').textContent.trim().length > 0 ? args.ref + '/seen' : null"
      args: {ref: "{{ case.case_ref }}"}
      to: output.seen
  - evaluate: {script: "async () => { await new Promise(r => setTimeout(r, 10)); return [1, 2]; }", to: vars.pair}
  - set: {to: output.pair, expr: "vars.pair"}
""")
    assert output == {"seen": "CASE-000301/seen", "pair": [1, 2]}
    with pytest.raises(ApplicationError) as caught:
        run(engine, """
  - goto: /cases/CASE-000301
  - evaluate: "() => { throw new Error('the widget is not ready') }"
""")
    assert "the script failed in the page" in str(caught.value) and "the widget is not ready" in str(caught.value)
    assert caught.value.step == "steps[2].evaluate"


def test_a_condition_is_checked_once_unless_within_ms_lets_it_wait(engine: BotEngine) -> None:
    late = ("() => { setTimeout(() => { const e = document.createElement('p'); e.id = 'late'; e.textContent = 'here';"
            " document.body.append(e); }, 2000); }")
    output = run(engine, f"""
  - goto: /cases/CASE-000301
  - evaluate: "{late}"
  - if: {{visible: "#late", then: [{{set: {{to: output.at_once, value: "yes"}}}}], else: [{{set: {{to: output.at_once, value: "no"}}}}]}}
  - if: {{visible: "#late", within_ms: 10000, then: [{{set: {{to: output.waited, value: "yes"}}}}]}}
  - evaluate: "() => document.querySelector('#late').remove()"
  - if: {{hidden: "#late", within_ms: 10000, then: [{{set: {{to: output.gone, value: "yes"}}}}]}}
""")
    assert output == {"at_once": "no", "waited": "yes", "gone": "yes"}


def test_the_pages_own_script_errors_are_kept_with_the_evidence_and_named_when_a_step_then_times_out(
        engine: BotEngine, tmp_path: Path) -> None:
    with pytest.raises(StepTimeout) as caught:
        run(engine, """
  - goto: /cases/CASE-000301
  - evaluate: "() => { setTimeout(() => { console.error('lookup service said 500'); undefinedWidget.open(); }, 0); }"
  - wait_for: {text: "Widget ready", timeout_ms: 1500}
""")
    message = str(caught.value)
    assert message.startswith("the text 'Widget ready' did not show within 1500 ms; the page's own script failed "
                              "before it (steps[3].wait_for: script error: ")
    assert "undefinedWidget is not defined" in message
    errors = next(Path(p) for p in caught.value.evidence if p.endswith("page-errors.txt"))  # type: ignore[attr-defined]
    kept = errors.read_text()
    assert "console error: lookup service said 500" in kept and "undefinedWidget is not defined" in kept
