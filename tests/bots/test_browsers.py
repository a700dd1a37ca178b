"""Which Chromium the bots launch, and installing the headless shell: a checksum-checked download.

Both browsers run a real case: the headless shell the README's set-up installs, and Debian's full
Chromium asked for by name, so neither path rots while the other is the default.
"""

from __future__ import annotations

import datetime as dt
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bots import BotConfig, BotEngine, BotJob, BrowserNotFoundError, find_chromium, launch_args, launch_options
from bots.shell import BROWSERS_ENV, PACKAGE, VERSION, install_shell, installed_shell, shell_path
from demo_portal import PortalProcess
from tests.conftest import EXAMPLE
from workflows import SecretValues, check_case, load_workflow


def test_the_installed_shell_is_preferred_and_system_asks_for_debians_chromium(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BROWSERS_ENV, str(tmp_path))
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "none"))  # no Playwright browser either
    with pytest.raises(BrowserNotFoundError, match="run 'autoclerk browsers install'"):
        find_chromium("headless-shell")
    assert find_chromium(None) == "/usr/bin/chromium"  # nothing installed: the system Chromium
    fake = shell_path()
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_chromium(None) == find_chromium("headless-shell") == str(fake)
    assert find_chromium("system") == "/usr/bin/chromium"
    with pytest.raises(BrowserNotFoundError, match="Chromium not found at /nowhere/chromium"):
        find_chromium("/nowhere/chromium")


@pytest.mark.parametrize(("root", "container", "marker", "sandboxed"), [
    (False, "", False, True), (True, "", False, False), (False, "podman", False, False), (False, "", True, False)])
def test_no_sandbox_is_added_only_for_root_or_inside_a_container(
        root: bool, container: str, marker: bool, sandboxed: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bots import chromium

    monkeypatch.setattr(chromium.os, "geteuid", lambda: 0 if root else 1000)
    monkeypatch.setenv("container", container)
    monkeypatch.setattr(chromium, "CONTAINER_MARKERS", (str(tmp_path / ".dockerenv"),))
    if marker:
        (tmp_path / ".dockerenv").touch()
    assert ("--no-sandbox" not in launch_args()) is sandboxed
    assert launch_args()[-6:] == list(chromium.COMMON_ARGS)
    assert launch_options() == {"args": launch_args(), "chromium_sandbox": sandboxed}  # Playwright's own switch too


def test_without_geteuid_as_on_windows_the_sandbox_stays_on_outside_containers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bots import chromium

    monkeypatch.delattr(chromium.os, "geteuid")
    monkeypatch.delenv("container", raising=False)
    monkeypatch.setattr(chromium, "CONTAINER_MARKERS", (str(tmp_path / ".dockerenv"),))
    assert launch_args() == list(chromium.COMMON_ARGS)
    assert launch_options()["chromium_sandbox"] is True


@pytest.fixture
def mirror() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A registry mirror on 127.0.0.1 serving whatever tarballs the test puts in its dict."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files
    server.shutdown()
    server.server_close()


def _tarball(member: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("package/bin/chromium.br")
        info.size = len(member)
        archive.addfile(info, io.BytesIO(member))
    return buffer.getvalue()


def test_a_tarball_that_does_not_match_the_pinned_checksum_is_refused_and_nothing_is_installed(
        mirror: tuple[str, dict[str, bytes]], tmp_path: Path) -> None:
    url, files = mirror
    files[f"/{PACKAGE}/-/chromium-{VERSION}.tgz"] = _tarball(b"#!/bin/sh\necho 'Chromium 153.0.8010.0'\n")
    with pytest.raises(BrowserNotFoundError, match="checksum mismatch.*refusing to install it"):
        install_shell(tmp_path, url)
    assert installed_shell(tmp_path) is None
    assert list(tmp_path.rglob("*")) == [shell_path(tmp_path).parent]  # the download was cleaned away


def test_an_unreachable_registry_is_one_clear_error(tmp_path: Path, mirror: tuple[str, dict[str, bytes]]) -> None:
    url, _files = mirror  # serves 404 for everything
    with pytest.raises(BrowserNotFoundError, match=f"could not download the headless shell from {url}.*404"):
        install_shell(tmp_path, url)


LOADED = load_workflow(EXAMPLE)


@pytest.mark.parametrize("browser", ["headless-shell", "system"])
def test_a_case_is_done_in_either_browser(browser: str, portal: PortalProcess, tmp_path: Path) -> None:
    row = {"case_ref": "CASE-000301", "address_line1": "1 High Street", "city": "Leeds", "postcode": "LS1 4AB",
           "country": "GB-ENG", "contact_method": "post", "effective_date": dt.date.today().isoformat()}
    engine = BotEngine(BotConfig(system_urls={"portal": portal.url}, chromium_path=browser, artifacts_dir=tmp_path))
    try:
        case = check_case(LOADED.definition.input, row, 1)
        result = engine.run(BotJob(LOADED, LOADED.definition.steps, case, row["case_ref"], 1, SecretValues()),
                            before_effect=lambda: None)
    finally:
        engine.close()
    export = httpx.get(f"{portal.url}/api/export").json()
    assert [s["your_ref"] for s in export] == ["CASE-000301"]
    assert result.output == {"reference": export[0]["confirmation"]}


def test_the_pinned_package_is_refused_before_any_download_where_its_build_cannot_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bots import shell

    monkeypatch.setattr(shell.platform, "machine", lambda: "arm64")
    with pytest.raises(BrowserNotFoundError, match="built for Linux on x86-64 only, not linux on arm64: install "
                                                   "Playwright's browser with 'playwright install chromium --only-shell'"):
        install_shell(tmp_path, "http://127.0.0.1:9")  # nothing listens there: refused before connecting
    assert list(tmp_path.iterdir()) == []
