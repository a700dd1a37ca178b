"""Every Prometheus metric of Autoclerk, declared in one place.

Labels are bounded (workflow, outcome): never a case reference or a URL. ``autoclerk_transactions_total``
counts each transaction once, when it reaches its terminal state, however often it was attempted: it is
the figure held against the target.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

_enabled = True


def metrics_enabled() -> bool:
    """Whether this process records metrics (``AUTOCLERK_METRICS=false`` turns recording off, to measure
    what recording costs)."""
    return _enabled


def disable_metrics() -> None:
    """Stop recording metrics in this process: the hot paths skip every metric call."""
    global _enabled
    _enabled = False

OUTCOMES = ("done", "business_exception", "failed", "cancelled")

TRANSACTIONS = Counter(
    "autoclerk_transactions",
    "Transactions that reached a terminal state, by outcome (each counted once).",
    ["workflow", "outcome"],
    registry=REGISTRY,
)

VERIFICATION_RESULTS = ("verified", "verify_failed", "error")
"""``verified``: the record read back holds the case's values; ``verify_failed``: it does not (the case goes to a
person); ``error``: the verification could not run (the system was down) and is tried again later."""

VERIFICATIONS = Counter(
    "autoclerk_verifications",
    "Verifications of submitted transactions as they happen, by result (verified, verify_failed, error).",
    ["workflow", "result"],
    registry=REGISTRY,
)

ATTEMPTS = Counter(
    "autoclerk_transaction_attempts",
    "Attempts at transactions, by how the attempt ended (done, business_exception, retry, failed).",
    ["workflow", "outcome"],
    registry=REGISTRY,
)

TRANSACTION_DURATION = Histogram(
    "autoclerk_transaction_duration_seconds",
    "Time one attempt at a transaction took in a worker, from its claim to its outcome (lookups included).",
    ["workflow"],
    buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
    registry=REGISTRY,
)

STEP_DURATION = Histogram(
    "autoclerk_step_duration_seconds",
    "Time one workflow step took, by step type.",
    ["workflow", "step_type"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
    registry=REGISTRY,
)

TARGET_WAIT = Histogram(
    "autoclerk_bot_target_wait_seconds",
    "Time a target system took to answer a page load, from the request sent to its last byte.",
    ["workflow"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
    registry=REGISTRY,
)

BOTS_BUSY = Gauge(
    "autoclerk_bots_busy",
    "Transactions a worker's bots are running now (idle bots: autoclerk_bots_slots minus this).",
    registry=REGISTRY,
)

BOT_SLOTS = Gauge(
    "autoclerk_bots_slots",
    "Transactions a worker runs at once (its concurrency setting).",
    registry=REGISTRY,
)

RETRIES = Counter(
    "autoclerk_transaction_retries",
    "Attempts that ended in an application failure and were scheduled again, by error class.",
    ["workflow", "error_class"],
    registry=REGISTRY,
)

STEP_RETRIES = Counter(
    "autoclerk_step_retries",
    "Retries within an attempt, by reason (server_error: a page that answered 5xx loaded again, or the "
    "steps started again before any submit; submit_looked_up: a 5xx on or after a submit, whose change was "
    "looked up within the attempt), so the case did not go back to the queue.",
    ["workflow", "reason"],
    registry=REGISTRY,
)

HEALS = Counter(
    "autoclerk_locator_heals",
    "Steps whose locators all failed and whose element was found by its fingerprint: healed on its own "
    "(outcome healed), proposed to a person (proposed), or not healed because no single element was like it "
    "(refused).",
    ["workflow", "step", "outcome"],
    registry=REGISTRY,
)

LOCATOR_FALLBACKS = Counter(
    "autoclerk_locator_fallbacks",
    "Steps that found their element only through an alternative locator: the page has drifted.",
    ["workflow", "step_type"],
    registry=REGISTRY,
)

SESSIONS = Counter(
    "autoclerk_bot_sessions",
    "Sign-ins to target systems by how they went: signed_in (the steps ran), reused, expired.",
    ["workflow", "event"],
    registry=REGISTRY,
)

BROWSER_RESTARTS = Counter(
    "autoclerk_bot_browser_restarts",
    "Browser launches after the first, by reason: disconnected, recycled (count), memory.",
    ["reason"],
    registry=REGISTRY,
)

PAGE_CRASHES = Counter(
    "autoclerk_bot_page_crashes",
    "Pages whose renderer crashed during a transaction.",
    registry=REGISTRY,
)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` for this process on ``host:port`` (loopback unless told otherwise)."""
    start_http_server(port, addr=host, registry=REGISTRY)
