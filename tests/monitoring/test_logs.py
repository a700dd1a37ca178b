"""Secrets registered when read never reach a log line."""

from __future__ import annotations

import io

import structlog

from monitoring import TRANSACTIONS, configure_logging, register_secret
from monitoring import REGISTRY


def test_a_registered_secret_is_masked_in_every_field_and_credential_fields_are_dropped() -> None:
    stream = io.StringIO()
    configure_logging(json=True, level="INFO", stream=stream)
    register_secret("hunter2-canary")
    structlog.get_logger().info("signed in with hunter2-canary", detail={"note": "pw hunter2-canary"},
                                password="anything")
    line = stream.getvalue()
    assert "hunter2-canary" not in line and "anything" not in line
    assert "****" in line


def test_the_transactions_counter_is_exposed_with_bounded_labels() -> None:
    TRANSACTIONS.labels("wf", "done").inc()
    from prometheus_client import generate_latest

    text = generate_latest(REGISTRY).decode()
    assert 'autoclerk_transactions_total{outcome="done",workflow="wf"}' in text
