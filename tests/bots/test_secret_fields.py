"""A case field marked ``secret: true``, typed into a page in real Chromium, in a job that then fails: the
value is in neither the saved page nor the error's message, and the elements it went into are masked in
the screenshot. The page under test copies what is typed into the ``value`` attribute, so that an
unmasked value would be in the saved page."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from bots import BotConfig, BotEngine, BotJob, BusinessException
from workflows import FIELD_MASK, SecretValues, check_case, parse_workflow

CANARY = "Zq81&x<Lm>B"  # unique, and changed by HTML escaping both in text and in attributes
MAGENTA = (255, 0, 255)  # Playwright's mask colour

# Each field sits in a fixed box (left, top, width, height), so the screenshot can be read by position.
BOXES = {"code": (200, 20, 300, 40), "region": (200, 100, 300, 40), "holder": (200, 180, 300, 40)}
PAGE = """<!doctype html>
<html><head><title>Account</title><style>
  body { margin: 0; font: 16px sans-serif; background: #fff; }
  label { position: absolute; left: 10px; }
  input, select { position: absolute; margin: 0; box-sizing: border-box; }
  BOXES
</style></head><body>
  <label for="code" style="top: 30px">Account code</label><input id="code">
  <label for="region" style="top: 110px">Region</label>
  <select id="region"><option>North</option><option>South</option></select>
  <label for="holder" style="top: 190px">Holder</label><input id="holder">
  <script>
    for (const input of document.querySelectorAll("input")) {
      input.addEventListener("input", () => input.setAttribute("value", input.value));
    }
  </script>
</body></html>""".replace("BOXES", "\n  ".join(f"#{name} {{ left: {x}px; top: {y}px; width: {w}px; height: {h}px; }}"
                                              for name, (x, y, w, h) in BOXES.items()))

DIRECT = """
name: secret-typing
version: 1
systems: {site: {}}
input:
  case_ref: {type: string}
  account_code: {type: string, secret: true}
  region: {type: enum, values: [North, South], secret: true}
  holder: {type: string}
steps:
  - goto: /account
  - fill: {locator: {label: Account code}, value: "{{ case.account_code }}"}
  - select: {locator: {label: Region}, label: "{{ case.region }}"}
  - fill: {locator: {label: Holder}, value: "{{ case.holder }}"}
  - assert: {visible: "#saved", message: "account {{ case.account_code }} was not accepted", code: refused}
"""

CALLING = """
name: secret-calling
version: 1
systems: {site: {}}
input:
  case_ref: {type: string}
  account_code: {type: string}
  region: {type: string}
  holder: {type: string}
steps:
  - goto: /account
  - fill: {locator: {label: Holder}, value: "{{ case.holder }}"}
  - call: {workflow: enter_code.yaml, with: {code: "{{ case.account_code }}", region: "{{ case.region }}"}}
"""

PART = """
name: enter-code
version: 1
part: true
systems: {site: {}}
input:
  code: {type: string, secret: true}
  region: {type: enum, values: [North, South], secret: true}
steps:
  - fill: {locator: {label: Account code}, value: "{{ case.code }}"}
  - select: {locator: {label: Region}, value: "{{ case['region'] }}"}
  - assert: {visible: "#saved", message: "account {{ case.code }} was not accepted", code: refused}
"""


@pytest.fixture
def site() -> Iterator[str]:
    """The account page on 127.0.0.1."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = PAGE.encode() if self.path == "/account" else b""
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def engine(chromium: str, site: str, tmp_path: Path) -> Iterator[BotEngine]:
    bot = BotEngine(BotConfig(system_urls={"site": site}, chromium_path=chromium, artifacts_dir=tmp_path / "artifacts",
                              step_timeout_ms=5000))
    yield bot
    bot.close()


def fail_with_secrets(engine: BotEngine, workflow: str, tmp_path: Path) -> BusinessException:
    (tmp_path / "enter_code.yaml").write_text(PART)
    loaded = parse_workflow(workflow, str(tmp_path / "workflow.yaml"))
    row = {"case_ref": "CASE-000401", "account_code": CANARY, "region": "South", "holder": "Ada Lovelace"}
    case = check_case(loaded.definition.input, row, 1)
    with pytest.raises(BusinessException) as caught:
        engine.run(BotJob(loaded, loaded.definition.steps, case, "CASE-000401", 1, SecretValues()),
                   before_effect=lambda: None)
    return caught.value


def evidence(exc: BusinessException) -> tuple[str, Image.Image]:
    kept = {Path(p).name: Path(p) for p in exc.evidence}  # type: ignore[attr-defined]
    assert {"failure.png", "failure.html"} <= set(kept), "the fault happened: the evidence was kept"
    return kept["failure.html"].read_text(encoding="utf-8"), Image.open(kept["failure.png"]).convert("RGB")


def masked(shot: Image.Image, box: str) -> bool:
    """Whether the inside of a field's box is all mask colour (a grid of points, clear of the border)."""
    x, y, w, h = BOXES[box]
    points = [(x + 4 + i * (w - 8) // 4, y + 4 + j * (h - 8) // 4) for i in range(5) for j in range(5)]
    return all(shot.getpixel(point) == MAGENTA for point in points)


def test_a_secret_case_field_typed_and_chosen_into_a_page_is_masked_in_the_evidence_and_the_message(
        engine: BotEngine, tmp_path: Path) -> None:
    exc = fail_with_secrets(engine, DIRECT, tmp_path)
    assert (str(exc), exc.code, exc.step) == (f"account {FIELD_MASK} was not accepted", "refused", "steps[4].assert")
    html, shot = evidence(exc)
    assert "Zq81" not in html and "South" not in html  # neither as typed nor HTML-escaped
    assert f'value="{FIELD_MASK}"' in html  # the page held the value: it was masked, not missing
    assert 'value="Ada Lovelace"' in html and "North" in html  # what is not secret is kept
    assert masked(shot, "code") and masked(shot, "region")
    assert not masked(shot, "holder")


def test_a_secret_field_of_a_called_workflow_is_masked_by_the_called_workflows_own_schema(
        engine: BotEngine, tmp_path: Path) -> None:
    exc = fail_with_secrets(engine, CALLING, tmp_path)  # the caller's own fields are not secret
    assert (str(exc), exc.code, exc.step) == (f"account {FIELD_MASK} was not accepted", "refused",
                                              "steps[2].call>enter_code.yaml[2].assert")
    html, shot = evidence(exc)
    assert "Zq81" not in html and "South" not in html
    assert f'value="{FIELD_MASK}"' in html and 'value="Ada Lovelace"' in html
    assert masked(shot, "code") and masked(shot, "region")
    assert not masked(shot, "holder")
