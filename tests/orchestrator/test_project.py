"""``autoclerk init`` and ``autoclerk monitoring export``: what they write, read from the installed package, and
that they never overwrite. (``scripts/check-wheel`` runs both from an installed wheel in CI.)"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.cli.project import project_files
from orchestrator.queue import AcceptedCase, read_cases
from tests.conftest import ROOT, autoclerk
from workflows import load_workflow


def test_init_writes_a_project_whose_workflow_validates_and_whose_cases_are_all_accepted(tmp_path: Path) -> None:
    made = autoclerk("init", "claims", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "claims"
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()) == [
        ".gitignore", "README.md", "cases.csv", "flows/change_of_address.yaml", "flows/sign_in.yaml",
        "secrets.example.json"]
    assert "secrets.json" in (project / ".gitignore").read_text().splitlines()
    readme = (project / "README.md").read_text()
    assert readme.startswith("# claims\n")
    assert readme.count("\nautoclerk ") + readme.count("\nAUTOCLERK_SECRET_PORTAL_PASSWORD=demo-password autoclerk ") == 3
    checked = autoclerk("validate", "flows/change_of_address.yaml", "flows/sign_in.yaml", cwd=project)
    assert checked.returncode == 0 and checked.stdout.count(": ok") == 2, checked.stderr
    loaded = load_workflow(project / "flows" / "change_of_address.yaml")
    rows = list(read_cases(project / "cases.csv", loaded.definition))
    assert len(rows) == 5 and all(isinstance(r, AcceptedCase) for r in rows), rows
    assert {r.payload["effective_date"] for r in rows if isinstance(r, AcceptedCase)} == {
        (dt.date.today() + dt.timedelta(days=14)).isoformat()}
    explained = autoclerk("explain", "flows/change_of_address.yaml", "--cases", "cases.csv", "--case", "1", cwd=project)
    assert explained.returncode == 0 and "CASE-000001" in explained.stdout


def test_init_refuses_to_write_over_anything_and_says_so_in_one_line(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "cases.csv").write_text("mine\n")
    refused = autoclerk("init", str(project), cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == f"autoclerk: error: {project / 'cases.csv'}: already exists; nothing was written " \
                             "(choose a new or empty folder)\n"
    assert sorted(p.name for p in project.iterdir()) == ["cases.csv"] and (project / "cases.csv").read_text() == "mine\n"


def test_monitoring_export_writes_the_packaged_dashboard_and_rules_which_pass_promtool(tmp_path: Path) -> None:
    exported = autoclerk("monitoring", "export", "out", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    out = tmp_path / "out"
    for name in ("grafana/autoclerk.json", "prometheus/alerts.yml", "prometheus/alerts.test.yml"):
        assert (out / name).read_bytes() == (ROOT / "monitoring" / name).read_bytes()
    tested = subprocess.run(["promtool", "test", "rules", "alerts.test.yml"], cwd=out / "prometheus",
                            capture_output=True, text=True, timeout=120)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    again = autoclerk("monitoring", "export", "out", cwd=tmp_path)
    assert again.returncode == 2 and "already exists; nothing was written" in again.stderr


def test_monitoring_export_with_a_runbook_base_makes_every_runbook_link_a_url_and_the_rules_still_pass_promtool(
        tmp_path: Path) -> None:
    base = "https://wiki.example/autoclerk"  # no trailing slash: one is added
    exported = autoclerk("monitoring", "export", "out", "--runbook-base", base, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    out = tmp_path / "out"
    rules = yaml.safe_load((out / "prometheus" / "alerts.yml").read_text())["groups"][0]["rules"]
    shipped = yaml.safe_load((ROOT / "monitoring" / "prometheus" / "alerts.yml").read_text())["groups"][0]["rules"]
    assert [r["annotations"]["runbook"] for r in rules] == [
        "https://wiki.example/autoclerk/" + r["annotations"]["runbook"].removeprefix("docs/") for r in shipped]
    assert "https://wiki.example/autoclerk/monitoring.md#no-bots" in [r["annotations"]["runbook"] for r in rules]
    assert [{**r, "annotations": {**r["annotations"], "runbook": None}} for r in rules] == \
        [{**r, "annotations": {**r["annotations"], "runbook": None}} for r in shipped]  # nothing else changed
    assert (out / "prometheus" / "alerts.yml").read_text().startswith("# Alert rules for Autoclerk.")  # comments kept
    tests = (out / "prometheus" / "alerts.test.yml").read_text()
    assert 'runbook: "docs/' not in tests and 'runbook: "https://wiki.example/autoclerk/monitoring.md#' in tests
    tested = subprocess.run(["promtool", "test", "rules", "alerts.test.yml"], cwd=out / "prometheus",
                            capture_output=True, text=True, timeout=120)
    assert tested.returncode == 0, tested.stdout + tested.stderr  # the unit tests expect the rebased links
    dashboard = json.loads((out / "grafana" / "autoclerk.json").read_text())
    shipped_dashboard = json.loads((ROOT / "monitoring" / "grafana" / "autoclerk.json").read_text())
    assert [link["url"] for link in dashboard["links"]] == ["https://wiki.example/autoclerk/monitoring.md#alerts"]
    assert {**dashboard, "links": None} == {**shipped_dashboard, "links": None}


@pytest.mark.parametrize("base", ["wiki.example/autoclerk/", "ftp://wiki.example/", "https://wiki.example/?page=x"])
def test_monitoring_export_refuses_a_runbook_base_that_is_not_a_web_address_and_writes_nothing(
        tmp_path: Path, base: str) -> None:
    refused = autoclerk("monitoring", "export", "out", "--runbook-base", base, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == f"autoclerk: error: --runbook-base: '{base}' is not an http(s) address of the docs " \
                             "folder; expected one like https://wiki.example/autoclerk/\n"
    assert not (tmp_path / "out").exists()


def test_the_project_template_names_its_files_once() -> None:
    files = project_files("x", dt.date(2026, 12, 2))
    assert "{in_two_weeks}" not in files["cases.csv"] and "{name}" not in files["README.md"]
