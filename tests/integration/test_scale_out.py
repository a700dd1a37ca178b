"""Scale-out: workers with their own settings (as on separate hosts) share one RabbitMQ and one PostgreSQL
ledger; every transaction is done exactly once and every worker takes a share."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import ROOT, autoclerk, wait_for_consumers

WORKFLOW = ROOT / "benchmarks" / "queue_bench.yaml"


def test_three_workers_with_separate_settings_share_one_broker_and_one_postgresql_ledger(
        rabbitmq: str, postgres_url: str, tmp_path: Path) -> None:
    cases = tmp_path / "cases.csv"
    with open(cases, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["case_ref", "amount", "note"])
        writer.writerows([f"T{n}", "1.00", "routine"] for n in range(1, 3001))
    workers = []
    for host in range(3):  # each "host" has its own working folder, settings and concurrency
        home = tmp_path / f"host-{host}"
        home.mkdir()
        env = {**os.environ, "AUTOCLERK_BROKER_URL": rabbitmq, "AUTOCLERK_LEDGER_URL": postgres_url,
               "AUTOCLERK_BOT": "null", "AUTOCLERK_CONCURRENCY": str(host + 1), "AUTOCLERK_IDS_PER_MESSAGE": "20",
               "AUTOCLERK_ARTIFACTS_DIR": str(home / "artifacts")}
        workers.append(subprocess.Popen([sys.executable, "-m", "orchestrator", "worker"], cwd=home, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        wait_for_consumers(rabbitmq, 3)
        result = autoclerk("run", str(WORKFLOW), "--cases", str(cases), "--broker", rabbitmq, "--ledger", postgres_url,
                           "--json", cwd=tmp_path, env={"AUTOCLERK_BOT": "null"})
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
    assert result.returncode == 0, result.stderr
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        done, attempts = conn.execute(text(
            "select count(*), sum(attempts) from transactions where state = 'done'")).one()
        outcomes = conn.execute(text("select count(*) from transaction_events where state = 'done'")).scalar()
        owners = {row[0].split(":")[1].split("/")[0] for row in conn.execute(text(
            "select distinct lease_owner from transactions"))}
    engine.dispose()
    assert (done, attempts, outcomes) == (3000, 3000, 3000)  # none missing, none run twice
    assert len(owners) == 3, "every worker took a share"
