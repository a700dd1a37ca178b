"""The browsers ``playwright install`` put on this machine, and whether they match the installed Playwright.

Playwright keeps its browsers in one folder (``$PLAYWRIGHT_BROWSERS_PATH``, else ``~/.cache/ms-playwright``
on Linux, ``~/Library/Caches/ms-playwright`` on macOS, ``%LOCALAPPDATA%\\ms-playwright`` on Windows), one
sub-folder per browser and revision (``chromium_headless_shell-1255``, ``chromium-1255``), each marked
``INSTALLATION_COMPLETE`` once unpacked. The revision a Playwright release drives is in its package's
``driver/package/browsers.json``; a folder of another revision belongs to another Playwright and is not used.
The executables' places inside a folder follow Playwright's registry (``EXECUTABLE_PATHS`` in its driver),
with the older layouts as well.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HEADLESS_SHELL = "chromium-headless-shell"
CHROMIUM = "chromium"
WANTED = (HEADLESS_SHELL, CHROMIUM)
"""Playwright's browsers the bots can launch, preferred first: the shell costs a third of the CPU."""

MARKER = "INSTALLATION_COMPLETE"

_EXECUTABLES: dict[str, dict[str, tuple[tuple[str, ...], ...]]] = {
    HEADLESS_SHELL: {
        "linux-x64": (("chrome-headless-shell-linux64", "chrome-headless-shell"), ("chrome-linux", "headless_shell")),
        "linux-arm64": (("chrome-headless-shell-linux-arm64", "chrome-headless-shell"), ("chrome-linux", "headless_shell")),
        "mac-x64": (("chrome-headless-shell-mac-x64", "chrome-headless-shell"), ("chrome-mac", "headless_shell")),
        "mac-arm64": (("chrome-headless-shell-mac-arm64", "chrome-headless-shell"), ("chrome-mac", "headless_shell")),
        "win-x64": (("chrome-headless-shell-win64", "chrome-headless-shell.exe"), ("chrome-win", "headless_shell.exe")),
    },
    CHROMIUM: {
        "linux-x64": (("chrome-linux64", "chrome"), ("chrome-linux", "chrome")),
        "linux-arm64": (("chrome-linux-arm64", "chrome"), ("chrome-linux", "chrome")),
        "mac-x64": (("chrome-mac-x64", "Google Chrome for Testing.app", "Contents", "MacOS", "Google Chrome for Testing"),
                    ("chrome-mac", "Chromium.app", "Contents", "MacOS", "Chromium")),
        "mac-arm64": (("chrome-mac-arm64", "Google Chrome for Testing.app", "Contents", "MacOS", "Google Chrome for Testing"),
                      ("chrome-mac", "Chromium.app", "Contents", "MacOS", "Chromium")),
        "win-x64": (("chrome-win64", "chrome.exe"), ("chrome-win", "chrome.exe")),
    },
}


@dataclass(frozen=True)
class PlaywrightBrowser:
    """One browser Playwright installed, of the revision the installed Playwright drives."""

    name: str
    """``chromium-headless-shell`` or ``chromium``."""
    revision: str
    folder: Path
    """Its folder in Playwright's browsers folder: ``.../chromium_headless_shell-1255``."""
    executable: Path


def playwright_version() -> str:
    """The installed Playwright package's version (``1.65.2``)."""
    return importlib.metadata.version("playwright")


def browsers_folder() -> Path:
    """Where Playwright installs browsers: what ``PLAYWRIGHT_BROWSERS_PATH`` says, else the platform's cache."""
    configured = os.environ.get("PLAYWRIGHT_BROWSERS_PATH")
    if configured == "0":  # Playwright's own convention: inside its package
        return _package() / ".local-browsers"
    if configured:
        return Path(configured).resolve()
    if sys.platform == "darwin":
        cache = Path.home() / "Library" / "Caches"
    elif sys.platform == "win32":
        cache = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "ms-playwright"


def expected_revisions() -> dict[str, str]:
    """The revision of each browser in ``WANTED`` the installed Playwright drives (its ``browsers.json``), in order."""
    described = json.loads((_package() / "browsers.json").read_text(encoding="utf-8"))
    revisions = {entry["name"]: str(entry["revision"]) for entry in described["browsers"]}
    return {name: revisions[name] for name in WANTED if name in revisions}


def folder_name(name: str, revision: str) -> str:
    """Playwright's folder for a browser's revision: ``chromium_headless_shell-1255``."""
    return f"{name.replace('-', '_')}-{revision}"


def matching_browser(root: Path | None = None) -> PlaywrightBrowser | None:
    """The preferred browser Playwright installed that matches the installed Playwright, or ``None``."""
    root = root or browsers_folder()
    for name, revision in expected_revisions().items():
        folder = root / folder_name(name, revision)
        if not (folder / MARKER).is_file():  # not installed, or its download never finished
            continue
        for parts in _EXECUTABLES[name].get(_host(), ()):
            executable = folder.joinpath(*parts)
            if executable.is_file() and (sys.platform == "win32" or os.access(executable, os.X_OK)):
                return PlaywrightBrowser(name, revision, folder, executable)
    return None


def other_revisions(root: Path | None = None) -> list[str]:
    """Folders of Chromium that Playwright installed for other Playwright versions (not used)."""
    root = root or browsers_folder()
    expected = {folder_name(name, revision) for name, revision in expected_revisions().items()}
    try:
        names = sorted(entry.name for entry in root.iterdir())
    except OSError:
        return []
    prefixes = tuple(folder_name(name, "") for name in WANTED)
    return [name for name in names if name.startswith(prefixes) and name not in expected]


def run_installer(timeout_s: float) -> str | None:
    """Run ``python -m playwright install chromium --only-shell`` for at most ``timeout_s`` seconds.

    Returns:
        ``None`` when it installed the headless shell the installed Playwright drives; otherwise what went
        wrong, as a phrase (``did not finish in 30 s``, ``failed (exit 1): Failed to download … : getaddrinfo ENOTFOUND …``).
    """
    command = [sys.executable, "-m", "playwright", "install", "chromium", "--only-shell"]
    with tempfile.TemporaryFile() as output:
        installer = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
        try:
            code = installer.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_tree(installer.pid)  # its Node driver and the download process it started
            installer.wait()
            return f"did not finish in {timeout_s:g} s"
        output.seek(0)
        said = output.read().decode("utf-8", "replace")
    if matching_browser() is not None:  # even if it then failed on ffmpeg (screen videos), which bots do not need
        return None
    if code != 0:
        return f"failed (exit {code}): {_reason(said)}"
    return f"finished, but no {folder_name(HEADLESS_SHELL, expected_revisions()[HEADLESS_SHELL])} is in {browsers_folder()}"


def _reason(output: str) -> str:
    """Why the installer failed, from its output: what it could not do, and the first underlying error."""
    lines = [line.strip() for line in output.replace("\x1b[2m", "").replace("\x1b[22m", "").splitlines()]
    errors = [line.removeprefix("Error: ") for line in lines if line.startswith("Error: ")]
    failed = next((error.removesuffix(", caused by") for error in errors if error.startswith("Failed to download")), "")
    cause = next((error for error in errors if not error.startswith(("Failed to", "Download failure"))), "")
    said = ": ".join(part for part in (failed, cause.split(" body ")[0]) if part)
    return (said or next((line for line in reversed(lines) if line), "no output"))[:300]


def _kill_tree(pid: int) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
        tree = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for process in tree:  # children first, so none is re-parented to init and missed
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def _package() -> Path:
    spec = importlib.util.find_spec("playwright")
    assert spec is not None and spec.origin is not None, "playwright is a dependency of bots"
    return Path(spec.origin).parent / "driver" / "package"


def _host() -> str:
    """Playwright's name for this platform (``linux-x64``), as its ``EXECUTABLE_PATHS`` is keyed."""
    arm = platform.machine().lower() in ("arm64", "aarch64")
    if sys.platform == "darwin":
        return "mac-arm64" if arm else "mac-x64"
    if sys.platform == "win32":
        return "win-x64"
    return "linux-arm64" if arm else "linux-x64"
