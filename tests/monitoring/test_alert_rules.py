"""The shipped alert rules: valid for Prometheus, and each one proven by promtool's unit tests."""

from __future__ import annotations

import shutil
import subprocess

from tests.conftest import ROOT, need

RULES = ROOT / "monitoring" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    need(binary is not None, "promtool (Debian's prometheus package) is not installed")
    return subprocess.run([str(binary), *args], cwd=RULES, capture_output=True, text=True, timeout=120)


def test_the_rules_pass_promtool_check() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 9 rules found" in checked.stdout


def test_every_alert_fires_and_stays_quiet_as_its_unit_tests_say() -> None:
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    tests = (RULES / "alerts.test.yml").read_text()
    for alert in ("AutoclerkNoProgress", "AutoclerkBusinessExceptionRateHigh", "AutoclerkDeadLetters",
                  "AutoclerkOldestWaitingTooOld", "AutoclerkWorkerDown", "AutoclerkNoBots", "AutoclerkAuditHeadWentBack"):
        assert f"alertname: {alert}" in tests, f"{alert} has no unit test"
