"""Secrets named in workflows, resolved at the point of use and never stored with a case.

A workflow names a secret (``secrets.portal_password``); its value comes from the environment variable
``AUTOCLERK_SECRET_PORTAL_PASSWORD`` or from a secrets file (JSON object, name → value), in that order.
Each value is handed to ``on_read`` (the log redactor) the moment it is read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from .errors import WorkflowError

ENV_PREFIX = "AUTOCLERK_SECRET_"


class SecretMissingError(WorkflowError):
    """A secret a workflow needs is set neither in the environment nor in the secrets file."""


class SecretValues(Mapping[str, str]):
    """A read-only mapping from secret names to values, resolved lazily.

    Args:
        file: an optional JSON secrets file.
        on_read: called with each value when it is first read (register it with the redactor).
    """

    def __init__(self, file: str | Path | None = None, on_read: Callable[[str], None] | None = None) -> None:
        self._file = Path(file) if file else None
        self._from_file: dict[str, str] | None = None
        self._on_read = on_read or (lambda value: None)

    def _file_values(self) -> dict[str, str]:
        if self._from_file is None:
            self._from_file = {}
            if self._file is not None:
                try:
                    data = json.loads(self._file.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise SecretMissingError(f"the secrets file {self._file} cannot be read ({type(exc).__name__})") from None
                if not isinstance(data, dict):
                    raise SecretMissingError(f"the secrets file {self._file} must hold a JSON object")
                self._from_file = {str(k): str(v) for k, v in data.items()}
        return self._from_file

    def __getitem__(self, name: str) -> str:
        value = os.environ.get(ENV_PREFIX + name.upper())
        if value is None:
            value = self._file_values().get(name)
        if value is None:
            raise SecretMissingError(
                f"secret '{name}' is not set: set {ENV_PREFIX}{name.upper()} or add it to the secrets file"
            )
        self._on_read(value)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(())  # names are not listed: a template asks for one by name

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "SecretValues(<hidden>)"


ENV_VALUE_PREFIX = "AUTOCLERK_ENV_"


class EnvMissingError(WorkflowError):
    """An env value a workflow declares without a default is not set in the environment."""


class EnvValues(Mapping[str, str]):
    """The env values one workflow declares (``env: {office: HQ}``), read from ``AUTOCLERK_ENV_<NAME>``.

    Unlike secrets, env values are ordinary configuration (an office code, a region): they may appear in
    logs and in ``explain``.

    Args:
        declared: name → default (``None``: the value must be set).
        environ: where to read from (the process environment by default).
    """

    def __init__(self, declared: Mapping[str, str | None], environ: Mapping[str, str] | None = None) -> None:
        self._declared = dict(declared)
        self._environ = os.environ if environ is None else environ

    def __getitem__(self, name: str) -> str:
        if name not in self._declared:
            raise KeyError(name)
        value = self._environ.get(ENV_VALUE_PREFIX + name.upper(), self._declared[name])
        if value is None:
            raise EnvMissingError(f"env value '{name}' is not set: set {ENV_VALUE_PREFIX}{name.upper()}")
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._declared)

    def __len__(self) -> int:
        return len(self._declared)
