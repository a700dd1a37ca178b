"""Metrics read from the durable ledger at scrape time: the target, the recent rate and the queue's state.

Counters in a process reset when it restarts; these figures come from the ledger, so
``autoclerk_target_completed`` (the verified transactions: what the target counts) never drops when workers
restart. Each scrape's figures are cached for ``cache_s`` seconds, so many scrapers (or a short scrape interval)
cost the ledger one read per period.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..ledger import STATES
from ..settings import Settings
from .progress import read_target

T = TypeVar("T")


class _CachedCollector(Collector):
    """A collector whose figures are read at scrape time, at most once per ``cache_s`` seconds."""

    def __init__(self, cache_s: float) -> None:
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._read_at = -math.inf
        self._value: Any = None

    def describe(self) -> Iterator[Metric]:
        return iter(())  # figures are read at scrape time only, never while registering

    def _cached(self, read: Callable[[], T]) -> T:
        with self._lock:
            if time.monotonic() - self._read_at >= self.cache_s:
                self._value, self._read_at = read(), time.monotonic()
            return self._value  # type: ignore[no-any-return]


class LedgerCollector(_CachedCollector):
    """Target and queue gauges from one ledger; register it on the registry ``/metrics`` serves."""

    def __init__(self, ledger: Any, target: int, window_s: float = 600.0, cache_s: float = 15.0,
                 deadline_margin_s: float = 4 * 3600.0) -> None:
        super().__init__(cache_s)
        self.ledger, self.target, self.window_s = ledger, target, window_s
        self.deadline_margin_s = deadline_margin_s

    def figures(self) -> dict[str, Any]:
        """The ledger's figures, read at most once per ``cache_s``."""
        return self._cached(self._read)

    def _read(self) -> dict[str, Any]:
        now = time.time()
        oldest = self.ledger.reports.oldest_waiting()
        return {**read_target(self.ledger, self.target, self.window_s, now),
                "oldest_age": max(now - oldest, 0.0) if oldest else 0.0, "batches": self.ledger.reports.batch_states(),
                "held": self.ledger.reports.held(), "audit_head": self.ledger.audit.head().seq,
                "deadlines": self.ledger.reports.deadlines(self.deadline_margin_s, now=now),
                "breakers": {system: b.state for system, b in self.ledger.breakers.all().items()},
                "heals_waiting": self.ledger.heals.waiting()}

    def collect(self) -> Iterator[Metric]:
        f = self.figures()
        yield GaugeMetricFamily("autoclerk_target_transactions", "The target: transactions to be done by bots and verified.",
                                value=self.target)
        yield GaugeMetricFamily("autoclerk_target_completed",
                                "Transactions toward the target: done by bots and verified (read back from the target "
                                "system and found right), from the durable ledger (never drops on a restart).",
                                value=f["completed"])
        yield GaugeMetricFamily("autoclerk_target_rate_per_second",
                                f"Transactions verified per second over the last {self.window_s:.0f} s.",
                                value=f["per_second"])
        yield GaugeMetricFamily("autoclerk_target_projected_completion_timestamp_seconds",
                                "When the target is reached at the recent rate (Unix time; NaN when nothing is moving).",
                                value=math.nan if f["projected"] is None else f["projected"])
        verification = GaugeMetricFamily(
            "autoclerk_target_verification",
            "Done transactions by verification, from the durable ledger: verified (read back and right: what the "
            "target counts), unverified (submitted, not checked), verify_failed (read back wrong, to a person).",
            labels=["result"])
        for result, count in f["verification"].items():
            verification.add_metric([result], count)
        yield verification
        states = GaugeMetricFamily("autoclerk_ledger_transactions",
                                   "Transactions in the ledger by state (waiting: queued, retry_scheduled, paused; "
                                   "waiting for a person: business_exception; dead-lettered: failed).", labels=["state"])
        for state in STATES:
            states.add_metric([state], f["counts"][state])
        yield states
        batch_states = GaugeMetricFamily("autoclerk_ledger_batches",
                                         "Batches in the ledger by state (finished: every case has an outcome).",
                                         labels=["state"])
        for state, count in f["batches"].items():
            batch_states.add_metric([state], count)
        yield batch_states
        held = GaugeMetricFamily("autoclerk_cases_held_for_configuration",
                                 "Cases a worker held (paused, attempt given back) because it lacks a secret, env value "
                                 "or system URL the workflow needs; resume the batch once it is fixed.",
                                 labels=["workflow"])
        for workflow, count in sorted(f["held"].items()):
            held.add_metric([workflow], count)
        yield held
        at_risk = GaugeMetricFamily("autoclerk_cases_at_risk",
                                    "Unfinished cases with less than AUTOCLERK_DEADLINE_MARGIN left before their deadline.",
                                    labels=["workflow"])
        breached = GaugeMetricFamily("autoclerk_cases_breached",
                                     "Unfinished cases past their deadline (they stay in the queue, flagged).",
                                     labels=["workflow"])
        for workflow, figures in sorted(f["deadlines"].items()):
            at_risk.add_metric([workflow], figures["at_risk"])
            breached.add_metric([workflow], figures["breached"])
        yield at_risk
        yield breached
        breakers = GaugeMetricFamily("autoclerk_breaker_open",
                                     "1 while a target system's circuit breaker is open or half-open (none of its cases "
                                     "is started), 0 once closed.", labels=["system"])
        for system, state in sorted(f["breakers"].items()):
            breakers.add_metric([system], 0 if state == "closed" else 1)
        yield breakers
        yield GaugeMetricFamily("autoclerk_audit_head_sequence",
                                "Sequence number of the newest audit record; it never goes down unless records "
                                "were removed (alert AutoclerkAuditHeadWentBack).", value=f["audit_head"])
        waiting = GaugeMetricFamily("autoclerk_heals_waiting",
                                    "Healed locators proposed for steps that do not heal on their own (a click, a submit), "
                                    "waiting for a person's approval ('autoclerk heals approve').", labels=["workflow"])
        for workflow, count in sorted(f["heals_waiting"].items()):
            waiting.add_metric([workflow], count)
        yield waiting
        yield GaugeMetricFamily("autoclerk_queue_oldest_waiting_age_seconds",
                                "Age of the oldest transaction waiting for a bot (0 when none waits).",
                                value=f["oldest_age"])


class BrokerCollector(_CachedCollector):
    """Depth of the work queue and the dead-letter queue in RabbitMQ (passive declares, cached)."""

    def __init__(self, broker_url: str, cache_s: float = 5.0) -> None:
        super().__init__(cache_s)
        self.broker_url = broker_url

    def depths(self) -> dict[str, float]:
        """Messages ready per queue, read at most once per ``cache_s``."""
        return self._cached(self._read)

    def _read(self) -> dict[str, float]:
        from kombu import Connection

        from .celery_app import DEAD_LETTER_QUEUE, QUEUE

        try:
            with Connection(self.broker_url, connect_timeout=2) as conn:
                channel = conn.default_channel
                return {label: float(channel.queue_declare(name, passive=True).message_count)
                        for label, name in (("work", QUEUE), ("dead_letter", DEAD_LETTER_QUEUE))}
        except Exception:  # noqa: BLE001 - broker down or queue missing: report NaN, never fail a scrape
            return {"work": math.nan, "dead_letter": math.nan}

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("autoclerk_broker_queue_messages",
                                   "Messages ready in RabbitMQ's queues (NaN when the broker cannot be asked).",
                                   labels=["queue"])
        for label, depth in self.depths().items():
            family.add_metric([label], depth)
        yield family


def serve_process_metrics(settings: Settings, ledger: Any, bot_slots: int) -> None:
    """Serve ``/metrics`` on ``settings.metrics_port`` with the ledger's gauges, and the broker's when there is one.

    ``bot_slots`` is how many transactions this process runs at once (0 for a service that only hands off).
    """
    from monitoring import BOT_SLOTS, REGISTRY, serve_metrics

    assert settings.metrics_port is not None
    BOT_SLOTS.set(bot_slots)
    REGISTRY.register(LedgerCollector(ledger, settings.target_transactions, settings.rate_window_s,
                                      deadline_margin_s=settings.deadline_margin_s))
    if not settings.embedded:
        REGISTRY.register(BrokerCollector(settings.broker_url))
    serve_metrics(settings.metrics_port, settings.metrics_host)
