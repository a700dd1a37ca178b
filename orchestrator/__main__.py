"""``python -m orchestrator`` is the ``autoclerk`` command."""

from .cli import main

main()
