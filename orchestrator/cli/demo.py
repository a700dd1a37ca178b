"""The demo system's commands: ``autoclerk demo``, ``autoclerk portal`` and ``autoclerk cases generate`` (added
to the ``cases`` group by :mod:`orchestrator.cli`).

They are the only commands that import :mod:`demo_portal`, and only when they run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import click

from ..errors import BrokerError, UsageError
from .options import engine_options, settings_from_flags
from .run import finish, run_batch_with_progress

EXAMPLE_WORKFLOW = Path(__file__).resolve().parent.parent.parent / "workflows" / "examples" / "change_of_address.yaml"


@click.command()
@click.option("--cases", "count", type=click.IntRange(1, 1_000_000), default=100, show_default=True,
              help="How many cases to generate.")
@click.option("--portal-url", help="Use the demo portal at this URL instead of starting one.")
@engine_options
@click.option("--workers", type=click.IntRange(1, 16), default=2, show_default=True,
              help="With --broker: how many 'autoclerk worker' processes to start.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
def demo(count: int, portal_url: str | None, workers: int, as_json: bool, **flags: Any) -> None:
    """Generate COUNT cases and run them through real bots against the demo portal."""
    import httpx

    from demo_portal import generate_cases, portal_process

    workdir = Path("autoclerk-runs") / dt.datetime.now().strftime("demo-%Y%m%d-%H%M%S-%f")
    workdir.mkdir(parents=True, exist_ok=True)
    flags.setdefault("ledger_url", None)
    if flags["ledger_url"] is None:
        flags["ledger_url"] = f"sqlite:///{workdir / 'ledger.db'}"
    flags["artifacts_dir"] = workdir / "artifacts"
    cases_path = workdir / "cases.csv"
    invalid = generate_cases(cases_path, count)
    settings = settings_from_flags(**flags)
    os.environ.setdefault("AUTOCLERK_SECRET_PORTAL_PASSWORD", settings.portal_password.get_secret_value())
    click.echo(f"Demo: {count} cases ({invalid} the portal will refuse) in {workdir}", err=True)
    with (nullcontext(None) if portal_url else portal_process(password=os.environ["AUTOCLERK_SECRET_PORTAL_PASSWORD"])) as portal:
        url = portal.url if portal is not None else str(portal_url)
        settings = settings.model_copy(update={"systems": {"portal": url}})
        click.echo(f"Demo portal at {url}", err=True)
        with _worker_processes(settings, workers) if not settings.embedded else nullcontext():
            summary = run_batch_with_progress(settings, EXAMPLE_WORKFLOW, cases_path, as_json=as_json)
        try:
            submissions = httpx.get(f"{url}/api/export", timeout=30).json()
        except httpx.HTTPError as exc:
            raise BrokerError(f"the demo portal at {url} did not answer its export ({exc})") from None
    summary.extra["portal_submissions"] = len(submissions)
    summary.extra["workdir"] = str(workdir)
    finish(summary, as_json)


@contextmanager
def _worker_processes(settings: Any, count: int) -> Iterator[None]:
    env = {**os.environ, "AUTOCLERK_BROKER_URL": settings.broker_url, "AUTOCLERK_LEDGER_URL": settings.ledger_url,
           "AUTOCLERK_SYSTEMS": json.dumps(settings.systems),
           "AUTOCLERK_ARTIFACTS_DIR": str(settings.artifacts_dir)}
    procs = [subprocess.Popen([sys.executable, "-m", "orchestrator", "worker", "--concurrency", str(settings.concurrency)],
                              env=env) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--latency-ms", type=click.IntRange(0, 600_000), default=0, help="Added to every page request.")
@click.option("--error-rate", type=click.FloatRange(0, 1), default=0.0, help="Fraction of page requests answered 503.")
@click.option("--hang-rate", type=click.FloatRange(0, 1), default=0.0, help="Fraction of page requests that hang.")
@click.option("--lose-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Fraction of changes of address confirmed but never stored (the same ones every time).")
def portal(host: str, port: int, latency_ms: int, error_rate: float, hang_rate: float, lose_rate: float) -> None:
    """Serve the demo portal (password from AUTOCLERK_PORTAL_PASSWORD, default demo-password)."""
    from demo_portal import Faults, serve

    settings = settings_from_flags()
    serve(host, port, password=settings.portal_password.get_secret_value(),
          faults=Faults(latency_ms=latency_ms, error_rate=error_rate, hang_rate=hang_rate, lose_rate=lose_rate))


@click.command("generate")
@click.option("--count", type=click.IntRange(1, 100_000_000), default=100, show_default=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--invalid-rate", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Fraction of cases the demo portal will refuse.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--start", type=click.IntRange(1, 999_999), default=1, show_default=True, help="First case number.")
def cases_generate(count: int, out: Path, invalid_rate: float, seed: int, start: int) -> None:
    """Write COUNT demo cases for the change-of-address workflow as CSV."""
    from demo_portal import generate_cases

    try:
        invalid = generate_cases(out, count, invalid_rate=invalid_rate, seed=seed, start=start)
    except OSError as exc:
        raise UsageError(f"{out}: cannot be written ({exc.strerror})") from None
    click.echo(f"wrote {count} cases to {out} ({invalid} the portal will refuse)")
