"""Who may use the hand-off service: users with roles, argon2 passwords, API tokens and sign-in sessions, and
teams that limit a user's roles to the workflows they own.

The command line manages them (``autoclerk users …``) and the web service checks them, so they are a room
of their own that both use.
"""

from .lockout import SignInGuard
from .schema import ROLES
from .store import Accounts, SsoRefused, User
from .teams import Teams

__all__ = ["Accounts", "SignInGuard", "SsoRefused", "Teams", "User", "ROLES"]
