"""Each package's public surface is pinned: its ``__all__`` is exactly the names below (as httpx pins its own in
``tests/test_exported_members.py``), every name in it resolves, and a package whose ``__init__`` only
re-exports has no public name outside ``__all__``. Changing a public surface is a decision: make it here too.
"""

from __future__ import annotations

import importlib
import types

import pytest

PINNED = {
    "workflows": {
        "alternatives", "CaseDataError", "CasesFileError", "check_case", "CustomStep", "describe", "ensure_models",
        "EnvMissingError", "EnvValues", "evaluate", "Expression", "field_errors", "InputField", "label_of", "RuleBroken", "load_stored",
        "load_workflow", "LoadedWorkflow", "Locator", "Needs", "parse_workflow", "Problem", "render", "secret_names_in",
        "SecretMissingError", "SecretValues", "Session", "Step", "STEP_MODELS", "StepArgs", "StepPluginError",
        "System", "Template", "TemplateRenderError", "to_json_value", "walk", "Workflow", "WorkflowError",
        "WorkflowFileError", "Lookup", "Verify", "add_fallback", "FIELD_MASK", "secret_fields", "mask_case", "secret_values", "mask_text", "case_fields_in",
    },
    "workflows.steps": {
        "Assert", "BUILTIN_ARGS", "Call", "Check", "Choose", "Click", "ConditionArgs", "CUSTOM_STEPS", "CustomStep", "Dialog", "Evaluate",
        "ensure_models", "ENTRY_POINT_GROUP", "Extract", "Fail", "Finish", "Fill", "ForEach", "Goto", "If", "nested", "Press",
        "Retry", "Screenshot", "Select", "Set", "Step", "STEP_MODELS", "StepArgs", "StepBase", "StepPluginError",
        "submits", "Uncheck", "Upload", "uses_steps", "WaitFor", "walk",
    },
    "bots": {
        "ApplicationError", "BotConfig", "BotEngine", "BotError", "BotJob", "BotResult", "BrowserGone",
        "BrowserNotFoundError", "BusinessException", "choose_chromium", "ChromiumChoice", "EXECUTORS", "evidence_folder",
        "find_chromium", "launch_args", "launch_options", "LaunchOptions", "NullEngine",
        "PageCrashed", "run_steps", "SessionExpired", "SessionKeeper", "StepContext", "StepHooks", "StepTimeout",
        "TargetServerError", "Heal", "HealingStore", "MemoryHealingStore", "Fingerprint",
    },
    "monitoring": {
        "ATTEMPTS", "BOT_SLOTS", "BOTS_BUSY", "BROWSER_RESTARTS", "configure_logging", "disable_metrics",
        "LOCATOR_FALLBACKS", "metrics_enabled", "OUTCOMES", "PAGE_CRASHES", "redact_text", "redactor",
        "register_secret", "REGISTRY", "RETRIES", "serve_metrics", "SESSIONS", "STEP_DURATION", "STEP_RETRIES", "TARGET_WAIT",
        "TRANSACTION_DURATION", "TRANSACTIONS", "VERIFICATION_RESULTS", "VERIFICATIONS", "HEALS",
    },
    "demo_portal": {
        "COLUMNS", "create_app", "Faults", "generate_cases", "portal_process", "PortalProcess", "serve",
    },
    "orchestrator": {
        "AcceptedCase", "ACTIVE", "BrokerError", "Claim", "ConfigurationError", "EMBEDDED_BROKER", "execute_many", "hand_off", "Ledger",
        "LedgerError", "load_settings", "OrchestratorError", "Outcome", "Publisher", "read_cases", "Receipt",
        "Rejection", "Runtime", "Settings", "StaleAttempt", "AuditChainBroken", "STATES", "Summary", "Sweeper", "SystemLimit",
        "TERMINAL", "UsageError", "wait_for_batch", "WAITING",
    },
    "orchestrator.ledger": {
        "ACTIVE", "BATCH_STATES", "Batches", "Cases", "Claim", "Heartbeats", "Ledger", "LEDGER_UNREACHABLE", "Outbox", "Outcome", "Reports",
        "STATES", "SystemBudgets", "Breakers", "Breaker", "TERMINAL", "Transactions", "WAITING", "HELD", "WorkflowStore", "AuditTrail", "AuditHead", "Schedules", "DroppedFiles", "Retention", "PrunedChunk", "ERASED", "backup_sqlite", "Heals",
        "Counters", "bump", "bump_many",
    },
    "orchestrator.accounts": {
        "Accounts", "ROLES", "SsoRefused", "SignInGuard", "Teams", "User",
    },
    "orchestrator.queue": {
        "case_results", "mask_json", "prune_ledger", "PruneSummary", "erase_case", "cutoff_time", "export_results", "csv_chunks", "rejections_csv_chunks", "jsonl_chunks", "RESULT_KEYS", "FORMATS",
        "XLSX_MAX_CASES", "reconcile", "Reconciliation", "bot_config", "REJECTION_KINDS", "check_workers", "missing_from",
        "resolvable_names", "DEADLINE_COLUMN",
        "AcceptedCase", "act_on_case", "publish_workflow", "rollback_workflow", "approve_heal", "Approval", "version_diff", "audit_hand_off",
        "audit_csv_chunks", "AUDIT_KEYS", "ACTIONS", "BatchOperation", "BrokerCollector", "budget_held",
        "BudgetUnavailable", "CASE_ACTION_DONE", "CASE_ACTIONS", "CaseAction", "check_configuration", "check_row",
        "current_runtime", "DEAD_LETTER_QUEUE", "declare_queues", "DONE", "embedded_worker", "execute_many",
        "hand_off", "hand_off_rows", "is_workbook", "JSON_LINES_SUFFIXES", "XLSX_SUFFIXES", "LedgerCollector", "make_celery",
        "missing_configuration", "operate_batch", "operations_figures", "progress_report", "Publisher", "QUEUE",
        "read_case_stream", "read_cases", "Receipt", "Rejection", "RELEASES_WORK", "run_batch", "run_worker",
        "Runtime", "serve_process_metrics", "set_runtime", "Summary", "Sweeper", "target_figures", "SystemBreakers", "probe",
        "TASK_NAME", "wait_for_batch",
        "add_schedule", "remove_schedule", "run_schedule_now", "describe_timing", "LedgerScheduler", "ScheduleFiring",
        "FolderWatch", "run_beat",
    },
    "orchestrator.web": {
        "READY_PREFIX", "serve",
    },
    "orchestrator.cli": {
        "cli", "main",
    },
}

ASSEMBLIES = {"orchestrator.cli", "workflows.steps"}
"""Packages whose ``__init__`` also assembles (the command group; the step union's helpers), not only re-exports."""


@pytest.mark.parametrize("package", sorted(PINNED))
def test_the_public_surface_is_exactly_the_pinned_names(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) == PINNED[package]
    assert len(module.__all__) == len(set(module.__all__)), "a name is listed twice"
    assert [name for name in module.__all__ if not hasattr(module, name)] == []


@pytest.mark.parametrize("package", sorted(set(PINNED) - ASSEMBLIES))
def test_a_package_exports_every_public_name_it_holds(package: str) -> None:
    module = importlib.import_module(package)
    public = {name for name, value in vars(module).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert public - set(module.__all__) == set()
