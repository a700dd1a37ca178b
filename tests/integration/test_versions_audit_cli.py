"""The versions and audit commands as a subprocess: publish twice, list, diff and roll back by number or
digest prefix; every change (publishes, users) in the audit trail as the OS user from 'cli'; 'audit verify'
prints the head, names an edited record and catches a cut tail against the head printed earlier. And the
migration: a workflow published before versions existed becomes its publish number 1."""

from __future__ import annotations

import getpass
import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, delete, text, update

from orchestrator import Ledger
from orchestrator.ledger.schema import audit_log
from tests.conftest import autoclerk

SOURCE = """name: echo
version: {version}
systems:
  portal: {{}}
input:
  case_ref: {{type: string, max_length: 128}}
steps:
  - fail: {{message: "Cannot do {what}"}}
"""


def test_versions_diff_rollback_and_the_audit_trail_through_the_cli(tmp_path: Path) -> None:
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    for version, what in ((1, "a"), (2, "b")):
        (tmp_path / "echo.yaml").write_text(SOURCE.format(version=version, what=what))
        published = autoclerk("workflows", "publish", "echo.yaml", "--ledger", ledger, cwd=tmp_path)
        assert published.returncode == 0, published.stderr
        assert f"as publish {version}" in published.stdout
    listed = [json.loads(line) for line in autoclerk("workflows", "versions", "echo", "--ledger", ledger, "--json").stdout.splitlines()]
    assert [(v["number"], v["version"], v["published_by"]) for v in listed] == [
        (1, 1, f"cli:{getpass.getuser()}"), (2, 2, f"cli:{getpass.getuser()}")]
    assert set(listed[0]) == {"number", "digest", "version", "published_by", "published_at", "file", "reason",
                              "rolled_back_from"}
    diff = autoclerk("workflows", "diff", "echo", "1", listed[1]["digest"][:8], "--ledger", ledger)
    assert diff.returncode == 0 and "-version: 1\n+version: 2\n" in diff.stdout and diff.stdout.startswith("--- echo publish 1")
    unknown = autoclerk("workflows", "diff", "echo", "1", "9", "--ledger", ledger)
    assert unknown.returncode == 2 and unknown.stderr.strip() == (
        "autoclerk: error: workflow echo has no publish 9 (publish numbers 1 to 2, or a digest prefix)")
    rolled = autoclerk("workflows", "rollback", "echo", "1", "--reason", "2 breaks the portal", "--ledger", ledger)
    assert rolled.returncode == 0 and rolled.stdout.startswith("rolled echo back to publish 1 (version 1,") \
        and rolled.stdout.strip().endswith("as publish 3")
    assert "rollback to 1: 2 breaks the portal  (in use)" in autoclerk("workflows", "versions", "echo", "--ledger", ledger).stdout

    done = subprocess.run([sys.executable, "-m", "orchestrator", "users", "add", "olga", "--role", "operator",
                           "--password-stdin", "--ledger", ledger], input="a long enough password\n", text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert autoclerk("users", "roles", "olga", "--role", "operator", "--role", "author", "--ledger", ledger).returncode == 0

    trail = [json.loads(line) for line in autoclerk("audit", "--ledger", ledger, "--json").stdout.splitlines()]
    assert [(r["action"], r["object_id"], r["actor"], r["origin"]) for r in trail] == [
        ("workflow.publish", "echo", getpass.getuser(), "cli"), ("workflow.publish", "echo", getpass.getuser(), "cli"),
        ("workflow.rollback", "echo", getpass.getuser(), "cli"), ("user.add", "olga", getpass.getuser(), "cli"),
        ("user.roles", "olga", getpass.getuser(), "cli")]
    assert "a long enough password" not in json.dumps(trail)
    only = autoclerk("audit", "--ledger", ledger, "--action", "user.", "--since", "1d").stdout.splitlines()
    assert len(only) == 2 and "added user olga (roles: operator)" in only[0] and "(from cli)" in only[0]
    bad = autoclerk("audit", "--ledger", ledger, "--since", "last tuesday")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--since 'last tuesday': expected a date" in bad.stderr

    verified = autoclerk("audit", "verify", "--ledger", ledger)
    assert verified.returncode == 0 and verified.stdout.startswith("audit trail intact: 5 record(s); head 5:")
    head = verified.stdout.strip().rsplit(" ", 1)[-1]

    engine = create_engine(ledger)
    with engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 4).values(detail='{"roles":["author"]}'))
    broken = autoclerk("audit", "verify", "--ledger", ledger)
    assert broken.returncode == 1 and broken.stdout == ""
    assert broken.stderr.strip() == ("autoclerk: error: the audit trail is broken: audit record 4 was changed after "
                                     "it was written (its hash does not match its fields)")

    with engine.begin() as conn:  # put it back, then cut the newest two records off
        conn.execute(update(audit_log).where(audit_log.c.seq == 4).values(detail=json.dumps(trail[3]["detail"], separators=(",", ":"))))
        conn.execute(delete(audit_log).where(audit_log.c.seq >= 4))
    engine.dispose()
    assert autoclerk("audit", "verify", "--ledger", ledger).returncode == 0  # a shorter chain on its own looks whole
    cut = autoclerk("audit", "verify", "--ledger", ledger, "--expect-head", head)
    assert cut.returncode == 1 and "audit record 4 is missing: the chain ends at 3, but a head at 5" in cut.stderr


def test_the_migration_makes_each_workflow_already_published_its_publish_number_1(tmp_path: Path) -> None:
    from alembic import command

    from orchestrator.ledger import migrate

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    config = migrate._config()
    with ledger.engine.begin() as conn:  # back to the revision before versions were kept
        config.attributes["connection"] = conn
        command.downgrade(config, "0007")
        conn.execute(text("INSERT INTO published_workflows VALUES ('echo', 'abc123', 3, 'arthur', 1000.0)"))
    migrate.upgrade(ledger.engine)
    assert [(v["number"], v["digest"], v["version"], v["published_by"], v["published_at"])
            for v in ledger.workflows.versions("echo")] == [(1, "abc123", 3, "arthur", 1000.0)]
    ledger.close()
