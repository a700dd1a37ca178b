"""Deadlines, working days and maintenance windows: reading them, recording them per case and per batch,
counting what is at risk and breached, and keeping cases unclaimed while their system is in maintenance.
The ledger tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from orchestrator import Ledger, Runtime, execute_many, load_settings
from orchestrator.deadlines import (DeadlineError, Window, WorkingDays, batch_deadline, deadline_at, deadline_within,
                                    maintenance_until, time_zone)
from orchestrator.queue import LedgerCollector, Rejection, read_cases
from workflows import parse_workflow

LONDON = time_zone("Europe/London")
WORKFLOW = parse_workflow("""
name: wf
version: 1
systems: {portal: {}}
input:
  case_ref: {type: string}
steps:
  - goto: /
""")


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


# -- reading ------------------------------------------------------------------------------------------
def test_a_time_without_an_offset_is_in_the_zone_and_a_date_alone_is_the_end_of_that_day() -> None:
    assert deadline_at("2026-07-01T17:00", LONDON) == at("2026-07-01T16:00+00:00")  # summer time
    assert deadline_at("2026-12-24 17:00", LONDON) == at("2026-12-24T17:00+00:00")
    assert deadline_at("2026-12-24T17:00+01:00", LONDON) == at("2026-12-24T16:00+00:00")
    assert deadline_at("2026-12-24", LONDON) == at("2026-12-25T00:00+00:00")
    with pytest.raises(DeadlineError, match=r"expected a date and time such as 2026-12-24T17:00 or 2026-12-24 17:00, got .soon."):
        deadline_at("soon", LONDON)
    with pytest.raises(DeadlineError, match="not a time zone"):
        time_zone("Mars/Olympus")


def test_working_days_skip_weekends_and_the_holidays_of_a_list_or_an_ics_calendar(tmp_path: Path) -> None:
    friday = dt.datetime(2026, 12, 18, 15, 30, tzinfo=LONDON)
    assert WorkingDays().add(friday, 1) == dt.datetime(2026, 12, 21, 15, 30, tzinfo=LONDON)  # Monday
    listed = tmp_path / "holidays.txt"
    listed.write_text("# bank holidays\n2026-12-25\n2026-12-28  # substitute day\n\n")
    days = WorkingDays.from_file(listed)
    thursday = dt.datetime(2026, 12, 24, 9, 0, tzinfo=LONDON)
    assert days.add(thursday, 1) == dt.datetime(2026, 12, 29, 9, 0, tzinfo=LONDON)  # not Fri 25, Mon 28
    ics = tmp_path / "holidays.ics"
    ics.write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
                   "BEGIN:VEVENT\r\nUID:1\r\nSUMMARY:Christmas\r\nDTSTART;VALUE=DATE:20261225\r\n"
                   "DTEND;VALUE=DATE:20261229\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    from_ics = WorkingDays.from_file(ics)
    assert from_ics.holidays == {dt.date(2026, 12, 25), dt.date(2026, 12, 26), dt.date(2026, 12, 27), dt.date(2026, 12, 28)}
    now = thursday.timestamp()
    assert deadline_within("2wd", now, LONDON, from_ics) == dt.datetime(2026, 12, 30, 9, 0, tzinfo=LONDON).timestamp()
    assert deadline_within("3d", now, LONDON, from_ics) == now + 3 * 86400
    assert deadline_within("90m", now, LONDON, from_ics) == now + 5400
    bad = tmp_path / "bad.txt"
    bad.write_text("2026-12-25\n25/12/2026\n")
    with pytest.raises(DeadlineError, match=r"bad.txt:2: expected a date such as 2026-12-25, got '25/12/2026'"):
        WorkingDays.from_file(bad)
    repeating = tmp_path / "repeat.ics"
    repeating.write_text(ics.read_text().replace("DTEND", "RRULE:FREQ=YEARLY\r\nDTEND"))
    with pytest.raises(DeadlineError, match="the event 'Christmas' repeats"):
        WorkingDays.from_file(repeating)
    with pytest.raises(DeadlineError, match="working days are whole days"):
        deadline_within("1.5wd", now, LONDON, from_ics)
    with pytest.raises(DeadlineError, match="not both"):
        batch_deadline("2026-12-24", "3d", now=now, tz=LONDON, working_days=from_ics)


def test_a_maintenance_window_runs_into_the_next_day_and_windows_that_meet_extend_each_other() -> None:
    nightly = Window.parse("22:00-06:00")
    assert nightly.until(dt.datetime(2026, 12, 2, 23, 0, tzinfo=LONDON)) == dt.datetime(2026, 12, 3, 6, 0, tzinfo=LONDON)
    assert nightly.until(dt.datetime(2026, 12, 3, 5, 59, tzinfo=LONDON)) == dt.datetime(2026, 12, 3, 6, 0, tzinfo=LONDON)
    assert nightly.until(dt.datetime(2026, 12, 3, 6, 0, tzinfo=LONDON)) is None
    weekdays = Window.parse("Mon-Fri 12:00-13:00")
    assert weekdays.until(dt.datetime(2026, 12, 5, 12, 30, tzinfo=LONDON)) is None  # a Saturday
    assert Window.parse("Sat,Sun 00:00-24:00").until(dt.datetime(2026, 12, 6, 23, 0, tzinfo=LONDON)) is not None
    # Friday night's window meets Saturday's whole-day window, which meets Sunday's: the system is back Monday.
    windows = [Window.parse("Fri 22:00-24:00"), Window.parse("Sat-Sun 00:00-24:00")]
    friday_night = dt.datetime(2026, 12, 4, 23, 0, tzinfo=LONDON).timestamp()
    assert maintenance_until(windows, friday_night, LONDON) == dt.datetime(2026, 12, 7, 0, 0, tzinfo=LONDON).timestamp()
    assert maintenance_until(windows, friday_night - 3 * 3600, LONDON) is None
    for bad in ("25:00-06:00", "Someday 10:00-11:00", "10-11"):
        with pytest.raises(DeadlineError, match="expected a window such as 22:00-06:00"):
            Window.parse(bad)


def test_settings_refuse_a_bad_zone_margin_window_or_calendar_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="system 'portal': expected a window"):
        load_settings(system_maintenance={"portal": ["late"]})
    with pytest.raises(ValueError, match="such as 4h"):
        load_settings(deadline_margin="soon")
    missing = tmp_path / "nowhere.ics"
    with pytest.raises(ValueError, match="the holiday calendar cannot be read"):
        load_settings(holidays_file=missing)


# -- recording ----------------------------------------------------------------------------------------
def test_a_row_deadline_overrides_the_batch_deadline_and_a_bad_one_refuses_only_its_row(ledger: Ledger, tmp_path: Path) -> None:
    cases = tmp_path / "cases.csv"
    cases.write_text("case_ref,_deadline\nA-1,2026-12-24T17:00\nA-2,\nA-3,next week\nA-4,2026-07-01T09:00+02:00\n")
    items = list(read_cases(cases, WORKFLOW.definition, tz=LONDON))
    refused = [i for i in items if isinstance(i, Rejection)]
    assert [(r.row, r.field, r.kind) for r in refused] == [(3, "_deadline", "invalid")]
    assert "such as 2026-12-24T17:00 or 2026-12-24 17:00, got 'next week'" in refused[0].reason
    from orchestrator.queue import Publisher, hand_off, make_celery

    settings = load_settings(ledger_url=ledger.url, bot="null")
    batch_due = at("2027-01-04T12:00+00:00")
    receipt = hand_off(ledger, Publisher(make_celery(settings), ledger, 10), WORKFLOW, cases, deadline=batch_due, tz=LONDON)
    assert receipt.accepted == 3 and receipt.rejected == 1
    due = {c["case_ref"]: c["deadline"] for c in ledger.cases.list(receipt.batch_id)}
    assert due == {"A-1": at("2026-12-24T17:00+00:00"), "A-2": batch_due, "A-4": at("2026-07-01T07:00+00:00")}
    assert ledger.batches.get(receipt.batch_id)["deadline"] == batch_due  # type: ignore[index]


def test_unfinished_cases_are_at_risk_inside_the_margin_breached_past_it_and_finished_ones_leave(ledger: Ledger) -> None:
    now = time.time()
    batch = ledger.batches.create("wf", "d1", "cases.csv")
    ids, _ = ledger.batches.add_cases(batch, "wf", 1, "d1", 3, [(f"R{i}", {"case_ref": f"R{i}"}) for i in range(5)],
                                      deadline=now + 86400,
                                      deadlines={"R0": now - 60, "R1": now - 30, "R2": now + 600, "R3": now + 3 * 3600})
    other = ledger.batches.create("other", "d2", "cases.csv")
    ledger.batches.add_cases(other, "other", 1, "d2", 3, [("X", {"case_ref": "X"})], deadline=now - 5)
    figures = ledger.reports.deadlines(4 * 3600, now=now)
    assert figures == {"wf": {"at_risk": 2, "breached": 2}, "other": {"at_risk": 0, "breached": 1}}
    assert ledger.reports.deadlines(4 * 3600, batch_id=batch, now=now) == {"wf": {"at_risk": 2, "breached": 2}}
    assert ledger.reports.deadlines(3600, batch_id=batch, now=now)["wf"] == {"at_risk": 1, "breached": 2}
    # A breached case stays in the queue, flagged; once it finishes it is no longer counted.
    assert ledger.reports.counts(batch)["queued"] == 5
    claim = ledger.transactions.claim(ids[0], "w", 60)
    assert claim is not None
    ledger.transactions.finish(claim, "done")
    assert ledger.reports.deadlines(4 * 3600, batch_id=batch, now=now) == {"wf": {"at_risk": 2, "breached": 1}}

    registry = CollectorRegistry()
    registry.register(LedgerCollector(ledger, 10, cache_s=0, deadline_margin_s=4 * 3600))
    assert registry.get_sample_value("autoclerk_cases_breached", {"workflow": "other"}) == 1
    assert registry.get_sample_value("autoclerk_cases_at_risk", {"workflow": "wf"}) == 2


def test_cases_of_a_system_in_maintenance_are_not_claimed_and_spend_no_attempt(ledger: Ledger) -> None:
    loaded = WORKFLOW
    ledger.workflows.save(loaded)
    batch = ledger.batches.create("wf", loaded.digest, "cases.csv")
    ids, _ = ledger.batches.add_cases(batch, "wf", 1, loaded.digest, 3, [(f"M{i}", {"case_ref": f"M{i}"}) for i in range(3)])
    ledger.outbox.mark_published(ids)
    settings = load_settings(ledger_url=ledger.url, bot="null", timezone="UTC",
                             system_maintenance={"portal": ["00:00-00:00"]})  # all day, every day
    runtime = Runtime(settings, ledger)
    assert execute_many(runtime, ids) == []
    tomorrow = dt.datetime.combine(dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1), dt.time(),
                                   dt.timezone.utc).timestamp()
    for case in ledger.cases.list(batch):
        assert case["state"] == "retry_scheduled" and case["attempts"] == 0
        assert case["error_class"] == "MaintenanceWindow"
        assert case["error_message"].startswith("The target system portal is in its maintenance window until")
        assert ledger.cases.get(case["id"])["next_attempt_at"] >= tomorrow  # type: ignore[index]
    assert ledger.outbox.due() == [], "nothing is published again before the window ends"
    # The broker's confirmation of the messages that brought them can land after the deferral: they stay in
    # the outbox all the same, and the sweep publishes them once the window has ended.
    ledger.outbox.mark_published(ids)
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE transactions SET next_attempt_at = {time.time() - 1}")
    assert sorted(ledger.outbox.due()) == sorted(ids)
    # Outside every window (another system's), the same cases run, and each spends its first attempt.
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE transactions SET next_attempt_at = NULL")
    elsewhere = Runtime(load_settings(ledger_url=ledger.url, bot="null", system_maintenance={"archive": ["00:00-00:00"]}),
                        ledger)
    assert sorted(o.claim.id for o in execute_many(elsewhere, ids)) == sorted(ids)
    assert {(c["state"], c["attempts"]) for c in ledger.cases.list(batch)} == {("done", 1)}


def test_a_done_cases_delayed_check_waits_for_a_maintenance_window_or_an_open_breaker_without_running(
        ledger: Ledger) -> None:
    ledger.workflows.save(WORKFLOW)
    batch = ledger.batches.create("wf", WORKFLOW.digest, "cases.csv")
    ids, _ = ledger.batches.add_cases(batch, "wf", 1, WORKFLOW.digest, 3, [("V1", {"case_ref": "V1"})])
    due = time.time() - 1
    with ledger.engine.begin() as conn:  # done earlier, its check due now
        conn.exec_driver_sql(f"UPDATE transactions SET state = 'done', verification = 'unverified', "
                             f"verify_due_at = {due}, published = 1")

    def check() -> tuple[float, list]:
        case = ledger.cases.get(ids[0])
        assert case is not None
        return case["verify_due_at"], case["history"]

    in_window = Runtime(load_settings(ledger_url=ledger.url, bot="null", timezone="UTC",
                                      system_maintenance={"portal": ["00:00-00:00"]}), ledger)
    assert execute_many(in_window, ids) == []
    tomorrow = dt.datetime.combine(dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1), dt.time(),
                                   dt.timezone.utc).timestamp()
    due_at, history = check()
    assert due_at >= tomorrow and history == [], "the check waits for the window's end, untaken"
    assert ledger.outbox.due() == [], "and the sweep does not publish it again meanwhile"

    with ledger.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE transactions SET verify_due_at = {due}")
    for now in (100.0, 101.0, 102.0):
        ledger.breakers.failed("portal", threshold=3, open_s=600, reason="did not answer", now=time.time() + now - 102)
    open_breaker = Runtime(load_settings(ledger_url=ledger.url, bot="null"), ledger)
    assert execute_many(open_breaker, ids) == []
    due_at, history = check()
    assert due_at > time.time() + 500 and history == [], "the check waits for the breaker's probe"


def test_input_fields_may_not_start_with_an_underscore() -> None:
    from workflows import WorkflowFileError

    with pytest.raises(WorkflowFileError) as caught:
        parse_workflow("name: x\nversion: 1\nsystems: {portal: {}}\ninput:\n  _deadline: {type: string}\n"
                       "steps:\n  - goto: /\n", "x.yaml")
    assert "input field '_deadline' starts with '_'" in str(caught.value.problems[0])


def test_run_takes_a_batch_deadline_and_refuses_a_bad_one_with_one_line(tmp_path: Path) -> None:
    from tests.conftest import EXAMPLE, autoclerk

    cases = tmp_path / "cases.csv"
    cases.write_text("case_ref,postcode\n")
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    bad = autoclerk("run", str(EXAMPLE), "--cases", str(cases), "--ledger", ledger_url, "--within", "3 weeks", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr == (
        "autoclerk: error: --within: expected a number and a unit: m (minutes), h (hours), d (days) or wd (working days), "
        "such as 3d or 2wd; got '3 weeks'\n"), bad.stderr
    both = autoclerk("run", str(EXAMPLE), "--cases", str(cases), "--ledger", ledger_url, "--within", "3d",
                     "--deadline", "2026-12-24", cwd=tmp_path)
    assert both.returncode == 2 and "--deadline/--within: give a deadline or a span (within), not both" in both.stderr
    assert not (tmp_path / "ledger.db").exists() or Ledger(ledger_url).batches.recent(5) == []


def test_status_shows_what_is_at_risk_and_breached(ledger: Ledger, tmp_path: Path) -> None:
    from tests.conftest import autoclerk

    now = time.time()
    batch = ledger.batches.create("wf", "d1", "cases.csv")
    ledger.batches.add_cases(batch, "wf", 1, "d1", 3, [("S1", {}), ("S2", {}), ("S3", {})], deadline=now + 3600,
                             deadlines={"S1": now - 10})
    shown = autoclerk("status", "--ledger", ledger.url, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "deadlines wf: 1 past their deadline, 2 at risk (due within 4h)" in shown.stdout
    as_json = autoclerk("status", "--ledger", ledger.url, "--json", cwd=tmp_path)
    assert json.loads(as_json.stdout)["deadlines"] == {"wf": {"at_risk": 2, "breached": 1}}
