"""The OpenAPI document in docs/ is the one the service's routes make."""

from __future__ import annotations

import json

from orchestrator.web.openapi import document
from tests.conftest import ROOT


def test_the_checked_in_openapi_document_matches_the_routes() -> None:
    assert json.loads((ROOT / "docs" / "openapi.json").read_text()) == json.loads(json.dumps(document())), \
        "regenerate it: python -m orchestrator.web.openapi > docs/openapi.json"
