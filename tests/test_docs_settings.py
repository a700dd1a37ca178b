"""``docs/settings.md`` names every setting, with the default the code has, and no setting that does not exist."""

from __future__ import annotations

import re
from typing import Any

from orchestrator.settings import Settings
from tests.conftest import ROOT

PAGE = ROOT / "docs" / "settings.md"
ROW = re.compile(r"^\| `(AUTOCLERK_[A-Z_]+)` \| ([^|]+) \|", re.MULTILINE)
NOT_SETTINGS = {"AUTOCLERK_BROWSERS_PATH", "AUTOCLERK_DEBUG"}
"""Variables read outside the settings object: by the browser installer and by the CLI's error handler."""


def rows() -> dict[str, str]:
    return {name: default.strip() for name, default in ROW.findall(PAGE.read_text(encoding="utf-8"))}


def test_every_setting_has_a_row_and_every_row_is_a_setting() -> None:
    documented = set(rows())
    settings = {f"AUTOCLERK_{name.upper()}" for name in Settings.model_fields}
    assert sorted(settings - documented) == [], "settings missing from docs/settings.md"
    assert sorted(documented - settings - NOT_SETTINGS) == [], "rows of docs/settings.md that are no setting"


def test_each_default_written_as_a_value_is_the_default_of_the_code() -> None:
    for variable, cell in rows().items():
        name = variable.removeprefix("AUTOCLERK_").lower()
        if name not in Settings.model_fields or not re.fullmatch(r"`[^`]+`", cell):
            continue  # described in words ("none", "two per CPU core") or not a setting
        default: Any = Settings.model_fields[name].default
        written = cell.strip("`")
        if isinstance(default, bool):
            assert written == str(default).lower(), variable
        elif isinstance(default, (int, float)):
            assert float(written) == default, variable
        else:
            value = default.get_secret_value() if hasattr(default, "get_secret_value") else default
            assert written == str(value), variable


def test_the_variables_the_page_names_outside_its_tables_exist() -> None:
    text = PAGE.read_text(encoding="utf-8")
    named = set(re.findall(r"AUTOCLERK_[A-Z_]*[A-Z]", text))
    prefixes = {"AUTOCLERK_SECRET", "AUTOCLERK_ENV"}  # + a name: AUTOCLERK_SECRET_PORTAL_PASSWORD
    known = {f"AUTOCLERK_{name.upper()}" for name in Settings.model_fields} | NOT_SETTINGS
    unknown = {n for n in named - known if not any(n.startswith(p) for p in prefixes)}
    assert unknown == set()
