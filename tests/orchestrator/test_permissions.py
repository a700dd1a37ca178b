"""Permissions by business area in the ledger, on both backends: teams own published workflows, a user
limited to teams or named workflows reaches only those (and every way of signing in carries the limit),
an unlimited user reaches everything, and the batch and exception lists filter by workflow."""

from __future__ import annotations

import pytest

from orchestrator import Ledger, Outcome, UsageError
from orchestrator.accounts import Accounts, User
from orchestrator.queue import publish_workflow
from orchestrator.web.service import HandoffService
from workflows import parse_workflow

PASSWORD = "a long enough password"
WORKFLOW = """name: {name}
version: 1
systems:
  portal: {{}}
input:
  case_ref: {{type: string, max_length: 128}}
steps:
  - fail: {{message: "Cannot do it"}}
"""


@pytest.fixture
def accounts(ledger: Ledger) -> Accounts:
    for name in ("claims", "benefits", "licences"):
        publish_workflow(ledger, parse_workflow(WORKFLOW.format(name=name), f"{name}.yaml"), "arthur", f"{name}.yaml",
                         origin="cli")
    made = Accounts(ledger.engine)
    for name, roles in (("cora", ["caseworker"]), ("otto", ["operator"]), ("una", ["caseworker", "operator"])):
        made.add_user(name, roles, PASSWORD)
    return made


def test_a_team_owns_workflows_and_a_limited_user_reaches_only_those_and_the_ones_named(accounts: Accounts) -> None:
    assert accounts.teams.add("claims-team", ["claims"]) == ["claims"]
    assert accounts.teams.add("claims-team", ["benefits", "claims"]) == ["benefits", "claims"]  # adds, never doubles
    accounts.teams.add("licensing", ["licences"])
    accounts.teams.limit("cora", ["claims-team"], [])
    accounts.teams.limit("otto", [], ["licences"])
    cora = accounts.authenticate("cora", PASSWORD)
    assert cora is not None and cora.workflows == {"claims", "benefits"}
    assert cora.may("claims") and not cora.may("licences") and cora.limited
    otto = accounts.token_user(accounts.new_token("otto"))
    assert otto is not None and otto.workflows == {"licences"}
    una = accounts.authenticate("una", PASSWORD)
    assert una is not None and not una.limited and una.may("licences") and una.may("anything")
    session = accounts.start_session(cora)
    found = accounts.session(session.session_id)
    assert found is not None and found[0].workflows == {"claims", "benefits"}


def test_a_limit_is_replaced_whole_removed_by_unlimit_and_shown_in_the_lists(accounts: Accounts) -> None:
    accounts.teams.add("claims-team", ["claims"])
    accounts.teams.limit("cora", ["claims-team"], ["licences"])
    listed = {u["username"]: u for u in accounts.list_users()}
    assert (listed["cora"]["limited"], listed["cora"]["teams"], listed["cora"]["workflows"]) == (
        True, ["claims-team"], ["licences"])
    assert (listed["una"]["limited"], listed["una"]["teams"]) == (False, [])
    assert accounts.teams.list_teams() == [{"name": "claims-team", "workflows": ["claims"], "users": ["cora"]}]
    accounts.teams.limit("cora", [], ["benefits"])
    assert accounts.authenticate("cora", PASSWORD).workflows == {"benefits"}  # type: ignore[union-attr]
    assert accounts.teams.unlimit("cora") is True and accounts.teams.unlimit("cora") is False
    assert accounts.authenticate("cora", PASSWORD).workflows is None  # type: ignore[union-attr]


def test_a_team_that_owns_nothing_gives_nothing_and_a_team_with_members_is_not_removed(accounts: Accounts) -> None:
    accounts.teams.add("claims-team", ["claims"])
    accounts.teams.limit("cora", ["claims-team"], [])
    assert accounts.teams.remove("claims-team", ["claims"]) == []
    assert accounts.authenticate("cora", PASSWORD).workflows == frozenset()  # type: ignore[union-attr]
    with pytest.raises(UsageError, match="cora are limited to team claims-team"):
        accounts.teams.remove("claims-team")
    accounts.teams.unlimit("cora")
    assert accounts.teams.remove("claims-team") == [] and accounts.teams.list_teams() == []


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.add("claims-team", ["nope"]), "there is no published workflow 'nope'"),
    (lambda t: t.add("Claims", ["claims"]), "team name 'Claims' must be 2-64 characters"),
    (lambda t: t.add("claims-team", []), "at least one --workflow"),
    (lambda t: t.limit("nobody", [], ["claims"]), "there is no user 'nobody'"),
    (lambda t: t.limit("cora", ["ghosts"], []), "there is no team 'ghosts'"),
    (lambda t: t.limit("cora", [], ["nope"]), "there is no published workflow 'nope'"),
    (lambda t: t.limit("cora", [], []), "at least one --team or --workflow"),
    (lambda t: t.unlimit("nobody"), "there is no user 'nobody'"),
    (lambda t: t.remove("ghosts"), "there is no team 'ghosts'"),
])
def test_an_unknown_user_team_or_workflow_is_refused_with_one_sentence_and_changes_nothing(
        accounts: Accounts, change, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match=message):
        change(accounts.teams)
    assert accounts.teams.list_teams() == [] and accounts.teams.limits() == {}


def _batch_with_exception(ledger: Ledger, workflow: str, by: str) -> tuple[str, int]:
    batch = ledger.batches.create(workflow, "d1", "cases.csv", created_by=by)
    (tx,), _ = ledger.batches.add_cases(batch, workflow, 1, "d1", 1, [(f"{workflow}-1", {"case_ref": f"{workflow}-1"})])
    claim = ledger.transactions.claim(tx, "w1", lease_s=60)
    assert claim is not None
    ledger.transactions.finish_many([Outcome(claim, "business_exception", error_class="BusinessRuleViolation")])
    return batch, tx


def test_the_batch_and_exception_lists_hold_only_the_workflows_a_limited_user_reaches(ledger: Ledger) -> None:
    claims, claims_tx = _batch_with_exception(ledger, "claims", "cora")
    licences, _ = _batch_with_exception(ledger, "licences", "cora")
    assert {b["id"] for b in ledger.batches.newest(None)} == {claims, licences}
    assert [b["id"] for b in ledger.batches.newest(None, workflows={"claims"})] == [claims]
    assert [b["id"] for b in ledger.batches.newest("cora", workflows=frozenset())] == []
    assert [c["id"] for c in ledger.reports.exceptions("cora", workflows={"claims"})] == [claims_tx]
    assert len(ledger.reports.exceptions(None)) == 2


def test_who_may_see_a_batch_is_the_role_the_owner_and_the_limit_together() -> None:
    see = HandoffService.can_see
    cora, otto = User("cora", frozenset({"caseworker"}), frozenset({"claims"})), User("otto", frozenset({"operator"}))
    assert see(cora, "cora", "claims") and not see(cora, "cora", "licences") and not see(cora, "una", "claims")
    assert see(otto, "una", "licences")
    limited_otto = User("otto", frozenset({"operator"}), frozenset({"licences"}))
    assert see(limited_otto, "una", "licences") and not see(limited_otto, "una", "claims")
