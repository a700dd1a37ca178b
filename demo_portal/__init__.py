"""The demo portal: a legacy case-management web app that the demo, the tests and the benchmarks use."""

from .app import Faults, create_app
from .casegen import COLUMNS, generate_cases
from .server import PortalProcess, portal_process, serve

__all__ = ["create_app", "Faults", "serve", "portal_process", "PortalProcess", "generate_cases", "COLUMNS"]
