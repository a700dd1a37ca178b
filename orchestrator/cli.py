"""The ``autoclerk`` command line.

Every mistake a user can make (a wrong flag, a missing file, a malformed workflow, an unreadable CSV, a
broker that is down) ends as one line on standard error and a non-zero exit, never a traceback
(``AUTOCLERK_DEBUG=1`` shows the traceback of an unexpected error).

Exit codes: 0 success; 1 a run that left cases unfinished; 2 a usage or input error; 3 a service
(broker, ledger, browser) is unavailable; 4 an unexpected internal error.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import click

from bots import BrowserNotFoundError, find_chromium
from monitoring import BOT_SLOTS, REGISTRY, configure_logging, disable_metrics, serve_metrics
from workflows import CasesFileError, WorkflowError, WorkflowFileError, load_workflow

from .errors import EXIT_INTERNAL, EXIT_SERVICE, EXIT_UNFINISHED, EXIT_USAGE, BrokerError, LedgerError, UsageError
from .errors import echo_error as _err

EXAMPLE_WORKFLOW = Path(__file__).resolve().parent.parent / "workflows" / "examples" / "change_of_address.yaml"


def _settings(**flags: Any) -> Any:
    from pydantic import ValidationError

    from .settings import load_settings

    try:
        return load_settings(**flags)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "settings"
        raise UsageError(f"setting '{field}' (flag --{field.replace('_', '-')} or AUTOCLERK_{field.upper()}): "
                         f"{err['msg'].removeprefix('Value error, ')}") from None


# -- shared options -----------------------------------------------------------------------------------
def _common(func: Any) -> Any:
    for option in reversed([
        click.option("--broker", "broker_url", help="amqp://… for RabbitMQ; default: embedded (no server)."),
        click.option("--ledger", "ledger_url", help="SQLAlchemy URL of the ledger (default sqlite:///autoclerk-ledger.db)."),
        click.option("--concurrency", type=click.IntRange(1, 64), help="Transactions in flight per worker process."),
        click.option("--chromium", "chromium_path",
                     help="Chromium executable, 'headless-shell' or 'system' (default: the headless shell if installed, "
                          "else the system Chromium)."),
    ]):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="autoclerk")
def cli() -> None:
    """Autoclerk: robotic process automation for mass-repetitive back-office work."""


# -- run ----------------------------------------------------------------------------------------------
@cli.command()
@click.argument("workflow", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--cases", "cases_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="CSV (or .jsonl) file of cases.")
@_common
@click.option("--system", "systems", multiple=True, metavar="NAME=URL", help="Base URL of a target system (repeatable).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), help="Stop waiting after this many seconds.")
@click.option("--priority", type=click.IntRange(-100, 100), default=0, show_default=True,
              help="Higher runs first where the ledger orders work.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
def run(workflow: Path, cases_path: Path, as_json: bool, timeout_s: float | None, priority: int, **flags: Any) -> None:
    """Hand a batch of cases off to WORKFLOW and wait until every case has an outcome."""
    settings = _settings(**flags)
    summary = run_batch(settings, workflow, cases_path, as_json=as_json, timeout_s=timeout_s, priority=priority)
    _finish(summary, as_json)


def _finish(summary: Any, as_json: bool) -> None:
    out = sys.stdout
    summary.print_text(out)
    if as_json:
        out.write(summary.json_line() + "\n")
    out.flush()
    if not summary.accounted:
        sys.exit(EXIT_UNFINISHED)


def run_batch(settings: Any, workflow_path: Path, cases_path: Path, *, as_json: bool = False,
              timeout_s: float | None = None, extra_workers: int = 0, priority: int = 0) -> Any:
    """Hand off, process (in this process when embedded), wait, and return the :class:`Summary`."""
    from .celery_app import make_celery
    from .embedded import embedded_worker
    from .handoff import hand_off, wait_for_batch
    from .publisher import Publisher
    from .ledger import Ledger
    from .runtime import Runtime, set_runtime
    from .summary import Summary

    configure_logging(json=settings.log_json, level=settings.log_level)
    loaded = load_workflow(workflow_path)
    if loaded.definition.part:
        raise UsageError(f"{workflow_path}: is a part (part: true), run only through 'call' from another workflow")
    if not cases_path.exists():
        raise CasesFileError(f"{cases_path}: no such cases file")
    if settings.embedded and settings.bot == "chromium":
        find_chromium(settings.chromium_path)  # a missing browser is one clear error before anything is queued
    ledger = Ledger(settings.ledger_url)
    app = make_celery(settings)
    publisher = Publisher(app, ledger, settings.ids_per_message)
    runtime = Runtime(settings, ledger)
    started = time.monotonic()
    try:
        with embedded_worker(app, settings.concurrency) if settings.embedded else nullcontext():
            set_runtime(runtime)
            receipt = hand_off(ledger, publisher, loaded, cases_path, priority=priority, on_rejection=lambda rejection:
                               click.echo(f"{cases_path}: {rejection} (not queued)", err=True))
            with _progress(receipt.waiting, enabled=not as_json) as update:
                try:
                    counts = wait_for_batch(ledger, publisher, receipt.batch_id, timeout_s=timeout_s,
                                            on_progress=update)
                except TimeoutError as exc:
                    _err(f"{exc}; run the same command again to resume")
                    counts = ledger.counts(receipt.batch_id)
    finally:
        set_runtime(None)
        runtime.close()
    summary = Summary.of(receipt, counts, time.monotonic() - started)
    summary.extra["ledger"] = settings.ledger_url
    return summary


@contextmanager
def _progress(total: int, *, enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield lambda counts: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .ledger import TERMINAL

    console = Console(stderr=True)
    columns = (TextColumn("[bold]cases"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[detail]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False, refresh_per_second=5) as progress:
        task = progress.add_task("cases", total=max(total, 1), detail="")

        def update(counts: dict[str, int]) -> None:
            finished = sum(counts[s] for s in TERMINAL)
            progress.update(task, completed=finished, detail=(
                f"done {counts['done']} · to a person {counts['business_exception']} · failed {counts['failed']} "
                f"· retrying {counts['retry_scheduled']}"))

        yield update


# -- demo ---------------------------------------------------------------------------------------------
@cli.command()
@click.option("--cases", "count", type=click.IntRange(1, 1_000_000), default=100, show_default=True,
              help="How many cases to generate.")
@click.option("--portal-url", help="Use the demo portal at this URL instead of starting one.")
@_common
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
    settings = _settings(**flags)
    os.environ.setdefault("AUTOCLERK_SECRET_PORTAL_PASSWORD", settings.portal_password.get_secret_value())
    click.echo(f"Demo: {count} cases ({invalid} the portal will refuse) in {workdir}", err=True)
    with (nullcontext(None) if portal_url else portal_process(password=os.environ["AUTOCLERK_SECRET_PORTAL_PASSWORD"])) as portal:
        url = portal_url or portal.url
        settings = settings.model_copy(update={"systems": {"portal": url}})
        click.echo(f"Demo portal at {url}", err=True)
        with _worker_processes(settings, workers) if not settings.embedded else nullcontext():
            summary = run_batch(settings, EXAMPLE_WORKFLOW, cases_path, as_json=as_json)
        try:
            submissions = httpx.get(f"{url}/api/export", timeout=30).json()
        except httpx.HTTPError as exc:
            raise BrokerError(f"the demo portal at {url} did not answer its export ({exc})") from None
    summary.extra["portal_submissions"] = len(submissions)
    summary.extra["workdir"] = str(workdir)
    _finish(summary, as_json)


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


# -- worker -------------------------------------------------------------------------------------------
@cli.command()
@_common
@click.option("--system", "systems", multiple=True, metavar="NAME=URL", help="Base URL of a target system (repeatable).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="Serve /metrics on 127.0.0.1:PORT.")
def worker(**flags: Any) -> None:
    """Consume transactions from RabbitMQ and run them in bots (Ctrl-C stops it gracefully)."""
    from .celery_app import make_celery
    from .ledger import Ledger
    from .runtime import Runtime, set_runtime

    settings = _settings(**flags)
    if settings.embedded:
        raise UsageError("a worker needs a broker to consume from: pass --broker amqp://… or set AUTOCLERK_BROKER_URL")
    configure_logging(json=settings.log_json, level=settings.log_level)
    if settings.bot == "chromium":
        find_chromium(settings.chromium_path)
    runtime = Runtime(settings, Ledger(settings.ledger_url))
    set_runtime(runtime)
    if not settings.metrics:
        disable_metrics()
    elif settings.metrics_port is not None:
        from .metrics import BrokerCollector, LedgerCollector

        BOT_SLOTS.set(settings.concurrency)
        REGISTRY.register(LedgerCollector(runtime.ledger, settings.target_transactions, settings.rate_window_s))
        REGISTRY.register(BrokerCollector(settings.broker_url))
        serve_metrics(settings.metrics_port, settings.metrics_host)
    app = make_celery(settings)
    from .celery_app import declare_queues
    from .ledger.casework import Casework
    from .publisher import Publisher, Sweeper

    declare_queues(app)
    casework, started = Casework(runtime.ledger), time.time()
    sweeper = Sweeper(Publisher(app, runtime.ledger, settings.ids_per_message), settings.sweep_interval_s,
                      heartbeat=lambda: casework.heartbeat(runtime.owner, "worker", settings.concurrency, started))
    sweeper.start()
    try:
        import socket

        app.Worker(hostname=f"autoclerk-{os.getpid()}@{socket.gethostname()}", pool_cls="threads",
                   concurrency=settings.concurrency, loglevel=settings.log_level, quiet=True,
                   without_mingle=True, without_gossip=True).start()
    finally:
        sweeper.stop()
        runtime.close()


# -- portal, cases, validate --------------------------------------------------------------------------
@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--latency-ms", type=click.IntRange(0, 600_000), default=0, help="Added to every page request.")
@click.option("--error-rate", type=click.FloatRange(0, 1), default=0.0, help="Fraction of page requests answered 503.")
@click.option("--hang-rate", type=click.FloatRange(0, 1), default=0.0, help="Fraction of page requests that hang.")
def portal(host: str, port: int, latency_ms: int, error_rate: float, hang_rate: float) -> None:
    """Serve the demo portal (password from AUTOCLERK_PORTAL_PASSWORD, default demo-password)."""
    from demo_portal import Faults, serve

    settings = _settings()
    serve(host, port, password=settings.portal_password.get_secret_value(),
          faults=Faults(latency_ms=latency_ms, error_rate=error_rate, hang_rate=hang_rate))


@cli.group()
def cases() -> None:
    """Work with case files."""


@cases.command("generate")
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


from .authoring import explain, reference, schema, validate  # noqa: E402 - the authors' commands
from .browsers import browsers  # noqa: E402 - the bots' browser
from .fault_report import faults  # noqa: E402 - the fault-injection suite's figures
from .operations import batches  # noqa: E402 - the operators' commands
from .service_commands import serve, users, workflows  # noqa: E402 - the hand-off service
from .status import status  # noqa: E402 - progress toward the target

for _command in (validate, schema, reference, explain, batches, browsers, status, serve, users, workflows, faults):
    cli.add_command(_command)


# -- entry point --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    """Run the CLI, turning every expected failure into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="autoclerk", standalone_mode=False)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "autoclerk"
        _err(f"{exc.format_message()} (see '{command} --help')")
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        _err("interrupted")
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _err(exc.format_message())
        sys.exit(EXIT_USAGE)
    except WorkflowFileError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(EXIT_USAGE)
    except WorkflowError as exc:  # a broken custom step package, a missing env value
        _err(str(exc))
        sys.exit(EXIT_USAGE)
    except (CasesFileError, UsageError) as exc:
        _err(str(exc))
        sys.exit(EXIT_USAGE)
    except (BrokerError, LedgerError, BrowserNotFoundError) as exc:
        _err(str(exc))
        sys.exit(EXIT_SERVICE)
    except KeyboardInterrupt:
        _err("interrupted; run the same command again to resume")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("AUTOCLERK_DEBUG"):
            raise
        from monitoring import redact_text

        _err(f"unexpected {type(exc).__name__}: {redact_text(str(exc)).splitlines()[0] if str(exc) else ''} "
             "(set AUTOCLERK_DEBUG=1 for the traceback)")
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
