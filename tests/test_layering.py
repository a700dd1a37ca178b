"""Imports flow one way: workflows ← bots ← orchestrator; monitoring imports none of them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "workflows": {"bots", "orchestrator", "celery", "kombu", "pika", "sqlalchemy", "playwright"},
    "bots": {"orchestrator", "celery", "kombu", "pika", "sqlalchemy"},
    "monitoring": {"workflows", "bots", "orchestrator", "celery", "sqlalchemy", "playwright"},
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_above_it(package: str) -> None:
    offenders = []
    for file in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            offenders += [f"{file.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN[package]]
    assert offenders == []
