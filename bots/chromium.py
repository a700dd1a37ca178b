"""Finding the Chromium to launch, and the flags it is launched with.

``playwright install`` cannot download browsers on our machines, so the bots launch a Chromium by path:
the configured one; else the headless shell if ``autoclerk browsers install`` has installed it (the build
Playwright itself uses for headless work, about a third of the CPU per transaction); else the first of the
usual system names (Debian's ``/usr/bin/chromium``).
"""

from __future__ import annotations

import os
import shutil

from .errors import BrowserNotFoundError
from .shell import installed_shell

SHELL = "headless-shell"
"""The setting's value that asks for the installed headless shell by name."""
SYSTEM = "system"
"""The setting's value that asks for the system Chromium even when the headless shell is installed."""

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

LAUNCH_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)

OWNER_ENV = "AUTOCLERK_BOT_OWNER"
"""Set in every browser's environment to the owning worker's PID: the marker an orphan reaper looks for."""


def find_chromium(configured: str | None = None) -> str:
    """The Chromium executable to launch.

    Raises:
        BrowserNotFoundError: the configured path is not an executable, or none of ``CANDIDATES`` is found.
    """
    if configured == SHELL:
        if shell := installed_shell():
            return str(shell)
        raise BrowserNotFoundError(
            "the headless shell is not installed (AUTOCLERK_CHROMIUM_PATH=headless-shell): run 'autoclerk browsers install'")
    if not configured and (shell := installed_shell()):
        return str(shell)
    if configured and configured != SYSTEM:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        raise BrowserNotFoundError(
            f"Chromium not found at {configured} (AUTOCLERK_CHROMIUM_PATH); install it with "
            "'apt-get install -y chromium' or point the setting at an executable"
        )
    for name in CANDIDATES:
        found = shutil.which(name) if not os.path.isabs(name) else (name if os.access(name, os.X_OK) else None)
        if found:
            return found
    raise BrowserNotFoundError(
        "Chromium not found: install it with 'apt-get install -y chromium' or set AUTOCLERK_CHROMIUM_PATH"
    )
