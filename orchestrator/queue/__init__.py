"""The queue core: Celery over RabbitMQ (or the embedded transport) around the durable ledger.

A batch is handed off (:mod:`.intake` reads and checks the rows, :mod:`.handoff` records them in the
ledger), its transaction ids are published (:mod:`.publisher`, confirmed, swept when something is due),
a worker (:mod:`.worker`, or :mod:`.embedded` in-process) consumes them through :mod:`.consumer` and the
thin task of :mod:`.tasks`, and :mod:`.execution` claims, runs in a bot and records each attempt, within
the target systems' budgets (:mod:`.budgets`) and only while they answer (:mod:`.outage`). Batches are
operated through :mod:`.batches`; :mod:`.progress` and :mod:`.gauges` read the figures back.
"""

from .batches import ACTIONS, DONE, RELEASES_WORK, BatchOperation, operate_batch
from .budgets import BudgetUnavailable, budget_held
from .cases import CASE_ACTION_DONE, CASE_ACTIONS, CaseAction, act_on_case
from .celery_app import DEAD_LETTER_QUEUE, QUEUE, declare_queues, make_celery
from .embedded import embedded_worker
from .execution import execute_many
from .gauges import BrokerCollector, LedgerCollector, serve_process_metrics, target_figures
from .handoff import Receipt, hand_off, hand_off_rows, wait_for_batch
from .intake import JSON_LINES_SUFFIXES, REJECTION_KINDS, AcceptedCase, Rejection, check_row, read_case_stream, read_cases
from .outage import TargetHealth
from .preflight import check_configuration, check_workers, missing_configuration, missing_from, resolvable_names
from .progress import operations_figures, progress_report
from .publisher import Publisher, Sweeper
from .retention import PruneSummary, cutoff_time, erase_case, prune_ledger
from .results import FORMATS, RESULT_KEYS, XLSX_MAX_CASES, Reconciliation, case_results, csv_chunks, export_results, jsonl_chunks, mask_json, reconcile, rejections_csv_chunks
from .run import run_batch
from .runtime import Runtime, bot_config, current_runtime, set_runtime
from .summary import Summary
from .tasks import TASK_NAME
from .worker import run_worker

__all__ = [
    # hand-off
    "read_cases",
    "read_case_stream",
    "check_row",
    "AcceptedCase",
    "Rejection",
    "JSON_LINES_SUFFIXES",
    "hand_off",
    "hand_off_rows",
    "wait_for_batch",
    "Receipt",
    "run_batch",
    "Summary",
    # the broker
    "make_celery",
    "declare_queues",
    "QUEUE",
    "DEAD_LETTER_QUEUE",
    "TASK_NAME",
    "Publisher",
    "Sweeper",
    # workers
    "Runtime",
    "bot_config",
    "set_runtime",
    "current_runtime",
    "execute_many",
    "embedded_worker",
    "run_worker",
    "TargetHealth",
    "check_configuration",
    "missing_configuration",
    "check_workers",
    "missing_from",
    "resolvable_names",
    "budget_held",
    "BudgetUnavailable",
    # operating and watching
    "operate_batch",
    "act_on_case",
    "CaseAction",
    "CASE_ACTIONS",
    "CASE_ACTION_DONE",
    "BatchOperation",
    "ACTIONS",
    "DONE",
    "RELEASES_WORK",
    "progress_report",
    "operations_figures",
    "target_figures",
    "LedgerCollector",
    "BrokerCollector",
    "serve_process_metrics",
    # results and reconciliation
    "case_results",
    "mask_json",
    # retention
    "prune_ledger",
    "PruneSummary",
    "erase_case",
    "cutoff_time",
    "export_results",
    "csv_chunks",
    "rejections_csv_chunks",
    "jsonl_chunks",
    "RESULT_KEYS",
    "FORMATS",
    "XLSX_MAX_CASES",
    "reconcile",
    "Reconciliation",
    "REJECTION_KINDS",
]
