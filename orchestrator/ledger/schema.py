"""The ledger's tables and states. The tables are created and changed only by the Alembic migrations in
``orchestrator/migrations``; these definitions are what the queries use and must match them (a test
compares the migrated database with them).

States::

    queued ─► in_progress ─► done
      │  ▲         │   ├────► business_exception                 (handed back to a person)
      │  │         │   └────► retry_scheduled ─► in_progress … ─► failed   (attempts exhausted)
      ▼  │         ▼
    paused        (any waiting state) ─► cancelled                (an operator's decision)

A batch is ``active`` while any of its cases is not terminal (or its file is still being received),
``paused`` or ``cancelled`` by an operator, and ``finished`` (with ``finished_at``) once every case is
terminal. A case that goes back to work (a resubmitted exception, a re-queued failure) makes its batch
active again until it finishes anew.

``failed`` and ``cancelled`` cases can be re-queued by an operator: they return to ``queued`` with
their attempts kept on the same row. A ``business_exception`` is a case handed back to a person: its
``resolution`` stays empty until the caseworker acts: a resubmit sends it back to ``queued`` with
corrected data, ``done_by_hand`` and ``closed`` end it; every such action is a ``case_actions`` row.

The hand-off service's tables live here too: ``published_workflows`` (the version of each workflow that
caseworkers hand off to), ``batch_rejections`` (every refused row of a hand-off), ``case_actions`` and
``ledger_counters`` (the counts by state, kept as the ledger changes), ``workers`` (each worker's heartbeat, for the operations page), ``workflow_publishes`` (every publish,
numbered per name) and ``audit_log`` (the hash-chained audit trail). ``pruned_cases`` and ``pruned_rejections``
keep what ``autoclerk ledger prune`` took out of the ledger as counts (per batch, workflow and state; per
batch and kind of refusal), which every count by state adds in, so totals stay true after a prune. The account tables (users, API tokens,
sign-in sessions) are in the same database and migrations, and on this :data:`metadata`, but are
defined beside the code that uses them, in :mod:`orchestrator.accounts.schema`.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text, UniqueConstraint, text

TERMINAL = ("done", "business_exception", "failed", "cancelled")
WAITING = ("queued", "retry_scheduled", "paused")
ACTIVE = ("queued", "in_progress", "retry_scheduled", "paused")
STATES = ACTIVE + TERMINAL
BATCH_STATES = ("active", "paused", "finished", "cancelled")
RESOLUTIONS = ("done_by_hand", "closed")
VERIFICATIONS = ("verified", "unverified", "verify_failed")
"""How a submitted case's record was checked: read back and found right (``verified``), not checked (not in
the workflow's sample, not yet due, or the workflow has no ``verify``: ``unverified``, also when the column is
empty), read back and found wrong (``verify_failed``: the case is a ``business_exception``). ``pending`` marks a
case whose submit succeeded and whose verification must still run before it ends: its next attempt verifies
only, never submitting again."""
PENDING = "pending"
VERIFY_FAILED = "VerifyFailed"
"""The ``error_class`` of a case whose verification found the record wrong."""
VERIFIED_EVENT = "verified"
"""The ``detail`` of the event that marks a verification passing: the ``done`` event of a case verified as it
ended, or, for a delayed verification, an event of its own (state ``verified``: the case stays ``done``). The
target's recent rate counts these events."""
HELD = "ConfigurationMissing"
"""The ``error_class`` of a case a worker held (``paused``) because it lacks a secret, env value or system URL
the workflow needs: the attempt is given back, and resuming the batch (or handing the file off again)
releases it."""

UNFINISHED_DEADLINE = "deadline IS NOT NULL AND state IN ('queued', 'in_progress', 'retry_scheduled', 'paused')"
"""The predicate of the partial index on unfinished cases' deadlines; a query that reads the index repeats it
word for word (SQLite uses a partial index only when the query's WHERE has the index's terms)."""
OPEN_EXCEPTION = "state = 'business_exception' AND resolution IS NULL"
"""The predicate of the partial index on open exceptions (handed back, not yet dealt with), by last change."""
HELD_CASE = f"state = 'paused' AND error_class = '{HELD}'"
"""The predicate of the partial index on cases held for a missing setting, by workflow."""

metadata = MetaData()

workflow_versions = Table(
    "workflow_versions",
    metadata,
    Column("digest", String(32), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("workflow", String(64), nullable=False),
    Column("digest", String(32), nullable=False),
    Column("source_name", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("state", String(16), nullable=False, server_default="active"),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("deadline", Float),
    Column("created_by", String(64)),
    Column("intake", String(16), nullable=False, server_default="complete"),
    Column("rows_rejected", Integer, nullable=False, server_default="0"),
    Column("finished_at", Float),
    Column("rows_read", Integer),
    Column("accepted", Integer),
    Column("input_sha256", String(64)),
    Index("ix_batches_created_by", "created_by", "created_at"),
    Index("ix_batches_created_at", "created_at"),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow", String(64), nullable=False),
    Column("digest", String(32), nullable=False),
    Column("batch_id", String(32), nullable=False),
    Column("case_ref", String(128), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(24), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("fence", Integer, nullable=False),
    Column("lease_owner", String(128)),
    Column("lease_until", Float),
    Column("effect_attempt", Integer),
    Column("next_attempt_at", Float),
    Column("published", Integer, nullable=False),
    Column("result_ref", String(256)),
    Column("output", Text),
    Column("error_class", String(64)),
    Column("error_message", Text),
    Column("evidence", Text),
    Column("history", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("deadline", Float),
    Column("resolution", String(16)),
    Column("error_detail", Text),
    Column("verification", String(16)),
    Column("verify_due_at", Float),
    UniqueConstraint("workflow", "case_ref", name="uq_transactions_workflow_case_ref"),
    Index("ix_transactions_batch_state", "batch_id", "state", "id"),
    Index("ix_transactions_batch_id", "batch_id", "id"),
    Index("ix_transactions_outbox", "published", "state", "priority"),
    Index("ix_transactions_lease", "lease_until", sqlite_where=text("state = 'in_progress'"),
          postgresql_where=text("state = 'in_progress'")),
    Index("ix_transactions_deadline", "deadline", sqlite_where=text(UNFINISHED_DEADLINE),
          postgresql_where=text(UNFINISHED_DEADLINE)),
    Index("ix_transactions_verify_due", "verify_due_at", sqlite_where=text("verify_due_at IS NOT NULL"),
          postgresql_where=text("verify_due_at IS NOT NULL")),
    Index("ix_transactions_open_exceptions", "updated_at", sqlite_where=text(OPEN_EXCEPTION),
          postgresql_where=text(OPEN_EXCEPTION)),
    Index("ix_transactions_held", "workflow", sqlite_where=text(HELD_CASE), postgresql_where=text(HELD_CASE)),
)

ledger_counters = Table(
    "ledger_counters",
    metadata,
    Column("batch_id", String(32), primary_key=True),
    Column("workflow", String(64), primary_key=True),
    Column("name", String(32), primary_key=True),
    Column("shard", Integer, primary_key=True),
    Column("count", Integer, nullable=False),
)
"""How many cases each batch (``""``: the whole ledger) holds under each name (a state, open exceptions,
verified cases, failed verifications), kept in the same database transaction as every change and spread over
shards summed on read (see :mod:`.counters`)."""

events = Table(
    "transaction_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("transaction_id", Integer, nullable=False, index=True),
    Column("at", Float, nullable=False),
    Column("state", String(24), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("detail", Text),
)

ledger_info = Table(
    "ledger_info",
    metadata,
    Column("key", String(32), primary_key=True),
    Column("value", Text, nullable=False),
)

system_rate = Table(
    "system_rate",
    metadata,
    Column("system", String(64), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

breakers = Table(
    "breakers",
    metadata,
    Column("system", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("opened_at", Float),
    Column("probe_at", Float),
    Column("prober", String(160)),
    Column("probe_until", Float),
    Column("reason", Text),
    Column("updated_at", Float, nullable=False),
)
"""A circuit breaker per target system (:mod:`.breakers`): ``closed``, ``open`` or ``half_open``."""

system_sessions = Table(
    "system_sessions",
    metadata,
    Column("system", String(64), primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("holder", String(160)),
    Column("until", Float),
    Column("waited_at", Float),
)
"""A session slot per target system and number (:mod:`.budgets`): its holder and lease, and when a bot last
waited for a slot of the system (``waited_at``, on every slot of the system)."""

published_workflows = Table(
    "published_workflows",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("digest", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("published_by", String(64), nullable=False),
    Column("published_at", Float, nullable=False),
)

workflow_publishes = Table(
    "workflow_publishes",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("digest", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("published_by", String(64), nullable=False),
    Column("published_at", Float, nullable=False),
    Column("file", Text, nullable=False),
    Column("reason", Text),
    Column("rolled_back_from", Integer),
)
"""Every publish of every workflow name, numbered 1, 2, 3… per name; the newest is the one in
``published_workflows``. A rollback is a publish of an earlier number's source, with its reason."""

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", Float, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(48), nullable=False),
    Column("object_type", String(24), nullable=False),
    Column("object_id", String(160), nullable=False),
    Column("origin", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_at", "at"),
)
"""The audit trail: every action a person takes, append-only, each record chained to the one before by
SHA-256 (see :mod:`orchestrator.ledger.audit`)."""

batch_rejections = Table(
    "batch_rejections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", String(32), nullable=False),
    Column("row", Integer, nullable=False),
    Column("field", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("kind", String(24), nullable=False, server_default="invalid"),
    Index("ix_batch_rejections_batch", "batch_id", "row"),
)

case_actions = Table(
    "case_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("transaction_id", Integer, nullable=False, index=True),
    Column("at", Float, nullable=False),
    Column("username", String(64), nullable=False),
    Column("action", String(24), nullable=False),
    Column("note", Text),
)

workers = Table(
    "workers",
    metadata,
    Column("owner", String(160), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("resolves", Text),
)

# -- recurring work (orchestrator.queue.scheduler): schedules, the files dropped in watched folders, leases --
schedules = Table(
    "schedules",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("workflow", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # folder | file
    Column("path", Text, nullable=False),
    Column("cron", String(128)),
    Column("every_s", Float),
    Column("created_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_run_at", Float),
    Column("last_outcome", Text),
    Column("run_requested_at", Float),
)

dropped_files = Table(
    "dropped_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("schedule", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("name", Text, nullable=False),
    Column("batch_id", String(32)),
    Column("processed_path", Text),
    Column("results_path", Text),
    Column("dropped_at", Float, nullable=False),
    UniqueConstraint("schedule", "sha256", name="uq_dropped_files_schedule_sha256"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("owner", String(160), nullable=False),
    Column("expires_at", Float, nullable=False),
)

pruned_cases = Table(
    "pruned_cases",
    metadata,
    Column("batch_id", String(32), primary_key=True),
    Column("workflow", String(64), primary_key=True),
    Column("state", String(24), primary_key=True),
    Column("count", Integer, nullable=False),
)

pruned_rejections = Table(
    "pruned_rejections",
    metadata,
    Column("batch_id", String(32), primary_key=True),
    Column("kind", String(24), primary_key=True),
    Column("count", Integer, nullable=False),
)

step_fingerprints = Table(
    "step_fingerprints",
    metadata,
    Column("digest", String(32), primary_key=True),
    Column("step", String(300), primary_key=True),
    Column("workflow", String(64), nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("recorded_at", Float, nullable=False),
)
"""The fingerprint of the element each step of each workflow version last found (a JSON mapping, see
``bots.fingerprint``): what a lost element is recognised by. Refreshed every N successes per worker."""

heals = Table(
    "heals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow", String(64), nullable=False),
    Column("digest", String(32), nullable=False),
    Column("step", String(300), nullable=False),
    Column("verb", String(32), nullable=False),
    Column("case_ref", String(128), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("old_locator", Text, nullable=False),
    Column("new_locator", Text, nullable=False),
    Column("score", Float, nullable=False),
    Column("runner_up", Float, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("candidate", Text, nullable=False),
    Column("screenshot", Text),
    Column("at", Float, nullable=False),
    Column("approved_by", String(64)),
    Column("approved_at", Float),
    Column("reason", Text),
    Column("publish_number", Integer),
    Index("ix_heals_workflow_at", "workflow", "at"),
)
"""Every heal, with its case and attempt: ``healed`` (a reading step or a non-secret field, healed on its
own) or ``proposed`` (a step that waits for a person), and once approved, who approved it, why, and the
publish that made the healed locator a fallback of the step."""
