"""Preflight: a configuration that cannot run a workflow is refused before any case is queued.

With a broker the bots run on the workers, so each worker reports in its heartbeat the names it can
resolve (:func:`resolvable_names`: secret, env and system names, never a value), and a hand-off is
checked against the live workers (:func:`check_workers`).

A secret that is not set, an env value without a default that is not set, or a target system without a
base URL would fail every case, attempt after attempt, until each ended failed. ``run`` and ``demo`` on the
embedded broker run the bots in their own process, so they check here, first, and refuse with one line
that names everything missing and how to provide it. Names only: a secret's value is read to know it is
there, and never shown.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from workflows import EnvMissingError, EnvValues, LoadedWorkflow, Needs, SecretMissingError, SecretValues
from workflows.secrets import ENV_PREFIX, ENV_VALUE_PREFIX

from ..errors import ConfigurationError
from ..settings import Settings

log = structlog.get_logger(__name__)


def missing_configuration(loaded: LoadedWorkflow, settings: Settings,
                          environ: Mapping[str, str] | None = None) -> list[str]:
    """What the workflow (its called workflows included) needs and this process cannot give it, one
    sentence each, in a stable order (secrets, env values, systems); empty when it can run."""
    needs = loaded.needs()
    problems = []
    secrets = SecretValues(settings.secrets_file)
    for name in sorted(needs.secrets):
        try:
            secrets[name]
        except SecretMissingError as exc:
            problems.append(str(exc))
    env = EnvValues(needs.env, environ)
    for name in sorted(needs.env):
        try:
            env[name]
        except EnvMissingError as exc:
            problems.append(str(exc))
    for name in sorted(needs.systems - set(settings.systems)):
        problems.append(f"system '{name}' has no base URL: pass --system {name}=URL or set AUTOCLERK_SYSTEMS")
    return problems


def check_configuration(loaded: LoadedWorkflow, settings: Settings) -> None:
    """Refuse to start a workflow this process's configuration cannot run.

    Raises:
        ConfigurationError: something the workflow needs is missing; the one line names all of it.
    """
    problems = missing_configuration(loaded, settings)
    if problems:
        raise ConfigurationError(f"{loaded.path}: workflow {loaded.definition.name} cannot run here: "
                                 f"{'; '.join(problems)}. Nothing was queued")


def resolvable_names(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The secret, env and system names this process can resolve (names only, never a value), for its
    heartbeat, spelled as a workflow asks for them (secret and env names are lower case): secrets from
    ``AUTOCLERK_SECRET_<NAME>`` and the secrets file's keys (exactly as :class:`workflows.SecretValues`
    looks them up), env values from ``AUTOCLERK_ENV_<NAME>``, systems from the settings. A secrets file that
    cannot be read gives no secret. A worker whose bots run no steps (``AUTOCLERK_BOT=null``) also says so
    (``"bot": "null"``): it needs none of these names."""
    environ = os.environ if environ is None else environ
    secrets = {name[len(ENV_PREFIX):].lower() for name in environ if name.startswith(ENV_PREFIX)}
    if settings.secrets_file is not None:
        try:
            data = json.loads(settings.secrets_file.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                secrets |= {str(name) for name in data}
        except (OSError, ValueError):
            pass
    env = {name[len(ENV_VALUE_PREFIX):].lower() for name in environ if name.startswith(ENV_VALUE_PREFIX)}
    names: dict[str, Any] = {"secrets": sorted(secrets), "env": sorted(env), "systems": sorted(settings.systems)}
    if settings.bot != "chromium":
        names["bot"] = settings.bot
    return names


def missing_from(needs: Needs, names: Mapping[str, Any]) -> list[str]:
    """What a workflow needs that a worker reporting ``names`` cannot give it: the sentences
    :func:`missing_configuration` writes, in the same order. A worker whose bots run no steps lacks
    nothing (as an embedded run with those bots checks nothing)."""
    if names.get("bot", "chromium") != "chromium":
        return []
    secrets, env = set(names.get("secrets", ())), set(names.get("env", ()))
    problems = [f"secret '{name}' is not set: set {ENV_PREFIX}{name.upper()} or add it to the secrets file"
                for name in sorted(needs.secrets) if name not in secrets]
    problems += [f"env value '{name}' is not set: set {ENV_VALUE_PREFIX}{name.upper()}"
                 for name in sorted(needs.env) if needs.env[name] is None and name not in env]
    problems += [f"system '{name}' has no base URL: pass --system {name}=URL or set AUTOCLERK_SYSTEMS"
                 for name in sorted(needs.systems - set(names.get("systems", ())))]
    return problems


def check_workers(loaded: LoadedWorkflow, workers: Sequence[Mapping[str, Any]], *, what: str = "Nothing was queued"
                  ) -> str | None:
    """Check a hand-off through a broker against the live workers' heartbeats.

    Returns:
        A warning when no worker that reports its names is live (the queue holds the work until one
        starts), else ``None``.

    Raises:
        ConfigurationError: workers are live and none of them can run the workflow; the one line names
            what the closest of them lacks and how to provide it.
    """
    reporting = [w for w in workers if w.get("kind") == "worker" and w.get("resolves") is not None]
    if not reporting:
        return (f"no worker is running: the cases of workflow {loaded.definition.name} wait on the queue until one "
                "starts ('autoclerk worker --broker …')")
    needs = loaded.needs()
    gaps = [missing_from(needs, w["resolves"]) for w in reporting]
    if any(not gap for gap in gaps):
        return None
    closest = min(gaps, key=len)
    count = f"{len(reporting)} live worker" + ("s" if len(reporting) != 1 else "")
    raise ConfigurationError(f"workflow {loaded.definition.name} cannot run on any of the {count}: "
                             f"{'; '.join(closest)} (on the workers). {what}")
