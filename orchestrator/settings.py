"""The one typed settings object: command-line flags first, then ``AUTOCLERK_*`` environment variables,
then these defaults. Built once at the entry point and passed down; nothing is read at import time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .deadlines import Window, WorkingDays, batch_deadline, parse_span, time_zone

EMBEDDED_BROKER = "memory://localhost/"
"""Kombu's in-process transport: the same Celery task path, with no server to run."""


class SystemLimit(BaseModel):
    """The budget of one target system; either part may be left out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sessions: int | None = Field(default=None, ge=1, le=1000, description="Bots working on it at once, at most.")
    per_minute: float | None = Field(default=None, gt=0, description="Transactions started per minute, at most.")


class Settings(BaseSettings):
    """Autoclerk's settings.

    Example::

        AUTOCLERK_BROKER_URL=amqp://guest:guest@127.0.0.1:5672// autoclerk worker
    """

    model_config = SettingsConfigDict(env_prefix="AUTOCLERK_", extra="ignore", validate_default=True)

    ledger_url: str = Field(default="sqlite:///autoclerk-ledger.db", description="SQLAlchemy URL of the ledger.")
    broker_url: str = Field(default=EMBEDDED_BROKER, description="memory://localhost/ (embedded) or an amqp:// URL.")
    bot: Literal["chromium", "null"] = Field(
        default="chromium", description="chromium: real bots; null: bots that do nothing (to measure the queue core).")
    chromium_path: str | None = Field(default=None, description=(
        "Chromium executable, 'headless-shell' or 'system'; if unset, Playwright's own browser when it matches the "
        "installed Playwright, else the headless shell installed by 'autoclerk browsers install', else the system "
        "Chromium (/usr/bin/chromium)."))
    systems: dict[str, str] = Field(
        default_factory=dict,
        description='Base URL of each target system, e.g. AUTOCLERK_SYSTEMS=\'{"portal": "http://127.0.0.1:8080"}\'.',
    )
    secrets_file: Path | None = Field(default=None, description="JSON file of secrets (name → value).")
    concurrency: int = Field(
        default_factory=lambda: min(16, 2 * (os.cpu_count() or 1)), ge=1, le=64,
        description="Transactions in flight per worker process (default: two per CPU core, at most 16; bots are CPU-bound).")
    step_timeout_ms: int = Field(default=10_000, gt=0, le=300_000)
    navigation_timeout_ms: int = Field(default=15_000, gt=0, le=300_000)
    transaction_budget_s: float = Field(default=120.0, gt=0, le=1_200)
    lease_s: float = Field(default=180.0, gt=0, description="How long a worker owns a claimed transaction.")
    retry_base_s: float = Field(default=1.0, gt=0, description="First retry delay; doubles per attempt, with jitter.")
    retry_max_s: float = Field(default=60.0, gt=0)
    system_limits: dict[str, SystemLimit] = Field(
        default_factory=dict,
        description='Budget per target system, shared by all workers: {"portal": {"sessions": 4, "per_minute": 120}}.')
    system_maintenance: dict[str, list[str]] = Field(
        default_factory=dict,
        description=('Maintenance windows per target system, in AUTOCLERK_TIMEZONE: {"portal": ["22:00-06:00", '
                     '"Sun 02:00-06:00"]}. No case for a system is claimed during its window, and no attempt is spent.'))
    system_health: dict[str, str] = Field(
        default_factory=dict,
        description=('The health page of each target system, a path on its base URL or a full URL: {"portal": "/healthz"}. '
                     "A system without one is probed at its base URL."))
    breaker_threshold: int = Field(default=3, ge=1, le=1000, description=(
        "Consecutive failures that showed a target system down (its health page or base URL refused, timed out or "
        "answered 5xx) after which its circuit breaker opens: no case for it is claimed."))
    breaker_open_s: float = Field(default=30.0, gt=0, le=3600, description=(
        "How long a circuit breaker stays open before one probe of the system's health page may close it."))
    timezone: str = Field(default="Europe/London", description=(
        "The IANA time zone of deadlines written without an offset, of working days, maintenance windows and cron schedules."))
    deadline_margin: str = Field(default="4h", description=(
        "An unfinished case with less than this left before its deadline is at risk (m, h or d)."))
    holidays_file: Path | None = Field(default=None, description=(
        "Holidays that are not working days (an ICS calendar, or one ISO date a line); weekends never are."))
    budget_wait_s: float = Field(default=30.0, gt=0, le=600,
                                 description="How long a worker waits for a system's budget before rescheduling.")
    ids_per_message: int = Field(default=250, ge=1, le=1000,
                                 description="The most transactions one broker message carries (micro-batching).")
    server_error_retries: int = Field(default=3, ge=0, le=20, description=(
        "Times a server error (a 5xx page) is retried in place, within the attempt, before it spends the attempt: "
        "a page that submits nothing is loaded again, or the steps start again before any submit (0: never)."))
    server_error_wait_s: float = Field(default=0.5, gt=0, le=60, description=(
        "The wait before the first of those retries, with jitter; it doubles each time."))
    delivery_limit: int = Field(default=5, ge=1, le=100,
                                description="Deliveries of one message before RabbitMQ dead-letters it (quorum queue).")
    consumer_timeout_s: float = Field(default=1800.0, gt=0,
                                      description="RabbitMQ's delivery acknowledgement timeout (consumer_timeout).")
    sweep_interval_s: float = Field(default=2.0, gt=0, le=300,
                                    description="How often workers publish due retries and rescue expired leases.")
    artifacts_dir: Path = Field(default=Path("autoclerk-artifacts"), description="Evidence of failed attempts.")
    artifacts_retention_days: float = Field(default=30.0, gt=0, description="Evidence older than this is deleted.")
    trace: bool = Field(default=False, description="Keep a Playwright trace of failed attempts (holds typed values).")
    reuse_sessions: bool = Field(default=True, description="Sign in once per system and worker and reuse the session.")
    recycle_after: int = Field(default=1000, ge=1, description="Transactions a browser runs before it is replaced.")
    browser_memory_mb: float = Field(default=1500.0, gt=0, description="Browser memory above which it is replaced.")
    healing: bool = Field(default=True, description=(
        "Record each step's element fingerprint and heal drifted locators by it (see docs/bots.md)."))
    fingerprint_refresh_every: int = Field(default=200, ge=1, description=(
        "Successes of a step, per worker, between two readings of its element's fingerprint."))
    files_dir: Path | None = Field(default=None, description="The folder upload steps may take files from (unset: no uploads).")
    metrics: bool = Field(default=True, description="Record metrics (false only to measure what recording costs).")
    metrics_port: int | None = Field(default=None, ge=0, le=65535, description="Serve /metrics on this port.")
    metrics_host: str = "127.0.0.1"
    target_transactions: int = Field(default=10_000_000, ge=1,
                                     description="The organisation's target: transactions done by bots and verified.")
    rate_window_s: float = Field(default=600.0, gt=0, le=86_400,
                                 description="The recent window the rate and projected completion are measured over.")
    serve_host: str = Field(default="127.0.0.1", description="Where 'autoclerk serve' listens (loopback unless told otherwise).")
    serve_port: int = Field(default=8000, ge=0, le=65535, description="The hand-off service's port.")
    cookie_secure: bool = Field(default=True, description=(
        "Mark session cookies Secure (browsers send them only over HTTPS, or to 127.0.0.1/localhost); "
        "turn off only behind a proxy on a trusted network that terminates TLS elsewhere."))
    session_hours: float = Field(default=8.0, gt=0, le=24 * 30, description="How long a sign-in lasts.")
    access_log: bool = Field(default=True, description=(
        "'autoclerk serve' writes one line per request (method, path, status, duration, user, client address; "
        "never a token, a cookie or a query value that could be a secret)."))
    sign_in_slow_after: int = Field(default=3, ge=1, le=1000, description=(
        "Failed sign-ins (for one user or from one address) after which each answer is slowed."))
    sign_in_lock_after: int = Field(default=10, ge=1, le=1000, description=(
        "Failed sign-ins for one user within sign_in_lock_minutes that lock that user's password sign-in."))
    sign_in_lock_after_address: int = Field(default=30, ge=1, le=10_000, description=(
        "Failed sign-ins from one address within sign_in_lock_minutes that lock sign-in from that address."))
    sign_in_lock_minutes: float = Field(default=15.0, gt=0, le=24 * 60, description=(
        "How long a lock lasts: sign-in opens again once fewer failures than the limit are this recent."))
    oidc_issuer: str | None = Field(default=None, description=(
        "Single sign-on: the OpenID provider's issuer URL (its discovery document is ISSUER/.well-known/"
        "openid-configuration). Unset: local accounts only."))
    oidc_client_id: str | None = Field(default=None, description="Single sign-on: this service's client id at the provider.")
    oidc_client_secret: SecretStr | None = Field(default=None, description="Single sign-on: the client secret (a secret).")
    oidc_scopes: str = Field(default="openid profile email", description=(
        "Single sign-on: the scopes asked for (add the one that carries the roles claim, e.g. 'groups')."))
    oidc_roles_claim: str = Field(default="groups", description=(
        "Single sign-on: the ID token or userinfo claim holding the person's groups or roles (a list or a string)."))
    oidc_roles: dict[str, list[str]] = Field(default_factory=dict, description=(
        "Single sign-on: each value of the roles claim and the Autoclerk roles it gives, e.g. "
        "{\"benefits-caseworkers\": [\"caseworker\"]}. A person with none of these values is refused."))
    oidc_username_claim: str = Field(default="preferred_username", description=(
        "Single sign-on: the claim that names the person's Autoclerk user (lower-cased)."))
    oidc_label: str = Field(default="your organisation's account", description=(
        "Single sign-on: how the sign-in page names it ('Sign in with …')."))
    max_upload_mb: float = Field(default=4096.0, gt=0, description=(
        "The largest batch file the service takes; larger uploads are refused before they are read."))
    log_json: bool = False
    log_level: str = "WARNING"
    portal_password: SecretStr = Field(default=SecretStr("demo-password"), description="The demo portal's password.")

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        if not value.startswith(("memory://", "amqp://", "amqps://", "pyamqp://")):
            raise ValueError("expected memory:// (embedded) or an amqp:// URL")
        return value

    @field_validator("systems", mode="before")
    @classmethod
    def _systems_pairs(cls, value: Any) -> Any:
        """Accept ``name=url`` pairs (from repeated ``--system`` flags) as well as a mapping."""
        if isinstance(value, (list, tuple)):
            out = {}
            for pair in value:
                name, sep, url = str(pair).partition("=")
                if not sep or not name or not url.startswith(("http://", "https://")):
                    raise ValueError(f"expected NAME=http://HOST:PORT, got '{pair}'")
                out[name] = url
            return out
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        time_zone(value)
        return value

    @field_validator("deadline_margin")
    @classmethod
    def _span(cls, value: str) -> str:
        parse_span(value)
        return value

    @field_validator("system_maintenance", mode="before")
    @classmethod
    def _one_window(cls, value: Any) -> Any:
        """A system's one window may be written alone, without the list: {"portal": "22:00-06:00"}."""
        if isinstance(value, dict):
            return {system: [windows] if isinstance(windows, str) else windows for system, windows in value.items()}
        return value

    @field_validator("system_maintenance")
    @classmethod
    def _windows(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for system, windows in value.items():
            for window in windows:
                try:
                    Window.parse(window)
                except ValueError as exc:
                    raise ValueError(f"system '{system}': {exc}") from None
        return value

    @field_validator("system_health")
    @classmethod
    def _health_pages(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        systems = info.data.get("systems") or {}
        for system, page in value.items():
            if not page.startswith(("/", "http://", "https://")):
                raise ValueError(f"system '{system}': expected a path starting with / or an http(s):// URL, got '{page}'")
            if page.startswith("/") and system not in systems:
                raise ValueError(f"system '{system}' has a health path but no base URL in AUTOCLERK_SYSTEMS; "
                                 "give it one, or give its health page as a full URL")
        return value

    def health_url(self, system: str) -> str | None:
        """Where ``system``'s health is asked: its health page, else its base URL (``None``: neither is known)."""
        page = self.system_health.get(system)
        if page is not None and not page.startswith("/"):
            return page
        base = self.systems.get(system)
        if base is None:
            return None
        return base.rstrip("/") + page if page else base

    @field_validator("holidays_file")
    @classmethod
    def _calendar(cls, value: Path | None) -> Path | None:
        if value is not None:
            WorkingDays.from_file(value)  # refused now, not when a batch asks for working days
        return value

    @model_validator(mode="after")
    def _oidc_complete(self) -> "Settings":
        """Single sign-on needs the issuer, the client id, the client secret and a role mapping, or none of them."""
        given = {"oidc_issuer": self.oidc_issuer, "oidc_client_id": self.oidc_client_id,
                 "oidc_client_secret": self.oidc_client_secret, "oidc_roles": self.oidc_roles or None}
        missing = [name for name, value in given.items() if value is None]
        if self.oidc_issuer is not None and not self.oidc_issuer.startswith(("https://", "http://")):
            raise ValueError("oidc_issuer must be an https:// URL")
        if missing and len(missing) < len(given):
            raise ValueError(f"single sign-on needs {', '.join(missing)} as well (or none of the oidc_ settings)")
        return self

    @property
    def oidc_enabled(self) -> bool:
        """Whether single sign-on is configured."""
        return self.oidc_issuer is not None

    @model_validator(mode="after")
    def _timeouts_nest(self) -> "Settings":
        """step < transaction budget < lease; one message's budget < RabbitMQ's acknowledgement timeout."""
        if self.step_timeout_ms / 1000 >= self.transaction_budget_s:
            raise ValueError("step_timeout_ms must be shorter than transaction_budget_s")
        if self.transaction_budget_s >= self.lease_s:
            raise ValueError("transaction_budget_s must be shorter than lease_s, or a slow attempt loses its lease")
        if self.message_budget_s >= self.consumer_timeout_s:
            raise ValueError("lease_s must be shorter than consumer_timeout_s (RabbitMQ would cancel the consumer)")
        if self.server_error_wait_s * (2 ** self.server_error_retries - 1) >= self.transaction_budget_s / 2:
            raise ValueError("server_error_wait_s doubled over server_error_retries must add up to less than half of "
                             "transaction_budget_s, or the waits in place use up the attempt")
        return self

    @property
    def message_budget_s(self) -> float:
        """How long one message may be worked on before its remaining transactions are handed back."""
        return self.lease_s

    @property
    def tz(self) -> ZoneInfo:
        """The time zone of :attr:`timezone`."""
        return time_zone(self.timezone)

    @property
    def deadline_margin_s(self) -> float:
        return parse_span(self.deadline_margin)

    def working_days(self) -> WorkingDays:
        """Monday to Friday, less the holidays of :attr:`holidays_file`."""
        return WorkingDays.from_file(self.holidays_file) if self.holidays_file else WorkingDays()

    def batch_deadline(self, deadline: str | None, within: str | None, now: float | None = None) -> float | None:
        """A batch's deadline from ``--deadline`` or ``--within`` (see :func:`orchestrator.deadlines.batch_deadline`).

        Raises:
            DeadlineError: both are given, or the one given cannot be read.
        """
        return batch_deadline(deadline, within, now=time.time() if now is None else now, tz=self.tz,
                              working_days=self.working_days())

    def maintenance_windows(self) -> dict[str, list[Window]]:
        """Each target system's maintenance windows (only systems that have some)."""
        return {system: [Window.parse(w) for w in windows] for system, windows in self.system_maintenance.items() if windows}

    @property
    def embedded(self) -> bool:
        """Whether work runs on the in-process transport (no RabbitMQ)."""
        return self.broker_url.startswith("memory://")


def load_settings(**flags: Any) -> Settings:
    """Settings from flags (``None`` means "not given"), then the environment, then defaults."""
    return Settings(**{k: v for k, v in flags.items() if v is not None and v != ()})
