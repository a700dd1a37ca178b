"""Telling a target system's outage from a case's own failure, against the demo portal on loopback."""

from __future__ import annotations

import socket

import httpx

from demo_portal import PortalProcess
from orchestrator.queue import TargetHealth


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket closes


def test_a_system_that_answers_is_up_and_one_that_answers_5xx_or_refuses_is_down(portal: PortalProcess) -> None:
    health = TargetHealth({"portal": portal.url, "gone": f"http://127.0.0.1:{closed_port()}"}, cache_s=0)
    assert health.down({"portal"}) is None
    assert health.down({"portal", "gone"}) == "gone"
    assert health.down({"not-configured"}) is None, "a system without a known URL is not probed"
    httpx.put(f"{portal.url}/api/faults", json={"error_rate": 1.0})
    assert health.down({"portal"}) == "portal"
    httpx.put(f"{portal.url}/api/faults", json={"error_rate": 0.0})
    assert health.down({"portal"}) is None


def test_an_answer_is_kept_for_the_cache_period_so_an_outage_costs_one_probe_per_period(portal: PortalProcess) -> None:
    health = TargetHealth({"portal": portal.url}, cache_s=60)
    assert health.down({"portal"}) is None
    httpx.put(f"{portal.url}/api/faults", json={"error_rate": 1.0})
    assert health.down({"portal"}) is None, "the cached answer stands until the period ends"
