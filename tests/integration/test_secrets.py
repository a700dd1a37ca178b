"""A secret typed into a field reaches no screenshot's unmasked area, no log line, no ledger and no artifact.

The probe workflow signs in (the portal password), types a second secret into a plain text field, and
then fails on purpose, so that the evidence of a failed attempt is kept. It runs through the CLI twice,
with two different canary values: the screenshots of the two runs are identical pixel for pixel outside
the masked boxes (so the value shows nowhere else), and the masks cover the field.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

from PIL import Image, ImageChops

from demo_portal import PortalProcess
from tests.conftest import ROOT, autoclerk

PROBE = textwrap.dedent("""\
    name: secret-probe
    version: 1
    systems:
      portal: {business_error: ".error-summary"}
    secrets: [canary]
    input:
      case_ref: {type: string}
    at_most_once: true
    steps:
      - call: sign_in.yaml
      - goto: /cases/{{ case.case_ref }}/address
      - fill: {locator: "#address_line1", value: "{{ secrets.canary }}"}
      - fail: {message: "stopped on purpose so that evidence is kept", code: probe}
""")

MAGENTA = (255, 0, 255)  # Playwright's mask colour


def run_probe(folder: Path, portal: PortalProcess, canary: str) -> tuple[str, Path, Path]:
    folder.mkdir()
    (folder / "probe.yaml").write_text(PROBE)
    shutil.copy(ROOT / "workflows" / "examples" / "sign_in.yaml", folder / "sign_in.yaml")
    (folder / "cases.csv").write_text("case_ref\nCASE-000123\n")
    ledger = folder / "ledger.db"
    result = autoclerk("run", "probe.yaml", "--cases", "cases.csv", "--ledger", f"sqlite:///{ledger}",
                       "--system", f"portal={portal.url}", "--json", cwd=folder,
                       env={"AUTOCLERK_SECRET_CANARY": canary, "AUTOCLERK_LOG_LEVEL": "DEBUG",
                            "AUTOCLERK_ARTIFACTS_DIR": str(folder / "artifacts"), "AUTOCLERK_TRACE": "false"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["business_exception"] == 1
    shots = list((folder / "artifacts").rglob("failure.png"))
    assert len(shots) == 1, "the fault happened: the evidence of the failed attempt was kept"
    return result.stdout + result.stderr, ledger, shots[0]


def test_a_secret_typed_into_a_field_is_masked_in_screenshots_and_absent_from_logs_ledger_and_artifacts(
        chromium: str, portal: PortalProcess, tmp_path: Path) -> None:
    canaries = ("canary-Zq81xLmB", "canary-Wp47tRvK")
    runs = [run_probe(tmp_path / f"run-{n}", portal, canary) for n, canary in enumerate(canaries)]
    for (output, ledger, shot), canary in zip(runs, canaries):
        needles = (canary.encode(), b"demo-password")
        assert "signed in" in output and "transaction" in output  # the logs were written, at debug level
        for needle in needles:
            assert needle.decode() not in output
            for path in [ledger, *ledger.parent.glob("ledger.db*"), *(ledger.parent / "artifacts").rglob("*")]:
                if path.is_file():
                    assert needle not in path.read_bytes(), f"{needle!r} found in {path}"
    first, second = (Image.open(shot).convert("RGB") for _, _, shot in runs)
    assert first.size == second.size
    assert ImageChops.difference(first, second).getbbox() is None, "the two canaries look different somewhere"
    masked = dict((color, count) for count, color in first.getcolors(maxcolors=1 << 24) or []).get(MAGENTA, 0)
    assert masked > 500, "the field holding the secret is covered by a mask"
