"""A delivery held past RabbitMQ's delivery-acknowledgement timeout (``consumer_timeout``).

Settings refuse a lease that is not shorter than the timeout Autoclerk is told RabbitMQ uses, so a healthy
worker never holds a delivery that long. This is the misconfiguration: the broker's timeout is cut to 3 s
while the portal takes over a second a page, so the worker holds its delivery several times that. RabbitMQ
closes the worker's channel and requeues what it held while the attempt goes on; the ledger's lease and
fence decide who records each outcome, and the oracle counts the rest.

RabbitMQ checks the timeout on each channel's tick, once a minute by default (``channel_tick_interval``);
RabbitMQ's own test suite shortens the tick as this test does. Both values are read when a channel opens,
so they are set before the worker connects and restored afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from .rig import SIZE, FaultRig, rabbitmqctl, record

TIMED_OUT = "PRECONDITION_FAILED - delivery acknowledgement"


def _timeouts(rig: FaultRig) -> int:
    """Channels RabbitMQ closed for a timed-out delivery, as the workers logged them (one line each)."""
    return sum(1 for line in rig.worker_logs().splitlines() if TIMED_OUT in line and "broker connection lost" in line)


def _env(key: str) -> str:
    return rabbitmqctl("eval", f"application:get_env(rabbit, {key}).").strip()


def _set_env(key: str, value: str) -> None:
    """Set ``key`` to ``value`` as ``application:get_env`` printed it (``{ok,N}``), or unset it (``undefined``)."""
    if value.startswith("{ok,"):
        rabbitmqctl("eval", f"application:set_env(rabbit, {key}, {value[4:-1]}).")
    else:
        rabbitmqctl("eval", f"application:unset_env(rabbit, {key}).")


@contextmanager
def _broker_timeout(ms: int) -> Iterator[None]:
    """RabbitMQ's acknowledgement timeout cut to ``ms``, checked six times as often, for channels opened meanwhile."""
    saved = {key: _env(key) for key in ("consumer_timeout", "channel_tick_interval")}
    _set_env("consumer_timeout", f"{{ok,{ms}}}")
    _set_env("channel_tick_interval", f"{{ok,{max(100, ms // 6)}}}")
    try:
        yield
    finally:
        for key, value in saved.items():
            _set_env(key, value)


def test_a_delivery_held_past_the_brokers_acknowledgement_timeout_is_neither_lost_nor_submitted_twice(
        rig: FaultRig) -> None:
    cases = rig.cases(60 if SIZE == "full" else 12, seed=101, start=40_000)
    httpx.put(f"{rig.portal.url}/api/faults", json={"latency_ms": 1200}, timeout=10)
    with rig.run_in_background(cases) as run:
        with _broker_timeout(3000):
            worker = rig.start_worker(concurrency=1)  # its channel opens with the 3 s timeout
            rig.wait(lambda: _timeouts(rig) >= 1, 120, "RabbitMQ timing a delivery out")
            struck = time.monotonic()
        httpx.put(f"{rig.portal.url}/api/faults", json={"latency_ms": 0}, timeout=10)
        rig.wait(lambda: rig.worker_logs().count("Connected to amqp://") >= 2, 60, "the worker reconnecting")
        rig.start_worker()  # a second worker takes its share of what the broker requeued
        summary = rig.finish(run)
    verdict = rig.verdict(cases)
    timeouts = _timeouts(rig)
    record("delivery held past RabbitMQ's acknowledgement timeout", verdict, confirmed=timeouts >= 1,
           recover_s=time.monotonic() - struck, broker_timeouts=timeouts, worker_stopped=worker.poll() is not None)
    assert worker.poll() is None, "the worker whose channel RabbitMQ closed kept running"
    assert "Unrecoverable error" not in rig.worker_logs()
    assert summary["unfinished"] == 0
