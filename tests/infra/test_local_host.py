"""scripts/local-host.sh: the stack `func start` needs, started for real (Azurite, both sandboxes as their own
processes), and the local.settings.json it writes used the way the Functions host would: as the environment of
the timer functions. The Functions host itself cannot be installed here (its npm package downloads it)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.functions.timer import TimerRequest

import function_app
import shared.wiring
from sandbox.campaign.config import SandboxConfig
from sandbox.dataverse.auth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT
from shared.settings import load_settings, read_local_settings
from shared.state.runs import RunLog
from tests.fixtures.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "local-host.sh"
SAMPLE = ROOT / "local.settings.sample.json"


def host(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=90)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, str]]:
    ports = {name: str(free_port()) for name in ("AZURITE_BLOB_PORT", "AZURITE_QUEUE_PORT", "AZURITE_TABLE_PORT",
                                                 "DATAVERSE_PORT", "CAMPAIGN_PORT")}  # fmt: skip
    env = {**os.environ, **ports, "PYTHON": sys.executable, "LOCAL_HOST_DIR": str(tmp_path / "host"),
           "LOCAL_SETTINGS_FILE": str(tmp_path / "local.settings.json")}  # fmt: skip
    try:
        yield env
    finally:
        host(env, "stop")


def accepts(port: str) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", int(port))) == 0


def test_the_sample_is_the_stack_local_host_starts() -> None:
    values = json.loads(SAMPLE.read_text())["Values"]
    assert values["AzureWebJobsStorage"] == values["STATE_STORAGE_CONNECTION_STRING"] == "UseDevelopmentStorage=true"
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"  # func start needs it locally (Flex ignores it in Azure)
    assert (values["DATAVERSE_TENANT_ID"], values["DATAVERSE_CLIENT_ID"], values["DATAVERSE_CLIENT_SECRET"]) == (
        DEFAULT_TENANT, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)  # fmt: skip
    config = SandboxConfig()
    assert (values["CAMPAIGN_ORGANIZATION"], values["CAMPAIGN_CLIENT_ID"], values["CAMPAIGN_CLIENT_SECRET"]) == (
        config.organization, config.client_id, config.client_secret)  # fmt: skip
    assert values["DATAVERSE_URL"] == values["DATAVERSE_AUTHORITY_HOST"] == "https://127.0.0.1:8443"
    assert values["CAMPAIGN_BASE_URL"] == values["CAMPAIGN_IMS_URL"] == "http://127.0.0.1:8081"
    assert values["DATAVERSE_CA_BUNDLE"] == ".local/host/dataverse/sandbox-ca.pem"  # where local-host.sh writes it
    assert (ROOT / values["SYNC_CONFIG"]).is_file()


def test_start_writes_settings_the_timer_functions_run_with(
    stack: dict[str, str], monkeypatch: pytest.MonkeyPatch, table_prefix: str
) -> None:
    started = host(stack, "start", "--contacts", "7")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "Next: func start" in started.stdout
    assert all(accepts(stack[p]) for p in ("AZURITE_BLOB_PORT", "AZURITE_TABLE_PORT", "DATAVERSE_PORT",
                                           "CAMPAIGN_PORT"))  # fmt: skip

    values = read_local_settings(Path(stack["LOCAL_SETTINGS_FILE"]))
    assert Path(values["DATAVERSE_CA_BUNDLE"]).is_file()
    assert stack["AZURITE_TABLE_PORT"] in values["AzureWebJobsStorage"]
    values.update(STATE_TABLE_PREFIX=table_prefix, SYNC_CONFIG=str(ROOT / values["SYNC_CONFIG"]))
    load_settings(values)  # every setting valid as written

    # What the host does with local.settings.json: its Values become the worker's environment.
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(shared.wiring, "_services", None)
    function_app.app.functions_bindings = None
    [timer] = [f for f in function_app.app.get_functions() if f.get_function_name() == "ingress_contacts"]
    timer.get_user_function()(TimerRequest(past_due=False), types.SimpleNamespace(invocation_id="local-1"))

    [summary] = RunLog(shared.wiring.services().state.table("runs")).latest("ingress", "contacts")
    assert summary["outcome"] == "completed", summary
    assert summary["counts"]["created"] == 7

    again = host(stack, "start")
    assert again.returncode == 0 and again.stdout.count("already running") == 3
    assert "dataverse: running" in host(stack, "status").stdout


def test_stop_ends_what_start_started(stack: dict[str, str]) -> None:
    assert host(stack, "start", "--contacts", "0").returncode == 0
    pids = [int((Path(stack["LOCAL_HOST_DIR"]) / f"{s}.pid").read_text()) for s in ("azurite", "dataverse", "campaign")]
    stopped = host(stack, "stop")
    assert stopped.returncode == 0 and stopped.stdout.count("stopped") == 3
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not accepts(stack["DATAVERSE_PORT"]) and not accepts(stack["AZURITE_BLOB_PORT"])
    assert host(stack, "status").stdout.count("stopped") == 3


def test_a_taken_port_is_named(stack: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(stack["CAMPAIGN_PORT"])))
        taken.listen()
        result = host(stack, "start", "--contacts", "0")
    assert result.returncode == 2
    assert f"port {stack['CAMPAIGN_PORT']} is taken" in result.stderr and "CAMPAIGN_PORT" in result.stderr
    assert host(stack, "status").stdout.count("stopped") == 3, "nothing was left half started"
