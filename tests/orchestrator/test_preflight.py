"""Preflight: what a workflow needs (its called parts included) and what this process cannot give it."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import ConfigurationError, load_settings
from orchestrator.queue import check_configuration, missing_configuration
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
