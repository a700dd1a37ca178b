"""The names :mod:`orchestrator.queue` exports, for type checkers; ``__init__.py`` loads each on first use from this list."""

from .beat import run_beat
from .batches import ACTIONS, DONE, RELEASES_WORK, BatchOperation, operate_batch
from .breaker import SystemBreakers, probe
from .budgets import BudgetUnavailable, budget_held
from .cases import CASE_ACTION_DONE, CASE_ACTIONS, CaseAction, act_on_case
from .celery_app import DEAD_LETTER_QUEUE, QUEUE, declare_queues, make_celery
from .embedded import embedded_worker
from .execution import execute_many
from .gauges import BrokerCollector, LedgerCollector, serve_process_metrics
from .handoff import Receipt, audit_hand_off, hand_off, hand_off_rows, wait_for_batch
from .intake import DEADLINE_COLUMN, JSON_LINES_SUFFIXES, REJECTION_KINDS, AcceptedCase, Rejection, check_row, read_case_stream, read_cases
from .preflight import check_configuration, check_workers, missing_configuration, missing_from, resolvable_names
from .progress import operations_figures, progress_report, target_figures
from .publisher import Publisher, Sweeper
from .retention import PruneSummary, cutoff_time, erase_case, prune_ledger
from .results import AUDIT_KEYS, audit_csv_chunks, FORMATS, RESULT_KEYS, XLSX_MAX_CASES, Reconciliation, case_results, csv_chunks, export_results, jsonl_chunks, mask_json, reconcile, rejections_csv_chunks
from .folders import FolderWatch
from .run import run_batch
from .scheduler import LedgerScheduler, ScheduleFiring
from .schedules import add_schedule, describe_timing, remove_schedule, run_schedule_now
from .spreadsheet import XLSX_SUFFIXES, is_workbook
from .runtime import Runtime, bot_config, current_runtime, set_runtime
from .summary import Summary
from .tasks import TASK_NAME
from .heals import Approval, approve_heal
from .versions import publish_workflow, rollback_workflow, version_diff
from .worker import run_worker

__all__ = [
    # hand-off
    "read_cases",
    "read_case_stream",
    "check_row",
    "AcceptedCase",
    "Rejection",
    "JSON_LINES_SUFFIXES",
    "DEADLINE_COLUMN",
    "XLSX_SUFFIXES",
    "is_workbook",
    "hand_off",
    "hand_off_rows",
    "audit_hand_off",
    "wait_for_batch",
    "Receipt",
    "run_batch",
    "Summary",
    # recurring work
    "add_schedule",
    "remove_schedule",
    "run_schedule_now",
    "describe_timing",
    "LedgerScheduler",
    "ScheduleFiring",
    "FolderWatch",
    "run_beat",
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
    "SystemBreakers",
    "probe",
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
    "publish_workflow",
    "rollback_workflow",
    "approve_heal",
    "Approval",
    "version_diff",
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
    "audit_csv_chunks",
    "AUDIT_KEYS",
]
