"""function_app.py through the real Azure Functions Python worker (azure-functions-runtime, v2 model, Python 3.13,
in its own venv): its indexing must find exactly the functions below with exactly these bindings, and its
invocation path must run them against the local stack.

To add a function, add a row to EXPECTED with the bindings the host should receive."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sandbox.campaign import CampaignSandbox
from sandbox.dataverse import DataverseSandbox
from tests.e2e.conftest import EXAMPLE, stack_env
from tests.worker import worker_venv

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("drive_worker.py")
SUCCESS, FAILURE = 1, 0  # StatusResult.Status of the host protocol


def timer(schedule: str, arg: str = "timer") -> dict[str, Any]:
    return {"direction": "IN", "type": "timerTrigger", "name": arg, "schedule": schedule, "runOnStartup": False,
            "useMonitor": True}  # fmt: skip


def http(route: str, methods: list[str], auth_level: str = "FUNCTION", arg: str = "req") -> list[dict[str, Any]]:
    return [{"direction": "IN", "type": "httpTrigger", "name": arg, "route": route, "methods": methods,
             "authLevel": auth_level}, {"direction": "OUT", "type": "http", "name": "$return"}]  # fmt: skip


def queue(queue_name: str, connection: str, arg: str = "msg") -> dict[str, Any]:
    return {"direction": "IN", "type": "queueTrigger", "name": arg, "queueName": queue_name, "connection": connection}


# Every function the host must see, with the bindings it must receive (the worker's raw_bindings).
EXPECTED: dict[str, list[dict[str, Any]]] = {
    "ingress_contacts": [timer("%INGRESS_SCHEDULE%")],
    "ingress_custom_tables": [timer("%INGRESS_SCHEDULE%")],
    "egress_events": [timer("%EGRESS_SCHEDULE%")],
    "initial_transfer": [timer("%INITIAL_TRANSFER_SCHEDULE%")],
    "optout_webhook": http("optout/webhook", ["POST"]),
    "optout_queue": [queue("%OPTOUT_QUEUE%", "OPTOUT_QUEUE_STORAGE")],
    "optout_timer": [timer("%OPTOUT_SCHEDULE%")],
}


@pytest.fixture(scope="module")
def worker_python() -> Path:
    python = worker_venv.ensure()
    if python is None:
        pytest.skip("Python 3.13 is not on this machine (PATH or ~/.pyenv/versions/3.13*): the v2 worker needs it")
    return python


def drive(python: Path, env: dict[str, str], *invoke: str) -> dict[str, Any]:
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    result = subprocess.run([str(python), str(DRIVER), str(ROOT), *invoke], env={**base, **env}, cwd=ROOT,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_the_worker_indexes_exactly_the_expected_functions(worker_python: Path) -> None:
    out = drive(worker_python, {}, "ingress_contacts")
    assert out["init"] == {"status": SUCCESS}
    functions = out["functions"]
    assert sorted(functions) == sorted(EXPECTED)
    for name, bindings in EXPECTED.items():
        indexed = functions[name]
        assert indexed["raw_bindings"] == bindings, name
        assert (indexed["script_file"], indexed["entry_point"], indexed["language"]) == ("function_app.py", name,
                                                                                          "python")  # fmt: skip
        assert indexed["loaded"], name
    # Without settings, the invocation reaches the connector, which refuses with every missing setting named.
    invocation = out["invocations"]["ingress_contacts"]
    assert invocation["status"] == FAILURE
    assert "configuration problem" in invocation["exception"] and "DATAVERSE_URL" in invocation["exception"]


def test_the_worker_runs_the_timers_against_the_local_stack(
    worker_python: Path, dataverse_sandbox: DataverseSandbox, campaign_sandbox: CampaignSandbox,
    storage_connection_string: str, table_prefix: str,
) -> None:  # fmt: skip
    dataverse_sandbox.seed_contacts(9)
    dataverse_sandbox.create("new_loyaltycards", {"new_name": "card", "new_cardnumber": "C-1"})
    env = stack_env(dataverse_sandbox, campaign_sandbox, storage_connection_string, table_prefix, EXAMPLE)

    out = drive(worker_python, env, "ingress_contacts", "ingress_custom_tables", "initial_transfer")

    assert out["invocations"] == {
        "ingress_contacts": {"status": SUCCESS},
        "ingress_custom_tables": {"status": SUCCESS},
        "initial_transfer": {"status": SUCCESS},
    }  # no table over the threshold: no run
    assert len(campaign_sandbox.rows("profile")) == 9 and len(campaign_sandbox.rows("cusLoyaltyCard")) == 1
    summaries = [json.loads(line[len("run.summary ") :]) for line in out["summaries"]]
    assert {(s["flow"], s["scope"], s["outcome"]) for s in summaries} >= {("ingress", "contacts", "completed")}
    assert {s["invocation_id"] for s in summaries} == {"worker-invocation-0", "worker-invocation-1"}
    # Under the worker's DEBUG root, the Azure SDK's per-request logging stays quiet (configure_logging).
    sdk = ("azure.core", "urllib3", "msal", "azure.data", "azure.storage")
    noisy = {name: n for name, n in out["log_records"].items() if name.startswith(sdk)}
    assert noisy == {}
