"""Telemetry: SDK loggers quiet under the worker's DEBUG root, one parseable run summary per run in both logging
modes, export only where nothing else sends the logs, and the real exporter against a loopback endpoint."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from azure.identity import DefaultAzureCredential

import shared.telemetry as telemetry
from shared.telemetry import configure_logging, log_run_summary

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = {
    "flow": "ingress",
    "table": "contacts",
    "run_id": "5f0c",
    "outcome": "completed",
    "counts": {"read": 12, "created": 3, "updated": 2, "dead_lettered": 1},
    "duration_seconds": 4.25,
    "cursor_from": "",
    "cursor_to": 'W/"123"',
    "reason": "50% done",  # a % in the JSON must not trip %-formatting
}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def root_at_debug() -> Iterator[Records]:
    """The root logger as the Functions worker leaves it (DEBUG), with a handler recording what gets through."""
    root = logging.getLogger()
    handler, level = Records(), root.level
    saved = {name: logging.getLogger(name).level for name in (*telemetry.NOISY_LOGGERS, "sync", "sync.telemetry_test")}
    for name in saved:
        logging.getLogger(name).setLevel(logging.NOTSET)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for name, saved_level in saved.items():
            logging.getLogger(name).setLevel(saved_level)


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "_exporting", False)


def emit_sample() -> None:
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").info("Request URL: 'https://x/...'")
    logging.getLogger("urllib3.connectionpool").debug("Starting new HTTPS connection")
    logging.getLogger("msal.token_cache").debug("event=...")
    logging.getLogger("azure.data.tables").info("table op")
    logging.getLogger("azure.identity").warning("credential unavailable")
    logging.getLogger("sync.ingress").info("ingress.page table=contacts")


def test_sdk_loggers_are_quiet_under_a_debug_root(root_at_debug: Records) -> None:
    emit_sample()
    assert len(root_at_debug.records) == 6, "without configure_logging every SDK record gets through"
    root_at_debug.records.clear()

    assert configure_logging({}) is False
    emit_sample()
    assert [(r.name, r.levelname) for r in root_at_debug.records] == [
        ("azure.identity", "WARNING"),
        ("sync.ingress", "INFO"),
    ]


def test_run_summary_is_one_record_kql_can_parse(root_at_debug: Records) -> None:
    logger = logging.getLogger("sync.telemetry_test")  # not sync.run: the CLI sets that one to WARNING
    log_run_summary(logger, SUMMARY)
    log_run_summary(logger, {**SUMMARY, "outcome": "failed"})
    first, failed = root_at_debug.records
    message = first.getMessage()
    assert message.startswith("run.summary ") and len("run.summary ") == 12
    assert json.loads(message[12:]) == SUMMARY  # what parse_json(substring(message, 12)) sees
    assert "\n" not in message
    assert (first.levelname, failed.levelname) == ("INFO", "ERROR")
    assert json.loads(failed.getMessage()[12:])["outcome"] == "failed"


def test_run_summary_in_opentelemetry_mode_keeps_the_json_in_the_message() -> None:
    # The same handler and provider classes the azure-monitor distro installs on the worker's logger.
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    exported = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exported))
    logger = logging.getLogger("sync.test_otel")
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        log_run_summary(logger, SUMMARY)
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    [record] = [item.log_record for item in exported.get_finished_logs()]
    assert isinstance(record.body, str) and record.body.startswith("run.summary ")
    assert json.loads(record.body[12:]) == SUMMARY
    assert record.attributes is not None
    assert (record.attributes["flow"], record.attributes["outcome"]) == ("ingress", "completed")


class FakeExporter:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **options: Any) -> None:
        self.calls.append(options)


CONNECTION = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/"


@pytest.mark.parametrize(
    ("env", "modules", "exports"),
    [
        ({}, {}, False),
        ({"TELEMETRY_EXPORT": "off", "APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION}, {}, False),
        ({"TELEMETRY_EXPORT": "azure-monitor", "APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION}, {}, True),
        ({"TELEMETRY_EXPORT": "Azure-Monitor", "APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION}, {}, True),
        # Inside the Functions host (3.11 worker, 3.13 worker library) the host or the worker already sends them.
        ({"TELEMETRY_EXPORT": "azure-monitor", "APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION},
         {"azure_functions_worker": object()}, False),
        ({"TELEMETRY_EXPORT": "azure-monitor", "APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION},
         {"azure_functions_runtime": object()}, False),
        ({"TELEMETRY_EXPORT": "azure-monitor"}, {}, False),  # nowhere to send: a warning, no exporter
        ({"TELEMETRY_EXPORT": "stdout", "APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION}, {}, False),
    ],
)  # fmt: skip
def test_exports_only_outside_the_host_and_when_asked(env: dict[str, str], modules: dict[str, object],
                                                      exports: bool) -> None:  # fmt: skip
    exporter = FakeExporter()
    assert configure_logging(env, modules=modules, exporter=exporter) is exports
    assert len(exporter.calls) == (1 if exports else 0)
    if exports:
        assert exporter.calls[0] == {"connection_string": CONNECTION, "logger_name": "sync"}


def test_exporter_is_set_up_once_and_signs_with_entra_when_ingestion_needs_it() -> None:
    exporter = FakeExporter()
    env = {"TELEMETRY_EXPORT": "azure-monitor", "APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION,
           "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Authorization=AAD"}  # fmt: skip
    assert configure_logging(env, modules={}, exporter=exporter)
    assert configure_logging(env, modules={}, exporter=exporter)
    [options] = exporter.calls
    assert isinstance(options["credential"], DefaultAzureCredential)


# ---------------------------------------------------------------- the real exporter, against a loopback endpoint

CLI_RUN = """
import logging, sys
sys.path.insert(0, {root!r})
from shared.telemetry import configure_logging, log_run_summary
assert configure_logging()
logging.getLogger("sync").setLevel(logging.INFO)
log_run_summary(logging.getLogger("sync.run"), {summary!r})
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").warning("not a connector log")
"""


class Ingestion(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        items = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if self.path.endswith("/track"):
            flat = [i for item in items for i in (item if isinstance(item, list) else [item])]
            Ingestion.received.extend(flat)
        reply = json.dumps({"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


def test_cli_exports_its_run_summary_through_azure_monitor_opentelemetry() -> None:
    Ingestion.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ingestion)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/"
        env = {
            "PATH": "/usr/bin:/bin",
            "TELEMETRY_EXPORT": "azure-monitor",
            "APPLICATIONINSIGHTS_CONNECTION_STRING": f"InstrumentationKey=00000000-0000-0000-0000-000000000001;"
                                                     f"IngestionEndpoint={endpoint}",
            # Nothing leaves the machine: no statsbeat to Microsoft, no cloud metadata (IMDS) lookups.
            "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
            "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
        }  # fmt: skip
        result = subprocess.run([sys.executable, "-c", CLI_RUN.format(root=str(ROOT), summary=SUMMARY)], env=env,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
    finally:
        server.shutdown()
        server.server_close()
    messages = [item["data"]["baseData"].get("message", "") for item in Ingestion.received
                if item.get("data", {}).get("baseType") == "MessageData"]  # fmt: skip
    assert len(messages) == 1, Ingestion.received
    assert messages[0].startswith("run.summary ") and json.loads(messages[0][12:]) == SUMMARY


def test_host_json_keeps_traces_out_of_adaptive_sampling() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    sampling = host["logging"]["applicationInsights"]["samplingSettings"]
    excluded = sampling["excludedTypes"].split(";")
    assert sampling["isEnabled"] is True  # sampling stays on for the host's own request volume ...
    assert {"Request", "Exception", "Trace"} <= set(excluded)  # ... but never drops a run summary (a trace)


def test_function_app_configures_logging_at_import() -> None:
    source = (ROOT / "function_app.py").read_text()
    assert "from shared.telemetry import configure_logging" in source
    assert source.count("configure_logging()") == 1
