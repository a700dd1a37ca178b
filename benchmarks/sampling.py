"""A background thread that samples something at a fixed interval while a ``with`` block runs."""

from __future__ import annotations

import threading
from typing import Self


class Sampler:
    """Calls ``sample()`` every ``interval_s`` seconds until the ``with`` block ends (subclasses say what)."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
