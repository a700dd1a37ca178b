"""The ledger on both backends: a SQLite file and a throwaway PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import Ledger


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'ledger.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    opened = Ledger(url)
    yield opened
    opened.close()
