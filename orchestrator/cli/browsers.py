"""``autoclerk browsers``: install the headless shell the bots prefer, and show which Chromium they launch."""

from __future__ import annotations

from pathlib import Path

import click

from bots import find_chromium
from bots.shell import VERSION, browser_version, install_shell, installed_shell


@click.group()
def browsers() -> None:
    """The Chromium the bots launch."""


@browsers.command("install")
@click.option("--registry", help="npm registry or mirror to download from (default: $npm_config_registry or registry.npmjs.org).")
@click.option("--path", "root", type=click.Path(file_okay=False, path_type=Path),
              help="Browsers folder (default: $AUTOCLERK_BROWSERS_PATH or ~/.cache/autoclerk/browsers).")
def browsers_install(registry: str | None, root: Path | None) -> None:
    """Install Chromium's headless shell (checksum-verified); prints its path on the last line."""
    if existing := installed_shell(root):
        click.echo(f"headless shell {VERSION} already installed", err=True)
        click.echo(str(existing))
        return
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
    """Print the Chromium the bots would launch, with its version."""
    executable = find_chromium(chromium_path)
    click.echo(f"{executable}\t{browser_version(executable)}")


def _stderr():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=True)
