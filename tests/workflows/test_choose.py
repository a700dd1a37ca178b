"""``choose`` in the language: what ``explain`` says it would do (secrets masked), and what ``validate`` refuses."""

from __future__ import annotations

import textwrap

import pytest

from workflows import FIELD_MASK, WorkflowFileError, check_case, parse_workflow
from workflows.explain import explain

WORKFLOW = textwrap.dedent("""\
    name: pick-claimant
    version: 1
    systems: {admin: {}}
    secrets: [office_code]
    input:
      case_ref: {type: string}
      surname: {type: string}
      claimant: {type: string}
      nino: {type: string, secret: true}
    at_most_once: true
    steps:
      - choose: {locator: {label: Claimant}, text: "{{ case.surname }}", option: "{{ case.claimant }}"}
      - choose: {role: combobox, name: Country, text: Fra, option: France, exact: true}
      - choose: {locator: "#office", text: "{{ case.surname | upper }}"}
      - choose: {label: National Insurance number, text: "{{ case.nino[:4] }}", option: "{{ case.nino }}"}
      - choose: {label: Office, text: "{{ secrets.office_code }}"}
""")


def test_explain_says_what_choose_types_and_picks_with_secrets_masked() -> None:
    loaded = parse_workflow(WORKFLOW, "pick.yaml")
    case = check_case(loaded.definition.input, {"case_ref": "C-1", "surname": "Smith", "claimant": "Jane Smith",
                                                "nino": "QQ123456C"}, 1)
    mask = repr(FIELD_MASK)
    assert explain(loaded, case)[1:] == [
        "  1     choose 'Jane Smith' in {label='Claimant'} (type 'Smith')",
        "  2     choose exactly 'France' in {role='combobox', name='Country'} (type 'Fra')",
        "  3     choose 'SMITH' in #office",
        f"  4     choose {mask} in {{label='National Insurance number'}} (type {mask})",
        f"  5     choose {mask} in {{label='Office'}}",
    ]


@pytest.mark.parametrize(("step", "problem"), [
    ('choose: {label: Claimant}', "steps[0].choose.text: missing required field 'text'"),
    ('choose: {label: Claimant, txt: Jane}', "steps[0].choose.txt: unknown field 'txt'; did you mean 'text'?"),
    ('choose: {label: Claimant, text: Jane, option: "{{ case.claimnt }}"}',
     "steps[0].choose.option: the template uses case.claimnt, but the input schema has no field 'claimnt'"),
    ('choose: Claimant', "steps[0].choose: input should be a valid dictionary or instance of choose"),
])
def test_validate_refuses_a_choose_step_without_what_it_needs(step: str, problem: str) -> None:
    text = WORKFLOW.split("steps:\n")[0] + f"steps:\n  - {step}\n"
    with pytest.raises(WorkflowFileError) as caught:
        parse_workflow(text, "pick.yaml")
    assert [str(p).split(": ", 1)[1] for p in caught.value.problems] == [problem]
