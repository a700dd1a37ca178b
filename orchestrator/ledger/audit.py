"""The audit trail: every action a person takes, append-only, each record chained to the one before.

A record holds its sequence number (1, 2, 3…), when, who (a user of the service; on the command line the
operating-system user), the action, the object's type and id, where it came from (the client address for
the pages and the API, ``cli`` for the command line), a JSON detail, the previous record's hash and its
own: the SHA-256 of :func:`canonical` (the record's fields, the previous hash included, as compact JSON).
Changing any stored field, or removing a record from the middle, breaks the chain at that record;
:meth:`AuditTrail.verify` names the first one. Removing the newest records leaves a shorter valid chain:
that shows as the head's sequence going backwards (the ``autoclerk_audit_head_sequence`` gauge and its
alert), or against a head recorded earlier (``verify(expected=...)``).

Appends from many processes are serialised so that each reads the previous hash inside its own
transaction: on PostgreSQL by an advisory transaction lock, on SQLite by taking the database's write
lock (a no-op write) before reading.

The detail never holds secrets or case data: callers put identifiers, counts, reasons and notes there.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine

from ..errors import AuditChainBroken
from .schema import audit_log, ledger_info

GENESIS = "0" * 64
"""The previous hash of record 1."""

_ADVISORY_KEY = 72620  # beside the migrations' 72619
_FIELDS = ("seq", "at", "actor", "action", "object_type", "object_id", "origin", "detail", "prev_hash")


@dataclass(frozen=True)
class AuditHead:
    """The newest record of the chain: its sequence number (0 when empty) and its hash."""

    seq: int
    hash: str


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record's hash is taken over: its fields in a fixed order as compact JSON, the time with six
    decimals (so the float a database gives back hashes the same)."""
    values = [f"{float(record['at']):.6f}" if name == "at" else record[name] for name in _FIELDS]
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()


def record_hash(record: dict[str, Any]) -> str:
    """The SHA-256 (hex) of :func:`canonical`."""
    return hashlib.sha256(canonical(record)).hexdigest()


class AuditTrail:
    """The audit trail of one ledger (thread- and process-safe appends)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, actor: str, action: str, object_type: str, object_id: str | int, *, origin: str,
               detail: dict[str, Any] | None = None) -> AuditHead:
        """Append one record and return it as the new head.

        Args:
            actor: who acted: a user name; on the command line the operating-system user.
            action: what they did, a short dotted name (``batch.pause``, ``workflow.publish``, ``sign_in.failed``).
            object_type: what it was done to (``batch``, ``case``, ``workflow``, ``user``, ``schedule`` …).
            object_id: which one (a batch id, a case id, a workflow name, a user name).
            origin: the client address for the pages and the API, ``cli`` for the command line.
            detail: identifiers, counts, reasons and notes (JSON); never a secret or a case field's value.

        Example:
            ``ledger.audit.record("olga", "batch.pause", "batch", batch_id, origin="10.0.0.7", detail={"count": 12})``
        """
        detail_text = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
        with self.engine.begin() as conn:
            self._lock(conn)
            last = conn.execute(select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)).first()
            seq = (last.seq if last else 0) + 1
            row: dict[str, Any] = {"seq": seq, "at": round(time.time(), 6), "actor": actor[:64],
                   "action": action, "object_type": object_type, "object_id": str(object_id)[:160],
                   "origin": origin[:64], "detail": detail_text, "prev_hash": last.hash if last else GENESIS}
            digest = row["hash"] = record_hash(row)
            conn.execute(insert(audit_log).values(**row))
        return AuditHead(seq, digest)

    def _lock(self, conn: Connection) -> None:
        if self.engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY})
        else:  # a write first: SQLite takes its one write lock now (waiting up to busy_timeout), before the read
            conn.execute(update(ledger_info).where(ledger_info.c.key == "ledger_id").values(value=ledger_info.c.value))

    def head(self) -> AuditHead:
        """The newest record (sequence 0 and :data:`GENESIS` when the trail is empty)."""
        with self.engine.connect() as conn:
            last = conn.execute(select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)).first()
        return AuditHead(last.seq, last.hash) if last else AuditHead(0, GENESIS)

    def records(self, *, since: float | None = None, actor: str | None = None, action: str | None = None,
                after: int = 0, before: int | None = None, limit: int | None = None,
                newest_first: bool = False) -> list[dict[str, Any]]:
        """Records filtered by time (Unix time, from ``since``), by who and by action (an exact name, or a
        prefix ending in ``.``: ``batch.``); ``after`` and ``before`` (sequence numbers) page forwards and back."""
        c = audit_log.c
        query = select(audit_log)
        if since is not None:
            query = query.where(c.at >= since)
        if actor:
            query = query.where(c.actor == actor)
        if action:
            query = query.where(c.action.startswith(action, autoescape=True) if action.endswith(".") else c.action == action)
        if after:
            query = query.where(c.seq > after)
        if before is not None:
            query = query.where(c.seq < before)
        query = query.order_by(c.seq.desc() if newest_first else c.seq)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_readable(r._mapping) for r in conn.execute(query)]

    def iter_records(self, *, page: int = 1000, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every record :meth:`records` would give for ``filters``, oldest first, read ``page`` at a time (flat memory)."""
        after = 0
        while True:
            found = self.records(after=after, limit=page, **filters)
            yield from found
            if len(found) < page:
                return
            after = found[-1]["seq"]

    def count(self) -> int:
        """How many records the trail holds."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())

    def verify(self, *, expected: AuditHead | None = None, chunk: int = 5000) -> AuditHead:
        """Check the whole chain, oldest first, and return its head.

        Args:
            expected: a head recorded earlier: the chain must still reach it (same hash at that sequence).

        Raises:
            AuditChainBroken: names the first bad record (its sequence number) and what is wrong with it.
        """
        prev, seq = GENESIS, 0
        for row in self._all(chunk):
            seq += 1
            if row["seq"] != seq:
                raise AuditChainBroken(seq, f"is missing (the next record is {row['seq']})")
            if row["prev_hash"] != prev:
                raise AuditChainBroken(seq, "does not follow the record before it (its previous hash differs)")
            if record_hash(row) != row["hash"]:
                raise AuditChainBroken(seq, "was changed after it was written (its hash does not match its fields)")
            if expected is not None and seq == expected.seq and row["hash"] != expected.hash:
                raise AuditChainBroken(seq, f"is not the record of the head recorded earlier ({expected.hash[:12]}…)")
            prev = row["hash"]
        if expected is not None and seq < expected.seq:
            raise AuditChainBroken(seq + 1, f"is missing: the chain ends at {seq}, but a head at {expected.seq} "
                                            "was recorded earlier (its newest records were removed)")
        return AuditHead(seq, prev)

    def _all(self, chunk: int) -> Iterator[dict[str, Any]]:
        after = 0
        while True:
            with self.engine.connect() as conn:
                rows = [dict(r._mapping) for r in conn.execute(
                    select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq).limit(chunk))]
            yield from rows
            if len(rows) < chunk:
                return
            after = rows[-1]["seq"]


def _readable(row: Any) -> dict[str, Any]:
    record = dict(row)
    record["detail"] = json.loads(record["detail"])
    return record


ACTION_TEXT = {
    "sign_in": "signed in",
    "sign_in.failed": "failed to sign in",
    "sign_in.locked": "was refused sign-in: too many failed attempts",
    "sign_out": "signed out",
    "batch.hand_off": "handed off batch {id}",
    "batch.pause": "paused batch {id}",
    "batch.resume": "resumed batch {id}",
    "batch.cancel": "cancelled batch {id}",
    "batch.requeue": "re-queued the failed cases of batch {id}",
    "case.resubmit": "sent case {id} back with corrected data",
    "case.done_by_hand": "marked case {id} done by hand",
    "case.close": "closed case {id}",
    "case.retry": "retried case {id}",
    "case.cancel": "cancelled case {id}",
    "case.rerun": "ran case {id} again",
    "workflow.publish": "published workflow {id}",
    "workflow.rollback": "rolled workflow {id} back",
    "heal.approve": "approved a healed locator of workflow {id}, added as a fallback of its step",
    "user.add": "added user {id}",
    "user.token": "issued an API token to {id}",
    "user.revoke_tokens": "revoked the API tokens of {id}",
    "user.password": "changed the password of {id}",
    "user.roles": "changed the roles of {id}",
    "user.disable": "disabled user {id}",
    "user.enable": "enabled user {id}",
    "user.limit": "limited user {id} to some workflows",
    "user.unlimit": "removed the limit of user {id}: they reach every workflow again",
    "team.add": "gave team {id} workflows",
    "team.release": "took workflows from team {id}",
    "team.remove": "removed team {id}",
    "schedule.add": "added schedule {id}",
    "schedule.remove": "removed schedule {id}",
    "schedule.run_now": "ran schedule {id} now",
    "ledger.prune": "pruned the cases finished before {id} from the ledger",
    "ledger.restored": "marked the ledger as restored from a backup",
    "case.erase": "erased the personal data of case {id}",
}
"""Each action as a person reads it (``{id}``: the object's id). An action not named here reads as
``ACTION on TYPE ID``."""


def describe(record: dict[str, Any]) -> str:
    """One plain-English line of what a record says was done (without who, when and where)."""
    detail = record["detail"] if isinstance(record["detail"], dict) else json.loads(record["detail"])
    template = ACTION_TEXT.get(record["action"])
    text_ = (template.format(id=record["object_id"]) if template
             else f"{record['action']} on {record['object_type']} {record['object_id']}")
    extra = []
    if "number" in detail:
        extra.append(f"as publish {detail['number']}" + (f", the source of publish {detail['to']}" if "to" in detail else ""))
    if "count" in detail:
        extra.append(f"{detail['count']} case(s)")
    if "accepted" in detail:
        extra.append(f"{detail['accepted']} case(s) accepted, {detail.get('rejected', 0)} refused")
    if "roles" in detail:
        extra.append(f"roles: {', '.join(detail['roles']) or 'none'}")
    for key in ("teams", "workflows"):
        if detail.get(key):
            extra.append(f"{key}: {', '.join(detail[key])}")
    for key in ("reason", "note"):
        if detail.get(key):
            extra.append(f"{key}: {detail[key]}")
    return text_ + (f" ({'; '.join(extra)})" if extra else "")
