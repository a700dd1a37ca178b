"""Playwright bots that run a workflow's steps in Chromium, one isolated context per transaction.

Imports ``workflows`` and ``monitoring``; never Celery or the database.
"""

import lazy_loader as lazy

# The names are listed in __init__.pyi and each is imported on first use, so a command loads only what it uses
# (``autoclerk status`` never loads Playwright or Celery).
__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
