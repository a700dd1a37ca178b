"""The ledger's gauges served over HTTP: exactly the ledger's counts, unchanged by a restart."""

from __future__ import annotations

import math
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import Ledger, Outcome
from orchestrator.queue import LedgerCollector


@contextmanager
def serve(ledger: Ledger, target: int) -> Iterator[str]:
    registry = CollectorRegistry()
    registry.register(LedgerCollector(ledger, target, window_s=600, cache_s=0))
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def test_the_gauges_equal_the_ledger_and_survive_a_restart(url: str) -> None:
    ledger = Ledger(url)
    batch = ledger.batches.create("wf", "d1", "cases.csv")
    handed_off = time.time()
    ids, _ = ledger.batches.add_cases(batch, "wf", 1, "d1", 3, [(f"R{i}", {}) for i in range(12)])
    claims = ledger.transactions.claim_many(ids[:9], "w1", lease_s=60)
    # seven done: five verified (read back and right), two submitted but not checked
    ledger.transactions.finish_many([Outcome(c, "done", verification="verified") for c in claims[:5]]
                                    + [Outcome(c, "done", verification="unverified") for c in claims[5:7]]
                                    + [Outcome(c, "business_exception") for c in claims[7:]])

    with serve(ledger, target=100) as metrics_url:
        metrics = scrape(metrics_url)
    ledger.close()  # the process "restarts": a new ledger connection, a new collector, a new server
    assert metrics[("autoclerk_target_transactions", ())] == 100
    assert metrics[("autoclerk_target_completed", ())] == 5, "the target counts the verified ones only"
    assert metrics[("autoclerk_target_verification", (("result", "verified"),))] == 5
    assert metrics[("autoclerk_target_verification", (("result", "unverified"),))] == 2
    assert metrics[("autoclerk_ledger_transactions", (("state", "done"),))] == 7
    assert metrics[("autoclerk_ledger_transactions", (("state", "business_exception"),))] == 2
    assert metrics[("autoclerk_ledger_transactions", (("state", "queued"),))] == 3
    assert metrics[("autoclerk_ledger_batches", (("state", "active"),))] == 1  # three cases still wait
    assert metrics[("autoclerk_ledger_batches", (("state", "finished"),))] == 0
    assert metrics[("autoclerk_target_rate_per_second", ())] > 0
    assert metrics[("autoclerk_target_projected_completion_timestamp_seconds", ())] > time.time()
    assert 0 <= metrics[("autoclerk_queue_oldest_waiting_age_seconds", ())] <= time.time() - handed_off + 1

    reopened = Ledger(url)
    with serve(reopened, target=100) as metrics_url:
        assert scrape(metrics_url)[("autoclerk_target_completed", ())] == 5
    reopened.close()


def test_an_idle_ledger_has_no_projection_and_no_waiting_age(url: str) -> None:
    ledger = Ledger(url)
    with serve(ledger, target=10) as metrics_url:
        metrics = scrape(metrics_url)
    ledger.close()
    assert math.isnan(metrics[("autoclerk_target_projected_completion_timestamp_seconds", ())])
    assert metrics[("autoclerk_queue_oldest_waiting_age_seconds", ())] == 0
    assert metrics[("autoclerk_target_completed", ())] == 0
