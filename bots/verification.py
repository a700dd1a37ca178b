"""Evidence of a verification: the page the submit ended on, the page the verification read, and the fields compared.

A verification (a workflow's ``verify`` steps) reads the target system's record back after a submit. Whether
it passes or fails, what it saw is kept under ``<artifacts>/<workflow>/<case>/attempt-<n>/verify/``:
``verify-after.png`` (the last page it read, password fields and secret fields masked) and
``verify-fields.json``: the case fields the verify steps compare (``expected``; fields marked ``secret: true``
masked) and what the steps read from the page (``read``, every value with the secret case values and
secrets masked). The submit's own run keeps ``verify-before.png``, the page it ended on. A secret never
reaches either file.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog
from playwright.async_api import Error as PlaywrightError

from monitoring import redact_text
from workflows import Verify, mask_case
from workflows.evidence import VERIFY_AFTER

from .context import StepContext

log = structlog.get_logger(__name__)

FIELDS = "verify-fields.json"


async def keep_screenshot(ctx: StepContext, name: str) -> None:
    """Keep a full-page screenshot named ``name`` (secret fields masked) in the evidence; never raises."""
    if ctx.evidence_dir is None or ctx.page.is_closed():
        return
    path = ctx.evidence_dir / f"{name}.png"
    try:
        ctx.evidence_dir.mkdir(parents=True, exist_ok=True)
        masks = [ctx.page.locator("input[type=password]"), *ctx.secret_locators]
        await asyncio.wait_for(ctx.page.screenshot(path=str(path), mask=masks, full_page=True), timeout=5)
    except (PlaywrightError, OSError, asyncio.TimeoutError) as err:
        path.unlink(missing_ok=True)
        log.warning("screenshot not kept", name=name, error=type(err).__name__)
        return
    ctx.artifacts.append(str(path))


def compared_fields(ctx: StepContext, verify: Verify) -> dict[str, Any]:
    """What a verification compared: the case fields its steps name (``expected``, secret fields masked) and
    the values they read from the page (``read``: ``vars`` and ``output`` set by the steps, secrets masked)."""
    names = verify.case_fields()
    fields = ctx.workflow.definition.input
    expected = mask_case(fields, {name: ctx.case.get(name) for name in names if name in ctx.case})

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return redact_text(ctx.mask(value))
        if isinstance(value, list):
            return [clean(item) for item in value]
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        return value

    read = {f"vars.{k}": clean(v) for k, v in ctx.vars.items()} | {f"output.{k}": clean(v) for k, v in ctx.output.items()}
    return {"expected": {k: clean(v) if isinstance(v, str) else v for k, v in expected.items()}, "read": read}


async def keep_verification(ctx: StepContext, verify: Verify) -> None:
    """Keep a verification's evidence (the page it ended on, the compared fields) in ``ctx.artifacts``; never raises."""
    if ctx.evidence_dir is None:
        return
    await keep_screenshot(ctx, VERIFY_AFTER)
    path = ctx.evidence_dir / FIELDS
    try:
        ctx.evidence_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(compared_fields(ctx, verify), indent=2, ensure_ascii=False, default=str) + "\n",
                        encoding="utf-8")
    except OSError as err:
        path.unlink(missing_ok=True)
        log.warning("verification fields not kept", error=type(err).__name__)
        return
    ctx.artifacts.append(str(path))
