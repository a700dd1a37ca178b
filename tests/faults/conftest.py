"""Fixtures of the fault-injection suite: real RabbitMQ, real Chromium, the demo portal, a fault rig."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest

from demo_portal import Faults, PortalProcess

from .oracle import drain_dead_letters, purge_work_queue
from .rig import FaultRig


@pytest.fixture
def rig(tmp_path: Path, rabbitmq: str, portal: PortalProcess, chromium: str) -> Iterator[FaultRig]:
    # The portal is shared by the session: a test that failed mid-fault leaves its knobs set.
    httpx.put(f"{portal.url}/api/faults", json=asdict(Faults()), timeout=10).raise_for_status()
    purge_work_queue(rabbitmq)  # what earlier tests left on the queues is not this test's
    drain_dead_letters(rabbitmq)
    made = FaultRig(tmp_path, rabbitmq, portal)
    yield made
    made.close()
