"""Who may use the hand-off service: users with roles, argon2 password hashes, API tokens, sign-in sessions.

Roles:
- ``caseworker`` hands off cases and batches, sees their own batches, resolves their own exceptions;
- ``operator`` sees every batch, pauses, resumes and cancels them, retries failed cases, watches throughput;
- ``author`` publishes workflow versions.

A user may hold several roles, and may be limited to teams or named workflows (:mod:`.teams`): then
their roles reach only those workflows. Passwords are stored only as argon2id hashes. API tokens and session ids
are random (256 bits) and stored only as SHA-256 digests, so a copy of the ledger signs nobody in.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ..errors import UsageError
from .schema import ROLES, api_tokens, users, web_sessions
from .teams import Teams, scope_of

USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
SESSION_HOURS = 8.0
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the user is unknown, so the time taken does not tell. Made on first
    use, not on import: an argon2 hash takes 64 MiB and tens of milliseconds, which every command and
    worker that imports this module would pay."""
    return _hasher.hash("a password nobody has")


@dataclass(frozen=True)
class User:
    """A signed-in user (from a session cookie or an API token).

    ``workflows`` is the user's limit: the only workflows their roles reach, or ``None`` when they are not
    limited (the default). Every check of "this user, this workflow" is :meth:`may`.
    """

    username: str
    roles: frozenset[str]
    workflows: frozenset[str] | None = None

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))

    @property
    def limited(self) -> bool:
        """Whether the user's roles reach only some workflows."""
        return self.workflows is not None

    def may(self, workflow: str) -> bool:
        """Whether the user's roles reach ``workflow`` (always, when they are not limited)."""
        return self.workflows is None or workflow in self.workflows


@dataclass(frozen=True)
class SignedIn:
    """A new sign-in session: the cookie value (shown once) and the CSRF token its forms carry."""

    session_id: str
    csrf_token: str
    user: User


class SsoRefused(UsageError):
    """A person the single sign-on provider vouched for cannot be signed in here; ``reason`` is a short code
    for the log and the audit trail, the message is for the person."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _roles(text: str) -> frozenset[str]:
    return frozenset(r for r in text.split(",") if r)


class Accounts:
    """Users, tokens and sessions in the ledger database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.teams = Teams(engine)

    def _user(self, username: str, roles: frozenset[str]) -> User:
        with self.engine.connect() as conn:
            return User(username, roles, scope_of(conn, username))

    # -- users -----------------------------------------------------------------------------------------
    def add_user(self, username: str, roles: list[str], password: str | None) -> None:
        """Create a user.

        Raises:
            UsageError: the name is malformed or taken, a role is unknown, or the password is too short.
        """
        if not USERNAME.match(username):
            raise UsageError(f"user name '{username}' must be 2-64 characters: lower-case letters, digits, . _ - "
                             "(starting with a letter)")
        self._check_roles(roles)
        now = time.time()
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(users).values(username=username, roles=",".join(sorted(set(roles))),
                                                  password_hash=self._hash(password) if password is not None else None,
                                                  active=1, created_at=now, updated_at=now))
        except IntegrityError:
            raise UsageError(f"there is already a user '{username}'") from None

    def set_password(self, username: str, password: str) -> None:
        self._update(username, password_hash=self._hash(password))
        self.end_sessions(username)

    def set_roles(self, username: str, roles: list[str]) -> None:
        self._check_roles(roles)
        self._update(username, roles=",".join(sorted(set(roles))))

    def set_active(self, username: str, active: bool) -> None:
        """Enable or disable a user; disabling ends their sessions and stops their tokens working."""
        self._update(username, active=1 if active else 0)
        if not active:
            self.end_sessions(username)

    def list_users(self) -> list[dict[str, object]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users.c.username, users.c.roles, users.c.active, users.c.created_at,
                                       users.c.password_hash.isnot(None).label("has_password"))
                                .order_by(users.c.username)).all()
            tokens: dict[str, int] = dict(conn.execute(select(api_tokens.c.username, func.count()).where(api_tokens.c.revoked == 0)
                                       .group_by(api_tokens.c.username)).all())
        limits = self.teams.limits()
        return [{"username": r.username, "roles": sorted(_roles(r.roles)), "active": bool(r.active),
                 "password": bool(r.has_password), "tokens": tokens.get(r.username, 0), "created_at": r.created_at,
                 "limited": r.username in limits, **limits.get(r.username, {"teams": [], "workflows": []})}
                for r in rows]

    def _update(self, username: str, **values: object) -> None:
        with self.engine.begin() as conn:
            if conn.execute(update(users).where(users.c.username == username)
                            .values(updated_at=time.time(), **values)).rowcount != 1:
                raise UsageError(f"there is no user '{username}'")

    @staticmethod
    def _check_roles(roles: list[str]) -> None:
        unknown = [r for r in roles if r not in ROLES]
        if unknown or not roles:
            raise UsageError(f"role '{unknown[0] if unknown else ''}' is not one of {', '.join(ROLES)}")

    @staticmethod
    def _hash(password: str) -> str:
        if len(password) < 12:
            raise UsageError("a password must have at least 12 characters")
        return _hasher.hash(password)

    # -- signing in ------------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> User | None:
        """The user, when the name and password match an active user (the time taken does not tell which failed)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        stored = row.password_hash if row is not None and row.active and row.password_hash else None
        try:
            _hasher.verify(stored or _dummy_hash(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if stored is None or row is None:
            return None
        if _hasher.check_needs_rehash(stored):
            self._update(username, password_hash=_hasher.hash(password))
        return self._user(row.username, _roles(row.roles))

    def sso_user(self, username: str, roles: list[str]) -> User:
        """The user a single sign-on provider vouched for, with ``roles`` (from its claims): made on first
        sign-in (without a password), its roles brought up to date on each.

        Raises:
            SsoRefused: the name is not a valid user name, no role was mapped, the name belongs to a local
                account with a password (never taken over), or the user is disabled.
        """
        if not USERNAME.match(username):
            raise SsoRefused("Your organisation's account has no user name this service can use. "
                             "Tell your administrator.", "bad_username")
        if not roles:
            raise SsoRefused("Your organisation's account is not in a group that may use this service. "
                             "Ask your administrator for access.", "no_role")
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
            if row is not None and row.password_hash:
                raise SsoRefused("A local account already has your user name, so single sign-on cannot use it. "
                                 "Sign in with your password, or tell your administrator.", "local_account")
            if row is not None and not row.active:
                raise SsoRefused("Your account here is disabled. Tell your administrator.", "disabled")
            if row is None:
                conn.execute(insert(users).values(username=username, roles=",".join(roles), password_hash=None,
                                                  active=1, created_at=now, updated_at=now))
            elif _roles(row.roles) != frozenset(roles):
                conn.execute(update(users).where(users.c.username == username)
                             .values(roles=",".join(roles), updated_at=now))
        return self._user(username, frozenset(roles))

    def start_session(self, user: User, hours: float = SESSION_HOURS) -> SignedIn:
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < now))
            conn.execute(insert(web_sessions).values(digest=_digest(session_id), username=user.username,
                                                     csrf_token=csrf, created_at=now, expires_at=now + hours * 3600))
        return SignedIn(session_id, csrf, user)

    def session(self, session_id: str) -> tuple[User, str] | None:
        """The user and CSRF token of a live session of an active user, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(users.c.username, users.c.roles, web_sessions.c.csrf_token)
                .join(users, users.c.username == web_sessions.c.username)
                .where(web_sessions.c.digest == _digest(session_id), web_sessions.c.expires_at > time.time(),
                       users.c.active == 1)).first()
        return (self._user(row.username, _roles(row.roles)), row.csrf_token) if row else None

    def set_flash(self, session_id: str, message: str) -> None:
        """Keep a one-time message for the session's next page (it replaces one not yet shown)."""
        with self.engine.begin() as conn:
            conn.execute(update(web_sessions).where(web_sessions.c.digest == _digest(session_id))
                         .values(flash=message))

    def pop_flash(self, session_id: str) -> str | None:
        """The session's one-time message, forgotten as it is read (``None`` when there is none)."""
        digest = _digest(session_id)
        with self.engine.begin() as conn:
            message = conn.execute(select(web_sessions.c.flash).where(web_sessions.c.digest == digest)).scalar()
            if message is not None:
                # only the message read is cleared: one set meanwhile by another request stays for the next page
                conn.execute(update(web_sessions).where(web_sessions.c.digest == digest,
                                                        web_sessions.c.flash == message).values(flash=None))
        return message

    def end_session(self, session_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.digest == _digest(session_id)))

    def end_sessions(self, username: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.username == username))

    # -- API tokens ------------------------------------------------------------------------------------
    def new_token(self, username: str) -> str:
        """Issue an API token for a user; only its digest is stored, so it is shown this once."""
        token = "ack_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            if conn.execute(select(users.c.username).where(users.c.username == username)).first() is None:
                raise UsageError(f"there is no user '{username}'")
            conn.execute(insert(api_tokens).values(digest=_digest(token), username=username, created_at=time.time()))
        return token

    def revoke_tokens(self, username: str) -> int:
        with self.engine.begin() as conn:
            return conn.execute(update(api_tokens).where(api_tokens.c.username == username, api_tokens.c.revoked == 0)
                                .values(revoked=1)).rowcount

    def token_user(self, token: str) -> User | None:
        """The active user a live token belongs to, or ``None``."""
        digest = _digest(token)
        with self.engine.begin() as conn:
            row = conn.execute(
                select(users.c.username, users.c.roles).join(api_tokens, api_tokens.c.username == users.c.username)
                .where(api_tokens.c.digest == digest, api_tokens.c.revoked == 0, users.c.active == 1)).first()
            if row is not None:
                conn.execute(update(api_tokens).where(api_tokens.c.digest == digest).values(last_used_at=time.time()))
        return self._user(row.username, _roles(row.roles)) if row else None
