"""The file workflows over the HTTP control API, and the sandbox started in its own process with an SFTP root
(as benchmarks and the demo run it)."""

from __future__ import annotations

import csv
import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import requests

from sandbox.campaign import CampaignSandbox
from tests.fixtures.campaign import RawCampaign
from tests.fixtures.ports import free_port

REPO = pathlib.Path(__file__).resolve().parents[2]


def control(base: str, method: str, route: str, body: object = None, status: int = 200) -> Any:
    response = requests.request(method, base + route, json=body, timeout=10)
    assert response.status_code == status, response.text
    return response.json()


def test_control_routes_for_imports_deliveries_and_exports(
    campaign_sftp_sandbox: CampaignSandbox, campaign_raw: RawCampaign
) -> None:
    base = campaign_sftp_sandbox.control_url
    campaign_sftp_sandbox.import_folder.mkdir(parents=True)
    (campaign_sftp_sandbox.import_folder / "b_part0001.csv").write_text("externalId;email\nc-1;a@example.com\n")

    control(base, "POST", "imports/failNext", {"reason": "Transfer file: refused"})
    campaign_raw.trigger("WKF_D365_IMPORT_PROFILE", {"batch": "b", "fileNames": "b_part0001.csv", "rowCount": 1})
    workflow = control(base, "GET", "workflows/WKF_D365_IMPORT_PROFILE")
    assert (workflow["state"], workflow["lastError"]) == ("error", "Transfer file: refused")
    control(base, "POST", "imports/delay", {"seconds": 30})
    campaign_raw.command("WKF_D365_IMPORT_PROFILE", "start")
    control(base, "POST", "clock/advance", {"seconds": 600})
    campaign_raw.trigger("WKF_D365_IMPORT_PROFILE", {"batch": "b", "fileNames": "b_part0001.csv", "rowCount": 1})
    assert control(base, "GET", "workflows/WKF_D365_IMPORT_PROFILE")["state"] == "running"
    control(base, "POST", "clock/advance", {"seconds": 30})
    history = control(base, "GET", "imports?workflow=WKF_D365_IMPORT_PROFILE")
    assert [run["state"] for run in history] == ["error", "finished"]
    assert history[1]["inserted"] == 1

    delivery = control(
        base,
        "POST",
        "deliveries",
        {"externalIds": ["c-1"], "withoutExternalId": 1, "seed": 4, "campaignLabel": "Spring", "sentAgo": 60},
    )
    assert delivery["campaignLabel"] == "Spring"
    assert [t["externalId"] for t in delivery["targets"]] == ["c-1", ""]
    logs = control(base, "GET", "deliveries/logs")
    assert len(logs["deliveryLogs"]) == 2
    exported = control(base, "POST", "exports/logs")
    path = campaign_sftp_sandbox.export_folder / exported["files"]["deliverylogs"]
    with path.open(encoding="utf-8", newline="") as handle:
        assert len(list(csv.reader(handle, delimiter=";"))) == 3
    conflict = requests.post(base + "exports/logs", timeout=5)
    if conflict.status_code == 409:  # same second of the sandbox clock (the usual case)
        assert "already ran in this second" in conflict.json()["error"]

    profile = control(base, "POST", "profiles/unsubscribe", {"externalId": "c-1"})
    assert profile["denyListEmail"] is True
    optouts = control(base, "POST", "exports/optouts")
    assert optouts["rows"] == 2  # c-1, and the Campaign-only profile the delivery created
    assert [e["workflow"] for e in control(base, "GET", "exports")][-1] == "optouts"
    control(base, "POST", "deliveries", {"colour": "red"}, status=400)
    control(base, "POST", "profiles/unsubscribe", {"externalId": "c-1", "changes": {"email": True}}, status=400)


def test_file_workflows_without_an_sftp_root_answer_501(campaign_sandbox: CampaignSandbox) -> None:
    response = requests.post(campaign_sandbox.control_url + "exports/optouts", timeout=5)
    assert response.status_code == 501
    assert "without an SFTP root" in response.json()["error"]


def test_own_process_with_an_sftp_root(tmp_path: pathlib.Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.campaign", "--port", str(port), "--sftp-root", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["sftp_root"] == str(tmp_path.resolve())
        assert (info["import_folder"], info["export_folder"]) == ("d365_loads/imports", "d365_loads/exports")
        control(info["control_url"], "POST", "seed/profile", {"rows": [{"externalId": "c-1"}]})
        exported = control(info["control_url"], "POST", "exports/optouts")
        assert (tmp_path / "d365_loads" / "exports" / exported["file"]).read_text(encoding="utf-8").count("\n") == 2
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0
