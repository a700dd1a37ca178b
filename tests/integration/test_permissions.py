"""Permissions by business area, end to end: the real service over HTTP, two teams owning different
workflows (set up with ``autoclerk teams add`` and ``autoclerk users limit``), a limited caseworker, a
limited operator and a limited author who reach only their team's work on the pages (in Chromium) and in
the API (another team's batch or case answers 404, as a missing one does), while unlimited users still
see everything."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from demo_portal import PortalProcess
from orchestrator.accounts import Accounts
from orchestrator.ledger import Ledger
from tests.conftest import autoclerk
from tests.integration.handoff_rig import PASSWORD, HandoffServer, handoff_server, sign_in
from tests.integration.test_handoff_e2e import browser, row, shots, write_cases  # noqa: F401 (fixtures)

LICENCES = b"""name: licence-check
version: 1
description: Check a trade licence (every case is handed to a person).
systems:
  portal: {}
input:
  case_ref: {type: string, pattern: "^LIC-[0-9]{4}$"}
steps:
  - fail: {message: "Licences are checked by hand"}
"""


@pytest.fixture
def server(tmp_path: Path, portal: PortalProcess, chromium: str) -> Iterator[HandoffServer]:
    with handoff_server(tmp_path, portal) as running:
        ledger = Ledger(running.ledger_url)
        try:
            accounts = Accounts(ledger.engine)
            for name, roles in (("cora", ["caseworker"]), ("otto", ["operator"]), ("ada", ["author"])):
                accounts.add_user(name, roles, PASSWORD)
        finally:
            ledger.close()
        yield running


def cli(server: HandoffServer, *args: str) -> str:
    done = autoclerk(*args, "--ledger", server.ledger_url)
    assert done.returncode == 0, done.stderr
    return done.stdout


def hand_off(server: HandoffServer, user: str, workflow: str, path: Path) -> str:
    with server.api(user) as api, open(path, "rb") as fh:
        answer = api.post("/api/batches", params={"workflow": workflow}, files={"file": fh})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["batch_id"])


def test_limited_users_see_hand_off_and_operate_only_their_teams_work_on_pages_and_api(
        server: HandoffServer, browser: Browser, tmp_path: Path, shots) -> None:  # type: ignore[no-untyped-def]
    with server.api("arthur") as api:
        published = api.post("/api/workflows", files={"files": ("licence_check.yaml", LICENCES, "application/yaml")})
    assert published.status_code == 201, published.text

    # Work of both teams, handed off before anyone is limited (cora's own change of address too).
    addresses = hand_off(server, "alice", "change-of-address", write_cases(tmp_path / "a.csv", [row("CASE-700001")]))
    coras_address = hand_off(server, "cora", "change-of-address",
                             write_cases(tmp_path / "c.csv", [row("CASE-700002", postcode="ZZ9 9XX")]))  # handed back
    (tmp_path / "l.csv").write_text("case_ref\nLIC-0001\nLIC-0002\n")
    licences = hand_off(server, "cora", "licence-check", tmp_path / "l.csv")
    for batch in (addresses, coras_address, licences):
        server.wait_for_batch(batch)
    with server.api("cora") as cora:
        assert {c["workflow"] for c in cora.get("/api/exceptions").json()} == {"change-of-address", "licence-check"}

    # The teams and the limits, on the command line; mistakes are one line each.
    assert cli(server, "teams", "add", "addresses", "--workflow", "change-of-address").strip() == \
        "team addresses owns change-of-address"
    cli(server, "teams", "add", "licensing", "--workflow", "licence-check")
    assert cli(server, "users", "limit", "cora", "--team", "licensing").strip() == "cora is limited to team licensing"
    cli(server, "users", "limit", "otto", "--team", "licensing")
    cli(server, "users", "limit", "ada", "--workflow", "licence-check")
    for args, message in ((("users", "limit", "cora", "--team", "ghosts"), "there is no team 'ghosts'"),
                          (("users", "limit", "nobody", "--team", "licensing"), "there is no user 'nobody'"),
                          (("teams", "add", "x1", "--workflow", "nope"), "there is no published workflow 'nope'")):
        refused = autoclerk(*args, "--ledger", server.ledger_url)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and message in refused.stderr, refused.stderr
    listed = cli(server, "users", "list")
    assert re.search(r"^cora .* limited to team licensing$", listed, re.M) and re.search(r"^olga .* all workflows$", listed, re.M)
    teams = [json.loads(line) for line in cli(server, "teams", "list", "--json").splitlines()]
    assert teams == [{"name": "addresses", "workflows": ["change-of-address"], "users": []},
                     {"name": "licensing", "workflows": ["licence-check"], "users": ["cora", "otto"]}]

    # The API: lists hold only the team's work; another team's batch or case is 404, like a missing one.
    with server.api("cora") as cora:
        assert [w["name"] for w in cora.get("/api/workflows").json()] == ["licence-check"]
        assert [b["id"] for b in cora.get("/api/batches").json()] == [licences]
        assert cora.get(f"/api/batches/{coras_address}").status_code == 404
        assert {c["workflow"] for c in cora.get("/api/exceptions").json()} == {"licence-check"}
        refused = cora.post("/api/cases", params={"workflow": "change-of-address"}, json=row("CASE-700003"))
        assert refused.status_code == 404 and "no published workflow" in refused.json()["detail"]
        licence_case, second_licence = [c["id"] for c in cora.get(f"/api/batches/{licences}/cases").json()]
        assert cora.post(f"/api/cases/{licence_case}/close", json={"note": "checked"}).status_code == 200
    with server.api("olga") as olga:
        address_case = olga.get(f"/api/batches/{addresses}/cases").json()[0]["id"]
        assert {b["id"] for b in olga.get("/api/batches").json()} == {addresses, coras_address, licences}
    with server.api("otto") as otto:
        assert {b["id"] for b in otto.get("/api/batches").json()} == {licences}
        assert otto.post(f"/api/batches/{addresses}/pause").status_code == 404
        assert otto.post(f"/api/cases/{address_case}/rerun", json={"reason": "x"}).status_code == 404
        assert otto.get(f"/api/cases/{address_case}").status_code == 404
        rerun = otto.post(f"/api/cases/{second_licence}/rerun", json={"reason": "the rules changed"})
        assert rerun.status_code == 200, rerun.text
        assert server.wait_for_case(otto, second_licence)["state"] == "business_exception"  # handed back again
        assert [b["id"] for b in otto.get("/api/operations").json()["batches"]] == [licences]
        assert otto.get("/api/audit").status_code == 403
    with server.api("ada") as ada:
        source = LICENCES.replace(b"name: licence-check", b"name: change-of-address")  # another team's name
        other = ada.post("/api/workflows", files={"files": ("change_of_address.yaml", source, "application/yaml")})
        assert other.status_code == 403 and "not change-of-address" in other.json()["detail"]
        assert ada.post("/api/workflows", files={"files": ("licence_check.yaml", LICENCES, "application/yaml")}).status_code == 201
        assert ada.get("/api/workflows/change-of-address/versions").status_code == 404
        assert ada.post("/api/workflows/change-of-address/rollback", json={"to": "1", "reason": "x"}).status_code == 404

    # The pages, in Chromium: the limited caseworker's hand-off page and batches list.
    page = browser.new_context(viewport={"width": 1100, "height": 800}).new_page()
    sign_in(page, server, "cora")
    expect(page.locator("main")).to_contain_text("licence-check")
    expect(page.locator("main")).not_to_contain_text("change-of-address")
    shots(page, "limited-hand-off")
    assert page.goto(f"{server.url}/hand-off/change-of-address/case").status == 404  # type: ignore[union-attr]
    page.goto(f"{server.url}/batches")
    expect(page.locator(f"a[href='/batches/{licences}']")).to_be_visible()
    expect(page.locator(f"a[href='/batches/{coras_address}']")).to_have_count(0)
    shots(page, "limited-batches")
    assert page.goto(f"{server.url}/batches/{coras_address}").status == 404  # type: ignore[union-attr]
    page.goto(f"{server.url}/exceptions")  # cora's own change-of-address exception is another team's work now
    expect(page.locator("main")).to_contain_text("LIC-0002")
    expect(page.locator("main")).not_to_contain_text("CASE-700002")

    # The limited operator: their batches only, no audit trail, and a form post on another team's batch is 404.
    page = browser.new_context(viewport={"width": 1100, "height": 800}).new_page()
    sign_in(page, server, "otto")
    expect(page.locator("#batches")).to_contain_text(licences)
    expect(page.locator("#batches")).not_to_contain_text(addresses)
    expect(page.get_by_role("link", name="Audit trail")).to_have_count(0)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    assert page.request.post(f"{server.url}/batches/{addresses}/pause", form={"csrf_token": token}).status == 404
    assert page.request.post(f"{server.url}/cases/{address_case}/operate/cancel", form={"csrf_token": token}).status == 404
    assert page.goto(f"{server.url}/audit").status == 403  # type: ignore[union-attr]
    assert page.goto(f"{server.url}/cases/{address_case}").status == 404  # type: ignore[union-attr]

    # An unlimited operator still sees every team's work; every change of a limit is in the audit trail.
    page = browser.new_context(viewport={"width": 1100, "height": 800}).new_page()
    sign_in(page, server, "olga")
    for batch in (addresses, coras_address, licences):
        expect(page.locator("#batches")).to_contain_text(batch)
    page.goto(f"{server.url}/audit?action=user.limit")
    expect(page.locator("main")).to_contain_text("Limited user cora to some workflows (teams: licensing)")
    with server.api("olga") as olga:
        actions = [(r["action"], r["object_id"]) for r in olga.get("/api/audit").json()]
    assert {("team.add", "addresses"), ("team.add", "licensing"), ("user.limit", "cora"), ("user.limit", "otto"),
            ("user.limit", "ada")} <= set(actions)
    cli(server, "users", "unlimit", "cora")
    with server.api("cora") as cora:
        assert {b["id"] for b in cora.get("/api/batches").json()} == {coras_address, licences}
    kept = autoclerk("teams", "remove", "licensing", "--ledger", server.ledger_url)
    assert kept.returncode == 2 and "otto are limited to team licensing" in kept.stderr, kept.stderr
    assert cli(server, "teams", "remove", "addresses").strip() == "team addresses removed"
