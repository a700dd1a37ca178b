"""The loader turns every mistake into located, one-line problems: a table of 45 distinct mistakes.

Each row changes one thing in ``data/base.yaml`` (a valid workflow that calls ``data/part.yaml``) and
asserts the exact problems: file, line, column, step path and message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLE
from workflows import WorkflowFileError, load_workflow, parse_workflow

DATA = Path(__file__).parent / "data"
BASE = (DATA / "base.yaml").read_text()

MISTAKES = [
    ('  - goto: /permits',
     '  - gotoo: /permits',
     ["wf.yaml:17:5: steps[1]: unknown step 'gotoo'; did you mean 'goto'?"]),
    ('value: "{{ case.holder | upper }}"',
     'valu: "{{ case.holder | upper }}"',
     ["wf.yaml:18:38: steps[2].fill.valu: unknown field 'valu'; did you mean 'value'?"]),
    ('case.holder | upper',
     'case.holdr | upper',
     ["wf.yaml:18:45: steps[2].fill.value: the template uses case.holdr, but the input schema has no field 'holdr'"]),
    ('max_attempts: 3',
     'max_attempts: three',
     ['wf.yaml:14:15: max_attempts: input should be a valid integer, unable to parse string as an integer']),
    ('version: 2',
     'version: 2\nversion: 3',
     ["wf.yaml:3:1: version: duplicate key 'version' (it already appears above)"]),
    ('{{ case.holder | upper }}',
     '{{ case.__class__ }}',
     ["wf.yaml:18:45: steps[2].fill.value: access to '__class__' is not allowed in templates (names starting with _ are private)"]),
    ('select: {locator: "#kind", label: "{{ case.kind }}"}',
     'select: {locator: "#kind"}',
     ["wf.yaml:19:13: steps[3].select: give exactly one of 'value' or 'label'"]),
    ('holder: {type: string,',
     'holder: {typo: string,',
     ["wf.yaml:10:12: input.holder.typo: unknown field 'typo'; did you mean 'type'?"]),
    ('lookup:',
     'lookupp:',
     ["wf.yaml:37:1: lookupp: unknown field 'lookupp'; did you mean 'lookup'?"]),
    ('name: renew-permit',
     'name: Renew Permit',
     ['wf.yaml:1:7: name: must match ^[a-z][a-z0-9_-]{0,62}$']),
    ('version: 2',
     'version: 0',
     ['wf.yaml:2:10: version: input should be greater than or equal to 1']),
    ('kind: {type: enum, values: [car, van]}',
     'kind: {type: enum}',
     ["wf.yaml:12:9: input.kind: an enum field needs 'values'"]),
    ('{type: date}',
     '{type: datetime}',
     ['wf.yaml:11:19: input.expires.type: must be one of string, integer, decimal, date, boolean, enum or list']),
    ('{{ case.holder | upper }}',
     '{{ case.holder | shout }}',
     ["wf.yaml:18:45: steps[2].fill.value: unknown filter 'shout'"]),
    ('{{ case.holder | upper }}',
     '{{ case.holder | upper }',
     ["wf.yaml:18:45: steps[2].fill.value: template syntax error: unexpected '}'"]),
    ('{{ env.office }}',
     '{{ env.region }}',
     ["wf.yaml:16:46: steps[0].call.with.user: the template uses env.region, but the workflow declares no env value 'region'"]),
    ('"{{ case.holder | upper }}"',
     '"{{ secrets.api_key }}"',
     ["wf.yaml:18:45: steps[2].fill.value: the template uses secrets.api_key, but the workflow declares no secret 'api_key'"]),
    ('workflow: part.yaml',
     'workflow: missing.yaml',
     ['wf.yaml:16:22: steps[0].call.workflow: cannot call missing.yaml: no workflow file missing.yaml next to this one']),
    ('with: {user:',
     'with: {usr:',
     ["wf.yaml:16:11: steps[0].call: part.yaml needs the argument 'user' in 'with'", "wf.yaml:16:40: steps[0].call.with.usr: part.yaml has no input field 'usr'; did you mean 'user'?"]),
    ('with: {user: "{{ env.office }}"}',
     'with: {}',
     ["wf.yaml:16:11: steps[0].call: part.yaml needs the argument 'user' in 'with'"]),
    ('expr: "case.kind == \'van\'"',
     'expr: "case.kind =="',
     ["wf.yaml:21:13: steps[4].if.expr: expression syntax error: unexpected 'end of template'"]),
    ('expr: "case.kind == \'van\'"',
     'expr: "{{ case.kind }}"',
     ['wf.yaml:21:13: steps[4].if.expr: an expression is written without {{ }} (e.g. case.amount > 100)']),
    ('as: extra',
     'as: 2extra',
     ['wf.yaml:28:11: steps[5].for_each.as: must match ^[A-Za-z][A-Za-z0-9_]*$']),
    ('attempts: 2',
     'attempts: 1',
     ['wf.yaml:32:17: steps[6].retry.attempts: input should be greater than or equal to 2']),
    ('- wait_for: {text: Ready}',
     '- click: {locator: "#go", submit: true}',
     ['wf.yaml:34:18: steps[6].retry.steps[0].click: a retry group may not hold a submitting step: a submit is never repeated blindly']),
    ('  - extract: {locator: "#ref", to: output.reference, optional: true}',
     '  - click: {locator: "#x", submit: true}',
     ['wf.yaml:39:12: lookup[1].click: a lookup only looks: it may not hold a submitting step']),
    ('  - goto: /permits/{{ case.case_ref }}',
     '  - goto: "javascript:document.forms[0].submit()"',
     ["wf.yaml:17:11: steps[1].goto.url: a goto opens a page of a target system, not a 'javascript:' address; "
      "to run a script in the page, use evaluate"]),
    ('  - goto: /permits',
     '  - screenshot: verify-after\n  - goto: /permits',
     ["wf.yaml:17:17: steps[1].screenshot.name: 'verify-after' is the name of a screenshot the bot takes itself; "
      "give this one another name"]),
    ('  - goto: /permits',
     '  - evaluate: "() => \'{{ case.case_ref }}\'"\n  - goto: /permits',
     ['wf.yaml:17:15: steps[1].evaluate.script: the script may not hold a template: pass case values in \'args\' and '
      "read them from the function's argument"]),
    ('lookup:\n  - goto: /permits/{{ case.case_ref }}\n  - extract: {locator: "#ref", to: output.reference, optional: true}\n',
     'lookup:\n  when: always\n  steps:\n    - goto: /permits/{{ case.case_ref }}\n    - click: {locator: "#x", submit: true}\n',
     ['wf.yaml:41:14: lookup.steps[1].click: a lookup only looks: it may not hold a submitting step']),
    ('lookup:\n  - goto: /permits/{{ case.case_ref }}\n  - extract: {locator: "#ref", to: output.reference, optional: true}\n',
     'lookup:\n  when: sometimes\n  steps:\n    - goto: /permits/{{ case.case_ref }}\n',
     ['wf.yaml:38:9: lookup.when: must be one of retry or always']),
    ('{role: button, name: Renew}',
     '{rol: button, name: Renew}',
     ["wf.yaml:35:22: steps[7].click.locator: unknown locator kind 'rol'; did you mean 'role'?"]),
    ('{role: button, name: Renew}',
     '{role: buton, name: Renew}',
     ["wf.yaml:35:29: steps[7].click.locator.role: 'buton' is not one of the 82 allowed values; did you mean 'button'?"]),
    ('to: output.reference}',
     'to: reference}',
     ['wf.yaml:36:36: steps[8].extract.to: must match ^(vars|output)\\.[A-Za-z][A-Za-z0-9_]*$']),
    ('lookup:\n  - goto: /permits/{{ case.case_ref }}\n  - extract: {locator: "#ref", to: output.reference, optional: true}\n',
     '',
     ["wf.yaml:35:12: steps[7].click: this step submits, so the workflow needs a 'lookup' block or 'at_most_once: true'"]),
    ('  - goto: /permits/{{ case.case_ref }}\n  - fill',
     '  - goto: /permits/{{ case.case_ref }}\n    timeout_ms: 5\n  - fill',
     ['wf.yaml:17:5: steps[1]: a step has exactly one verb, found 2 keys (goto, timeout_ms); indent the arguments under the verb']),
    ('      then:',
     '      than:',
     ["wf.yaml:22:7: steps[4].if.than: unknown field 'than'; did you mean 'then'?"]),
    ('max_attempts: 3',
     'max_attempts: 3\nreference_field: ref',
     ["wf.yaml:15:18: reference_field: the reference field 'ref' is not a field of the input schema"]),
    ('- check: "#commercial"',
     '- check: {locator: "#commercial", timeout_ms: 0}',
     ['wf.yaml:23:55: steps[4].if.then[0].check.timeout_ms: input should be greater than 0']),
    ('  - goto: /permits',
     '  - goto: {url: /permits, system: portl}\n  - goto: /permits',
     ["wf.yaml:17:35: steps[1].goto.system: unknown system 'portl'; did you mean 'portal'?"]),
    ('  kind: {type',
     '\tkind: {type',
     ["wf.yaml:12:1: malformed YAML: found character '\\t' that cannot start any token"]),
    ('- wait_for: {text: Ready}',
     '- press: {key: "Ctrl A"}',
     ['wf.yaml:34:24: steps[6].retry.steps[0].press.key: must match ^[A-Za-z0-9+]{1,40}$|^.$']),
    ('to: output.reference}',
     'to: output.reference, read: attribute}',
     ["wf.yaml:36:14: steps[8].extract: read: attribute needs 'attribute: NAME'"]),
    ('{{ case.holder | upper }}',
     '{{ range(10) }}',
     ["wf.yaml:18:45: steps[2].fill.value: unknown name 'range' in template; expected one of case, vars, secrets, output, env"]),
    ('{locator: {label: Holder}',
     '{locator: [{label: Holder}, 5]',
     ['wf.yaml:18:39: steps[2].fill.locator[1]: a locator is a selector text, a mapping with one of css, text, role, label, placeholder or test_id, or a list of those']),
    ('secrets: [portal_password]',
     'secrets: [Portal-Password]',
     ['wf.yaml:6:11: secrets[0]: must match ^[a-z][a-z0-9_]{0,62}$']),
]


def problems_of(text: str, name: str = "wf.yaml") -> list[str]:
    with pytest.raises(WorkflowFileError) as caught:
        parse_workflow(text, str(DATA / name))
    return [str(p).replace(f"{DATA}/", "") for p in caught.value.problems]


def test_the_base_workflow_and_the_examples_are_valid() -> None:
    loaded = parse_workflow(BASE, str(DATA / "wf.yaml"))
    assert list(loaded.calls) == ["part.yaml"] and loaded.submits
    example = load_workflow(EXAMPLE)
    assert example.definition.name == "change-of-address" and example.definition.lookup
    assert len(example.digest) == 16


@pytest.mark.parametrize(("old", "new", "expected"), MISTAKES, ids=[f"mistake-{i:02d}" for i in range(len(MISTAKES))])
def test_a_mistake_is_reported_with_its_exact_line_column_path_and_message(old: str, new: str, expected: list[str]) -> None:
    assert old in BASE
    assert problems_of(BASE.replace(old, new, 1)) == expected


def test_the_table_holds_at_least_thirty_distinct_mistakes() -> None:
    assert len({m[2][0].split(": ", 1)[1] for m in MISTAKES}) >= 30


def test_a_call_cycle_is_one_problem_naming_the_files_in_order() -> None:
    with pytest.raises(WorkflowFileError) as caught:
        load_workflow(DATA / "cycle_a.yaml")
    messages = [str(p).replace(f"{DATA}/", "") for p in caught.value.problems]
    assert "cycle_b.yaml:7:11: steps[1].call.workflow: call cycle: cycle_a.yaml → cycle_b.yaml → cycle_a.yaml" in messages
    assert messages[0] == ("cycle_a.yaml:6:11: steps[0].call.workflow: the called workflow cycle_b.yaml has 1 problem(s), "
                           "listed with its name")


def test_malformed_yaml_names_the_line() -> None:
    assert problems_of("name: [1\n") == ["wf.yaml:2:1: malformed YAML: expected ',' or ']', but got '<stream end>'"]


def test_anchors_and_aliases_are_refused_so_a_yaml_bomb_cannot_expand() -> None:
    bomb = "a: &a [x, x]\nb: [*a, *a]\n"
    assert "anchors and aliases are not allowed" in problems_of(bomb)[0]


def test_a_python_tag_is_refused() -> None:
    assert "is not allowed" in problems_of("name: !!python/object/apply:os.system [ls]\n")[0]


def test_a_missing_file_is_one_problem_not_an_exception(tmp_path: Path) -> None:
    with pytest.raises(WorkflowFileError) as caught:
        load_workflow(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}:0:0: no such workflow file"


def test_a_step_path_as_a_bot_names_it_leads_back_to_its_file_and_line() -> None:
    example = load_workflow(EXAMPLE)
    assert example.where("steps[16].extract") == f"{EXAMPLE}:44"
    assert example.where("steps[0].call>sign_in.yaml[3].click") == f"{EXAMPLE.parent / 'sign_in.yaml'}:27"
    assert example.where("lookup[2].wait_for") == f"{EXAMPLE}:50"
    assert example.where("steps[99].click") is None and example.where("steps[0].call>nope.yaml[0].goto") is None
