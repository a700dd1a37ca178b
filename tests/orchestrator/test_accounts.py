"""Users, roles, argon2 passwords, API tokens and sign-in sessions, on both ledger backends."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, update

from orchestrator import Ledger
from orchestrator.accounts import Accounts
from orchestrator import UsageError
from orchestrator.accounts.schema import api_tokens, users, web_sessions

PASSWORD = "a long enough password"


@pytest.fixture
def accounts(ledger: Ledger) -> Accounts:
    made = Accounts(ledger.engine)
    made.add_user("alice", ["caseworker"], PASSWORD)
    return made


def test_a_password_is_kept_only_as_an_argon2id_hash_and_signs_its_user_in(accounts: Accounts) -> None:
    with accounts.engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash).where(users.c.username == "alice")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    user = accounts.authenticate("alice", PASSWORD)
    assert user is not None and user.roles == {"caseworker"} and user.has("caseworker") and not user.has("operator")
    assert accounts.authenticate("alice", PASSWORD + "x") is None
    assert accounts.authenticate("nobody", PASSWORD) is None


@pytest.mark.parametrize(("name", "roles", "password", "message"), [
    ("Alice", ["caseworker"], PASSWORD, "must be 2-64 characters"),
    ("alice", ["caseworker"], PASSWORD, "already a user"),
    ("carol", ["wizard"], PASSWORD, "is not one of"),
    ("carol", [], PASSWORD, "is not one of"),
    ("carol", ["operator"], "short", "at least 12 characters"),
])
def test_a_bad_user_is_refused_with_one_sentence(accounts: Accounts, name: str, roles: list[str], password: str,
                                                 message: str) -> None:
    with pytest.raises(UsageError, match=message):
        accounts.add_user(name, roles, password)


def test_a_token_is_shown_once_stored_as_a_digest_and_stops_working_when_revoked_or_its_user_is_disabled(
        accounts: Accounts) -> None:
    token = accounts.new_token("alice")
    with accounts.engine.connect() as conn:
        digests = conn.execute(select(api_tokens.c.digest)).scalars().all()
    assert token not in digests and len(digests) == 1
    assert accounts.token_user(token).username == "alice"  # type: ignore[union-attr]
    assert accounts.token_user(token + "x") is None
    accounts.set_active("alice", False)
    assert accounts.token_user(token) is None
    accounts.set_active("alice", True)
    assert accounts.revoke_tokens("alice") == 1 and accounts.token_user(token) is None


def test_a_session_ends_at_sign_out_at_expiry_on_a_password_change_and_when_its_user_is_disabled(
        accounts: Accounts) -> None:
    user = accounts.authenticate("alice", PASSWORD)
    assert user is not None
    first = accounts.start_session(user)
    found = accounts.session(first.session_id)
    assert found is not None and found[1] == first.csrf_token
    accounts.end_session(first.session_id)
    assert accounts.session(first.session_id) is None

    expiring = accounts.start_session(user)
    with accounts.engine.begin() as conn:
        conn.execute(update(web_sessions).values(expires_at=time.time() - 1))
    assert accounts.session(expiring.session_id) is None

    changed = accounts.start_session(user)
    accounts.set_password("alice", "another long password")
    assert accounts.session(changed.session_id) is None
    assert accounts.authenticate("alice", "another long password") is not None

    disabled = accounts.start_session(user)
    accounts.set_active("alice", False)
    assert accounts.session(disabled.session_id) is None
    assert accounts.authenticate("alice", "another long password") is None


def test_a_token_only_user_cannot_sign_in_with_any_password(accounts: Accounts) -> None:
    accounts.add_user("robot", ["caseworker"], None)
    assert accounts.authenticate("robot", "") is None and accounts.authenticate("robot", PASSWORD) is None
    assert [u["username"] for u in accounts.list_users()] == ["alice", "robot"]
