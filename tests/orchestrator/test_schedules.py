"""Recurring work over the ledger, on both backends: schedules checked before they are saved, Celery beat's
scheduler reading them on every tick (add, remove and run-now take effect without a restart), the one-beat
lease, and watched folders (stable files only, ``.part`` ignored, duplicates and unreadable files rejected
with a reason, results written once a batch finishes). The real beat, workers and bots are in
``tests/integration/test_schedules.py``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import crontab

from orchestrator import Ledger, Outcome, UsageError, load_settings
from orchestrator.queue import FolderWatch, LedgerScheduler, add_schedule, make_celery, remove_schedule, run_schedule_now
from orchestrator.ledger import TERMINAL
from workflows import parse_workflow

WORKFLOW = """
name: echo
version: 1
systems: {portal: {}}
input:
  case_ref: {type: string, required: true, pattern: "^R[0-9]+$"}
steps:
  - goto: {system: portal, url: /}
"""


class RecordingPublisher:
    """Stands in for the broker: marks what it is asked to publish as published."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.published: list[int] = []

    def publish(self, ids: list[int]) -> None:
        self.published += ids
        self.ledger.outbox.mark_published(ids)


class RecordingFiring:
    """Stands in for the hand-off: records which schedules fired."""

    def __init__(self) -> None:
        self.fired: list[str] = []

    def fire(self, schedule: dict[str, Any]) -> str:
        self.fired.append(schedule["name"])
        return f"fired {schedule['name']}"

    class folders:  # noqa: N801 - the shape of ScheduleFiring.folders
        @staticmethod
        def write_results() -> list[str]:
            return []


@pytest.fixture
def published(ledger: Ledger) -> Ledger:
    ledger.workflows.publish(parse_workflow(WORKFLOW), "tester", "echo.yaml")
    return ledger


def scheduler(ledger: Ledger, firing: Any, owner: str = "beat-1") -> LedgerScheduler:
    app = make_celery(load_settings(ledger_url=ledger.url))
    return LedgerScheduler(app=app, ledger=ledger, firing=firing, owner=owner, max_interval=1.0)


def tick_until(beat: LedgerScheduler, condition: Callable[[], bool], timeout_s: float = 10) -> None:
    """Beat's own loop: tick, sleep what beat asks (at most a second), until ``condition`` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the scheduler did not get there in time"
        time.sleep(max(0.0, min(beat.tick(), 1.0)))


# -- a person's changes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("flags", "message"), [
    ({"every": "30x"}, "--every: expected a number and a unit, s, m, h or d"),
    ({"every": "0s"}, "--every: expected a number and a unit"),
    ({"cron": "0 25 * * *"}, "--cron: '0 25 * * *' is not a cron expression Celery reads"),
    ({"cron": "0 7 * *"}, "--cron: expected five fields"),
    ({"cron": "0 7 * * MON", "every": "1s"}, "give exactly one of --cron"),
    ({"every": "1s", "workflow": "nope"}, "there is no published workflow 'nope'"),
    ({"every": "1s", "folder": "missing"}, "--folder missing: no such folder"),
    ({"every": "1s", "folder": None, "file": "cases.txt"}, "--file cases.txt: expected a .csv, .jsonl or .xlsx"),
    ({"every": "1s", "name": "two words"}, "schedule name 'two words': expected up to 64 letters"),
])
def test_a_bad_schedule_is_one_sentence_and_nothing_is_saved(published: Ledger, tmp_path: Path, flags: dict[str, Any],
                                                             message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    given = {"name": "nightly", "workflow": "echo", "folder": ".", "file": None, "cron": None, "every": None, **flags}
    with pytest.raises(UsageError, match=message.replace("*", r"\*").replace("(", r"\(")):
        add_schedule(published, given.pop("name"), given.pop("workflow"),
                     folder=Path(given["folder"]) if given["folder"] else None,
                     file=Path(given["file"]) if given["file"] else None, cron=given["cron"], every=given["every"], by="t")
    assert published.schedules.all() == []


def test_a_folder_schedule_gets_its_sub_folders_and_a_name_is_taken_once(published: Ledger, tmp_path: Path) -> None:
    added = add_schedule(published, "inbox-watch", "echo", folder=tmp_path, file=None, cron="0  7 * * MON-FRI",
                         every=None, by="cli:tester")
    assert (added["kind"], added["path"], added["cron"], added["every_s"]) == ("folder", str(tmp_path), "0 7 * * MON-FRI", None)
    assert all((tmp_path / sub).is_dir() for sub in ("inbox", "processed", "rejected"))
    with pytest.raises(UsageError, match="there already is a schedule named 'inbox-watch'"):
        add_schedule(published, "inbox-watch", "echo", folder=None, file=tmp_path / "c.csv", cron=None, every="1m", by="t")
    assert published.schedules.get("inbox-watch")["created_by"] == "cli:tester"  # type: ignore[index]
    with pytest.raises(UsageError, match="there is no schedule named 'other'"):
        remove_schedule(published, "other", by="t")
    remove_schedule(published, "inbox-watch", by="cli:tester")
    trail = [(r["actor"], r["action"], r["object_id"], r["origin"]) for r in published.audit.records(action="schedule.")]
    assert sorted(trail) == [("cli:tester", "schedule.add", "inbox-watch", "cli"),
                             ("cli:tester", "schedule.remove", "inbox-watch", "cli")]  # refusals leave no record
    published.audit.verify()


def test_cron_runs_in_the_configured_time_zone(ledger: Ledger) -> None:
    app = make_celery(load_settings(ledger_url=ledger.url, timezone="America/New_York"))
    assert app.timezone == ZoneInfo("America/New_York")
    with pytest.raises(Exception, match="'Mars/Base' is not a time zone; expected an IANA name such as Europe/London"):
        load_settings(timezone="Mars/Base")
    assert load_settings().timezone == "Europe/London"


# -- beat over the ledger -------------------------------------------------------------------------------
def test_beat_picks_up_an_added_schedule_and_drops_a_removed_one_without_a_restart(published: Ledger, tmp_path: Path) -> None:
    firing = RecordingFiring()
    beat = scheduler(published, firing)
    try:
        assert beat.tick() <= 1.0 and dict(beat.schedule) == {}
        add_schedule(published, "often", "echo", folder=tmp_path, file=None, cron=None, every="1s", by="t")
        tick_until(beat, lambda: firing.fired.count("often") >= 2)
        entry = beat.schedule["often"]
        assert entry.schedule.run_every.total_seconds() == 1
        assert published.schedules.get("often")["last_outcome"] == "fired often"  # type: ignore[index]
        remove_schedule(published, "often", by="t")
        beat.tick()
        assert "often" not in beat.schedule
        add_schedule(published, "morning", "echo", folder=tmp_path, file=None, cron="0 7 * * MON-FRI", every=None, by="t")
        beat.tick()
        assert isinstance(beat.schedule["morning"].schedule, crontab)
        assert beat.schedule["morning"].schedule.tz == ZoneInfo("Europe/London")
    finally:
        beat.close()


def test_run_now_fires_at_the_next_tick_and_says_when_no_beat_runs(published: Ledger, tmp_path: Path) -> None:
    add_schedule(published, "yearly", "echo", folder=tmp_path, file=None, cron="0 0 1 1 *", every=None, by="t")
    assert "no beat is running" in (run_schedule_now(published, "yearly", by="t") or "")
    firing = RecordingFiring()
    beat = scheduler(published, firing)
    try:
        beat.tick()
        assert firing.fired == ["yearly"]
        assert run_schedule_now(published, "yearly", by="t") is None  # a beat holds the lease now
        beat.tick()
        assert firing.fired == ["yearly", "yearly"]
        beat.tick()
        assert firing.fired == ["yearly", "yearly"]  # each request fires once
    finally:
        beat.close()
    assert published.schedules.lease_holder("beat") is None


def test_a_second_beat_on_the_same_ledger_stops_while_the_first_holds_the_lease(published: Ledger) -> None:
    first = scheduler(published, RecordingFiring(), owner="beat-a")
    second = scheduler(published, RecordingFiring(), owner="beat-b")
    try:
        first.tick()
        with pytest.raises(Exception, match=r"another beat \(beat-a\) holds this ledger's beat lease"):
            second.tick()
    finally:
        first.close()
    second.tick()  # given up: the next beat takes it
    assert published.schedules.lease_holder("beat") == "beat-b"
    second.close()


def test_a_restarted_beat_keeps_the_schedules_last_run(published: Ledger, tmp_path: Path) -> None:
    add_schedule(published, "hourly", "echo", folder=tmp_path, file=None, cron=None, every="1h", by="t")
    published.schedules.record_run("hourly", time.time() - 3599.5, "earlier")
    firing = RecordingFiring()
    beat = scheduler(published, firing)
    try:
        tick_until(beat, lambda: firing.fired == ["hourly"], timeout_s=5)  # due half a second after start, not in an hour
    finally:
        beat.close()


# -- watched folders ------------------------------------------------------------------------------------
@pytest.fixture
def folder(published: Ledger, tmp_path: Path) -> dict[str, Any]:
    watched = tmp_path / "watched"
    watched.mkdir()
    add_schedule(published, "drop", "echo", folder=watched, file=None, cron=None, every="1s", by="t")
    return published.schedules.get("drop")  # type: ignore[return-value]


def look(watch: FolderWatch, ledger: Ledger, schedule: dict[str, Any]) -> list[str]:
    loaded = ledger.workflows.load_published("echo")
    assert loaded is not None
    return watch.scan(schedule, loaded)


def test_a_dropped_file_is_taken_once_its_size_is_stable_and_a_part_file_only_once_renamed(
        published: Ledger, folder: dict[str, Any]) -> None:
    root = Path(folder["path"])
    publisher = RecordingPublisher(published)
    watch = FolderWatch(published, publisher)  # type: ignore[arg-type]
    growing = root / "inbox" / "cases.csv.part"
    growing.write_text("case_ref\nR1\n")
    assert look(watch, published, folder) == [] and look(watch, published, folder) == []  # .part: never taken
    growing.rename(root / "inbox" / "cases.csv")
    assert look(watch, published, folder) == []  # first look: remembered
    with open(root / "inbox" / "cases.csv", "a") as handle:
        handle.write("R2\n")  # still being written
    assert look(watch, published, folder) == []
    taken = look(watch, published, folder)
    assert len(taken) == 1 and "cases.csv → batch" in taken[0] and "(2 queued, 0 refused)" in taken[0]
    assert (root / "processed" / "cases.csv").exists() and not (root / "inbox" / "cases.csv").exists()
    assert len(publisher.published) == 2


def test_the_same_file_dropped_twice_is_rejected_naming_the_earlier_batch(published: Ledger, folder: dict[str, Any]) -> None:
    root = Path(folder["path"])
    watch = FolderWatch(published, RecordingPublisher(published))  # type: ignore[arg-type]
    (root / "inbox" / "monday.csv").write_text("case_ref\nR1\n")
    look(watch, published, folder)
    taken = look(watch, published, folder)
    batch = published.batches.recent(1)[0]["id"]
    assert batch in taken[0]
    (root / "inbox" / "monday-again.csv").write_text("case_ref\nR1\n")
    look(watch, published, folder)
    assert "It was not handed off again" in look(watch, published, folder)[0]
    reason = (root / "rejected" / "monday-again.csv.reason.txt").read_text()
    assert "as monday.csv" in reason and f"handed off as batch {batch}" in reason
    assert (root / "rejected" / "monday-again.csv").exists() and len(published.batches.recent(10)) == 1


def test_an_unreadable_or_foreign_file_is_rejected_with_a_reason_and_may_be_dropped_again_fixed(
        published: Ledger, folder: dict[str, Any]) -> None:
    root = Path(folder["path"])
    watch = FolderWatch(published, RecordingPublisher(published))  # type: ignore[arg-type]
    (root / "inbox" / "notes.txt").write_text("call Mrs Smith")
    (root / "inbox" / "wrong.csv").write_text("reference\nR1\n")
    (root / "inbox" / ".hidden.csv").write_text("case_ref\nR1\n")
    look(watch, published, folder)
    look(watch, published, folder)
    assert "not a file of cases" in (root / "rejected" / "notes.txt.reason.txt").read_text()
    reason = (root / "rejected" / "wrong.csv.reason.txt").read_text()
    assert reason.startswith("wrong.csv could not be handed off:") and "case_ref" in reason
    assert (root / "inbox" / ".hidden.csv").exists() and published.batches.recent(10) == []
    (root / "rejected" / "wrong.csv").rename(root / "inbox" / "wrong.csv")  # the same bytes, dropped again
    look(watch, published, folder)
    assert "could not be handed off" in look(watch, published, folder)[0]  # tried again, not called a duplicate


def test_the_results_are_written_beside_the_processed_file_once_its_batch_has_finished(
        published: Ledger, folder: dict[str, Any]) -> None:
    root = Path(folder["path"])
    publisher = RecordingPublisher(published)
    watch = FolderWatch(published, publisher)  # type: ignore[arg-type]
    (root / "inbox" / "cases.csv").write_text("case_ref\nR1\nR2\n")
    look(watch, published, folder)
    look(watch, published, folder)
    assert watch.write_results() == []  # not finished yet
    for tx_id in publisher.published:
        claim = published.transactions.claim(tx_id, "w1", lease_s=60)
        assert claim is not None
        published.transactions.finish_many([Outcome(claim, "done", result_ref=f"REF-{tx_id}")])
    batch = published.batches.recent(1)[0]
    assert all(state in TERMINAL for state, n in batch["counts"].items() if n)
    written = watch.write_results()
    assert written == [str(root / "processed" / "cases.results.csv")]
    lines = Path(written[0]).read_text().splitlines()
    assert lines[0].startswith("case_ref,state") and len(lines) == 3 and all(",done," in line for line in lines[1:])
    assert watch.write_results() == []  # written once


def test_a_firing_the_bots_cannot_run_hands_nothing_off_and_leaves_the_files_in_the_inbox(
        published: Ledger, folder: dict[str, Any]) -> None:
    """The check 'autoclerk run' makes before it queues anything is made at each firing: a missing secret or
    system URL never turns a dropped file into held cases."""
    from orchestrator.queue import ScheduleFiring, check_configuration

    root = Path(folder["path"])
    (root / "inbox" / "cases.csv").write_text("case_ref\nR1\n")
    publisher = RecordingPublisher(published)
    no_portal = load_settings(ledger_url=published.url)  # no system URL for 'portal'
    firing = ScheduleFiring(published, publisher, lambda loaded: check_configuration(loaded, no_portal))  # type: ignore[arg-type]
    for _ in range(3):  # however often it fires
        outcome = firing.fire(folder)
        assert outcome is not None and "cannot run here" in outcome and "system 'portal'" in outcome
        assert outcome.endswith("(the files wait in the inbox)")
    assert (root / "inbox" / "cases.csv").exists() and publisher.published == [] and published.batches.recent(5) == []
    fixed = load_settings(ledger_url=published.url, systems={"portal": "http://127.0.0.1:9"})
    firing = ScheduleFiring(published, publisher, lambda loaded: check_configuration(loaded, fixed))  # type: ignore[arg-type]
    firing.fire(folder)  # the first look at a file remembers its size
    taken = firing.fire(folder)
    assert taken is not None and "cases.csv → batch" in taken and publisher.published


def test_a_dropped_files_deadlines_without_an_offset_are_read_in_the_beats_time_zone(
        published: Ledger, folder: dict[str, Any]) -> None:
    from orchestrator.queue import ScheduleFiring

    root = Path(folder["path"])
    (root / "inbox" / "cases.csv").write_text("case_ref,_deadline\nR1,2026-07-01T09:00\n")
    firing = ScheduleFiring(published, RecordingPublisher(published), None, ZoneInfo("America/New_York"))  # type: ignore[arg-type]
    firing.fire(folder)  # the first look remembers the file's size
    firing.fire(folder)
    case = published.cases.by_ref("echo", "R1")
    assert case is not None
    assert published.cases.get(case["id"])["deadline"] == 1782910800.0  # type: ignore[index]  # 13:00 UTC (EDT)
