"""The queue core: Celery over RabbitMQ (or the embedded transport) around the durable ledger.

A batch is handed off (:mod:`.intake` reads and checks the rows, :mod:`.spreadsheet` those of a workbook, :mod:`.handoff` records them in the
ledger), its transaction ids are published (:mod:`.publisher`, confirmed, swept when something is due),
a worker (:mod:`.worker`, or :mod:`.embedded` in-process) consumes them through :mod:`.consumer` and the
thin task of :mod:`.tasks`, and :mod:`.execution` claims, runs in a bot and records each attempt, within
the target systems' budgets (:mod:`.budgets`) and only while their circuit breakers are closed (:mod:`.breaker`). Batches are
operated through :mod:`.batches` and :mod:`.cases`, workflows published and rolled back through
:mod:`.versions`; :mod:`.progress` and :mod:`.gauges` read the figures back. Recurring
work: :mod:`.schedules` (what people change), :mod:`.scheduler` (Celery beat over the ledger),
:mod:`.folders` (watched folders) and :mod:`.beat` (the beat process).
"""

import lazy_loader as lazy

# The names are listed in __init__.pyi and each is imported on first use, so a command loads only what it uses
# (``autoclerk status`` never loads Playwright or Celery).
__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
