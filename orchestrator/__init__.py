"""The orchestrator: the queue core, the durable ledger, the hand-off service and the command line.

The only package that imports Celery, pika or the database. Its rooms, and what each may import:

- :mod:`.ledger`: the durable ledger (SQLite or PostgreSQL, Alembic migrations); imports none of the others.
- :mod:`.accounts`: users, roles, API tokens and sign-in sessions, on the ledger's database.
- :mod:`.queue`: hand-off, publishing, workers, execution, batch operations and progress; never imports
  :mod:`.web` or :mod:`.cli`.
- :mod:`.web`: the hand-off service's pages and JSON API; never imports :mod:`.cli`.
- :mod:`.cli`: the ``autoclerk`` command; imports :mod:`.web` only to start it (``autoclerk serve``).

``settings``, ``errors`` and ``deadlines`` (the clock of service levels: deadlines, working days,
maintenance windows) are shared by all of them. ``docs/architecture.md`` draws the whole.
"""

import lazy_loader as lazy

# The names are listed in __init__.pyi and each is imported on first use, so a command loads only what it uses
# (``autoclerk status`` never loads Playwright or Celery).
__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
