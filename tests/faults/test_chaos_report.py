"""What the chaos run reports of a case the oracle flagged: its attempts from the ledger, before the run's private
servers (and the ledger with them) are deleted."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from kombu import Connection

from orchestrator import Ledger, Outcome
from tests.faults.chaos import Chaos, attempts_of, cases_not_done, stalled_pid
from tests.faults.servers import PrivateRabbitmq


def test_a_flagged_case_is_reported_with_each_attempt_and_why_it_ended(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        batch = ledger.batches.create("wf", "d1", "cases.csv")
        ids, _ = ledger.batches.add_cases(batch, "wf", 1, "d1", 2, [("CASE-1", {}), ("CASE-2", {})])
        claims = ledger.transactions.claim_many(ids, "w1", lease_s=60)
        ledger.transactions.finish_many([
            Outcome(claims[0], "retry_scheduled", error_class="BrowserGone", error_message="the browser was killed",
                    next_attempt_at=0),
            Outcome(claims[1], "done")])
        again = ledger.transactions.claim_many([ids[0]], "w2", lease_s=60)
        ledger.transactions.finish_many([Outcome(again[0], "failed", error_class="TargetServerError",
                                                 error_message="503 on the lookup")])
    finally:
        ledger.close()
    lines = attempts_of(tmp_path / "ledger.db", ["CASE-1"])
    assert lines[0] == "CASE-1: failed after 2 attempt(s)"
    assert lines[1].startswith("  attempt 1: retry_scheduled after ") and lines[1].endswith(
        "s BrowserGone: the browser was killed")
    assert cases_not_done(tmp_path / "ledger.db") == [
        "CASE-1: failed (TargetServerError) after 2 attempt(s): 503 on the lookup"], "why each case did not end done"
    assert cases_not_done(tmp_path / "ledger.db", limit=0) == [], "the ledger is asked for at most the limit"
    assert lines[2].endswith("s TargetServerError: 503 on the lookup") and "attempt 2: failed" in lines[2]
    assert len(lines) == 3  # CASE-2 was not flagged
    assert attempts_of(tmp_path / "ledger.db", ["CASE-1", "CASE-1"]) == lines, "flagged and not done: once"
    both = attempts_of(tmp_path / "ledger.db", ["CASE-2", "CASE-1"])
    assert both[0] == "CASE-2: done after 1 attempt(s)" and both[2:] == lines, "in the order asked: flagged first"


def test_a_stalled_worker_is_seen_once_its_marker_holds_its_line_and_it_is_stopped(tmp_path: Path) -> None:
    # The marker is created before its line is written: a run that read it in between failed its injection.
    marker = tmp_path / "marker"
    marker.touch()
    assert stalled_pid(marker) is None, "an empty marker names no worker yet"
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        marker.write_text(f"stall_before_submit {sleeper.pid}\n")
        assert stalled_pid(marker) is None, "not stopped yet"
        os.kill(sleeper.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while stalled_pid(marker) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stalled_pid(marker) == sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()


def _chaos_on(broker: PrivateRabbitmq, run: subprocess.Popen[str]) -> Chaos:
    """A chaos run's faults on ``broker`` alone, for a batch that is ``run`` (nothing else of a rig)."""
    chaos = Chaos.__new__(Chaos)
    chaos.rabbitmq, chaos.run = broker, run
    return chaos


def test_closing_rabbitmqs_connections_waits_for_a_client_to_be_connected(fault_broker: PrivateRabbitmq,
                                                                           rabbitmq: str) -> None:
    # A seed once drew this fault seconds after a RabbitMQ restart, while every client was still connecting again:
    # it closed nothing, and counted as unconfirmed.
    ended = subprocess.Popen(["true"], text=True)
    ended.wait()
    assert _chaos_on(fault_broker, ended)._rabbitmq_connections() == [], "no client is connected yet"
    batch = subprocess.Popen(["sleep", "120"], text=True)
    client = Connection(fault_broker.url)  # the default virtual host, as the chaos run's clients (``rabbitmq``: started)
    late = threading.Timer(3, client.connect)  # a client connecting again, a few seconds later
    try:
        started = time.monotonic()
        late.start()
        assert _chaos_on(fault_broker, batch).rabbitmq_connections_closed() is True
        assert time.monotonic() - started >= 3, "it waited for the client"
        with pytest.raises(Exception, match="chaos run"):  # the broker's close names the chaos run as the reason
            client.drain_events(timeout=30)
    finally:
        late.cancel()
        client.release()
        batch.kill()
        batch.wait()
    assert _chaos_on(fault_broker, ended).rabbitmq_connections_closed() is None, "the batch ended: not injected"


def test_the_table_is_followed_by_each_case_not_done_and_its_attempts(capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.cli.faults import render_chaos

    render_chaos({"seed": 22, "cases": 2000, "workers": 3, "minutes": 60.0, "stopped_by": "batch ended",
                  "faults": {"target outage": {"count": 15, "confirmed": 15}}, "lost": 0, "duplicated": 0,
                  "unexpected": 0, "recovered": 753, "done": 1999, "exceptions": 1, "makespan_s": 2463.1,
                  "not_done": ["CASE-000755: failed (AttemptsExhausted) after 7 attempt(s): attempt 6, the last "
                               "allowed, stopped without recording an outcome; no attempts are left"],
                  "not_done_attempts": ["CASE-000755: failed after 7 attempt(s)",
                                        "  attempt 1: retry_scheduled after 4.1 s BrowserGone: the browser closed"]})
    out = capsys.readouterr().out
    assert "Chaos run: seed 22, 2,000 cases, 3 workers" in out
    assert out.index("Cases not done:\n  CASE-000755: failed (AttemptsExhausted)") < out.index(
        "Their attempts:\n  CASE-000755: failed after 7 attempt(s)\n    attempt 1: retry_scheduled after 4.1 s")
