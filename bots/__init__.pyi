"""The names :mod:`bots` exports, for type checkers; ``__init__.py`` loads each on first use from this list."""

from .chromium import ChromiumChoice, LaunchOptions, choose_chromium, find_chromium, launch_args, launch_options
from .context import StepContext, StepHooks
from .engine import BotConfig, BotEngine, BotJob, BotResult
from .evidence import evidence_folder
from .fingerprint import Fingerprint
from .healing import Heal, HealingStore, MemoryHealingStore
from .null import NullEngine
from .session import SessionKeeper
from .flow import EXECUTORS, run_steps
from .errors import (
    ApplicationError,
    BotError,
    BrowserGone,
    BrowserNotFoundError,
    BusinessException,
    PageCrashed,
    SessionExpired,
    StepTimeout,
    TargetServerError,
)

__all__ = [
    # engine
    "BotEngine",
    "BotConfig",
    "BotJob",
    "BotResult",
    "NullEngine",
    "SessionKeeper",
    "choose_chromium",
    "ChromiumChoice",
    "find_chromium",
    "launch_args",
    "launch_options",
    "LaunchOptions",
    # evidence
    "evidence_folder",
    # self-healing locators
    "Heal",
    "HealingStore",
    "MemoryHealingStore",
    "Fingerprint",
    # steps (custom steps receive a StepContext)
    "StepContext",
    "StepHooks",
    "EXECUTORS",
    "run_steps",
    # errors
    "BotError",
    "BusinessException",
    "ApplicationError",
    "StepTimeout",
    "TargetServerError",
    "PageCrashed",
    "SessionExpired",
    "BrowserGone",
    "BrowserNotFoundError",
]
