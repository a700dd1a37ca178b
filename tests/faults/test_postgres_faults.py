"""PostgreSQL under faults mid-run, on a private cluster (``servers.py``; the shared server is never touched):
the server restarted, and every connection to it ended (``pg_terminate_backend``). The oracle holds the run
to nothing lost, nothing submitted twice, and the workers that were running before the fault reconnect by
themselves: they are the only workers, and they finish cases after it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from demo_portal import PortalProcess

from .oracle import query
from .rig import FaultRig, fault_rig, record
from .servers import PrivatePostgres, private_servers


@pytest.fixture
def pg_rig(tmp_path: Path, rabbitmq: str, portal: PortalProcess, chromium: str) -> Iterator[tuple[FaultRig, PrivatePostgres]]:
    with private_servers(rabbitmq=False) as (_, postgres):
        assert postgres is not None
        with fault_rig(tmp_path, rabbitmq, portal, postgres.create_database("ledger")) as made:
            yield made, postgres


def _mid_run(rig: FaultRig, name: str, inject: Callable[[], bool], *, start: int, **extra: object) -> None:
    cases = rig.cases(seed=start % 997, start=start)
    workers = [rig.start_worker(), rig.start_worker()]
    rig.wait_for_consumers(2)
    with rig.run_in_background(cases) as run:
        rig.wait(lambda: rig.count("done") >= 2, 300, "two cases done")
        struck_at, struck = time.time(), time.monotonic()
        confirmed = inject()
        summary = rig.finish(run)
    verdict = rig.verdict(cases)
    done_after = query(rig.ledger, "select count(*) from transactions where state = 'done' and updated_at > :t",
                       {"t": struck_at})[0][0]
    alive = sum(1 for worker in workers if worker.poll() is None)
    record(name, verdict, confirmed=confirmed, recover_s=time.monotonic() - struck, done_after_fault=done_after,
           workers_alive=alive, **extra)
    assert summary["unfinished"] == 0 and summary["failed"] == 0
    assert alive == 2 and done_after >= 1, "the workers running before the fault reconnected and finished cases after it"


def test_postgresql_restarted_mid_run_loses_nothing_and_the_workers_reconnect(pg_rig: tuple[FaultRig, PrivatePostgres]) -> None:
    rig, postgres = pg_rig

    def inject() -> bool:
        before = postgres.postmaster_pid()
        postgres.restart("immediate")  # a crash and a recovery, not a polite shutdown
        return postgres.postmaster_pid() != before

    _mid_run(rig, "PostgreSQL restarted mid-run (pg_ctl restart -m immediate)", inject, start=14_000)


def test_every_postgresql_connection_ended_mid_run_loses_nothing_and_the_workers_reconnect(
        pg_rig: tuple[FaultRig, PrivatePostgres]) -> None:
    rig, postgres = pg_rig
    ended: list[int] = []

    def inject() -> bool:
        ended.append(postgres.terminate_connections("ledger"))
        return ended[0] >= 2  # at least the two workers were connected, and were cut

    _mid_run(rig, "PostgreSQL connections ended mid-run (pg_terminate_backend)", inject, start=15_000,
             connections_ended=ended)


def test_a_claim_made_while_postgresql_is_down_waits_in_place_and_claims_once_it_is_back() -> None:
    from orchestrator import Ledger, Runtime, execute_many, load_settings
    from workflows import parse_workflow

    loaded = parse_workflow("name: wf\nversion: 1\nsystems: {portal: {}}\ninput:\n  case_ref: {type: string}\n"
                            "steps:\n  - goto: /\n")
    with private_servers(rabbitmq=False) as (_, postgres):
        assert postgres is not None
        ledger = Ledger(postgres.create_database("ledger"))
        try:
            ledger.workflows.save(loaded)
            batch = ledger.batches.create("wf", loaded.digest, "cases.csv")
            ids, _ = ledger.batches.add_cases(batch, "wf", 1, loaded.digest, 3, [(f"D{i}", {"case_ref": f"D{i}"})
                                                                                  for i in range(3)])
            ledger.outbox.mark_published(ids)
            runtime = Runtime(load_settings(ledger_url=ledger.url, bot="null"), ledger)
            postgres.stop()
            assert postgres.postmaster_pid_or_none() is None, "the server really is down"
            import threading

            # The claim starts while the server is down; the server comes back while it waits.
            threading.Timer(2.0, postgres.start).start()
            outcomes = execute_many(runtime, ids)
            assert sorted(o.claim.id for o in outcomes) == sorted(ids)
            assert {(c["state"], c["attempts"]) for c in ledger.cases.list(batch)} == {("done", 1)}
        finally:
            ledger.close()
