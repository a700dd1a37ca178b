"""The authors' tools from the command line: validate, schema, explain, and a custom step from an installed package."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import httpx

from demo_portal import PortalProcess, generate_cases
from tests.conftest import ROOT, autoclerk

EXAMPLES = ROOT / "workflows" / "examples"
DATA = ROOT / "tests" / "workflows" / "data"
NOTE_CASE = {"case_ref": "CASE-000201", "category": "visit", "text": "Rang", "received": "2026-03-05",
             "attachment": "report.pdf", "notify": "no", "topics": "refund;bank"}


def test_validate_prints_every_problem_of_every_file_on_its_own_line_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((DATA / "base.yaml").read_text().replace("  - goto: /permits", "  - gotoo: /permits", 1)
                   .replace("case.holder | upper", "case.holdr | upper"))
    shutil.copy(DATA / "part.yaml", tmp_path / "part.yaml")
    result = autoclerk("validate", str(EXAMPLES / "change_of_address.yaml"), str(bad))
    assert result.returncode == 2
    assert result.stdout.splitlines() == [f"{EXAMPLES / 'change_of_address.yaml'}: ok"]
    assert result.stderr.splitlines() == [f"{bad}:17:5: steps[1]: unknown step 'gotoo'; did you mean 'goto'?"]
    assert "Traceback" not in result.stderr
    good = autoclerk("validate", *map(str, sorted(EXAMPLES.glob("*.yaml"))))
    assert good.returncode == 0 and len(good.stdout.splitlines()) == 3


def test_a_call_to_a_missing_file_and_an_unknown_secret_are_one_line_each(tmp_path: Path) -> None:
    text = (DATA / "base.yaml").read_text().replace("workflow: part.yaml", "workflow: nowhere.yaml") \
        .replace('"{{ case.holder | upper }}"', '"{{ secrets.api_key }}"')
    (tmp_path / "wf.yaml").write_text(text)
    result = autoclerk("validate", str(tmp_path / "wf.yaml"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{tmp_path / 'wf.yaml'}:16:22: steps[0].call.workflow: cannot call nowhere.yaml: no workflow file nowhere.yaml next to this one",
        f"{tmp_path / 'wf.yaml'}:18:45: steps[2].fill.value: the template uses secrets.api_key, but the workflow declares no secret 'api_key'",
    ]


def test_the_checked_in_schema_matches_the_models_and_describes_every_step() -> None:
    result = autoclerk("schema", "--check", str(ROOT / "workflows" / "schema.json"))
    assert result.returncode == 0, result.stderr
    printed = json.loads(autoclerk("schema").stdout)
    step = printed["$defs"]["ClickStep"]["properties"]["click"]
    assert {"$ref": "#/$defs/Click"} in step["anyOf"]  # the full form, and the short form beside it
    assert {"FillStep", "ForEachStep", "CallStep", "RetryStep", "DialogStep"} <= set(printed["$defs"])


def test_a_drifted_schema_copy_is_reported(tmp_path: Path) -> None:
    stale = tmp_path / "schema.json"
    stale.write_text("{}\n")
    result = autoclerk("schema", "--check", str(stale))
    assert result.returncode == 1
    assert result.stderr.strip() == (f"autoclerk: error: {stale} differs from the models; "
                                     f"regenerate it with 'autoclerk schema > {stale}'")


def test_explain_resolves_templates_masks_secrets_and_decides_what_the_case_decides() -> None:
    result = autoclerk("explain", str(EXAMPLES / "add_case_note.yaml"), "--case", json.dumps(NOTE_CASE),
                       env={"AUTOCLERK_SECRET_PORTAL_PASSWORD": "canary-Pw-0042"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "canary-Pw-0042" not in out and "fill {label='Password'} ← '••••••'" in out
    assert "fill {label='Note'} ← '[LEEDS] 05.03.2026 Rang #REFUND #BANK'" in out
    assert "select label 'Home visit' in {label='Category'}" in out
    assert "if case.notify → no: else:" in out and "uncheck {label='Send the customer a copy'}" in out
    assert "click {test_id='save-note'} submit=True  [SUBMITS]" in out
    assert "upload report.pdf into #attachments" in out


def test_explain_takes_a_row_of_a_cases_file_and_rejects_a_bad_row_in_one_line(tmp_path: Path) -> None:
    cases = tmp_path / "cases.csv"
    generate_cases(cases, 3, invalid_rate=0.0)
    ok = autoclerk("explain", str(EXAMPLES / "change_of_address.yaml"), "--cases", str(cases), "--case", "2")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0] == "change-of-address v1, case CASE-000002"
    bad = autoclerk("explain", str(EXAMPLES / "change_of_address.yaml"), "--case", '{"case_ref": "nope"}')
    assert bad.returncode == 2
    assert bad.stderr.strip() == "autoclerk: error: --case: case_ref: must match the pattern ^CASE-[0-9]{6}$"
    notjson = autoclerk("explain", str(EXAMPLES / "change_of_address.yaml"), "--case", "{oops")
    assert notjson.returncode == 2 and notjson.stderr.count("\n") == 1


PLUGIN = '''
import datetime as dt
from workflows import CustomStep, Locator, StepArgs


class StampToday(StepArgs):
    """Type today's date into a field, in the format the field wants."""

    locator: Locator
    format: str = "%Y-%m-%d"


async def stamp_today(ctx, args):
    element = await ctx.element(args.locator, ctx.timeout(args))
    await element.fill(dt.date.today().strftime(args.format))


STAMP_TODAY = CustomStep(verb="stamp_today", args=StampToday, run=stamp_today)
'''


def install_plugin(folder: Path) -> dict[str, str]:
    """A package that provides a custom step through the entry point group, importable from ``folder``."""
    folder.mkdir()
    (folder / "ourteam_steps.py").write_text(PLUGIN)
    info = folder / "ourteam_steps-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ourteam-steps\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[autoclerk.steps]\nstamp_today = ourteam_steps:STAMP_TODAY\n")
    return {"PYTHONPATH": str(folder)}


def test_a_custom_step_from_an_installed_package_is_validated_described_and_run_in_chromium(
        chromium: str, portal: PortalProcess, tmp_path: Path) -> None:
    env = install_plugin(tmp_path / "site")
    text = (EXAMPLES / "change_of_address.yaml").read_text()
    old = '  - fill: {locator: "#effective_date", value: "{{ case.effective_date }}"}'
    assert old in text
    workflow = tmp_path / "custom.yaml"
    workflow.write_text(text.replace(old, '  - stamp_today: {locator: {label: Effective from}}'))
    shutil.copy(EXAMPLES / "sign_in.yaml", tmp_path / "sign_in.yaml")

    assert autoclerk("validate", str(workflow)).returncode == 2  # without the package: an unknown step
    typo = tmp_path / "typo.yaml"
    typo.write_text(workflow.read_text().replace("stamp_today: {locator", "stamp_today: {locater"))
    shutil.copy(EXAMPLES / "sign_in.yaml", tmp_path / "sign_in.yaml")
    checked = autoclerk("validate", str(workflow), str(typo), env=env)
    assert checked.stdout.splitlines() == [f"{workflow}: ok"]
    assert "stamp_today.locater: unknown field 'locater'; did you mean 'locator'?" in checked.stderr
    assert "StampTodayStep" in json.loads(autoclerk("schema", env=env).stdout)["$defs"]

    cases = tmp_path / "cases.csv"
    generate_cases(cases, 2, invalid_rate=0.0)
    run = autoclerk("run", str(workflow), "--cases", str(cases), "--ledger", f"sqlite:///{tmp_path / 'l.db'}",
                    "--system", f"portal={portal.url}", "--json", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    export = httpx.get(f"{portal.url}/api/export").json()
    assert [e["values"]["effective_date"] for e in export] == [dt.date.today().isoformat()] * 2


def test_a_broken_custom_step_package_is_one_clear_line(tmp_path: Path) -> None:
    env = install_plugin(tmp_path / "site")
    (tmp_path / "site" / "ourteam_steps.py").write_text("raise ImportError('boom')\n")
    result = autoclerk("validate", str(EXAMPLES / "change_of_address.yaml"), env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == ("autoclerk: error: custom step 'stamp_today' (ourteam_steps:STAMP_TODAY) "
                                     "cannot be imported: ImportError: boom")


def test_the_checked_in_reference_matches_the_models_and_covers_every_step() -> None:
    result = autoclerk("reference", "--check", str(ROOT / "docs" / "workflow-reference.md"))
    assert result.returncode == 0, result.stderr
    text = (ROOT / "docs" / "workflow-reference.md").read_text()
    from workflows.steps import BUILTIN_ARGS

    for verb in BUILTIN_ARGS:
        assert f"### `{verb}`" in text
    assert text.count("Example:") >= len(BUILTIN_ARGS)
