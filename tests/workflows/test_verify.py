"""The ``verify:`` block: its two forms, its read-only rule reported at the file's line, and the sample
chosen by reference, the same on every run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, autoclerk
from tests.workflows.test_loader import BASE, DATA, problems_of
from workflows import Verify, load_workflow, parse_workflow

READ_BACK = '  - goto: /permits/{{ case.case_ref }}\n  - assert: {expr: "case.holder != \'\'", message: Missing}\n'


def test_a_plain_list_means_every_case_at_once() -> None:
    loaded = parse_workflow(BASE + "verify:\n" + READ_BACK, str(DATA / "wf.yaml"))
    verify = loaded.definition.verification
    assert verify is not None and (verify.sample, verify.delay_s, len(verify.steps)) == (1.0, 0, 2)
    assert loaded.definition.verify_label == "verify"
    assert verify.case_fields() == ["case_ref", "holder"]
    assert loaded.where("verify[1].assert") == f"{DATA}/wf.yaml:42"


def test_the_full_form_takes_a_sample_and_a_delay() -> None:
    text = BASE + "verify:\n  sample: 0.1\n  delay_s: 600\n  steps:\n" + "".join(
        "  " + line + "\n" for line in READ_BACK.splitlines())
    definition = parse_workflow(text, str(DATA / "wf.yaml")).definition
    verify = definition.verification
    assert verify is not None and (verify.sample, verify.delay_s) == (0.1, 600)
    assert definition.verify_label == "verify.steps"


@pytest.mark.parametrize(("block", "expected"), [
    ("verify:\n  - click: {locator: '#save', submit: true}\n",
     ["wf.yaml:41:12: verify[0].click: a verification only reads the record back: it may not hold a submitting step"]),
    ("verify:\n  steps:\n    - goto: /x\n    - press: {locator: '#q', key: Enter, submit: true}\n",
     ["wf.yaml:43:14: verify.steps[1].press: a verification only reads the record back: it may not hold a "
      "submitting step"]),
    ("verify:\n  sample: 0\n  steps:\n    - goto: /x\n", ["wf.yaml:41:11: verify.sample: input should be greater than 0"]),
    ("verify:\n  sample: 0.5\n  every: 2\n  steps:\n    - goto: /x\n",
     ["wf.yaml:42:3: verify.every: unknown field 'every'; expected one of delay_s, sample, steps"]),
])
def test_a_mistake_in_verify_is_one_line_naming_the_file_line_and_field(block: str, expected: list[str]) -> None:
    assert problems_of(BASE + block) == expected


def test_validate_refuses_a_submitting_step_in_verify_with_file_and_line(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace('  - wait_for: "#history"\n  - assert:',
                                       '  - wait_for: "#history"\n  - click: {locator: "#submit-change", submit: true}\n'
                                       '  - assert:', 1)
    (tmp_path / "sign_in.yaml").write_text((EXAMPLE.parent / "sign_in.yaml").read_text())
    path = tmp_path / "change_of_address.yaml"
    path.write_text(text)
    line = len(text.rsplit('  - click: {locator: "#submit-change", submit: true}', 1)[0].splitlines()) + 1
    assert line > 60
    result = autoclerk("validate", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"{path}:{line}:12: verify[3].click: a verification only reads the record back: it may not hold a submitting step"]


def test_the_sample_is_chosen_by_reference_the_same_every_time_and_about_the_share_asked() -> None:
    verify = Verify(sample=0.1, steps=load_workflow(EXAMPLE).definition.verification.steps)  # type: ignore[union-attr]
    refs = [f"CASE-{n:06d}" for n in range(1, 5001)]
    chosen = [ref for ref in refs if verify.samples(ref)]
    assert chosen == [ref for ref in refs if verify.samples(ref)]
    assert 400 < len(chosen) < 600
    assert all(Verify(sample=1, steps=verify.steps).samples(ref) for ref in refs[:50])


def test_the_demo_workflow_verifies_every_case_by_reading_it_back() -> None:
    definition = load_workflow(EXAMPLE).definition
    verify = definition.verification
    assert verify is not None and verify.sample == 1 and verify.delay_s == 0
    assert verify.case_fields() == ["case_ref", "address_line1", "city", "postcode"]

