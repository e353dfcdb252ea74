"""Airbyte's Dataverse source (airbyte-source-microsoft-dataverse from PyPI) against the Dataverse sandbox.

Installed on first use into its own venv under bench/.work/venvs (git-ignored), pinned. Run as Airbyte runs a
source: `check`, `discover`, then `read` of the discovered contact stream in full refresh, each a process of
its own speaking the Airbyte protocol on stdout. Two things are adapted, both to reach the sandbox instead of
Microsoft's cloud: the source builds its token URL as
https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token, so a small launcher points that one URL at the
sandbox's Entra endpoint (the same client-credentials request), and the sandbox's CA is made the default CA
bundle of requests (REQUESTS_CA_BUNDLE alone does not reach the CDK's sends). The rate is records read / wall
time of the `read` process.

A step that fails is reported with what failed (the step, and the source's own error line), never as a figure.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.services import Service

PACKAGE = "airbyte-source-microsoft-dataverse"
VERSION = "1.0.2"
STREAM = "contact"

LAUNCHER = """
import os, sys
import requests.adapters

# Trust the sandbox's CA: the CDK sends through Session.send, which ignores REQUESTS_CA_BUNDLE.
requests.adapters.DEFAULT_CA_BUNDLE_PATH = os.environ["REQUESTS_CA_BUNDLE"]

import source_microsoft_dataverse.dataverse as dataverse
import source_microsoft_dataverse.source as source
from source_microsoft_dataverse.run import run

original = dataverse.get_auth


def get_auth(config):
    auth = original(config)
    auth._token_refresh_endpoint = os.environ["BENCH_TOKEN_URL"]  # the one change: the sandbox's Entra
    return auth


dataverse.get_auth = source.get_auth = get_auth
dataverse.do_request.__globals__["get_auth"] = get_auth
sys.argv[0] = "source-microsoft-dataverse"
run()
"""


@dataclasses.dataclass(frozen=True)
class Measured:
    rate: float | None  # rows/s, None when a step failed
    failure: str = ""
    note: str = ""


def full_refresh_rate(ctx: Context, dataverse: Service, *, expected_rows: int) -> Measured:
    try:
        python = ensure_installed(ctx)
    except (OSError, subprocess.CalledProcessError) as exc:
        return Measured(None, f"could not install {PACKAGE}=={VERSION}: {exc}")
    work = ctx.work / "airbyte"
    work.mkdir(parents=True, exist_ok=True)
    (work / "launch.py").write_text(LAUNCHER)
    info = dataverse.info
    config = {
        "url": info["url"],
        "tenant_id": info["tenant_id"],
        "client_id": info["client_id"],
        "client_secret_value": info["client_secret"],
        "odata_maxpagesize": 5000,
    }
    (work / "config.json").write_text(json.dumps(config))
    env = dict(os.environ, BENCH_TOKEN_URL=f"{info['authority_host']}/{info['tenant_id']}/oauth2/v2.0/token",
               REQUESTS_CA_BUNDLE=info["ca_path"], SSL_CERT_FILE=info["ca_path"])  # fmt: skip
    env.pop("PYTHONPATH", None)
    launch = [str(python), str(work / "launch.py")]
    failures = []

    dataverse.control("DELETE", "requests")
    check = _run([*launch, "check", "--config", str(work / "config.json")], env, timeout=120)
    status = next((m["connectionStatus"] for m in check.messages if m.get("type") == "CONNECTION_STATUS"), None)
    if status is None or status.get("status") != "SUCCEEDED":
        failures.append(f"check: {_why(check, status)} [{_sandbox_saw(dataverse)}]")

    dataverse.control("DELETE", "requests")
    discover = _run([*launch, "discover", "--config", str(work / "config.json")], env, timeout=300)
    catalog = next((m["catalog"] for m in discover.messages if m.get("type") == "CATALOG"), None)
    stream = next((s for s in (catalog or {}).get("streams", []) if s.get("name") == STREAM), None)
    if stream is None:
        failures.append(f"discover: {_why(discover, None)} [{_sandbox_saw(dataverse)}]")
        return Measured(None, "; ".join(failures))
    configured = {"streams": [{"stream": stream, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite",
                               "primary_key": stream.get("source_defined_primary_key")}]}  # fmt: skip
    (work / "catalog.json").write_text(json.dumps(configured))

    ctx.log(f"Airbyte source: reading {expected_rows:,} contacts (full refresh)")
    started = time.perf_counter()
    read = _run(
        [*launch, "read", "--config", str(work / "config.json"), "--catalog", str(work / "catalog.json")],
        env, timeout=1800, count_records=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if read.records != expected_rows:
        failures.append(
            f"read: {read.records} records of {expected_rows}: {_why(read, None)} [{_sandbox_saw(dataverse)}]"
        )
        return Measured(None, "; ".join(failures))
    note = "; ".join([*failures, f"{expected_rows:,} records in {seconds:.1f} s, process start included"])
    return Measured(read.records / seconds, note=note)


def ensure_installed(ctx: Context) -> Path:
    """The venv's python with the pinned source installed (installed on first use)."""
    venv = ctx.work / "venvs" / f"{PACKAGE}-{VERSION}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists():
        ctx.log(f"installing {PACKAGE}=={VERSION} into {venv} (first use)")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        with open(venv / "pip.log", "w") as log:
            install = [str(python), "-m", "pip", "install", "--disable-pip-version-check", f"{PACKAGE}=={VERSION}"]
            subprocess.run(install, check=True, stdout=log, stderr=subprocess.STDOUT)
        marker.write_text(f"{PACKAGE}=={VERSION}\n")
    return python


@dataclasses.dataclass
class _Result:
    returncode: int
    messages: list[dict[str, Any]]  # every protocol message but records
    records: int
    stderr: str


def _run(command: list[str], env: dict[str, str], *, timeout: float, count_records: bool = False) -> _Result:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    messages: list[dict[str, Any]] = []
    records = 0
    deadline = time.monotonic() + timeout
    assert process.stdout is not None and process.stderr is not None
    for line in process.stdout:
        if count_records and line.startswith('{"type":"RECORD"'):
            records += 1  # 100,000 records: counted, not parsed
        elif line.startswith("{"):
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("type") == "RECORD":
                records += 1
            else:
                messages.append(message)
        if time.monotonic() > deadline:
            process.kill()
            break
    stderr = process.stderr.read()
    process.wait()
    return _Result(process.returncode, messages, records, stderr)


def _sandbox_saw(dataverse: Service) -> str:
    """The step's Web API requests as the sandbox logged them: the failed ones, and the last one."""
    logged = [r for r in dataverse.control("GET", "requests") if "/api/data/" in r.get("path", "")]
    failed = [r for r in logged if not 200 <= int(r.get("status") or 0) < 300]
    shown = failed + ([logged[-1]] if logged and logged[-1] not in failed else [])
    return "; ".join(_request(r) for r in shown) or "no Web API request"


def _request(entry: dict[str, Any]) -> str:
    query = f"?{entry['query']}" if entry.get("query") else ""
    code = f" {entry['error_code']}" if entry.get("error_code") else ""
    return f"{entry.get('method')} {entry.get('path')}{query[:160]} -> {entry.get('status')}{code}"


def _why(result: _Result, status: dict[str, Any] | None) -> str:
    """The source's own explanation: its connection status message, its last error log or trace, or stderr."""
    if status and status.get("message"):
        return _short(str(status["message"]))
    for message in reversed(result.messages):
        if message.get("type") == "TRACE" and message.get("trace", {}).get("error"):
            error = message["trace"]["error"]
            trace = str(error.get("stack_trace") or "").strip().splitlines()
            return _short(trace[-1] if trace else str(error.get("internal_message") or error.get("message")))
        if message.get("type") == "LOG" and message.get("log", {}).get("level") in ("ERROR", "FATAL"):
            return _short(str(message["log"].get("message")))
    return _short(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}")


def _short(text: str) -> str:
    return " ".join(text.split())[:300]
