"""Every page a person reaches, read in real Chromium, speaks plain English: no raw field key, no regular
expression and no Python class name in caseworker-facing text.

What counts as caseworker-facing: the visible text of every page reachable by following links from the
start page, for the caseworker, the operator and the author, with a batch that has rejected rows, cases
handed back to a person and cases done. Two things are not checked, by rule:

- text inside ``<code>`` (the column names a cases file must use, such as ``case_ref``, are literal names a
  person types into a spreadsheet) and inside ``<pre>`` or ``.autoclerk-diff`` (a workflow's source, for
  authors and operators);
- detail for authors and operators: elements marked ``data-detail`` and the "Detail for authors" row of a
  case page (the step, the locator and the exception class a bot reported).

Everything else a caseworker, an operator or an author reads on these pages is checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from bots import launch_options
from demo_portal import PortalProcess
from tests.integration.handoff_rig import HandoffServer, handoff_server, sign_in
from tests.integration.test_handoff_e2e import row, write_cases
from workflows import load_workflow
from tests.conftest import EXAMPLE

KEYS = [name for name in load_workflow(EXAMPLE).definition.input if "_" in name]  # case_ref, address_line1, …
RAW_KEY = re.compile(r"\b(" + "|".join(map(re.escape, KEYS)) + r")\b")
REGEX = re.compile(r"\^[\[(A-Za-z]|\[[0-9A-Za-z]-[0-9A-Za-z]|\{\d+(,\d*)?\}|\\[dsw]|[\])]\$")
CLASS_NAME = re.compile(r"\b[A-Z]\w*[a-z](Exception|Error|Timeout)\b")  # BusinessException, CaseDataError, StepTimeout
NOT_CHECKED = "code, pre, .autoclerk-diff, [data-detail], script, style"


@pytest.fixture
def server(tmp_path: Path, portal: PortalProcess, chromium: str) -> Iterator[HandoffServer]:
    with handoff_server(tmp_path, portal) as running:
        yield running


@pytest.fixture
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, **launch_options())
        yield launched
        launched.close()


def readable_text(page: Page) -> str:
    """The page's visible text, without what the module docstring leaves out."""
    return page.evaluate("""selector => {
        const texts = [];
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          const parent = node.parentElement;
          if (!parent || parent.closest(selector)) continue;
          const row = parent.closest('.govuk-summary-list__row');
          const key = row && row.querySelector('.govuk-summary-list__key');
          if (key && key.textContent.trim() === 'Detail for authors') continue;
          texts.push(node.textContent);
        }
        return texts.join(' ');
    }""", NOT_CHECKED)


def problems_in(text: str) -> list[str]:
    found = [f"raw field key {m.group(0)!r}" for m in RAW_KEY.finditer(text)]
    found += [f"regular expression {m.group(0)!r}" for m in REGEX.finditer(text)]
    found += [f"class name {m.group(0)!r}" for m in CLASS_NAME.finditer(text)]
    return found


def crawl(page: Page, base: str) -> tuple[set[str], dict[str, list[str]]]:
    """Every page reachable by links from ``/`` (GET only, on this site, no downloads), and the problems by page."""
    seen: set[str] = set()
    todo, problems = ["/"], {}
    while todo and len(seen) < 200:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        page.goto(base + path)
        found = problems_in(readable_text(page))
        if found:
            problems[path] = found
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))"):
            url = urlparse(href)
            if url.netloc or not url.path.startswith("/") or url.path.startswith(("/static", "/api", "/sign-out")):
                continue
            if re.search(r"\.(csv|jsonl|png)$|/evidence/|/export", url.path):
                continue
            todo.append(url.path + (f"?{url.query}" if url.query else ""))
    return seen, problems


def test_no_page_shows_a_field_key_a_regular_expression_or_a_class_name(
        server: HandoffServer, browser: Browser, tmp_path: Path) -> None:
    assert problems_in("Enter case_ref like ^CASE-[0-9]{6}$ (BusinessException)")  # the checks do catch them
    cases = write_cases(tmp_path / "cases.csv", [
        row("CASE-300001"),
        row("CASE-300002", postcode="ZZ9 9XX"),     # the portal refuses it: handed back to a person
        row("BAD-1"),                               # breaks the pattern
        row("CASE-300003", country="FR"),           # not a country of the list
        row("CASE-300004", contact_method=""),      # a required field left empty
        row("CASE-300001"),                         # repeats row 1
    ])
    with server.api("alice") as api, open(cases, "rb") as fh:
        receipt = api.post("/api/batches", params={"workflow": "change-of-address"}, files={"file": fh}).json()
    assert receipt["accepted"] == 2 and receipt["rejected_total"] == 4, receipt
    reasons = [r["reason"] for r in receipt["rejected"]]
    assert reasons[:3] == ["Enter a case reference like CASE-000123",
                           "Country must be one of England (GB-ENG), Scotland (GB-SCT), Wales (GB-WLS), "
                           "Northern Ireland (GB-NIR)", "Select how to contact the customer"], reasons
    finished = server.wait_for_batch(receipt["batch_id"])
    assert finished["counts"]["business_exception"] == 1 and finished["counts"]["done"] == 1, finished
    with server.api("alice") as api:
        held = api.get(f"/api/batches/{receipt['batch_id']}/cases", params={"state": "business_exception"}).json()
    message = held[0]["error_message"]
    assert message.startswith("Postcode not recognised") and "There is a problem" not in message, message

    for user in ("alice", "olga", "arthur"):
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        page = context.new_page()
        sign_in(page, server, user)
        seen, problems = crawl(page, server.url)
        context.close()
        pages = {path.split("?")[0] for path in seen}
        expected = {"/workflows/change-of-address"} if user == "arthur" else {"/batches", f"/batches/{receipt['batch_id']}"}
        assert expected <= pages, (user, pages)
        if user == "alice":  # the caseworker's own pages, with the exception and the rejected rows
            assert {"/exceptions", f"/batches/{receipt['batch_id']}/rejections", "/hand-off",
                    "/hand-off/change-of-address/case", "/hand-off/change-of-address/batch"} <= pages, pages
            assert any(re.fullmatch(r"/cases/\d+/resolve", path) for path in pages), pages
        assert not problems, f"{user} reads developer text: {problems}"
