"""Preflight: a configuration that cannot run a workflow is refused before any case is queued.

A secret that is not set, an env value without a default that is not set, or a target system without a
base URL would fail every case, attempt after attempt, until each ended failed. ``run`` and ``demo`` on the
embedded broker run the bots in their own process, so they check here, first, and refuse with one line
that names everything missing and how to provide it. Names only: a secret's value is read to know it is
there, and never shown.
"""

from __future__ import annotations

from collections.abc import Mapping

from workflows import EnvMissingError, EnvValues, LoadedWorkflow, SecretMissingError, SecretValues

from ..errors import ConfigurationError
from ..settings import Settings


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
