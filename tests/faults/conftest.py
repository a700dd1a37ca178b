"""Fixtures of the fault-injection suite: real RabbitMQ, real Chromium, the demo portal, a fault rig.

The suite's RabbitMQ is a node of its own (``servers.py``), started once per test session, with a virtual host
per test: the faults stop it, kill its Erlang VM and close its connections without touching the shared node
that the other tests use at the same time in a parallel run, and a test never receives messages that an
earlier test's broker fault held back. In a parallel run (``pytest -n``) each test process starts its own
node for the fault tests it is given.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo_portal import PortalProcess

from . import rig as rigs
from .rig import FaultRig, fault_rig
from .servers import PrivateRabbitmq, listening, private_servers


@pytest.fixture(scope="session")
def fault_broker() -> Iterator[PrivateRabbitmq]:
    """The fault suite's own RabbitMQ node, for the whole session."""
    with private_servers(postgres=False, name="autoclerk-faults") as (broker, _):
        assert broker is not None
        rigs.BROKER = broker
        try:
            yield broker
        finally:
            rigs.BROKER = None


@pytest.fixture
def rabbitmq(fault_broker: PrivateRabbitmq) -> Iterator[str]:
    """A virtual host of this test's own on the suite's node (it replaces the shared broker of tests/conftest.py).
    A test that failed mid-fault may have left the node stopped: it is started again first."""
    if not listening(fault_broker.port):
        fault_broker.start()
    fault_broker.ctl("start_app")  # a no-op on a running node
    fault_broker.ctl("await_startup")
    vhost = f"fault-{uuid.uuid4().hex[:10]}"
    url = fault_broker.add_vhost(vhost)
    try:
        yield url
    finally:
        fault_broker.ctl("delete_vhost", vhost, check=False, timeout=60)


@pytest.fixture
def rig(tmp_path: Path, rabbitmq: str, portal: PortalProcess, chromium: str) -> Iterator[FaultRig]:
    with fault_rig(tmp_path, rabbitmq, portal) as made:
        yield made
