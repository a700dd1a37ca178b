"""Server errors retried in place by the bot engine, in real Chromium: pages that answer 503 loaded again, the
steps started again after a form's POST answered 503, a page that always fails given up after the bounded
retries, and a 503 after a submit never retried."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from bots import BotConfig, BotEngine, BotJob, TargetServerError
from demo_portal import PortalProcess
from monitoring import REGISTRY
from tests.conftest import EXAMPLE
from workflows import SecretValues, check_case, load_workflow

LOADED = load_workflow(EXAMPLE)


def retries(workflow: str = "change-of-address") -> float:
    return REGISTRY.get_sample_value("autoclerk_step_retries_total", {"workflow": workflow, "reason": "server_error"}) or 0.0


def case(ref: str) -> dict:
    row = {"case_ref": ref, "address_line1": "1 High Street", "city": "Leeds", "postcode": "LS1 4AB",
           "country": "GB-ENG", "contact_method": "email", "effective_date": dt.date.today().isoformat()}
    return check_case(LOADED.definition.input, row, 1)


def job(ref: str, steps: str = "steps") -> BotJob:
    return BotJob(LOADED, getattr(LOADED.definition, steps), case(ref), ref, 1, SecretValues(), label=steps)


@pytest.fixture
def engine(chromium: str, portal: PortalProcess, tmp_path: Path) -> Iterator[BotEngine]:
    bot = BotEngine(BotConfig(system_urls={"portal": portal.url}, chromium_path=chromium, artifacts_dir=tmp_path,
                              step_timeout_ms=5000, server_error_retries=8, server_error_wait_s=0.02))
    yield bot
    bot.close()


def knobs(portal: PortalProcess, **values: object) -> None:
    assert httpx.put(f"{portal.url}/api/faults", json=values, timeout=10).status_code == 200


def test_pages_that_answer_503_are_loaded_again_in_place_and_counted(engine: BotEngine, portal: PortalProcess) -> None:
    before = retries()
    knobs(portal, error_rate=0.2)  # the lookup signs in, opens each case's page and reads it: all of it submits nothing
    # (about ten 503s over the eight lookups; at 0.4 a lookup could now and then use up its eight retries)
    found = [engine.run(job(f"CASE-0041{n:02d}", "lookup"), before_effect=lambda: None).output for n in range(8)]
    knobs(portal, error_rate=0.0)
    assert found == [{}] * 8, "every lookup ended, none of them sent back"
    assert retries() > before, "the 503s were retried in place and counted"


def test_a_page_that_always_answers_503_ends_the_attempt_after_the_bounded_retries(
        chromium: str, portal: PortalProcess, tmp_path: Path) -> None:
    bot = BotEngine(BotConfig(system_urls={"portal": portal.url}, chromium_path=chromium, artifacts_dir=tmp_path,
                              step_timeout_ms=5000, server_error_retries=3, server_error_wait_s=0.02))
    effects: list[str] = []
    try:
        before = retries()
        knobs(portal, error_path="/cases/CASE-004201")
        with pytest.raises(TargetServerError, match="answered 503") as caught:
            bot.run(job("CASE-004201"), before_effect=lambda: effects.append("submit"))
    finally:
        knobs(portal, error_path="")
        bot.close()
    assert caught.value.retried_in_place and not caught.value.submitting
    assert retries() - before == 3, "three loads again of the case's page, and no start again on top"
    assert effects == [] and httpx.get(f"{portal.url}/api/export").json() == []
    assert any(name.endswith(".png") for name in caught.value.evidence)  # type: ignore[attr-defined]


def test_a_503_after_the_submit_is_never_retried_in_place(engine: BotEngine, portal: PortalProcess) -> None:
    effects: list[str] = []
    before = retries()
    knobs(portal, error_path="/confirmation/")  # the change is recorded; the page that confirms it answers 503
    try:
        with pytest.raises(TargetServerError) as caught:
            engine.run(job("CASE-004301"), before_effect=lambda: effects.append("submit"))
    finally:
        knobs(portal, error_path="")
    assert caught.value.submitting and caught.value.method == "POST", "the 503 came at the end of the submit's redirect"
    assert effects == ["submit"] and retries() == before
    export = httpx.get(f"{portal.url}/api/export").json()
    assert [entry["your_ref"] for entry in export] == ["CASE-004301"]
    found = engine.run(job("CASE-004301", "lookup"), before_effect=lambda: None)
    assert found.output == {"reference": export[0]["confirmation"]}


FORM_SITE = """
name: post-form
version: 1
systems:
  site: {description: a site whose form posts}
input:
  case_ref: {type: string}
steps:
  - goto: /form
  - click: "#go"
  - extract: {locator: "#saved", to: output.reference}
"""


class FormSite(BaseHTTPRequestHandler):
    """A page with a form whose POST (which changes nothing) answers 503 the first ``failures`` times."""

    failures = 0
    posts = 0

    def do_GET(self) -> None:  # noqa: N802 - the handler's protocol
        self._answer(200, b'<form method="post" action="/form"><button id="go">Go</button></form>')

    def do_POST(self) -> None:  # noqa: N802
        type(self).posts += 1
        if type(self).posts <= type(self).failures:
            self._answer(503, b"busy")
        else:
            self._answer(200, b'<p id="saved">R-1</p>')

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def form_site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FormSite)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("failures, retries_allowed, ends", [(2, 3, "done"), (2, 1, "error")])
def test_a_post_that_answers_503_before_any_submit_starts_the_steps_again(
        chromium: str, form_site: str, tmp_path: Path, failures: int, retries_allowed: int, ends: str) -> None:
    (tmp_path / "form.yaml").write_text(FORM_SITE)
    loaded = load_workflow(tmp_path / "form.yaml")
    FormSite.failures, FormSite.posts = failures, 0
    bot = BotEngine(BotConfig(system_urls={"site": form_site}, chromium_path=chromium, artifacts_dir=tmp_path,
                              step_timeout_ms=5000, server_error_retries=retries_allowed, server_error_wait_s=0.02))
    before = retries("post-form")
    try:
        run = lambda: bot.run(BotJob(loaded, loaded.definition.steps, {"case_ref": "X-1"}, "X-1", 1, SecretValues()),  # noqa: E731
                              before_effect=lambda: None)
        if ends == "done":
            assert run().output == {"reference": "R-1"}
        else:
            with pytest.raises(TargetServerError) as caught:
                run()
            assert caught.value.method == "POST" and not caught.value.retried_in_place
    finally:
        bot.close()
    assert FormSite.posts == min(failures, retries_allowed) + 1, "the form was posted again once per start again"
    assert retries("post-form") - before == min(failures, retries_allowed)
