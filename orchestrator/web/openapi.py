"""Print the hand-off service's OpenAPI document: ``python -m orchestrator.web.openapi > docs/openapi.json``.

The running service serves the same document at ``/api/openapi.json`` (to holders of a token); a test
fails when the checked-in copy drifts from the routes.
"""

from __future__ import annotations

import json
from typing import Any


def document() -> dict[str, Any]:
    from .app import create_app

    return create_app(None).openapi()  # type: ignore[arg-type]  # the routes alone, no service behind them


if __name__ == "__main__":
    print(json.dumps(document(), indent=2, sort_keys=True))
