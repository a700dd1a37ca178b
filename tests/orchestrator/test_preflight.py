"""Preflight: what a workflow needs (its called parts included) and what this process cannot give it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator import ConfigurationError, load_settings
from orchestrator.queue import check_configuration, check_workers, missing_configuration, missing_from, resolvable_names
from workflows import load_workflow

PART = """
name: sign-in
version: 1
part: true
systems: {crm: {}}
secrets: [crm_password]
env: {region: null}
steps:
  - goto: {system: crm, url: /login}
  - fill: {locator: "#password", value: "{{ secrets.crm_password }}"}
"""

MAIN = """
name: renew
version: 1
systems: {portal: {}}
secrets: [portal_password]
env: {office: HQ, region: north}
input:
  case_ref: {type: string, required: true}
steps:
  - call: sign_in.yaml
  - goto: {system: portal, url: "/{{ env.office }}/{{ env.region }}"}
  - fill: {locator: "#password", value: "{{ secrets.portal_password }}"}
"""


@pytest.fixture
def workflow(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "sign_in.yaml").write_text(PART)
    (tmp_path / "renew.yaml").write_text(MAIN)
    return load_workflow(tmp_path / "renew.yaml")


def test_a_workflow_needs_what_its_called_parts_need_too(workflow) -> None:  # type: ignore[no-untyped-def]
    needs = workflow.needs()
    assert needs.secrets == {"portal_password", "crm_password"} and needs.systems == {"portal", "crm"}
    assert needs.env == {"office": "HQ", "region": None}  # the part declares region without a default


def test_everything_missing_is_named_with_how_to_provide_it_and_nothing_else(
        workflow, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("AUTOCLERK_SECRET_PORTAL_PASSWORD", raising=False)
    monkeypatch.setenv("AUTOCLERK_SECRET_CRM_PASSWORD", "s3cret-value")
    settings = load_settings(systems=("portal=http://127.0.0.1:1",))
    assert missing_configuration(workflow, settings, environ={}) == [
        "secret 'portal_password' is not set: set AUTOCLERK_SECRET_PORTAL_PASSWORD or add it to the secrets file",
        "env value 'region' is not set: set AUTOCLERK_ENV_REGION",
        "system 'crm' has no base URL: pass --system crm=URL or set AUTOCLERK_SYSTEMS",
    ]
    with pytest.raises(ConfigurationError) as refused:
        check_configuration(workflow, settings)
    message = str(refused.value)
    assert message.startswith(f"{workflow.path}: workflow renew cannot run here: ") and message.endswith("Nothing was queued")
    assert "s3cret-value" not in message


def test_a_workflow_whose_needs_are_met_passes(workflow, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                               tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.json"
    secrets.write_text('{"portal_password": "p", "crm_password": "c"}')
    monkeypatch.delenv("AUTOCLERK_SECRET_PORTAL_PASSWORD", raising=False)
    monkeypatch.setenv("AUTOCLERK_ENV_REGION", "south")
    settings = load_settings(systems=("portal=http://127.0.0.1:1", "crm=http://127.0.0.1:2"), secrets_file=secrets)
    assert missing_configuration(workflow, settings) == []
    check_configuration(workflow, settings)


def test_a_worker_reports_the_names_it_can_resolve_and_never_a_value(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.json"
    secrets.write_text('{"crm_password": "c-value", "OTHER_KEY": "o-value"}')
    settings = load_settings(systems=("portal=http://127.0.0.1:1",), secrets_file=secrets)
    names = resolvable_names(settings, environ={"AUTOCLERK_SECRET_PORTAL_PASSWORD": "p-value",
                                                "AUTOCLERK_ENV_REGION": "south", "HOME": "/root"})
    # spelled as a workflow asks: a file key is found only as written (SecretValues looks it up exactly)
    assert names == {"secrets": ["OTHER_KEY", "crm_password", "portal_password"], "env": ["region"],
                     "systems": ["portal"]}
    assert "value" not in json.dumps(names)
    secrets.write_text("not json")  # an unreadable secrets file gives no secret, and no error
    assert resolvable_names(settings, environ={})["secrets"] == []
    null = resolvable_names(load_settings(bot="null"), environ={})  # its bots run no steps: it needs no names
    assert null == {"secrets": [], "env": [], "systems": [], "bot": "null"}


def test_a_hand_off_is_checked_against_the_live_workers_names(workflow) -> None:  # type: ignore[no-untyped-def]
    everything = {"secrets": ["portal_password", "crm_password"], "env": ["region"], "systems": ["crm", "portal"]}
    lacking = {"secrets": ["portal_password", "CRM_PASSWORD"], "env": [], "systems": ["crm", "portal"]}
    assert missing_from(workflow.needs(), everything) == []
    assert missing_from(workflow.needs(), lacking) == [
        "secret 'crm_password' is not set: set AUTOCLERK_SECRET_CRM_PASSWORD or add it to the secrets file",
        "env value 'region' is not set: set AUTOCLERK_ENV_REGION"]

    assert "no worker is running" in (check_workers(workflow, []) or "")
    embedded = [{"kind": "embedded", "resolves": None}]  # the service's own worker does not serve a broker
    assert "no worker is running" in (check_workers(workflow, embedded) or "")
    assert check_workers(workflow, [{"kind": "worker", "resolves": lacking}, {"kind": "worker", "resolves": everything}]) is None
    assert check_workers(workflow, [{"kind": "worker", "resolves": {"systems": [], "bot": "null"}}]) is None
    with pytest.raises(ConfigurationError) as refused:
        check_workers(workflow, [{"kind": "worker", "resolves": lacking}, {"kind": "worker", "resolves": {}}])
    assert str(refused.value) == (
        "workflow renew cannot run on any of the 2 live workers: secret 'crm_password' is not set: set "
        "AUTOCLERK_SECRET_CRM_PASSWORD or add it to the secrets file; env value 'region' is not set: set "
        "AUTOCLERK_ENV_REGION (on the workers). Nothing was queued")


def test_a_failure_while_a_setting_is_missing_holds_the_case_without_spending_its_attempt(
        workflow, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from bots import ApplicationError
    from orchestrator.ledger import HELD, Claim
    from orchestrator.queue.execution import _retry_or_fail

    monkeypatch.delenv("AUTOCLERK_SECRET_PORTAL_PASSWORD", raising=False)
    claim = Claim(id=1, workflow="renew", digest="d", batch_id="b", case_ref="C-1", payload={}, attempt=3,
                  max_attempts=3, fence=1, effect_attempt=None, history=[], started_at=0.0)
    runtime = SimpleNamespace(settings=load_settings(systems=("portal=http://127.0.0.1:1", "crm=http://127.0.0.1:2")),
                              breakers=SimpleNamespace(after_failure=lambda _: None))
    error = ApplicationError("secret 'portal_password' is not set", step="steps[2].fill")
    outcome = _retry_or_fail(runtime, claim, error, workflow)  # type: ignore[arg-type]
    assert (outcome.state, outcome.error_class, outcome.give_back_attempt) == ("paused", HELD, True)
    assert outcome.error_message == ("Held: the bots are not set up to run this workflow. Once that is fixed, "
                                     "resume the batch.")
    assert "secret 'portal_password' is not set: set AUTOCLERK_SECRET_PORTAL_PASSWORD" in (outcome.error_detail or "")
    monkeypatch.setenv("AUTOCLERK_SECRET_PORTAL_PASSWORD", "p")
    monkeypatch.setenv("AUTOCLERK_SECRET_CRM_PASSWORD", "c")
    monkeypatch.setenv("AUTOCLERK_ENV_REGION", "south")
    assert _retry_or_fail(runtime, claim, error, workflow).state == "failed"  # type: ignore[arg-type]
