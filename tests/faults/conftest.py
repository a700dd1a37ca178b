"""Fixtures of the fault-injection suite: real RabbitMQ, real Chromium, the demo portal, a fault rig."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from demo_portal import PortalProcess

from .oracle import drain_dead_letters, purge_work_queue
from .rig import FaultRig


@pytest.fixture
def rig(tmp_path: Path, rabbitmq: str, portal: PortalProcess, chromium: str) -> Iterator[FaultRig]:
    purge_work_queue(rabbitmq)  # what earlier tests left on the queues is not this test's
    drain_dead_letters(rabbitmq)
    made = FaultRig(tmp_path, rabbitmq, portal)
    yield made
    made.close()
