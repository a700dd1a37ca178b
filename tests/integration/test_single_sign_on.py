"""Single sign-on against a real OpenID provider (the npm package ``oidc-provider``, started here on
127.0.0.1), through real Chromium: the provider's own login and consent pages, the role mapped from the
``groups`` claim, sign-out, and a token from another issuer refused.

``AUTOCLERK_UPDATE_SCREENSHOTS=1`` writes the sign-in page's screenshots to ``docs/images/handoff/``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from bots import launch_options
from tests.integration.signin_rig import CLIENT_ID, CLIENT_SECRET, bound_socket, oidc_provider, serving

ROOT = Path(__file__).parents[2]
ROLES = json.dumps({"benefits-team": ["caseworker"], "ops": ["operator"]})


def sso_env(issuer: str) -> dict[str, str]:
    return {"AUTOCLERK_OIDC_ISSUER": issuer, "AUTOCLERK_OIDC_CLIENT_ID": CLIENT_ID,
            "AUTOCLERK_OIDC_CLIENT_SECRET": CLIENT_SECRET, "AUTOCLERK_OIDC_ROLES": ROLES,
            "AUTOCLERK_OIDC_SCOPES": "openid profile groups", "AUTOCLERK_OIDC_LABEL": "your department account"}


@pytest.fixture
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, **launch_options())
        yield launched
        launched.close()


def shot(page: Page, tmp_path: Path, name: str) -> None:
    folder = ROOT / "docs" / "images" / "handoff" if os.environ.get("AUTOCLERK_UPDATE_SCREENSHOTS") else tmp_path
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def sign_in_at_provider(page: Page, login: str) -> None:
    """The provider's development login page, then its consent page."""
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("anything")
    page.locator("button[type=submit]").click()
    consent = page.locator("button[type=submit]", has_text="Continue")
    consent.wait_for()
    consent.click()


def test_a_person_signs_in_through_the_provider_gets_the_mapped_role_and_signs_out(
        tmp_path: Path, browser: Browser) -> None:
    sock = bound_socket()
    issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with serving(tmp_path, sso_env(issuer), users={"olga": ["operator"]}) as service, \
            oidc_provider(sock, f"{service.url}/sign-in/sso/callback",
                          {"carol": ["benefits-team"], "mallory": ["visitors"]}) as provider_issuer:
        assert provider_issuer == issuer
        page = browser.new_page()
        page.goto(f"{service.url}/hand-off")
        assert page.get_by_role("button", name="Sign in", exact=True).is_visible(), "local accounts stay available"
        shot(page, tmp_path, "sign-in-with-single-sign-on")
        page.get_by_role("button", name="Sign in with your department account").click()
        page.wait_for_url(f"{issuer}/**")
        sign_in_at_provider(page, "carol")
        page.wait_for_url(f"{service.url}/hand-off")
        assert "carol" in page.content()

        signed_in = service.audit("sign_in")
        assert [(r["actor"], r["detail"]["via"], r["detail"]["roles"]) for r in signed_in] == \
            [("carol", "single sign-on", ["caseworker"])]
        assert signed_in[0]["detail"]["issuer"] == issuer
        page.goto(f"{service.url}/operations")
        assert "This page is for operators" in page.content(), "the mapped role is caseworker only"

        page.goto(f"{service.url}/hand-off")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{service.url}/sign-in")
        assert [r["actor"] for r in service.audit("sign_out")] == ["carol"]
        page.goto(f"{service.url}/hand-off")
        page.wait_for_url(f"{service.url}/sign-in?next=/hand-off")

        # a person whose groups map to no role is refused, and nothing of theirs is kept
        other = browser.new_page()
        other.goto(f"{service.url}/sign-in")
        other.get_by_role("button", name="Sign in with your department account").click()
        sign_in_at_provider(other, "mallory")
        other.wait_for_url(f"{service.url}/sign-in/sso/callback**")
        assert "not in a group that may use this service" in other.content()
        failed = service.audit("sign_in.failed")
        assert [(r["actor"], r["detail"]["reason"]) for r in failed] == [("mallory", "no_role")]

        # the client secret never reaches the log
        assert CLIENT_SECRET not in service.log.read_text()


class _Discovery(BaseHTTPRequestHandler):
    """A discovery document that names this server as the issuer but points at another provider's endpoints:
    the provider's ID tokens then carry that provider's issuer."""

    document: dict = {}

    def do_GET(self) -> None:  # noqa: N802 - the handler's name is http.server's
        body = json.dumps(self.document).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_token_from_another_issuer_is_refused(tmp_path: Path, browser: Browser) -> None:
    front = ThreadingHTTPServer(("127.0.0.1", 0), _Discovery)
    configured = f"http://127.0.0.1:{front.server_address[1]}"
    thread = threading.Thread(target=front.serve_forever, daemon=True)
    thread.start()
    sock = bound_socket()
    try:
        with serving(tmp_path, sso_env(configured)) as service, \
                oidc_provider(sock, f"{service.url}/sign-in/sso/callback", {"carol": ["benefits-team"]}) as other:
            document = httpx.get(f"{other}/.well-known/openid-configuration").json()
            _Discovery.document = {**document, "issuer": configured}
            page = browser.new_page()
            page.goto(f"{service.url}/sign-in")
            page.get_by_role("button", name="Sign in with your department account").click()
            page.wait_for_url(f"{other}/**")
            sign_in_at_provider(page, "carol")
            page.wait_for_url(f"{service.url}/sign-in/sso/callback**")
            assert "could not be trusted" in page.content()
            assert page.context.cookies(service.url) == [] or all(
                c["name"] != "autoclerk_session" for c in page.context.cookies(service.url))
            assert service.audit("sign_in") == []
            assert [r["detail"]["reason"] for r in service.audit("sign_in.failed")] == ["invalid_claim"]

            # a discovery document that names another issuer is refused before anyone is sent to it
            _Discovery.document = document
            with serving(tmp_path, sso_env(configured)) as second:
                page.goto(f"{second.url}/sign-in")
                page.get_by_role("button", name="Sign in with your department account").click()
                page.wait_for_url(f"{second.url}/sign-in/sso**")
                assert "not the one configured" in page.content()
    finally:
        front.shutdown()
        front.server_close()
        thread.join()
