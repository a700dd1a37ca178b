"""Choosing the Chromium to launch, and the flags it is launched with.

The order, first found wins:

1. ``AUTOCLERK_CHROMIUM_PATH`` set to a path: that executable (``system``: the system Chromium;
   ``headless-shell``: a headless shell, Playwright's or ours, never the full browser).
2. Playwright's own browser, when ``playwright install chromium`` (or ``--only-shell``) installed the revision
   the installed Playwright drives: its headless shell, else its Chromium. Playwright is tested against exactly
   that build, so it comes before ours, which is a different Chromium version.
3. The headless shell ``autoclerk browsers install`` unpacked from the npm registry (checksum-pinned): for
   machines where Playwright's download cannot reach its CDN.
4. The first of the usual system names (Debian's ``/usr/bin/chromium``).

``choose_chromium`` also says why, in a sentence ``autoclerk browsers which`` prints.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from . import playwright_browsers
from .errors import BrowserNotFoundError
from .shell import browsers_dir, installed_shell

SHELL = "headless-shell"
"""The setting's value that asks for a headless shell by name (Playwright's matching one, else ours)."""
SYSTEM = "system"
"""The setting's value that asks for the system Chromium even when a headless shell is installed."""

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

COMMON_ARGS = (
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)
"""Flags every launch gets; ``launch_args`` adds ``--no-sandbox`` where the sandbox cannot work."""

CONTAINER_MARKERS = ("/.dockerenv", "/run/.containerenv")
"""Files Docker and Podman put in their containers."""

OWNER_ENV = "AUTOCLERK_BOT_OWNER"
"""Set in every browser's environment to the owning worker's PID: the marker an orphan reaper looks for."""


@dataclass(frozen=True)
class ChromiumChoice:
    """The Chromium the bots launch, and why that one."""

    executable: str
    reason: str
    """One sentence: ``Playwright's chromium_headless_shell-1255 in /root/.cache/ms-playwright (matches …)``."""


def choose_chromium(configured: str | None = None) -> ChromiumChoice:
    """The Chromium to launch for a setting (a path, ``headless-shell``, ``system`` or ``None``), and why.

    Raises:
        BrowserNotFoundError: the configured path is not an executable, a headless shell was asked for and
            none is installed, or no Chromium is found at all.
    """
    if configured and configured not in (SHELL, SYSTEM):
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return ChromiumChoice(configured, f"{configured}, as AUTOCLERK_CHROMIUM_PATH (or --chromium) says")
        raise BrowserNotFoundError(
            f"Chromium not found at {configured} (AUTOCLERK_CHROMIUM_PATH); install it with "
            "'apt-get install -y chromium' or point the setting at an executable"
        )
    if configured == SYSTEM:
        if system := _system_chromium():
            return ChromiumChoice(system, f"the system Chromium {system}, as AUTOCLERK_CHROMIUM_PATH=system asks")
        raise BrowserNotFoundError(
            "Chromium not found: install it with 'apt-get install -y chromium' or set AUTOCLERK_CHROMIUM_PATH")
    asked = ", as AUTOCLERK_CHROMIUM_PATH=headless-shell asks" if configured == SHELL else ""
    pw = playwright_browsers.matching_browser()
    if pw and (configured is None or pw.name == playwright_browsers.HEADLESS_SHELL):
        return ChromiumChoice(str(pw.executable), f"Playwright's {pw.folder.name} in {pw.folder.parent} "
                                                  f"(matches Playwright {playwright_browsers.playwright_version()}){asked}")
    missing = _no_playwright_browser()
    if shell := installed_shell():
        return ChromiumChoice(str(shell), f"the headless shell installed by 'autoclerk browsers install' in "
                                          f"{browsers_dir()}{asked}: {missing}")
    if configured == SHELL:
        raise BrowserNotFoundError(
            "the headless shell is not installed (AUTOCLERK_CHROMIUM_PATH=headless-shell): run 'autoclerk browsers install'")
    if system := _system_chromium():
        return ChromiumChoice(system, f"the system Chromium {system}: {missing}, and no headless shell installed "
                                      f"by 'autoclerk browsers install' in {browsers_dir()}")
    raise BrowserNotFoundError(
        "Chromium not found: run 'autoclerk browsers install', install it with 'apt-get install -y chromium' "
        "or set AUTOCLERK_CHROMIUM_PATH")


def find_chromium(configured: str | None = None) -> str:
    """The Chromium executable to launch (``choose_chromium``'s executable).

    Raises:
        BrowserNotFoundError: as ``choose_chromium``.
    """
    return choose_chromium(configured).executable


class LaunchOptions(TypedDict):
    """Keyword arguments for Playwright's ``chromium.launch``: ``launch(executable_path=…, **launch_options())``."""

    args: list[str]
    chromium_sandbox: bool


def launch_options() -> LaunchOptions:
    """``launch_args()``, and Chromium's sandbox on wherever it can work.

    Playwright turns the sandbox off (adds ``--no-sandbox``) unless ``chromium_sandbox`` is true, so the
    flags alone cannot keep it on: every launch takes these options.
    """
    return LaunchOptions(args=launch_args(), chromium_sandbox=not sandbox_unavailable())


def launch_args() -> list[str]:
    """The flags to launch Chromium with: ``COMMON_ARGS``, and ``--no-sandbox`` only where it is needed.

    Chromium's sandbox refuses to start as root, and inside a container it usually lacks the user namespaces
    it needs; elsewhere the sandbox stays on.
    """
    return (["--no-sandbox"] if sandbox_unavailable() else []) + list(COMMON_ARGS)


def sandbox_unavailable() -> bool:
    """True when running as root or inside a container (Docker, Podman, systemd-nspawn)."""
    geteuid = getattr(os, "geteuid", None)  # POSIX only: Windows has no root
    if geteuid is not None and geteuid() == 0:
        return True
    return bool(os.environ.get("container")) or any(Path(marker).exists() for marker in CONTAINER_MARKERS)


def _no_playwright_browser() -> str:
    version = playwright_browsers.playwright_version()
    root = playwright_browsers.browsers_folder()
    expected = " or ".join(playwright_browsers.folder_name(name, revision)
                           for name, revision in playwright_browsers.expected_revisions().items())
    others = playwright_browsers.other_revisions(root)
    found = f" (found {', '.join(others)}, for another Playwright version)" if others else ""
    return f"no Playwright browser matching Playwright {version} ({expected}) in {root}{found}"


def _system_chromium() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name) if not os.path.isabs(name) else (name if os.access(name, os.X_OK) else None)
        if found:
            return found
    return None
