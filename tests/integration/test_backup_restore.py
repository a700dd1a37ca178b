"""A backup taken mid-run and restored: real RabbitMQ, a real worker with Chromium, the demo portal, and the
ledger on SQLite (``autoclerk ledger backup``) and on PostgreSQL (``pg_dump``/``pg_restore``).

The restored ledger has forgotten what happened after the backup. The sweep publishes its waiting cases
again, the in-progress ones come back when their lease runs out, and the workflow's lookup (``when:
always``) finds in the portal the changes submitted after the backup: every case ends with an outcome,
none is submitted twice, and every case the ledger says is done has its submission in the portal. Then
a prune moves the finished batch into an archive, and status and reconciliation show the same figures.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from demo_portal import PortalProcess
from tests.conftest import always_looking, autoclerk, need, rabbitmqctl, with_vhost
from tests.faults.oracle import accepted_refs, purge_work_queue
from tests.faults.rig import FaultRig, fault_rig

PG_BIN = Path("/usr/lib/postgresql/15/bin")
TERMINAL = {"done", "business_exception", "failed", "cancelled"}


class Restore:
    """One backend's ledger URL, backup and restore."""

    def __init__(self, backend: str, tmp: Path, postgres_url: str | None) -> None:
        self.backend, self.tmp = backend, tmp
        self.url = f"sqlite:///{tmp / 'ledger.db'}" if backend == "sqlite" else str(postgres_url)
        self.backup_file = tmp / ("backup.db" if backend == "sqlite" else "backup.dump")

    def _libpq(self) -> tuple[list[str], dict[str, str]]:
        url = make_url(self.url)
        return (["-h", str(url.host), "-p", str(url.port or 5432), "-U", str(url.username), "-d", str(url.database)],
                {**os.environ, "PGPASSWORD": str(url.password)})

    def backup(self) -> None:
        if self.backend == "sqlite":
            done = autoclerk("ledger", "backup", str(self.backup_file), "--ledger", self.url)
            assert done.returncode == 0 and done.stdout.startswith("backed up the ledger "), done.stderr
            return
        args, env = self._libpq()
        subprocess.run([str(PG_BIN / "pg_dump"), "-Fc", "-f", str(self.backup_file), *args], env=env, check=True)

    def restore(self) -> None:
        if self.backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                (self.tmp / f"ledger.db{suffix}").unlink(missing_ok=True)
            shutil.copy(self.backup_file, self.tmp / "ledger.db")
            return
        args, env = self._libpq()
        subprocess.run([str(PG_BIN / "pg_restore"), "--clean", "--if-exists", "--no-owner", *args,
                        str(self.backup_file)], env=env, check=True)
        done = autoclerk("ledger", "restored", "--ledger", self.url)
        assert done.returncode == 0 and "waiting cases will be published again" in done.stdout, done.stderr

    def states(self) -> dict[str, str]:
        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                return dict(conn.execute(text("select case_ref, state from transactions")).all())  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - the ledger is not created yet
            return {}
        finally:
            engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def restore(request: pytest.FixtureRequest, tmp_path: Path) -> Restore:
    if request.param == "postgresql":
        need((PG_BIN / "pg_dump").exists(), f"pg_dump is not installed in {PG_BIN}")
        return Restore("postgresql", tmp_path, request.getfixturevalue("postgres_url"))
    return Restore("sqlite", tmp_path, None)


@pytest.fixture
def vhost(rabbitmq: str) -> Iterator[str]:
    """A RabbitMQ virtual host of this test's own: no other ledger's worker takes (and rejects) its messages."""
    name = f"autoclerk-test-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, str(make_url(rabbitmq).username or "guest"), ".*", ".*", ".*")
        yield with_vhost(rabbitmq, name)  # the same server, whichever vhost the suite's URL names
    finally:
        rabbitmqctl("delete_vhost", name)


@pytest.fixture
def rig(tmp_path: Path, vhost: str, portal: PortalProcess, chromium: str, restore: Restore) -> Iterator[FaultRig]:
    with fault_rig(tmp_path, vhost, portal, restore.url) as made:
        yield made


def test_a_backup_taken_mid_run_is_restored_and_the_sweep_finishes_the_batch_with_nothing_lost_or_twice(
        rig: FaultRig, restore: Restore, tmp_path: Path) -> None:
    workflow = always_looking(tmp_path)
    cases = rig.cases(12, start=900, seed=19)
    accepted = accepted_refs(cases)
    worker = rig.start_worker(concurrency=2)
    rig.wait_for_consumers(1)
    run = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", str(workflow), "--cases", str(cases),
                            *rig.common, "--json", "--timeout", "600"], cwd=tmp_path, env=rig.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def three_done() -> bool:
            assert run.poll() is None, f"autoclerk run ended early: {run.communicate()[1][-2000:]}"
            return sum(s == "done" for s in restore.states().values()) >= 3

        rig.wait(three_done, 300, "three cases done")
        restore.backup()
        summary = rig.finish(run)  # type: ignore[arg-type]
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=60)
    assert summary["unfinished"] == 0
    rig.close()  # the deployment stops, and the ledger is restored
    assert worker.poll() is not None
    purge_work_queue(rig.broker)
    restore.restore()
    at_backup = restore.states()
    assert set(at_backup) == accepted
    assert 0 < sum(s not in TERMINAL for s in at_backup.values()), "the backup was taken mid-run"

    rig.start_worker(concurrency=2)
    rig.wait(lambda: set(restore.states().values()) <= TERMINAL, 300, "every case has an outcome again")
    states = restore.states()
    submissions = Counter(e["case_ref"] for e in httpx.get(f"{rig.portal.url}/api/export", timeout=30).json())
    assert set(states) == accepted, "nothing lost"
    assert not [ref for ref, n in submissions.items() if n > 1], "nothing submitted twice"
    assert {ref for ref, s in states.items() if s == "done"} == set(submissions) & accepted
    rig.wait(lambda: autoclerk("status", "--ledger", restore.url, "--json").stdout.count('"state": "finished"') == 1,
             60, "the batch finished")

    # and, the batch finished, a prune moves every case to an archive while every figure stays
    status = json.loads(autoclerk("status", "--ledger", restore.url, "--json").stdout)
    batch_id = status["batches"][0]["id"]
    reconciled = autoclerk("batches", "reconcile", batch_id, "--ledger", restore.url, "--json").stdout
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    pruned = autoclerk("ledger", "prune", "--finished-before", future, "--archive", str(tmp_path / "archive"),
                       "--ledger", restore.url, "--json", env={"AUTOCLERK_ARTIFACTS_DIR": str(tmp_path / "artifacts")})
    assert pruned.returncode == 0, pruned.stderr
    summary = json.loads(pruned.stdout)
    assert summary["cases"] == len(accepted) and summary["events"] > 0
    assert restore.states() == {}
    after = json.loads(autoclerk("status", "--ledger", restore.url, "--json").stdout)
    assert (after["completed"], after["ledger_counts"], after["batches"]) == \
        (status["completed"], status["ledger_counts"], status["batches"])
    assert autoclerk("batches", "reconcile", batch_id, "--ledger", restore.url, "--json").stdout == reconciled
    with gzip.open(summary["archive"], "rt", encoding="utf-8") as handle:
        archived = [json.loads(line) for line in handle]
    assert {r["row"]["case_ref"] for r in archived if r["table"] == "transactions"} == accepted
