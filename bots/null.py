"""The null bot: it does nothing and succeeds at once. It measures the queue core alone.

``AUTOCLERK_BOT=null`` makes workers use it (``benchmarks/queue_core.py`` does): every transaction still
goes through intake, the ledger, the broker, claims, outcomes and acknowledgements, only without a
browser. It never touches a target system, so nothing it "does" needs a lookup.
"""

from __future__ import annotations

from collections.abc import Callable

from .engine import BotJob, BotResult


class NullEngine:
    """A bot engine with :class:`BotEngine`'s interface that runs no steps."""

    def run(self, job: BotJob, before_effect: Callable[[], None]) -> BotResult:
        return BotResult(output={})

    def close(self) -> None:
        """Nothing to close."""
