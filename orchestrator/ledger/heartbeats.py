"""Heartbeats: each worker (and the service's embedded one) tells the ledger it is alive, so the operations
page can list the live workers and what each holds."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine

from .schema import transactions, workers


class Heartbeats:
    """Who is working: the workers heard from recently."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def beat(self, owner: str, kind: str, concurrency: int, started_at: float,
             resolves: dict[str, list[str]] | None = None) -> None:
        """A worker (or the service's embedded one) says it is alive, and which secret, env and system
        names it can resolve (names only, never values)."""
        now = time.time()
        names = json.dumps(resolves, sort_keys=True) if resolves is not None else None
        with self.engine.begin() as conn:
            if conn.execute(update(workers).where(workers.c.owner == owner).values(
                    last_seen=now, concurrency=concurrency, resolves=names)).rowcount == 0:
                conn.execute(insert(workers).values(owner=owner, kind=kind, concurrency=concurrency,
                                                    started_at=started_at, last_seen=now, resolves=names))

    def workers(self, seen_within_s: float = 60.0) -> list[dict[str, Any]]:
        """Workers heard from recently, each with how many transactions it holds now."""
        t = transactions.c
        with self.engine.connect() as conn:
            held: dict[str, int] = dict(conn.execute(select(t.lease_owner, func.count()).where(
                t.state == "in_progress", t.lease_until > time.time()).group_by(t.lease_owner)).all())
            rows = [dict(r._mapping) for r in conn.execute(select(workers).where(
                workers.c.last_seen > time.time() - seen_within_s).order_by(workers.c.owner))]
        for row in rows:
            row["busy"] = held.get(row["owner"], 0)
            row["resolves"] = json.loads(row["resolves"]) if row["resolves"] else None
        return rows
