"""The circuit breaker per target system: its states in the ledger (SQLite and PostgreSQL, workers racing for
the one half-open probe), and the worker's side against the demo portal's health page on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from demo_portal import PortalProcess
from orchestrator import Ledger, Settings
from orchestrator.queue import SystemBreakers, probe


def test_consecutive_failures_open_the_breaker_and_an_answer_starts_the_count_again(ledger: Ledger) -> None:
    b = ledger.breakers
    assert b.failed("portal", threshold=3, open_s=30, reason="answered 503", now=100).state == "closed"
    b.answered("portal", now=101)
    assert b.all()["portal"].failures == 0, "an answer in between: the failures are not consecutive"
    for now in (102, 103):
        assert b.failed("portal", threshold=3, open_s=30, reason="answered 503", now=now).state == "closed"
    assert b.tripped() == {}
    opened = b.failed("portal", threshold=3, open_s=30, reason="did not answer (ConnectError)", now=104)
    assert (opened.state, opened.failures, opened.opened_at, opened.probe_at) == ("open", 3, 104, 134)
    assert opened.reason == "did not answer (ConnectError)"
    again = b.failed("portal", threshold=3, open_s=30, reason="answered 503", now=110)
    assert (again.state, again.failures, again.probe_at) == ("open", 3, 134), "an open breaker is left as it is"
    b.answered("portal", now=111)
    assert b.tripped()["portal"].state == "open", "only a probe closes an open breaker"


def test_after_the_open_period_one_probe_runs_a_failure_reopens_and_an_answer_closes(ledger: Ledger) -> None:
    b = ledger.breakers
    b.failed("portal", threshold=1, open_s=30, reason="answered 503", now=100)
    assert not b.take_probe("portal", "w1", lease_s=15, now=129), "no probe before the open period is over"
    assert b.take_probe("portal", "w1", lease_s=15, now=130)
    assert b.tripped()["portal"].state == "half_open"
    assert not b.take_probe("portal", "w2", lease_s=15, now=131), "one probe at a time"
    reopened = b.probed("portal", "w1", up=False, open_s=30, reason="answered 502", now=132)
    assert (reopened.state, reopened.probe_at, reopened.reason) == ("open", 162, "answered 502")
    assert b.take_probe("portal", "w2", lease_s=15, now=162)
    closed = b.probed("portal", "w2", up=True, open_s=30, now=163)
    assert (closed.state, closed.failures, closed.opened_at, closed.probe_at) == ("closed", 0, None, None)
    assert b.tripped() == {}


def test_a_prober_that_vanished_loses_its_lease_and_its_late_answer_changes_nothing(ledger: Ledger) -> None:
    b = ledger.breakers
    b.failed("portal", threshold=1, open_s=30, reason="answered 503", now=100)
    assert b.take_probe("portal", "dead-worker", lease_s=15, now=130)
    assert not b.take_probe("portal", "w2", lease_s=15, now=144)
    assert b.take_probe("portal", "w2", lease_s=15, now=146), "the lease ran out: another worker probes"
    late = b.probed("portal", "dead-worker", up=True, open_s=30, now=147)
    assert late.state == "half_open", "the holder whose lease was taken over changes nothing"
    assert b.probed("portal", "w2", up=False, open_s=30, reason="answered 503", now=148).state == "open"


def test_workers_racing_for_the_half_open_probe_let_exactly_one_take_it(ledger: Ledger) -> None:
    workers = [Ledger(ledger.url) for _ in range(6)]  # separate engines: separate connections, as separate hosts
    try:
        for round_ in range(10):
            system = f"system-{round_}"
            ledger.breakers.failed(system, threshold=1, open_s=0.001, reason="answered 503")
            start = threading.Barrier(len(workers))
            taken: list[str] = []

            def race(worker: Ledger, name: str) -> None:
                start.wait()
                if worker.breakers.take_probe(system, name, lease_s=60):
                    taken.append(name)

            threads = [threading.Thread(target=race, args=(w, f"w{i}")) for i, w in enumerate(workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(taken) == 1, f"round {round_}: {taken} took the probe"
            assert ledger.breakers.all()[system].state == "half_open"
    finally:
        for w in workers:
            w.close()


# -- the worker's side, against the demo portal ----------------------------------------------------------

def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket closes


@pytest.fixture
def down(portal: PortalProcess) -> Iterator[None]:
    """The portal's application down (its base URL still answers) for the test's length."""
    httpx.put(f"{portal.url}/api/faults", json={"outage": 1}).raise_for_status()
    try:
        yield
    finally:
        httpx.put(f"{portal.url}/api/faults", json={"outage": 0}).raise_for_status()


def test_a_base_url_that_answers_while_the_application_is_down_is_down_on_its_health_page(portal: PortalProcess,
                                                                                          down: None) -> None:
    assert probe(portal.url) is None, "the holding page at / answers 200"
    assert probe(f"{portal.url}/healthz") == "answered 503"
    assert probe(f"http://127.0.0.1:{closed_port()}") == "did not answer (ConnectError)"


def test_a_worker_counts_failures_opens_the_breaker_and_its_probe_closes_it_once_the_system_is_back(
        portal: PortalProcess, tmp_path: Path) -> None:
    settings = Settings(ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}", systems={"portal": portal.url},
                        system_health={"portal": "/healthz"}, breaker_threshold=2, breaker_open_s=0.2)
    ledger = Ledger(settings.ledger_url)
    try:
        breakers = SystemBreakers(ledger, settings, "w1")
        assert breakers.after_failure({"portal", "unknown"}) is None, "a system that answers: the case's own failure"
        httpx.put(f"{portal.url}/api/faults", json={"outage": 1}).raise_for_status()
        try:
            assert breakers.after_failure({"portal"}).state == "closed"  # type: ignore[union-attr]
            opened = breakers.after_failure({"portal"})
            assert opened is not None and opened.state == "open" and opened.reason == "answered 503"
            assert set(breakers.closed_to({"portal", "unknown"})) == {"portal"}
            _until_probe_due(ledger)
            assert set(breakers.closed_to({"portal"})) == {"portal"}, "the probe found it down: open again"
            assert ledger.breakers.all()["portal"].state == "open"
        finally:
            httpx.put(f"{portal.url}/api/faults", json={"outage": 0}).raise_for_status()
        _until_probe_due(ledger)
        assert breakers.closed_to({"portal"}) == {}, "the probe found it up: closed"
        assert ledger.breakers.all()["portal"].state == "closed"
    finally:
        ledger.close()


def _until_probe_due(ledger: Ledger) -> None:
    """Wait for the portal breaker's open period to end (a condition on the ledger, not a fixed sleep)."""
    deadline = time.monotonic() + 10
    while (ledger.breakers.all()["portal"].probe_at or 0) > time.time():
        assert time.monotonic() < deadline, "the open period did not end"
        time.sleep(0.02)


def test_a_health_path_without_a_base_url_or_a_page_that_is_no_path_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="system 'crm' has a health path but no base URL"):
        Settings(systems={"portal": "http://127.0.0.1:1"}, system_health={"crm": "/healthz"})
    with pytest.raises(ValueError, match="expected a path starting with / or an http"):
        Settings(systems={"portal": "http://127.0.0.1:1"}, system_health={"portal": "healthz"})
    settings = Settings(systems={"portal": "http://127.0.0.1:1/"}, system_health={"portal": "/healthz",
                                                                                  "crm": "https://crm.example/up"})
    assert settings.health_url("portal") == "http://127.0.0.1:1/healthz"
    assert settings.health_url("crm") == "https://crm.example/up"
    assert Settings(systems={"portal": "http://127.0.0.1:1"}).health_url("portal") == "http://127.0.0.1:1"


def test_the_gauge_shows_each_system_open_or_half_open_as_1_and_closed_as_0(ledger: Ledger) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from orchestrator.queue import LedgerCollector

    ledger.breakers.failed("portal", threshold=1, open_s=30, reason="answered 503", now=100)
    ledger.breakers.failed("crm", threshold=3, open_s=30, reason="answered 503", now=100)
    registry = CollectorRegistry()
    registry.register(LedgerCollector(ledger, 10, cache_s=0))
    scrape = generate_latest(registry).decode()
    assert 'autoclerk_breaker_open{system="portal"} 1.0' in scrape
    assert 'autoclerk_breaker_open{system="crm"} 0.0' in scrape
