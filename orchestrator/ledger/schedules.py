"""Schedules: what Celery beat fires and when, kept in the ledger so that a change takes effect in the
running beat without a restart (it reads them again on every tick), and the leases that let exactly one
beat run per ledger.

A schedule hands off either one file (``kind='file'``) or each file dropped into a watched folder's
``inbox/`` (``kind='folder'``) to a published workflow, on a cron expression (``cron``, in
``AUTOCLERK_TIMEZONE``) or every so many seconds (``every_s``).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from .schema import leases, schedules


class Schedules:
    """The schedules of one ledger, and the leases of the processes that must run alone (thread-safe)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, name: str, workflow: str, kind: str, path: str, *, cron: str | None, every_s: float | None,
            by: str) -> bool:
        """Record a new schedule; ``False`` when one of that name exists (nothing is changed)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(schedules).values(name=name, workflow=workflow, kind=kind, path=path, cron=cron,
                                                      every_s=every_s, created_by=by, created_at=time.time()))
        except IntegrityError:
            return False
        return True

    def remove(self, name: str) -> bool:
        """Delete a schedule; ``False`` when there is none of that name."""
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(schedules).where(schedules.c.name == name)).rowcount)

    def get(self, name: str) -> dict[str, Any] | None:
        """One schedule, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(schedules).where(schedules.c.name == name)).first()
        return dict(row._mapping) if row is not None else None

    def all(self) -> list[dict[str, Any]]:
        """Every schedule, by name (one small query: beat asks on every tick)."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(schedules).order_by(schedules.c.name))]

    def record_run(self, name: str, at: float, outcome: str | None) -> None:
        """Note when a schedule last fired and what came of it (one sentence, for ``schedule list``; ``None``
        keeps the sentence of the last firing that did something)."""
        values: dict[str, Any] = {"last_run_at": at} if outcome is None else {"last_run_at": at, "last_outcome": outcome}
        with self.engine.begin() as conn:
            conn.execute(update(schedules).where(schedules.c.name == name).values(**values))

    def request_run(self, name: str) -> bool:
        """Ask the running beat to fire a schedule now; ``False`` when there is none of that name."""
        with self.engine.begin() as conn:
            return bool(conn.execute(update(schedules).where(schedules.c.name == name)
                                     .values(run_requested_at=time.time())).rowcount)

    def take_run_requests(self) -> list[str]:
        """The schedules someone asked to fire now, each returned once (the request is cleared)."""
        with self.engine.begin() as conn:
            names = list(conn.execute(select(schedules.c.name).where(schedules.c.run_requested_at.is_not(None))).scalars())
            if names:
                conn.execute(update(schedules).where(schedules.c.name.in_(names)).values(run_requested_at=None))
        return names

    # -- leases ----------------------------------------------------------------------------------------
    def hold_lease(self, name: str, owner: str, ttl_s: float) -> str | None:
        """Take or renew lease ``name`` for ``owner`` until ``ttl_s`` from now.

        Returns:
            ``None`` when ``owner`` holds it now, else the owner who holds it (until it expires).
        """
        now = time.time()
        with self.engine.begin() as conn:
            taken = conn.execute(update(leases).where(leases.c.name == name)
                                 .where((leases.c.owner == owner) | (leases.c.expires_at < now))
                                 .values(owner=owner, expires_at=now + ttl_s)).rowcount
            if taken:
                return None
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(leases).values(name=name, owner=owner, expires_at=now + ttl_s))
            return None
        except IntegrityError:
            return self.lease_holder(name) or "another process"

    def release_lease(self, name: str, owner: str) -> None:
        """Give lease ``name`` up (only if ``owner`` holds it)."""
        with self.engine.begin() as conn:
            conn.execute(delete(leases).where(leases.c.name == name, leases.c.owner == owner))

    def lease_holder(self, name: str) -> str | None:
        """Who holds lease ``name`` now, or ``None``."""
        with self.engine.connect() as conn:
            return conn.execute(select(leases.c.owner).where(leases.c.name == name,
                                                             leases.c.expires_at >= time.time())).scalar()
