"""A real Prometheus (Debian's package, on loopback, scraping every second) watching real workers.

Two workers process a batch through RabbitMQ, real Chromium and the demo portal. Through Prometheus's
HTTP query API, the transactions counted equal the ledger's terminal counts exactly. Then the workers
are restarted: their counters start again from zero, and the target-completed figure, read from the
ledger, does not move. The alert rules shipped in monitoring/prometheus load in the same server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from demo_portal import PortalProcess, generate_cases
from tests.conftest import ROOT, need, wait_for_consumers
from tests.integration.test_queue_reliability import Rig, last_json

RULES = ROOT / "monitoring" / "prometheus" / "alerts.yml"
EMPTY_WHEN_QUIET = {"Retries by error class", "Browser restarts and page crashes", "Locator fallbacks (page drift)",
                    "Step duration p95, by step type", "Unfinished cases at risk and past their deadline, by workflow",
                    "Target systems with an open circuit breaker"}
"""Panels with no series in a run without retries, restarts, crashes, drift, cases with a deadline or a target
system that went down (a breaker has a series once it has tripped)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    def __init__(self, tmp: Path, targets: list[str]) -> None:
        binary = shutil.which("prometheus")
        need(binary is not None, "Debian's prometheus package is not installed")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp / "prometheus.yml"
        shutil.copy(RULES, tmp / "alerts.yml")
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [alerts.yml]\n"
            "scrape_configs:\n"
            f"  - job_name: autoclerk\n    static_configs: [{{targets: [{', '.join(targets)}]}}]\n")
        self.log = tmp / "prometheus.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(binary), f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"], stdout=log, stderr=subprocess.STDOUT)
        self.wait(lambda: self._ready(), 60, "Prometheus to be ready")

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, promql: str) -> list[dict]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10).json()
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def scalar(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def wait(self, condition, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert self.proc.poll() is None, f"Prometheus exited: {self.log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:g} s"
            time.sleep(0.25)

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def rig(tmp_path: Path, rabbitmq: str, portal: PortalProcess, chromium: str) -> Iterator[Rig]:
    made = Rig(tmp_path, rabbitmq, portal)
    made.env |= {"AUTOCLERK_LOG_LEVEL": "INFO", "AUTOCLERK_LOG_JSON": "true"}  # production logs, every line
    yield made
    made.close()


def test_prometheus_counts_exactly_what_the_ledger_holds_and_the_target_survives_a_restart(rig: Rig) -> None:
    ports = [free_port(), free_port()]
    workers = [rig.start_worker("--metrics-port", str(p)) for p in ports]
    prometheus = Prometheus(rig.tmp, [f"'127.0.0.1:{p}'" for p in ports])
    try:
        wait_for_consumers(rig.broker, 2)
        prometheus.wait(lambda: prometheus.scalar('sum(up{job="autoclerk"})') == 2, 60, "both workers scraped")
        rules = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        assert {r["name"] for g in rules for r in g["rules"]} >= {"AutoclerkNoProgress", "AutoclerkDeadLetters"}

        cases = rig.tmp / "cases.csv"
        generate_cases(cases, 16, invalid_rate=0.25, seed=21, start=1200)
        with rig.run_in_background(cases) as run:
            out, err = run.communicate(timeout=400)
        assert run.returncode == 0, err
        summary = last_json(out)
        with sqlite3.connect(rig.ledger_path) as db:
            ledger = dict(db.execute("select state, count(*) from transactions group by state").fetchall())
            verified = db.execute("select count(*) from transactions where state = 'done' and verification = 'verified'"
                                  ).fetchone()[0]
        assert ledger.get("business_exception", 0) > 0 and ledger.get("done", 0) > 0, ledger  # both outcomes occur
        assert summary["done"] == ledger["done"] == verified  # the example reads every record back: all verified

        def counted() -> dict[str, float]:
            return {r["metric"]["outcome"]: float(r["value"][1])
                    for r in prometheus.query('sum by (outcome) (autoclerk_transactions_total{job="autoclerk"})')}

        prometheus.wait(lambda: counted() == {k: float(v) for k, v in ledger.items()}, 30,
                        f"Prometheus's counts to equal the ledger's {ledger}")
        prometheus.wait(lambda: prometheus.scalar('min(autoclerk_target_completed{job="autoclerk"})') == verified,
                        30, "the ledger's figure on both workers (read at most every 15 s)")
        assert prometheus.scalar('max(autoclerk_target_transactions{job="autoclerk"})') == 10_000_000
        assert prometheus.scalar('sum(autoclerk_bots_slots{job="autoclerk"})') == 4  # two workers, two slots each
        assert prometheus.scalar('sum(autoclerk_transaction_duration_seconds_count{job="autoclerk"})') == \
            sum(ledger.values())  # one attempt per case here: nothing was retried
        assert (prometheus.scalar('sum(autoclerk_bot_target_wait_seconds_count{job="autoclerk"})') or 0) >= sum(ledger.values())
        prometheus.wait(lambda: prometheus.scalar('max(autoclerk_broker_queue_messages{job="autoclerk",queue="work"})') == 0,
                        30, "the broker's work queue reported empty")
        labels = {k for r in prometheus.query('{job="autoclerk", __name__=~"autoclerk_.*"}') for k in r["metric"]}
        assert labels <= {"__name__", "job", "instance", "workflow", "outcome", "state", "step_type", "le", "event",
                          "reason", "queue", "error_class", "result", "system", "step"}, labels  # bounded labels: never a case reference or URL
        # Every expression of the shipped dashboard is valid PromQL and finds data in this server, with the job and
        # instance variables set as Grafana sets "All": every value the variable's query lists, as one regex.
        dashboard = json.loads((ROOT / "monitoring" / "grafana" / "autoclerk.json").read_text())
        chosen: dict[str, str] = {}
        for variable in dashboard["templating"]["list"][1:]:
            metric, label = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]).groups()  # type: ignore[union-attr]
            values = {r["metric"][label] for r in prometheus.query(f"group by ({label}) ({metric})".replace(
                '"$job"', f'"{chosen.get("job", "")}"'))}
            chosen[variable["name"]] = "(" + "|".join(sorted(values)) + ")"
        assert chosen == {"job": "(autoclerk)", "instance": "(" + "|".join(sorted(f"127.0.0.1:{p}" for p in ports)) + ")"}
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$__rate_interval", "1m")
                expr = expr.replace("$job", chosen["job"]).replace("$instance", chosen["instance"])
                assert prometheus.query(expr) or panel["title"] in EMPTY_WHEN_QUIET, f"{panel['title']}: {expr}"
        workers_up = next(p for p in dashboard["panels"] if p["title"] == "Workers up")["targets"][0]["expr"]
        assert prometheus.scalar(workers_up.replace("$job", chosen["job"]).replace("$instance", chosen["instance"])) == 2
        # The workflow signs in with the secret 'demo-password': no series, label or value of any worker holds it.
        federated = httpx.get(f"{prometheus.url}/federate", params={"match[]": '{job="autoclerk"}'}, timeout=10).text
        assert "autoclerk_transactions_total" in federated and "demo-password" not in federated
        for port in ports:
            scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            assert "demo-password" not in scraped and "CASE-" not in scraped
        logged = [json.loads(line) for log in sorted(rig.tmp.glob("worker-*.log"))
                  for line in log.read_text().splitlines() if line.startswith("{")]
        finished = [line for line in logged if line["event"] == "transaction finished"]
        assert len(finished) == sum(ledger.values())
        assert all({"batch", "workflow", "case_ref", "attempt"} <= line.keys() for line in finished)
        assert all("demo-password" not in json.dumps(line) for line in logged)

        # Restart the workers: their counters begin again, the ledger's figure does not move.
        for proc in workers:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
        restarted_at = time.time()
        rig.start_worker("--metrics-port", str(ports[0]))
        rig.start_worker("--metrics-port", str(ports[1]))
        wait_for_consumers(rig.broker, 2)
        prometheus.wait(lambda: (prometheus.scalar('min(timestamp(autoclerk_target_completed{job="autoclerk"}))') or 0)
                        > restarted_at + 1 and prometheus.scalar('sum(up{job="autoclerk"})') == 2,
                        60, "a scrape of both restarted workers")
        assert prometheus.scalar('max(autoclerk_target_completed{job="autoclerk"})') == verified
        assert prometheus.scalar('min(autoclerk_target_completed{job="autoclerk"})') == verified
        assert not prometheus.query('sum(autoclerk_transactions_total{job="autoclerk"})') or \
            prometheus.scalar('sum(autoclerk_transactions_total{job="autoclerk"})') == 0  # the counters did reset
    finally:
        prometheus.close()
