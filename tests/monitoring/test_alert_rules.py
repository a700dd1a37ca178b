"""The shipped alert rules: valid for Prometheus, each one proven by promtool's unit tests, each one scoped by
the job convention and given a runbook section that exists."""

from __future__ import annotations

import re
import shutil
import subprocess

import yaml

from tests.conftest import ROOT, need
from tests.test_docs_links import anchors

RULES = ROOT / "monitoring" / "prometheus"
CONVENTION = 'job=~"autoclerk.*"'
SELECTOR = re.compile(r"\b(autoclerk_[a-z_]+|up)\b(?:\{([^}]*)\})?")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    need(binary is not None, "promtool (Debian's prometheus package) is not installed")
    return subprocess.run([str(binary), *args], cwd=RULES, capture_output=True, text=True, timeout=120)


def alerts() -> list[dict]:
    return [r for g in yaml.safe_load((RULES / "alerts.yml").read_text())["groups"] for r in g["rules"]]


def test_the_rules_pass_promtool_check() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 14 rules found" in checked.stdout


def test_every_alert_fires_and_stays_quiet_as_its_unit_tests_say() -> None:
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    tests = (RULES / "alerts.test.yml").read_text()
    for alert in (r["alert"] for r in alerts()):
        assert f"alertname: {alert}" in tests, f"{alert} has no unit test"


def test_every_series_an_alert_reads_is_selected_by_the_job_convention() -> None:
    for rule in alerts():
        selectors = SELECTOR.findall(rule["expr"])
        assert selectors, rule["alert"]
        for name, matchers in selectors:
            assert matchers.startswith(CONVENTION), f"{rule['alert']}: {name} is not selected by {CONVENTION}"


def test_the_unit_tests_run_alerts_under_other_job_names_than_autoclerk() -> None:
    jobs = set(re.findall(r'job="([^"]+)"', (RULES / "alerts.test.yml").read_text()))
    assert {"autoclerk", "autoclerk-workers", "autoclerk-service", "autoclerk-prod"} <= jobs
    assert {j for j in jobs if not j.startswith("autoclerk")} == {"node", "rpa-legacy", "rpa-staging"}  # ignored


def test_every_alert_has_a_runbook_section_in_the_docs() -> None:
    for rule in alerts():
        runbook = rule["annotations"].get("runbook")
        assert runbook, f"{rule['alert']} has no runbook"
        page, _, anchor = runbook.partition("#")
        assert page.startswith("docs/") and (ROOT / page).is_file(), f"{rule['alert']}: no page {page}"
        assert anchor in anchors((ROOT / page).read_text()), f"{rule['alert']}: no section #{anchor} in {page}"
