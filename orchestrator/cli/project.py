"""``autoclerk init DIR``: a new project to start from, and ``autoclerk monitoring export DIR``: the Grafana
dashboard and the Prometheus alert rules (with their unit tests) from the installed package.

Both read what they write from the installed package (:mod:`importlib.resources`), so they work from a
wheel as from a checkout. The shipped runbook links are docs paths (``docs/monitoring.md#no-bots``);
``--runbook-base URL`` makes them URLs under where the docs are published.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlsplit

import click

from ..errors import UsageError

TEMPLATE = files("orchestrator.cli") / "project_template"
EXAMPLES = files("workflows") / "examples"
MONITORING = {"grafana/autoclerk.json": files("monitoring") / "grafana" / "autoclerk.json",
              "prometheus/alerts.yml": files("monitoring") / "prometheus" / "alerts.yml",
              "prometheus/alerts.test.yml": files("monitoring") / "prometheus" / "alerts.test.yml"}
"""What ``monitoring export`` writes: the file under DIR, and where it comes from in the package."""
DOCS = "docs/"
"""Where the shipped runbook links point: the docs folder of the repository."""
_RUNBOOK = re.compile(r"""(\brunbook:\s*["']?)""" + re.escape(DOCS))


def project_files(name: str, today: dt.date) -> dict[str, str]:
    """The files of a new project, by path under its folder. The workflows go in ``flows/``: a folder named
    ``workflows`` in the current directory would hide Autoclerk's own ``workflows`` package from
    ``python -m orchestrator`` run there."""
    in_two_weeks = (today + dt.timedelta(days=14)).isoformat()
    return {
        "README.md": TEMPLATE.joinpath("README.md").read_text(encoding="utf-8").replace("{name}", name),
        "cases.csv": TEMPLATE.joinpath("cases.csv").read_text(encoding="utf-8").replace("{in_two_weeks}", in_two_weeks),
        "secrets.example.json": TEMPLATE.joinpath("secrets.example.json").read_text(encoding="utf-8"),
        ".gitignore": TEMPLATE.joinpath("gitignore.txt").read_text(encoding="utf-8"),
        "flows/change_of_address.yaml": EXAMPLES.joinpath("change_of_address.yaml").read_text(encoding="utf-8"),
        "flows/sign_in.yaml": EXAMPLES.joinpath("sign_in.yaml").read_text(encoding="utf-8"),
    }


def write_new(folder: Path, contents: dict[str, str]) -> list[Path]:
    """Write each file under ``folder``; refuse (writing nothing) when any of them exists already."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: is a file; expected a folder to write into")
    taken = [folder / path for path in contents if (folder / path).exists()]
    if taken:
        raise UsageError(f"{taken[0]}: already exists; nothing was written (choose a new or empty folder)")
    written = []
    for path, text in contents.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def checked_runbook_base(base: str) -> str:
    """``base`` checked as the http(s) address the docs folder is published at, ending in one ``/``.

    Raises:
        UsageError: ``base`` is not an absolute http(s) URL, or has a query or fragment.
    """
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise UsageError(f"--runbook-base: '{base}' is not an http(s) address of the docs folder; expected one "
                         "like https://wiki.example/autoclerk/")
    return base.rstrip("/") + "/"


def with_runbook_base(path: str, text: str, base: str) -> str:
    """The monitoring file ``path`` with its docs links under ``base``: the ``runbook`` annotations of the rules
    and of their unit tests (so ``promtool test rules`` still passes), and the dashboard's links.

    Example: ``docs/monitoring.md#no-bots`` with base ``https://wiki.example/autoclerk/`` becomes
    ``https://wiki.example/autoclerk/monitoring.md#no-bots``.
    """
    if not path.endswith(".json"):
        return _RUNBOOK.sub(lambda m: m.group(1) + base, text)  # text, not YAML: the comments are kept
    dashboard = json.loads(text)
    for link in dashboard.get("links", []) + [lk for p in dashboard.get("panels", []) for lk in p.get("links", [])]:
        if link.get("url", "").startswith(DOCS):
            link["url"] = base + link["url"][len(DOCS):]
    return json.dumps(dashboard, indent=2) + "\n"


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def init(folder: Path) -> None:
    """Start a project in FOLDER: a sample workflow with a sign-in part, cases, a secrets example and a README."""
    name = folder.resolve().name or "autoclerk-project"
    for path in write_new(folder, project_files(name, dt.date.today())):
        click.echo(f"wrote {path}")
    click.echo(f"next: cd {folder} and follow README.md (validate, explain, run)")


@click.group()
def monitoring() -> None:
    """The Grafana dashboard and the Prometheus alert rules that come with Autoclerk."""


@monitoring.command("export")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--runbook-base", metavar="URL",
              help="Where the docs folder is published: runbook links become URL/monitoring.md#… "
                   "(default: docs paths, docs/monitoring.md#…).")
def export(folder: Path, runbook_base: str | None) -> None:
    """Write the Grafana dashboard and the alert rules with their unit tests into FOLDER (import the dashboard,
    load the rules into Prometheus, and check them with 'promtool test rules prometheus/alerts.test.yml')."""
    base = None if runbook_base is None else checked_runbook_base(runbook_base)
    contents = {path: source.read_text(encoding="utf-8") for path, source in MONITORING.items()}
    if base is not None:
        contents = {path: with_runbook_base(path, text, base) for path, text in contents.items()}
    for path in write_new(folder, contents):
        click.echo(f"wrote {path}")
