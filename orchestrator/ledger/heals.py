"""Self-healing in the ledger: the fingerprint each step of each workflow version last found, and every heal.

:class:`Heals` is the bots' ``HealingStore`` (``bots.healing``): a worker's engine reads and keeps
fingerprints and records heals through it, and ``autoclerk heals`` lists and approves them.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import distinct, func, insert, select, update
from sqlalchemy.engine import Engine

from ..errors import LedgerError
from .schema import heals, step_fingerprints

if TYPE_CHECKING:
    from bots import Heal  # only named here; importing bots would load Playwright into every ledger reader

OUTCOMES = ("healed", "proposed")


class Heals:
    """Step fingerprints and heals of one ledger (thread-safe: every call is its own transaction)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- fingerprints (the bots' HealingStore) ------------------------------------------------------------
    def fingerprint(self, digest: str, step: str) -> dict[str, Any] | None:
        """The recorded fingerprint of a step of a workflow version, or ``None``."""
        with self.engine.connect() as conn:
            found = conn.execute(select(step_fingerprints.c.fingerprint).where(
                step_fingerprints.c.digest == digest, step_fingerprints.c.step == step)).scalar()
        return json.loads(found) if found else None

    def record_fingerprint(self, workflow: str, digest: str, step: str, fingerprint: dict[str, Any]) -> None:
        """Keep (or refresh) the fingerprint of a step of a workflow version."""
        values = {"workflow": workflow, "fingerprint": json.dumps(fingerprint, sort_keys=True), "recorded_at": time.time()}
        f = step_fingerprints.c
        with self.engine.begin() as conn:
            if conn.execute(update(step_fingerprints).where(f.digest == digest, f.step == step)
                            .values(**values)).rowcount == 0:
                conn.execute(insert(step_fingerprints).values(digest=digest, step=step, **values))

    def fingerprint_writes(self) -> dict[tuple[str, str], float]:
        """When each step's fingerprint was last written, by workflow version (digest) and step."""
        f = step_fingerprints.c
        with self.engine.connect() as conn:
            return {(r.digest, r.step): r.recorded_at for r in conn.execute(select(f.digest, f.step, f.recorded_at))}

    def record_heal(self, heal: Heal) -> int:
        """Keep a heal (made or proposed) with its case; returns its id."""
        with self.engine.begin() as conn:
            result = conn.execute(insert(heals).values(
                workflow=heal.workflow, digest=heal.digest, step=heal.step, verb=heal.verb, case_ref=heal.case_ref,
                attempt=heal.attempt, outcome=heal.outcome, old_locator=heal.old_locator, new_locator=heal.new_locator,
                score=heal.score, runner_up=heal.runner_up, fingerprint=json.dumps(heal.fingerprint, sort_keys=True),
                candidate=json.dumps(heal.candidate, sort_keys=True), screenshot=heal.screenshot, at=time.time()))
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    # -- reading and approving -------------------------------------------------------------------------------
    def list(self, workflow: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """Heals, newest first (of one workflow, or all), fingerprints decoded."""
        query = select(heals).order_by(heals.c.id.desc()).limit(limit)
        if workflow is not None:
            query = query.where(heals.c.workflow == workflow)
        with self.engine.connect() as conn:
            return [_decoded(dict(row._mapping)) for row in conn.execute(query)]

    def get(self, heal_id: int) -> dict[str, Any]:
        """One heal.

        Raises:
            LedgerError: no heal has that id.
        """
        with self.engine.connect() as conn:
            row = conn.execute(select(heals).where(heals.c.id == heal_id)).first()
        if row is None:
            raise LedgerError(f"there is no heal {heal_id} (see 'autoclerk heals list')")
        return _decoded(dict(row._mapping))

    def waiting(self) -> dict[str, int]:
        """Proposed heals waiting for a person, by workflow (one per step and proposed locator, however many
        cases proposed it)."""
        h = heals.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(h.workflow, func.count(distinct(h.step + " " + h.new_locator)))
                                .where(h.outcome == "proposed", h.approved_at.is_(None)).group_by(h.workflow)).all()
        return {row[0]: int(row[1]) for row in rows}

    def mark_approved(self, heal_id: int, by: str, reason: str, publish_number: int) -> None:
        """Record who approved a heal, why, and the publish that carries its locator (and every other heal of
        the same step to the same locator, which that publish answers too)."""
        heal = self.get(heal_id)
        h = heals.c
        with self.engine.begin() as conn:
            conn.execute(update(heals).where(h.workflow == heal["workflow"], h.step == heal["step"],
                                             h.new_locator == heal["new_locator"], h.approved_at.is_(None))
                         .values(approved_by=by, approved_at=time.time(), reason=reason, publish_number=publish_number))


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    row["fingerprint"] = json.loads(row["fingerprint"])
    row["candidate"] = json.loads(row["candidate"])
    return row
