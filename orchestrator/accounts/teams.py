"""Permissions by business area: teams own workflows, and a user's roles can be limited to teams or to
named workflows.

A user with no limit reaches every workflow their roles allow (the default, as before teams existed). A
limited user reaches only the workflows their limit names and those the teams it names own; a team that
owns nothing gives nothing. A limit only narrows what the roles allow: a limited caseworker still sees only
the work they handed off themselves, within their workflows.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection, Engine

from ..errors import UsageError
from ..ledger.schema import published_workflows
from .schema import team_workflows, teams, user_limits, users

TEAM_NAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")


def scope_of(conn: Connection, username: str) -> frozenset[str] | None:
    """The workflows ``username`` is limited to, or ``None`` when they are not limited."""
    rows = conn.execute(select(user_limits.c.kind, user_limits.c.name)
                        .where(user_limits.c.username == username)).all()
    if not rows:
        return None
    named = {name for kind, name in rows if kind == "workflow"}
    team_names = [name for kind, name in rows if kind == "team"]
    if team_names:
        named |= set(conn.execute(select(team_workflows.c.workflow)
                                  .where(team_workflows.c.team.in_(team_names))).scalars())
    return frozenset(named)


class Teams:
    """Teams, the workflows they own, and the limits of users, in the ledger database.

    Every method refuses an unknown user, team or workflow (one that was never published) with a
    :class:`~orchestrator.errors.UsageError` of one sentence, and changes nothing then.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, team: str, workflows: Iterable[str]) -> list[str]:
        """Make ``team`` (when new) and give it ``workflows``; the workflows it owns now."""
        if not TEAM_NAME.match(team):
            raise UsageError(f"team name '{team}' must be 2-64 characters: lower-case letters, digits, . _ - "
                             "(starting with a letter)")
        wanted = sorted(set(workflows))
        if not wanted:
            raise UsageError(f"give team {team} at least one --workflow")
        with self.engine.begin() as conn:
            self._check_workflows(conn, wanted)
            if conn.execute(select(teams.c.name).where(teams.c.name == team)).first() is None:
                conn.execute(insert(teams).values(name=team, created_at=time.time()))
            owned = set(self._owned(conn, team))
            new = [w for w in wanted if w not in owned]
            if new:
                conn.execute(insert(team_workflows), [{"team": team, "workflow": w} for w in new])
            return sorted(owned | set(new))

    def remove(self, team: str, workflows: Iterable[str] = ()) -> list[str]:
        """Take ``workflows`` from ``team``, or remove the team when none are named (refused while users are
        limited to it: removing it would widen or change what they reach). The workflows it still owns."""
        dropped = sorted(set(workflows))
        with self.engine.begin() as conn:
            owned = self._owned(conn, self._check_team(conn, team))
            if dropped:
                stray = [w for w in dropped if w not in owned]
                if stray:
                    raise UsageError(f"team {team} does not own workflow {stray[0]} (it owns {', '.join(owned) or 'none'})")
                conn.execute(delete(team_workflows).where(team_workflows.c.team == team,
                                                          team_workflows.c.workflow.in_(dropped)))
                return [w for w in owned if w not in dropped]
            members = self._members(conn, team)
            if members:
                raise UsageError(f"user(s) {', '.join(members)} are limited to team {team}: change their limits "
                                 "first (autoclerk users limit or users unlimit)")
            conn.execute(delete(team_workflows).where(team_workflows.c.team == team))
            conn.execute(delete(teams).where(teams.c.name == team))
            return []

    def list_teams(self) -> list[dict[str, Any]]:
        """Every team: its name, the workflows it owns and the users limited to it."""
        with self.engine.connect() as conn:
            names = conn.execute(select(teams.c.name).order_by(teams.c.name)).scalars().all()
            return [{"name": n, "workflows": self._owned(conn, n), "users": self._members(conn, n)} for n in names]

    def limit(self, username: str, team_names: Iterable[str], workflows: Iterable[str]) -> dict[str, list[str]]:
        """Replace the limit of ``username``: they reach only ``workflows`` and those ``team_names`` own."""
        wanted_teams, wanted_workflows = sorted(set(team_names)), sorted(set(workflows))
        if not wanted_teams and not wanted_workflows:
            raise UsageError(f"give at least one --team or --workflow to limit {username} to "
                             "(autoclerk users unlimit removes a limit)")
        with self.engine.begin() as conn:
            self._check_user(conn, username)
            for team in wanted_teams:
                self._check_team(conn, team)
            self._check_workflows(conn, wanted_workflows)
            conn.execute(delete(user_limits).where(user_limits.c.username == username))
            conn.execute(insert(user_limits), [{"username": username, "kind": kind, "name": name}
                                               for kind, names in (("team", wanted_teams), ("workflow", wanted_workflows))
                                               for name in names])
        return {"teams": wanted_teams, "workflows": wanted_workflows}

    def unlimit(self, username: str) -> bool:
        """Remove the limit of ``username`` (they reach every workflow again); whether they had one."""
        with self.engine.begin() as conn:
            self._check_user(conn, username)
            return conn.execute(delete(user_limits).where(user_limits.c.username == username)).rowcount > 0

    def limits(self) -> dict[str, dict[str, list[str]]]:
        """Every limited user's limit: ``{username: {"teams": [...], "workflows": [...]}}``."""
        found: dict[str, dict[str, list[str]]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(select(user_limits).order_by(user_limits.c.username, user_limits.c.name)):
                found.setdefault(row.username, {"teams": [], "workflows": []})[f"{row.kind}s"].append(row.name)
        return found

    # -- checks ----------------------------------------------------------------------------------------
    @staticmethod
    def _owned(conn: Connection, team: str) -> list[str]:
        return list(conn.execute(select(team_workflows.c.workflow).where(team_workflows.c.team == team)
                                 .order_by(team_workflows.c.workflow)).scalars())

    @staticmethod
    def _members(conn: Connection, team: str) -> list[str]:
        return list(conn.execute(select(user_limits.c.username).where(user_limits.c.kind == "team",
                                                                      user_limits.c.name == team)
                                 .order_by(user_limits.c.username)).scalars())

    @staticmethod
    def _check_user(conn: Connection, username: str) -> None:
        if conn.execute(select(users.c.username).where(users.c.username == username)).first() is None:
            raise UsageError(f"there is no user '{username}'")

    @staticmethod
    def _check_team(conn: Connection, team: str) -> str:
        if conn.execute(select(teams.c.name).where(teams.c.name == team)).first() is None:
            raise UsageError(f"there is no team '{team}' (see 'autoclerk teams list')")
        return team

    @staticmethod
    def _check_workflows(conn: Connection, workflows: list[str]) -> None:
        if not workflows:
            return
        known = set(conn.execute(select(published_workflows.c.name)
                                 .where(published_workflows.c.name.in_(workflows))).scalars())
        unknown = [w for w in workflows if w not in known]
        if unknown:
            raise UsageError(f"there is no published workflow '{unknown[0]}' (publish it first; "
                             "see 'autoclerk workflows list')")
