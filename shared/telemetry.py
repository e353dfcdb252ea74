"""Logging of the Function App and the CLI: quiet Azure SDK loggers, run summaries KQL can parse, optional export.

- The Python worker sets the root logger to DEBUG, so the Azure SDK's HTTP logging policy (and urllib3, msal)
  would log every call: dozens of records per run that drown the app's own and eat the adaptive-sampling budget.
  `configure_logging()` sets those loggers to WARNING once per process.
- `log_run_summary()` writes one record per run and scope whose *message* is `run.summary {json}`, so KQL's
  `parse_json(substring(message, 12))` reads it whether the host forwards the log (customDimensions are dropped
  there) or OpenTelemetry exports it (the body is the formatted message).
- TELEMETRY_EXPORT=azure-monitor makes a process outside the Functions host (the operator CLI) export the
  connector's `sync.*` loggers to Application Insights itself. Inside the host it is ignored: the host forwards
  the logs, or in OpenTelemetry mode the worker configures the exporter; a second exporter would send
  everything twice.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

SUMMARY_PREFIX = "run.summary "  # 12 characters: KQL reads the JSON with substring(message, 12)
CONNECTOR_LOGGER = "sync"
NOISY_LOGGERS = (
    "azure.core",
    "azure.core.pipeline.policies.http_logging_policy",
    "azure.data.tables",
    "azure.storage",
    "azure.identity",
    "azure.monitor.opentelemetry",
    "urllib3",
    "msal",
)
# Modules a Functions Python worker has imported before it loads function_app.py (3.11 worker; 3.13 library).
_WORKER_MODULES = ("azure_functions_worker", "azure_functions_runtime")

_log = logging.getLogger("sync.telemetry")
_exporting = False

Exporter = Callable[..., None]


def configure_logging(
    env: Mapping[str, str] | None = None,
    *,
    modules: Mapping[str, object] | None = None,
    exporter: Exporter | None = None,
) -> bool:
    """Quiet the SDK loggers and, when TELEMETRY_EXPORT asks for it outside the Functions host, export the
    connector's logs. Safe to call more than once: the exporter is set up at most once per process.

    Returns whether this process exports its logs itself.
    """
    global _exporting
    env = os.environ if env is None else env
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if _exporting:
        return True
    mode = env.get("TELEMETRY_EXPORT", "off").strip().lower() or "off"
    if mode == "off":
        return False
    if mode != "azure-monitor":
        _log.warning("telemetry.export_off reason=TELEMETRY_EXPORT is %r, not off or azure-monitor", mode)
        return False
    if inside_functions_host(sys.modules if modules is None else modules):
        return False  # the host (or, in OpenTelemetry mode, the worker) already sends these logs
    connection_string = env.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip()
    if not connection_string:
        _log.warning("telemetry.export_off reason=TELEMETRY_EXPORT=azure-monitor without "
                     "APPLICATIONINSIGHTS_CONNECTION_STRING")  # fmt: skip
        return False
    options: dict[str, Any] = {"connection_string": connection_string, "logger_name": CONNECTOR_LOGGER}
    if "authorization=aad" in env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "").replace(" ", "").lower():
        # Entra-only ingestion (the template disables instrumentation-key ingestion): sign with the identity.
        from azure.identity import DefaultAzureCredential

        options["credential"] = DefaultAzureCredential()
    (exporter or _azure_monitor)(**options)
    _exporting = True
    return True


def inside_functions_host(modules: Mapping[str, object]) -> bool:
    return any(name in modules for name in _WORKER_MODULES)


def _azure_monitor(**options: Any) -> None:
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(**options)


def summary_message(summary: Mapping[str, Any]) -> str:
    """`run.summary {json}`: one line, keys sorted, anything not JSON written as its str()."""
    return SUMMARY_PREFIX + json.dumps(dict(summary), sort_keys=True, default=str, separators=(",", ":"))


def log_run_summary(logger: logging.Logger, summary: Mapping[str, Any]) -> None:
    """One record per run and scope: INFO, or ERROR when the run failed (so failures show at a glance).

    The message is preformatted, with no %-arguments, so every handler (the host's, OpenTelemetry's) carries the
    whole JSON in the message; `flow` and `outcome` also go as attributes where the handler keeps them.
    """
    level = logging.ERROR if summary.get("outcome") == "failed" else logging.INFO
    extra = {"event": SUMMARY_PREFIX.strip(), "flow": str(summary.get("flow", "")),
             "outcome": str(summary.get("outcome", ""))}  # fmt: skip
    logger.log(level, summary_message(summary), extra=extra)
