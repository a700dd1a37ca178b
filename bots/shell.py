"""Chromium's headless shell: the browser the bots prefer, installed from the npm registry.

Playwright runs headless work in ``chrome-headless-shell``, a build of Chromium without the browser's user
interface layer, but ``playwright install`` cannot download it on our machines. The same build is published
on the npm registry by ``@sparticuz/chromium`` (MIT, built from Chromium's source for serverless hosts), as
one brotli-compressed executable. ``install_shell`` fetches that package, checks it against the checksum
pinned here (a tampered registry or mirror is refused), and unpacks the executable under ``browsers_dir()``.

On this machine the shell spends about a third of the CPU Debian's full Chromium spends on the same
transaction (docs/bots.md), which is what lets several transactions run at once on two cores. It still
needs the shared libraries Debian's ``chromium`` package brings, so that package stays installed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

import brotli

from .errors import BrowserNotFoundError

PACKAGE = "@sparticuz/chromium"
VERSION = "153.0.0"
CHROMIUM_VERSION = "153.0.8010.0"
INTEGRITY = "sha512-jiGWqSvPMdu4+P9TilYqAR7yEGPEHINx+lCvE/NqNO/EHYzF/x1hUiI5T6ioVIt7dEy7n88byyT0vk+dnsgQwA=="
"""The npm registry's ``dist.integrity`` of the package version: the tarball must hash to it."""

BROWSERS_ENV = "AUTOCLERK_BROWSERS_PATH"
DEFAULT_REGISTRY = "https://registry.npmjs.org"
_MEMBER = "package/bin/chromium.br"
_CHUNK = 1 << 20


def browsers_dir() -> Path:
    """Where installed browsers live: ``$AUTOCLERK_BROWSERS_PATH``, else ``~/.cache/autoclerk/browsers``."""
    configured = os.environ.get(BROWSERS_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "autoclerk" / "browsers"


def shell_path(root: Path | None = None) -> Path:
    """Where the headless shell's executable is (or would be) installed."""
    return (root or browsers_dir()) / f"headless-shell-{VERSION}" / "chromium"


def installed_shell(root: Path | None = None) -> Path | None:
    """The installed headless shell's executable, or ``None`` when it is not installed."""
    path = shell_path(root)
    return path if path.is_file() and os.access(path, os.X_OK) else None


def shell_builds_here() -> bool:
    """Whether the package's build runs on this machine: it is built for Linux on x86-64 only."""
    return sys.platform.startswith("linux") and platform.machine().lower() in ("x86_64", "amd64")


def install_shell(root: Path | None = None, registry: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Path:
    """Download, verify and unpack the headless shell; returns its executable. Does nothing if installed.

    Args:
        root: the browsers folder (default ``browsers_dir()``).
        registry: the npm registry or a mirror of it (default ``$npm_config_registry``, else registry.npmjs.org).
        progress: called with (bytes received, bytes expected) while downloading.

    Raises:
        BrowserNotFoundError: this is not Linux on x86-64, the download failed, the checksum did not match, or
            the executable does not run.
    """
    target = shell_path(root)
    if installed_shell(root):
        return target
    if not shell_builds_here():
        raise BrowserNotFoundError(
            f"{PACKAGE} {VERSION} is built for Linux on x86-64 only, not {sys.platform} on {platform.machine()}: "
            "install Playwright's browser with 'playwright install chromium --only-shell' or set AUTOCLERK_CHROMIUM_PATH")
    registry = (registry or os.environ.get("npm_config_registry") or DEFAULT_REGISTRY).rstrip("/")
    url = f"{registry}/{PACKAGE}/-/{PACKAGE.split('/')[-1]}-{VERSION}.tgz"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        tarball = Path(tmp) / "package.tgz"
        _download(url, tarball, progress)
        unpacked = Path(tmp) / "chromium"
        with tarfile.open(tarball) as archive:
            member = archive.extractfile(_MEMBER)
            if member is None:
                raise BrowserNotFoundError(f"{url}: the package holds no {_MEMBER}")
            decompressor = brotli.Decompressor()
            with open(unpacked, "wb") as out:
                while chunk := member.read(_CHUNK):
                    out.write(decompressor.process(chunk))
        unpacked.chmod(0o755)
        version = browser_version(unpacked)
        if CHROMIUM_VERSION not in version:
            raise BrowserNotFoundError(f"{url}: unpacked a browser that says {version!r}, expected Chromium {CHROMIUM_VERSION}")
        os.replace(unpacked, target)  # atomic: a half-unpacked browser is never found
    return target


def _download(url: str, dest: Path, progress: Callable[[int, int], None] | None) -> None:
    algorithm, _, expected = INTEGRITY.partition("-")
    digest = hashlib.new(algorithm)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            received = 0
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
                if progress:
                    progress(received, total)
    except OSError as exc:  # URLError, timeouts and disk errors alike
        raise BrowserNotFoundError(f"could not download the headless shell from {url}: {exc}") from None
    if base64.b64encode(digest.digest()).decode() != expected:
        raise BrowserNotFoundError(f"{url}: checksum mismatch (expected {INTEGRITY}); refusing to install it")


def browser_version(executable: str | Path) -> str:
    """What a Chromium executable says of its version (``Chromium 153.0.8010.0``).

    Raises:
        BrowserNotFoundError: it does not run.
    """
    try:
        done = subprocess.run([str(executable), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrowserNotFoundError(f"{executable} does not run: {exc}") from None
    if done.returncode != 0:
        raise BrowserNotFoundError(
            f"{executable} does not run (exit {done.returncode}): {done.stderr.strip()[:200]}; "
            "it needs the libraries of Debian's chromium package: apt-get install -y chromium")
    return done.stdout.strip()
