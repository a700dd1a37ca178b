"""The hand-off service: GOV.UK-style pages for caseworkers, operators and authors, and a JSON API.

- :mod:`.server` runs it (``autoclerk serve``); :mod:`.app` assembles the application.
- Pages: :mod:`.signin` (and :mod:`.sso`, single sign-on), :mod:`.handoff_pages`, :mod:`.batch_pages`, :mod:`.ops_pages`; the API: :mod:`.api`.
  Both take their business logic from :mod:`.service` (which takes it from ``queue`` and ``ledger``),
  never from each other.
- :mod:`.render` renders pages; :mod:`.auth` says who is asking and whether they may; :mod:`.forms` builds
  forms from input schemas; :mod:`.upload` and :mod:`.receive` read streamed uploads; :mod:`.access_log` writes the access log.
"""

from .server import READY_PREFIX, serve

__all__ = ["serve", "READY_PREFIX"]
