"""Server errors retried in place, end to end: ``autoclerk run`` in real Chromium against the demo portal with
its 5xx knobs on. A 5xx on a page that submits nothing is retried within the attempt (the case does not go
back to the queue); a page that always fails still ends its case; a 5xx on the submitting request takes the
lookup path, within the same attempt, and the portal holds exactly one change per case."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import httpx

from demo_portal import PortalProcess, generate_cases
from tests.conftest import EXAMPLE, autoclerk

RETRIED = "server error retried in place"
LOOKED_UP = "server error on a submit; the change is looked up in place"


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def _workflow(tmp_path: Path, max_attempts: int = 3) -> Path:
    """The change-of-address example (and the sign-in part it calls), with ``max_attempts`` attempts per case."""
    for name in ("change_of_address.yaml", "sign_in.yaml"):
        text = (EXAMPLE.parent / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace("max_attempts: 3", f"max_attempts: {max_attempts}"), encoding="utf-8")
    return tmp_path / "change_of_address.yaml"


def _run(portal: PortalProcess, tmp_path: Path, workflow: Path, count: int, *, retries: int, start: int) -> tuple[dict, list[dict]]:
    """Run ``count`` valid cases; return the run's summary and its JSON log lines."""
    cases = tmp_path / "cases.csv"
    generate_cases(cases, count, invalid_rate=0.0, seed=start, start=start)
    result = autoclerk("run", str(workflow), "--cases", str(cases), "--ledger", f"sqlite:///{tmp_path / 'ledger.db'}",
                       "--system", f"portal={portal.url}", "--concurrency", "2", "--json", cwd=tmp_path,
                       env={"AUTOCLERK_SERVER_ERROR_RETRIES": str(retries), "AUTOCLERK_SERVER_ERROR_WAIT_S": "0.05",
                            "AUTOCLERK_RETRY_BASE_S": "0.2", "AUTOCLERK_LOG_JSON": "true", "AUTOCLERK_LOG_LEVEL": "INFO",
                            "AUTOCLERK_SWEEP_INTERVAL_S": "0.5"})
    assert result.returncode in (0, 5), result.stderr[-3000:]
    return last_json(result.stdout), _log_lines(result.stderr)


def _log_lines(stderr: str) -> list[dict]:
    """The JSON log lines (Celery's own text lines, written by other threads, may share a line with one)."""
    decoder, found = json.JSONDecoder(), []
    for line in stderr.splitlines():
        at = line.find('{"')
        while at >= 0:
            try:
                value, end = decoder.raw_decode(line, at)
            except json.JSONDecodeError:
                at = line.find('{"', at + 1)
                continue
            if isinstance(value, dict) and "event" in value:
                found.append(value)
            at = line.find('{"', end)
    return found


def _events(tmp_path: Path) -> list[tuple[str, str, int]]:
    """(case, state, attempt) of every event of the ledger."""
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        return db.execute("select t.case_ref, e.state, e.attempt from transaction_events e "
                          "join transactions t on t.id = e.transaction_id").fetchall()


def _knobs(portal: PortalProcess, **values: object) -> None:
    assert httpx.put(f"{portal.url}/api/faults", json=values, timeout=10).status_code == 200


def _one_change_per_case(portal: PortalProcess, count: int) -> list[dict]:
    export = httpx.get(f"{portal.url}/api/export", timeout=10).json()
    made = Counter(entry["your_ref"] for entry in export)
    assert len(made) == count and set(made.values()) == {1}, f"lost or duplicated changes: {made}"
    return export


def test_a_batch_through_a_5xx_storm_is_done_with_only_its_submitting_requests_sent_back_to_the_queue(
        chromium: str, portal: PortalProcess, tmp_path: Path) -> None:
    # A quarter of all page requests answer 503. Attempts are many, so that a case whose submitting request
    # (or its confirmation page) answers 503 several times in a row still ends done: those take the lookup path.
    _knobs(portal, error_rate=0.25)
    summary, logs = _run(portal, tmp_path, _workflow(tmp_path, max_attempts=10), 12, retries=6, start=3100)
    _knobs(portal, error_rate=0.0)
    assert (summary["done"], summary["failed"], summary["unfinished"]) == (12, 0, 0), summary
    retried = [line for line in logs if line["event"] == RETRIED]
    assert retried, "the storm met pages that were retried in place"
    assert {line["how"] for line in retried} <= {"page loaded again", "steps started again"}
    assert all(line["case_ref"].startswith("CASE-") and line["retries"] == 6 for line in retried)
    events = _events(tmp_path)
    submitted = {(case, attempt) for case, state, attempt in events if state == "effect_started"}
    sent_back = [(case, attempt) for case, state, attempt in events if state == "retry_scheduled"]
    assert all(back in submitted for back in sent_back), \
        "only an attempt whose submit had begun went back to the queue; every other 5xx was retried in place"
    export = _one_change_per_case(portal, 12)
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        refs = dict(db.execute("select case_ref, result_ref from transactions").fetchall())
    assert {entry["your_ref"]: entry["confirmation"] for entry in export} == refs


def test_a_page_that_always_answers_5xx_ends_its_case_after_the_bounded_retries_of_each_attempt(
        chromium: str, portal: PortalProcess, tmp_path: Path) -> None:
    _knobs(portal, error_path="/cases/CASE-003202")  # that case's page; the rest of the portal answers
    summary, logs = _run(portal, tmp_path, _workflow(tmp_path), 3, retries=2, start=3201)
    _knobs(portal, error_path="")
    assert (summary["done"], summary["failed"], summary["unfinished"]) == (2, 1, 0), summary
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        state, error_class, history = db.execute(
            "select state, error_class, history from transactions where case_ref = 'CASE-003202'").fetchone()
    assert (state, error_class) == ("failed", "TargetServerError")
    assert [past["outcome"] for past in json.loads(history)] == ["retry_scheduled", "retry_scheduled", "failed"], \
        "each attempt spent itself after its retries in place, as any failure does"
    retried = Counter(line["case_ref"] for line in logs if line["event"] == RETRIED)
    assert retried["CASE-003202"] == 3 * 2, "two loads again per attempt, three attempts, no more"
    assert len(httpx.get(f"{portal.url}/api/export", timeout=10).json()) == 2


def test_a_5xx_after_the_submit_is_never_sent_again_and_the_lookup_in_place_finds_the_change_once(
        chromium: str, portal: PortalProcess, tmp_path: Path) -> None:
    # The portal records each change, then its confirmation page answers 503: the bot cannot know the change
    # was made, so the same attempt looks it up instead of submitting it again, and the case is done.
    _knobs(portal, error_path="/confirmation/")
    summary, logs = _run(portal, tmp_path, _workflow(tmp_path), 3, retries=3, start=3301)
    _knobs(portal, error_path="")
    assert (summary["done"], summary["failed"], summary["unfinished"]) == (3, 0, 0), summary
    assert not [line for line in logs if line["event"] == RETRIED], "a submitting step is never retried in place"
    assert len([line for line in logs if line["event"] == LOOKED_UP]) == 3
    events = Counter((state, attempt) for _, state, attempt in _events(tmp_path))
    assert events[("effect_started", 1)] == 3, "each case began its submit once"
    assert events[("retry_scheduled", 1)] == 0 and events[("effect_started", 2)] == 0, \
        "no case went back to the queue: its own attempt found the change"
    assert len([line for line in logs if line["event"] == "earlier submission found"]) == 3
    export = _one_change_per_case(portal, 3)
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        refs = dict(db.execute("select case_ref, result_ref from transactions").fetchall())
    assert {entry["your_ref"]: entry["confirmation"] for entry in export} == refs


def test_a_submit_that_answers_5xx_without_recording_is_looked_up_and_submitted_again_in_the_same_attempt(
        chromium: str, portal: PortalProcess, tmp_path: Path) -> None:
    # The first POST of one case's change answers 503 and the portal records nothing; the lookup in place
    # finds no change, so the attempt submits again, once, and the case is done on its first attempt.
    _knobs(portal, error_path="/cases/CASE-003402/address", error_method="POST", error_path_times=1)
    summary, logs = _run(portal, tmp_path, _workflow(tmp_path), 3, retries=3, start=3401)
    left = httpx.get(f"{portal.url}/api/faults", timeout=10).json()["error_path_times"]
    _knobs(portal, error_path="", error_method="", error_path_times=-1)
    assert left == 0, "the portal answered the one planned 503"
    assert (summary["done"], summary["failed"], summary["unfinished"]) == (3, 0, 0), summary
    looked = [line for line in logs if line["event"] == LOOKED_UP]
    assert [line["case_ref"] for line in looked] == ["CASE-003402"]
    assert [line["case_ref"] for line in logs if line["event"] == "nothing was submitted; submitting again in place"] \
        == ["CASE-003402"]
    events = Counter((case, state, attempt) for case, state, attempt in _events(tmp_path))
    assert events[("CASE-003402", "effect_started", 1)] == 2, "the submit began again within the first attempt"
    assert not [key for key in events if key[1] == "retry_scheduled"], "no case went back to the queue"
    export = _one_change_per_case(portal, 3)
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        refs = dict(db.execute("select case_ref, result_ref from transactions").fetchall())
        attempts = dict(db.execute("select case_ref, attempts from transactions").fetchall())
    assert {entry["your_ref"]: entry["confirmation"] for entry in export} == refs
    assert attempts["CASE-003402"] == 1
