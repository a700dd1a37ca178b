"""Playwright bots that run a workflow's steps in Chromium, one isolated context per transaction.

Imports ``workflows`` and ``monitoring``; never Celery or the database.
"""

from .chromium import LAUNCH_ARGS, find_chromium
from .engine import BotConfig, BotEngine, BotJob, BotResult
from .errors import (
    ApplicationError,
    BotError,
    BrowserGone,
    BrowserNotFoundError,
    BusinessException,
    PageCrashed,
    StepTimeout,
    TargetServerError,
)

__all__ = [
    # engine
    "BotEngine",
    "BotConfig",
    "BotJob",
    "BotResult",
    "find_chromium",
    "LAUNCH_ARGS",
    # errors
    "BotError",
    "BusinessException",
    "ApplicationError",
    "StepTimeout",
    "TargetServerError",
    "PageCrashed",
    "BrowserGone",
    "BrowserNotFoundError",
]
