"""The oracle every fault test uses, after Jepsen's ``total-queue`` checker.

It compares four records that nothing in Autoclerk can make agree by accident:
- ``accepted``: the case references the hand-off accepted (its receipt, from the rows of the file);
- the ledger's state of each case;
- the target system's own record of the submissions it accepted (the demo portal's ``/api/export``);
- the messages RabbitMQ dead-lettered (drained from ``autoclerk.dead``).

Counts:
- ``lost``: accepted cases that are missing from the ledger or did not reach a terminal state;
- ``duplicated``: submissions beyond the first for one case;
- ``recovered``: cases that reached their outcome after more than one attempt (the fault cost them one);
- ``unexpected``: submissions of cases never accepted, cases done without a submission, cases
  submitted although the ledger says they were not done, and dead letters naming unfinished cases.

A fault test passes only when lost = duplicated = unexpected = 0, after it has checked that its fault
really happened.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

TERMINAL = ("done", "business_exception", "failed", "cancelled")


@dataclass
class Verdict:
    transactions: int
    lost: int
    duplicated: int
    recovered: int
    unexpected: int
    dead_letters: int = 0
    states: dict[str, int] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)
    """The case references of the lost and unexpected cases, in the order the details name them."""

    @property
    def ok(self) -> bool:
        return self.lost == self.duplicated == self.unexpected == 0

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("details")
        data.pop("flagged")
        return data

    def __str__(self) -> str:
        head = (f"{self.transactions} transactions: lost {self.lost}, duplicated {self.duplicated}, recovered "
                f"{self.recovered}, unexpected {self.unexpected}, dead letters {self.dead_letters}; states {self.states}")
        return "\n  ".join([head, *self.details[:20]])


def drain_dead_letters(broker: str) -> list[tuple[list[int], str | None]]:
    """Take every message out of the dead-letter queue: the transaction ids each names, and its ledger's id
    (``None`` for a message that is not ours at all)."""
    from kombu import Connection

    from orchestrator.queue import DEAD_LETTER_QUEUE

    out: list[tuple[list[int], str | None]] = []
    with Connection(broker) as conn:
        channel = conn.default_channel
        try:
            channel.queue_declare(DEAD_LETTER_QUEUE, passive=True)
        except Exception:  # noqa: BLE001 - no such queue yet
            return out
        while (raw := channel.basic_get(DEAD_LETTER_QUEUE)) is not None:
            message = channel.message_to_python(raw)
            try:
                args = message.decode()[0]
                ids, ledger = args[0], args[1]
                out.append(([i for i in ids if isinstance(i, int)], ledger if isinstance(ledger, str) else None))
            except Exception:  # noqa: BLE001 - a foreign message: it names no transaction of ours
                out.append(([], None))
            message.ack()
    return out


def purge_work_queue(broker: str) -> None:
    """Empty the work queue (messages of ledgers that earlier tests used and threw away)."""
    from kombu import Connection

    from orchestrator.queue import QUEUE

    with Connection(broker) as conn:
        try:
            conn.default_channel.queue_purge(QUEUE)
        except Exception:  # noqa: BLE001 - no such queue yet
            pass


def query(ledger: Path | str, sql: str, params: dict[str, object] | None = None) -> list[tuple]:
    """The rows of one query on a SQLite ledger (a file) or any ledger (a SQLAlchemy URL)."""
    if isinstance(ledger, Path):
        with sqlite3.connect(ledger, timeout=30) as db:
            return list(db.execute(sql, params or {}))
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(ledger, poolclass=NullPool)  # a connection per query: it outlives no server restart
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql), params or {})]


def check(accepted: set[str], ledger_path: Path | str, portal_url: str, *,
          dead_letters: list[tuple[list[int], str | None]] | None = None) -> Verdict:
    """The verdict on one run (see the module's docstring)."""
    rows = {ref: (tx_id, state, attempts) for tx_id, ref, state, attempts in
            query(ledger_path, "select id, case_ref, state, attempts from transactions")}
    ledger_id = query(ledger_path, "select value from ledger_info where key = 'ledger_id'")[0][0]
    submissions = Counter(entry["case_ref"] for entry in httpx.get(f"{portal_url}/api/export", timeout=30).json())
    details: list[str] = []
    flagged: list[str] = []
    lost = 0
    for ref in sorted(accepted):
        if ref not in rows:
            lost += 1
            details.append(f"lost: {ref} is not in the ledger")
            flagged.append(ref)
        elif rows[ref][1] not in TERMINAL:
            lost += 1
            details.append(f"lost: {ref} is still {rows[ref][1]}")
            flagged.append(ref)
    duplicated = sum(count - 1 for count in submissions.values() if count > 1)
    details += [f"duplicated: {ref} submitted {count} times" for ref, count in submissions.items() if count > 1]
    unexpected = 0
    for ref in submissions:
        if ref not in accepted:
            unexpected += 1
            details.append(f"unexpected: {ref} was submitted but never accepted")
            flagged.append(ref)
        elif rows.get(ref, (0, "", 0))[1] != "done":
            unexpected += 1
            details.append(f"unexpected: {ref} was submitted but the ledger says {rows.get(ref, (0, 'nothing'))[1]}")
            flagged.append(ref)
    for ref in accepted:
        if rows.get(ref, (0, "", 0))[1] == "done" and not submissions.get(ref):
            unexpected += 1
            details.append(f"unexpected: {ref} is done in the ledger but the target system has no submission")
            flagged.append(ref)
    by_id = {tx_id: state for tx_id, state, _ in rows.values()}
    for ids, owner in dead_letters or []:
        for tx_id in ids if owner == ledger_id else ():  # another ledger's ids are not ours to account for
            if by_id.get(tx_id) not in TERMINAL:
                unexpected += 1
                details.append(f"unexpected: dead letter names transaction {tx_id}, which is {by_id.get(tx_id)}")
    recovered = sum(1 for ref in accepted if ref in rows and rows[ref][1] in TERMINAL and rows[ref][2] > 1)
    states = dict(Counter(state for ref, (_, state, _) in rows.items() if ref in accepted))
    return Verdict(len(accepted), lost, duplicated, recovered, unexpected, len(dead_letters or []), states, details,
                   flagged)


def accepted_refs(cases: Path) -> set[str]:
    """The references of a generated cases file (every row passes the input schema)."""
    import csv

    with open(cases, newline="") as fh:
        return {row["case_ref"] for row in csv.DictReader(fh)}


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])
