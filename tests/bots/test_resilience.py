"""The bot engine under faults, in real Chromium against the demo portal: sessions kept and renewed, a
crashed renderer, a killed browser, a hanging page, a changed element id, orphaned browsers; every test
ends with no Chromium of the engine left running."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bots import BotConfig, BotEngine, BotJob, BotResult, BrowserGone, PageCrashed, SessionExpired, StepTimeout
from bots.processes import browser_processes, reap_detached
from demo_portal import PortalProcess
from monitoring import REGISTRY
from tests.bots.test_engine import case, job
from tests.conftest import ROOT
from tests.processes import command_line
from workflows import SecretValues, load_workflow


def wait_until(condition: Callable[[], bool], timeout_s: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def cmdline(pid: int) -> list[str]:
    return command_line(pid).split()


def renderers(engine: BotEngine) -> list[int]:
    return [pid for pid in engine.browser_pids()
            if "--type=renderer" in (args := cmdline(pid)) and "--top-chrome-webui" not in args]  # pages' renderers


def browser_main(engine: BotEngine) -> list[int]:
    return [pid for pid in engine.browser_pids()  # the browser process itself: not a helper, not crashpad
            if (args := cmdline(pid)) and "crashpad" not in args[0] and not any(a.startswith("--type=") for a in args)]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def make_engine(chromium: str, portal: PortalProcess, tmp_path: Path) -> Iterator[Callable[..., BotEngine]]:
    made: list[BotEngine] = []

    def make(**overrides: object) -> BotEngine:
        config = dict(system_urls={"portal": portal.url}, chromium_path=chromium, artifacts_dir=tmp_path / "artifacts",
                      step_timeout_ms=3000, navigation_timeout_ms=4000, transaction_budget_s=30.0)
        engine = BotEngine(BotConfig(**{**config, **overrides}))  # type: ignore[arg-type]
        made.append(engine)
        return engine

    yield make
    for engine in made:
        marker = engine.marker
        engine.close()
        # No Chromium of the engine outlives it.
        wait_until(lambda: not browser_processes(marker), 10, "the engine's browser processes to end")


def in_background(engine: BotEngine, the_job: BotJob) -> tuple[threading.Thread, list[BaseException | object]]:
    return in_background_with(engine, the_job, lambda: None)


def in_background_with(engine: BotEngine, the_job: BotJob,
                       before_effect: Callable[[], None]) -> tuple[threading.Thread, list[BaseException | object]]:
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(engine.run(the_job, before_effect=before_effect))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def sessions(portal: PortalProcess) -> dict[str, int]:
    return httpx.get(f"{portal.url}/api/sessions").json()


def test_a_worker_signs_in_once_and_reuses_the_session_for_every_case(
        make_engine: Callable[..., BotEngine], portal: PortalProcess) -> None:
    engine = make_engine()
    threads = [in_background(engine, job(case(f"CASE-0002{n:02d}"))) for n in range(4)]  # four at once
    for thread, _ in threads:
        thread.join()
    assert all(not isinstance(outcome[0], BaseException) for _, outcome in threads), [o for _, o in threads]
    assert sessions(portal)["logins"] == 1
    assert {e["case_ref"] for e in httpx.get(f"{portal.url}/api/export").json()} == {f"CASE-0002{n:02d}" for n in range(4)}


def test_an_expired_session_is_signed_in_again_and_the_case_is_done(
        make_engine: Callable[..., BotEngine], portal: PortalProcess) -> None:
    engine = make_engine()
    engine.run(job(case("CASE-000301")), before_effect=lambda: None)
    expired = metric("autoclerk_bot_sessions_total", workflow="portal-sign-in", event="expired")
    httpx.delete(f"{portal.url}/api/sessions")  # the legacy system ends every session
    result = engine.run(job(case("CASE-000302")), before_effect=lambda: None)
    assert result.output["reference"].startswith("CHG-")
    assert sessions(portal)["logins"] == 2
    assert metric("autoclerk_bot_sessions_total", workflow="portal-sign-in", event="expired") == expired + 1


def test_a_session_that_ends_during_a_transaction_is_an_application_failure_and_renewed_next_time(
        make_engine: Callable[..., BotEngine], portal: PortalProcess, tmp_path: Path) -> None:
    engine = make_engine()
    engine.run(job(case("CASE-000311")), before_effect=lambda: None)
    (tmp_path / "open_case.yaml").write_text(textwrap.dedent("""\
        name: open-case
        version: 1
        systems: {portal: {}}
        input: {case_ref: {type: string}}
        at_most_once: true
        steps:
          - goto: /cases/{{ case.case_ref }}
          - wait_for: "#history"
    """))
    opener = load_workflow(tmp_path / "open_case.yaml")
    httpx.delete(f"{portal.url}/api/sessions")
    with pytest.raises(SessionExpired):
        engine.run(BotJob(opener, opener.definition.steps, {"case_ref": "CASE-000311"}, "CASE-000311", 1,
                          SecretValues()), before_effect=lambda: None)
    engine.run(job(case("CASE-000312")), before_effect=lambda: None)
    assert sessions(portal)["logins"] == 2


def test_a_crashed_renderer_is_an_application_failure_and_the_next_case_is_done(
        make_engine: Callable[..., BotEngine], portal: PortalProcess) -> None:
    engine = make_engine()
    httpx.put(f"{portal.url}/api/faults", json={"latency_ms": 800})  # slow pages: the crash lands mid-transaction
    thread, outcome = in_background(engine, job(case("CASE-000401")))
    wait_until(lambda: sessions(portal)["logins"] == 1, what="the bot to be signed in and working")
    killed = renderers(engine)
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    thread.join()
    assert killed, "the fault happened"
    assert isinstance(outcome[0], PageCrashed), outcome
    httpx.put(f"{portal.url}/api/faults", json={"latency_ms": 0})
    assert engine.run(job(case("CASE-000402")), before_effect=lambda: None).output["reference"].startswith("CHG-")
    assert engine.launches == 1  # a crashed page costs its context, not the browser
    assert [e["case_ref"] for e in httpx.get(f"{portal.url}/api/export").json()] == ["CASE-000402"]


def test_a_killed_browser_is_relaunched_and_the_next_case_is_done(
        make_engine: Callable[..., BotEngine], portal: PortalProcess) -> None:
    engine = make_engine()
    httpx.put(f"{portal.url}/api/faults", json={"latency_ms": 800})
    thread, outcome = in_background(engine, job(case("CASE-000501")))
    wait_until(lambda: sessions(portal)["logins"] == 1, what="the bot to be signed in and working")
    main = browser_main(engine)
    assert len(main) == 1
    os.kill(main[0], signal.SIGKILL)
    thread.join()
    assert isinstance(outcome[0], BrowserGone), outcome
    httpx.put(f"{portal.url}/api/faults", json={"latency_ms": 0})
    assert engine.run(job(case("CASE-000502")), before_effect=lambda: None).output["reference"].startswith("CHG-")
    assert engine.launches == 2
    assert metric("autoclerk_bot_browser_restarts_total", reason="disconnected") >= 1
    # What was left of the killed browser is ended: only the new browser's processes remain, and every one
    # of them descends from this process (none was left re-parented to init).
    wait_until(lambda: len(browser_main(engine)) == 1, 10, "one browser")
    assert reap_detached(engine.marker) == []


def test_a_hanging_page_times_out_as_an_application_failure(
        make_engine: Callable[..., BotEngine], portal: PortalProcess) -> None:
    engine = make_engine()
    httpx.put(f"{portal.url}/api/faults", json={"hang_rate": 1.0, "hang_s": 60})
    started = time.monotonic()
    with pytest.raises(StepTimeout):
        engine.run(job(case("CASE-000601")), before_effect=lambda: None)
    assert time.monotonic() - started < 30  # the navigation timeout, not the hang, decided
    httpx.put(f"{portal.url}/api/faults", json={"hang_rate": 0.0})
    assert engine.run(job(case("CASE-000602")), before_effect=lambda: None).output["reference"].startswith("CHG-")


def test_a_renamed_element_is_found_through_the_fallback_locator_and_counted_as_drift(
        make_engine: Callable[..., BotEngine], portal: PortalProcess) -> None:
    engine = make_engine()
    before = metric("autoclerk_locator_fallbacks_total", workflow="change-of-address", step_type="fill")
    httpx.put(f"{portal.url}/api/faults", json={"id_drift": 1})
    result = engine.run(job(case("CASE-000701")), before_effect=lambda: None)
    assert result.output["reference"].startswith("CHG-")
    assert metric("autoclerk_locator_fallbacks_total", workflow="change-of-address", step_type="fill") == before + 1


def test_a_browser_is_recycled_after_its_transaction_count(
        make_engine: Callable[..., BotEngine], portal: PortalProcess) -> None:
    engine = make_engine(recycle_after=2)
    for n in range(5):
        engine.run(job(case(f"CASE-0008{n:02d}")), before_effect=lambda: None)
    assert engine.launches == 3
    wait_until(lambda: len(browser_main(engine)) == 1, 10, "the retired browsers to close")
    assert sessions(portal)["logins"] == 1  # the session outlives the browser


def test_a_retired_browser_is_closed_when_its_last_transaction_ends_while_its_successor_launches(
        make_engine: Callable[..., BotEngine], monkeypatch: pytest.MonkeyPatch) -> None:
    """The soak's leak: a browser retired while a transaction still ran in it, whose transaction ended before
    the fresh browser had launched, was never closed (one more Chromium for every such recycle)."""
    from playwright.async_api import BrowserType

    engine = make_engine(recycle_after=1)
    at_submit, go = threading.Event(), threading.Event()

    def hold() -> None:
        at_submit.set()
        assert go.wait(30)

    first, first_outcome = in_background_with(engine, job(case("CASE-000811")), hold)
    assert at_submit.wait(30), "the first transaction reached its submit step"
    launch = BrowserType.launch

    async def launch_after_the_first_transaction_ended(self: BrowserType, **options: Any) -> Any:
        browser = await launch(self, **options)
        go.set()  # the first transaction, in the browser being retired, ends now, before this launch returns
        await asyncio.to_thread(first.join, 30)
        return browser

    monkeypatch.setattr(BrowserType, "launch", launch_after_the_first_transaction_ended)
    second, second_outcome = in_background(engine, job(case("CASE-000812")))
    second.join(60)
    first.join(1)
    assert [type(o) for o in first_outcome + second_outcome] == [BotResult, BotResult]
    assert engine.launches == 2
    wait_until(lambda: len(browser_main(engine)) == 1, 10, "the retired browser to close")


ORPHAN_SCRIPT = """
import sys, time
from bots import BotConfig, BotEngine, BotJob
from tests.bots.test_engine import LOADED, case, job
engine = BotEngine(BotConfig(system_urls={"portal": sys.argv[1]}))
engine.run(job(case("CASE-000901")), before_effect=lambda: None)
print("marker", engine.marker, flush=True)
time.sleep(300)
"""


def test_browsers_of_a_worker_killed_with_sigkill_are_ended_by_the_next_engine(
        make_engine: Callable[..., BotEngine], portal: PortalProcess) -> None:
    worker = subprocess.Popen([sys.executable, "-c", ORPHAN_SCRIPT, portal.url], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert worker.stdout is not None
        marker = next(line.split()[1] for line in worker.stdout if line.startswith("marker "))
        assert browser_processes(marker), "the worker's browser runs"
        # Held still while its worker dies, the browser cannot notice its pipe closing and quit by itself
        # (it sometimes does, which would leave no orphan to test): it stays behind, as on a host whose
        # worker was killed mid-transaction. The reaper's SIGKILL ends a stopped process like any other.
        for pid in browser_processes(marker):
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass  # a short-lived helper process that ended meanwhile
    finally:
        worker.kill()
        worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()
    wait_until(lambda: not os.path.exists(f"/proc/{worker.pid}"), 10, "the worker to be gone")
    assert browser_processes(marker), "the fault happened: its browser outlived it"
    engine = make_engine()
    engine.run(job(case("CASE-000902")), before_effect=lambda: None)  # a new engine starts and reaps
    wait_until(lambda: not browser_processes(marker), 10, "the orphans to end")


def test_a_failed_attempt_keeps_a_trace_only_when_tracing_is_switched_on(
        make_engine: Callable[..., BotEngine], tmp_path: Path) -> None:
    from bots import BusinessException

    for trace, ref in ((False, "CASE-001001"), (True, "CASE-001002")):
        engine = make_engine(trace=trace, artifacts_dir=tmp_path / f"trace-{trace}")
        with pytest.raises(BusinessException) as caught:
            engine.run(job(case(ref, postcode="ZZ9 9XX")), before_effect=lambda: None)
        kept = {Path(p).name for p in caught.value.evidence}  # type: ignore[attr-defined]
        assert {"failure.png", "failure.html"} <= kept
        assert ("trace.zip" in kept) is trace
        assert all(Path(p).is_file() for p in caught.value.evidence)  # type: ignore[attr-defined]


def test_evidence_older_than_the_retention_is_deleted(tmp_path: Path) -> None:
    from bots.evidence import prune_artifacts

    old, recent = tmp_path / "wf" / "CASE-1" / "attempt-1", tmp_path / "wf" / "CASE-2" / "attempt-1"
    not_an_attempt = tmp_path / "wf" / "CASE-1" / "attempt-1-kept"  # a folder someone made there by hand
    for folder in (old, recent, not_an_attempt):
        folder.mkdir(parents=True)
        (folder / "failure.png").write_bytes(b"png")
    week_ago = time.time() - 8 * 86400
    for folder in (old, not_an_attempt):
        os.utime(folder, (week_ago, week_ago))
    assert prune_artifacts(tmp_path, retention_days=7) == 1
    assert not old.exists() and (recent / "failure.png").exists() and (not_an_attempt / "failure.png").exists()


def test_a_run_with_its_own_folder_keeps_its_evidence_apart_from_the_attempts_other_runs(
        make_engine: Callable[..., BotEngine], tmp_path: Path) -> None:
    # An attempt that looks a submit up in place runs its lookup, and maybe its steps again: each run's
    # screenshot stays, in its own folder below the attempt's.
    from bots import BusinessException

    engine = make_engine(artifacts_dir=tmp_path)
    kept: dict[str | None, set[Path]] = {}
    for folder in (None, "run-2"):
        with pytest.raises(BusinessException) as caught:
            engine.run(dataclasses.replace(job(case("CASE-001003", postcode="ZZ9 9XX")), folder=folder),
                       before_effect=lambda: None)
        kept[folder] = {Path(p) for p in caught.value.evidence}  # type: ignore[attr-defined]
    attempt = next(iter(kept[None])).parent
    assert attempt.name == "attempt-1"
    assert {p.parent for p in kept["run-2"]} == {attempt / "run-2"}
    assert all(p.is_file() for p in kept[None] | kept["run-2"]), "the second run overwrote nothing"
