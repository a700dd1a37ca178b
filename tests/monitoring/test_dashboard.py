"""The Grafana dashboard and the alert rules ask only for metrics Autoclerk exports, with labels it sets; every
panel reads only the jobs and instances chosen in the dashboard's variables."""

from __future__ import annotations

import json
import math
import re

import yaml
from prometheus_client import CollectorRegistry

from monitoring import REGISTRY
from orchestrator.ledger import BATCH_STATES, STATES, AuditHead, Breaker
from orchestrator.queue import BrokerCollector, LedgerCollector
from tests.conftest import ROOT
from tests.test_docs_links import anchors

DASHBOARD = ROOT / "monitoring" / "grafana" / "autoclerk.json"
RULES = ROOT / "monitoring" / "prometheus" / "alerts.yml"
NAME = re.compile(r"\b(autoclerk_[a-z_]+)")


class _Reports:
    def progress(self, window_s: float, now: float) -> dict:
        return {"counts": {s: 0 for s in STATES}, "done_recent": 0, "verified_recent": 0, "window_elapsed_s": 60.0}

    def oldest_waiting(self) -> None:
        return None

    def batch_states(self) -> dict:
        return {s: 0 for s in BATCH_STATES}

    def held(self) -> dict:
        return {"change-of-address": 3}

    def deadlines(self, margin_s: float, *, batch_id: str | None = None, now: float | None = None) -> dict:
        return {"change-of-address": {"at_risk": 2, "breached": 1}}

    def verification(self) -> dict:
        return {"verified": 5, "unverified": 2, "verify_failed": 1}


class _Audit:
    def head(self) -> AuditHead:
        return AuditHead(7, "0" * 64)


class _Breakers:
    def all(self) -> dict:
        return {"portal": Breaker("portal", "open", 3, 1.0, 31.0, None, "answered 503")}


class _Heals:
    def waiting(self) -> dict:
        return {"change-of-address": 1}


class _Ledger:
    reports = _Reports()
    audit = _Audit()
    breakers = _Breakers()
    heals = _Heals()


def exported() -> set[str]:
    """Every series name a worker's /metrics can hold."""
    registry = CollectorRegistry()
    registry.register(LedgerCollector(_Ledger(), 10))
    collector = BrokerCollector("amqp://guest:guest@127.0.0.1:1//")  # unreachable: NaN, but the names are there
    registry.register(collector)
    names = set()
    for reg in (REGISTRY, registry):
        for family in reg.collect():
            names.add(family.name)
            names |= {family.name + suffix for suffix in ("_total", "_bucket", "_count", "_sum", "_created")}
    assert all(math.isnan(v) for v in collector.depths().values())
    return names


def expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    found = [t["expr"] for p in panels for t in p.get("targets", [])]
    rules = yaml.safe_load(RULES.read_text())
    found += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    return found


def test_every_metric_the_dashboard_and_rules_use_is_exported() -> None:
    names = exported()
    used = {name for expr in expressions() for name in NAME.findall(expr)}
    assert used, "no expressions found"
    assert used <= names, f"not exported: {sorted(used - names)}"


def test_the_dashboard_covers_target_verification_throughput_outcomes_queue_durations_bots_and_deadlines() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert [p["title"] for p in dashboard["panels"] if p["type"] == "row"] == [
        "Target", "Verification", "Throughput and outcomes", "Queue", "Durations", "Bots", "Deadlines"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"] if p["type"] != "row")


SELECTOR = re.compile(r"\b(autoclerk_[a-z_]+|up)\b(?:\{([^}]*)\})?")


def test_every_panel_reads_only_the_chosen_jobs_and_instances() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query" and variables[name]["multi"] and variables[name]["includeAll"]
        assert "allValue" not in variables[name]  # All means every listed value, never ".*" (every job in Prometheus)
        assert variables[name]["datasource"]["uid"] == "${datasource}"
    assert variables["instance"]["query"].endswith('{job=~"$job"}, instance)')
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            selectors = SELECTOR.findall(target["expr"])
            assert selectors, f"{panel['title']}: {target['expr']}"
            for name, matchers in selectors:
                assert matchers.startswith('job=~"$job", instance=~"$instance"'), f"{panel['title']}: {name}"
    assert [p["title"] for p in dashboard["panels"] if p["type"] != "row" and not p.get("targets")] == []


def test_the_dashboards_docs_links_lead_to_a_section() -> None:
    links = json.loads(DASHBOARD.read_text())["links"]
    assert links
    for link in links:
        page, _, anchor = link["url"].partition("#")
        assert page.startswith("docs/") and anchor in anchors((ROOT / page).read_text()), link["url"]
