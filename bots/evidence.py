"""Evidence of a failed attempt, and how long it is kept.

Per failed attempt, under ``<artifacts>/<workflow>/<case>/attempt-<n>/``: ``failure.png`` (a full-page
screenshot with password fields masked, and every element a secret or a secret case field was typed,
chosen or uploaded into), ``failure.html`` (the page with secret values and secret case values replaced),
``page-errors.txt`` (the page's own script errors and console errors of the attempt, when it had any)
and, only when tracing is switched on, ``trace.zip`` (a Playwright trace: it holds what was typed, so it
is off by default). A run of the lookup keeps its evidence in the attempt's ``lookup/`` folder, and a second
run of the steps within the attempt (after a look in place found nothing) in ``run-2/``. ``prune_artifacts``
deletes attempt folders older than the retention; :func:`evidence_folder` names a case's folder (the ledger's
prune and erase take it whole).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import structlog
from playwright.async_api import Error as PlaywrightError

from monitoring import redact_text
from workflows import mask_text
from workflows.evidence import FAILURE, attempt_number

from .context import StepContext
from .errors import BotError

log = structlog.get_logger(__name__)


def evidence_folder(root: Path, workflow: str, case_ref: str) -> Path:
    """The folder that holds every attempt's evidence of one case: ``<root>/<workflow>/<case>/`` (each name made
    safe for a file system)."""
    return root / _safe(workflow) / _safe(case_ref)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:100] or "_"


async def keep_evidence(ctx: StepContext, exc: BotError, trace: bool = False) -> None:
    """Write the evidence of a failed attempt and list it on ``exc.evidence``; never raises."""
    folder = ctx.evidence_dir
    if folder is None:
        return
    kept: list[str] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not ctx.page.is_closed():
            masks = [ctx.page.locator("input[type=password]"), *ctx.secret_locators]
            shot, html = folder / f"{FAILURE}.png", folder / f"{FAILURE}.html"
            await asyncio.wait_for(ctx.page.screenshot(path=str(shot), mask=masks, full_page=True), timeout=5)
            kept.append(str(shot))
            page = await asyncio.wait_for(ctx.page.content(), timeout=5)
            html.write_text(redact_text(mask_text(page, _html_forms(ctx.secret_values))), encoding="utf-8")
            kept.append(str(html))
        if ctx.page_errors:  # the page's own script and console errors of this attempt
            errors = folder / "page-errors.txt"
            errors.write_text(ctx.mask(redact_text("\n".join(ctx.page_errors))) + "\n", encoding="utf-8")
            kept.append(str(errors))
        if trace:
            path = folder / "trace.zip"
            await asyncio.wait_for(ctx.page.context.tracing.stop(path=str(path)), timeout=10)
            kept.append(str(path))
    except (PlaywrightError, OSError, asyncio.TimeoutError) as err:
        # A full disk (or a page gone) leaves no half-written file behind: evidence is whole or absent.
        for name in (f"{FAILURE}.png", f"{FAILURE}.html", "page-errors.txt", "trace.zip"):
            path = folder / name
            if str(path) not in kept:
                path.unlink(missing_ok=True)
        log.warning("evidence not kept", error=type(err).__name__)
    exc.evidence = [*ctx.artifacts, *kept]  # type: ignore[attr-defined]


def _html_forms(values: set[str]) -> set[str]:
    """Each value as it may stand in serialised HTML: as typed, in a text node, in an attribute (both the
    older attribute escaping and the newer one, which also escapes ``<`` and ``>``)."""
    forms = set(values)
    for value in values:
        common = value.replace("&", "&amp;").replace("\xa0", "&nbsp;")
        text = common.replace("<", "&lt;").replace(">", "&gt;")
        forms.update((text, common.replace('"', "&quot;"), text.replace('"', "&quot;")))
    return forms


def prune_artifacts(root: Path, retention_days: float) -> int:
    """Delete attempt folders (``attempt-N``) last written more than ``retention_days`` ago; returns how many."""
    if not root.is_dir():
        return 0
    cutoff = time.time() - retention_days * 86400
    removed = 0
    for folder in root.glob("*/*/*"):
        try:
            if attempt_number(folder.name) is not None and folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder)
                removed += 1
        except OSError:
            continue
    if removed:
        log.info("old evidence deleted", folders=removed, retention_days=retention_days)
    return removed
