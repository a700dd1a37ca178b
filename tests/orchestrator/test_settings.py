"""Settings: flags first, then AUTOCLERK_* variables, then defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator import EMBEDDED_BROKER, load_settings


def test_defaults_are_the_embedded_broker_and_a_sqlite_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AUTOCLERK_BROKER_URL", "AUTOCLERK_LEDGER_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.broker_url == EMBEDDED_BROKER and settings.embedded
    assert settings.ledger_url.startswith("sqlite:///")


def test_a_flag_beats_the_environment_which_beats_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOCLERK_LEDGER_URL", "sqlite:///env.db")
    monkeypatch.setenv("AUTOCLERK_CHROMIUM_PATH", "/opt/chromium")
    monkeypatch.setenv("AUTOCLERK_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    settings = load_settings(ledger_url="sqlite:///flag.db", chromium_path=None)
    assert settings.ledger_url == "sqlite:///flag.db"
    assert settings.chromium_path == "/opt/chromium"
    assert not settings.embedded


def test_system_urls_come_from_name_equals_url_pairs_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(systems=("portal=http://127.0.0.1:1",)).systems == {"portal": "http://127.0.0.1:1"}
    monkeypatch.setenv("AUTOCLERK_SYSTEMS", '{"crm": "http://127.0.0.1:2"}')
    assert load_settings().systems == {"crm": "http://127.0.0.1:2"}
    with pytest.raises(ValidationError):
        load_settings(systems=("portal",))


def test_an_unknown_broker_scheme_is_refused() -> None:
    with pytest.raises(ValidationError):
        load_settings(broker_url="redis://127.0.0.1")
