"""What a worker process holds for its life: settings, the ledger, the bot engine, parsed workflows.

Built lazily in the process that runs transactions (after any fork), and closed when the worker stops.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
from functools import cached_property
from typing import Any

from bots import BotConfig, BotEngine, NullEngine
from workflows import LoadedWorkflow

from ..deadlines import Window
from ..ledger import Ledger, SystemBudgets
from ..settings import Settings
from .breaker import SystemBreakers


def bot_config(settings: Settings, **changes: Any) -> BotConfig:
    """The bots' configuration from the settings (a worker's, a run's, the service's), with ``changes``
    on top (``autoclerk try``: its own evidence folder, a window, no kept sessions)."""
    s = settings
    config = BotConfig(
        system_urls=dict(s.systems),
        chromium_path=s.chromium_path,
        step_timeout_ms=s.step_timeout_ms,
        navigation_timeout_ms=s.navigation_timeout_ms,
        transaction_budget_s=s.transaction_budget_s,
        artifacts_dir=s.artifacts_dir.resolve(),
        files_dir=s.files_dir.resolve() if s.files_dir else None,
        reuse_sessions=s.reuse_sessions,
        recycle_after=s.recycle_after,
        browser_memory_mb=s.browser_memory_mb,
        trace=s.trace,
        artifacts_retention_days=s.artifacts_retention_days,
        server_error_retries=s.server_error_retries,
        server_error_wait_s=s.server_error_wait_s,
        fingerprint_refresh_every=s.fingerprint_refresh_every,
    )
    return dataclasses.replace(config, **changes)


class Runtime:
    """Per-process state shared by the transaction tasks (thread-safe)."""

    def __init__(self, settings: Settings, ledger: Ledger | None = None) -> None:
        self.settings = settings
        self._ledger = ledger
        self._lock = threading.Lock()
        self._engine: BotEngine | NullEngine | None = None
        self.claim_chunk = 1
        """How many ids :func:`execute_many` claims at once; it grows while work is fast."""
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    @cached_property
    def ledger(self) -> Ledger:
        return self._ledger or Ledger(self.settings.ledger_url)

    @cached_property
    def breakers(self) -> SystemBreakers:
        """The target systems' circuit breakers (an outage spends no attempts and opens no browser)."""
        return SystemBreakers(self.ledger, self.settings, self.owner)

    @cached_property
    def maintenance(self) -> dict[str, list[Window]]:
        """Each target system's maintenance windows (from settings; empty when none has any)."""
        return self.settings.maintenance_windows()

    @cached_property
    def budgets(self) -> SystemBudgets | None:
        """The target systems' shared budgets, when settings limit any."""
        return self.ledger.budgets if self.settings.system_limits else None

    @property
    def engine(self) -> BotEngine | NullEngine:
        with self._lock:
            if self._engine is None:
                s = self.settings
                if s.bot == "null":
                    self._engine = NullEngine()
                    return self._engine
                # The ledger keeps step fingerprints and heals: the bots know it only as a HealingStore.
                self._engine = BotEngine(bot_config(s), healing=self.ledger.heals if s.healing else None)
            return self._engine

    def workflow(self, digest: str) -> LoadedWorkflow:
        """The exact workflow version a transaction was handed off with, calls included (from the ledger, cached)."""
        return self.ledger.workflows.load(digest)

    def close(self) -> None:
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()


_current: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    """Install the runtime the tasks of this process use."""
    global _current
    _current = runtime


def current_runtime() -> Runtime:
    if _current is None:
        raise RuntimeError("no Autoclerk runtime is installed in this process")
    return _current
