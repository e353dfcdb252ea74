"""The sandbox itself: control API over HTTP, command line start-up, configuration, raw API details."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
from typing import Any

import pytest
import requests

from sandbox.campaign import CampaignSandbox, SandboxConfig
from shared.clients.campaign import CUSTOM_RESOURCES, CampaignClient
from tests.fixtures.campaign import CAMPAIGN_SCOPES, FakeTime, make_campaign_client
from tests.fixtures.ports import free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def control(sandbox: CampaignSandbox, method: str, route: str, body: object = None) -> Any:
    response = requests.request(method, sandbox.control_url + route, json=body, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def test_control_api_mirrors_the_handle(campaign_sandbox: CampaignSandbox, campaign_client: CampaignClient) -> None:
    seeded = control(
        campaign_sandbox,
        "POST",
        "seed/profile",
        {"rows": [{"externalId": "c-1", "email": "a@example.com", "created": "2024-01-01 00:00:00.000Z"}]},
    )
    pkey = seeded[0]["PKey"]
    assert seeded[0]["created"] == "2024-01-01 00:00:00.000Z"
    assert control(campaign_sandbox, "GET", "rows/profile")[0]["PKey"] == pkey

    times = control(
        campaign_sandbox, "POST", f"attributeTimes/profile/{pkey}", {"denyListEmail": "2025-06-01 10:00:00.000Z"}
    )
    assert times["denyListEmail"] == "2025-06-01 10:00:00.000Z"
    assert times["email"] == "2024-01-01 00:00:00.000Z"

    control(campaign_sandbox, "POST", "optoutSpelling", {"spelling": "blackList"})
    assert "blackListEmail" in control(campaign_sandbox, "GET", "rows/profile")[0]

    control(campaign_sandbox, "POST", "faults", {"status": 503, "path": "/profile", "times": 1})
    assert control(campaign_sandbox, "GET", "faults")[0]["status"] == 503
    control(campaign_sandbox, "DELETE", "faults")

    campaign_client.resource("profile").count()
    logged = control(campaign_sandbox, "GET", "requests")
    assert any("/_count" in e["path"] for e in logged)
    assert all("/_control" not in e["path"] for e in logged)
    control(campaign_sandbox, "DELETE", "requests")
    assert control(campaign_sandbox, "GET", "requests") == []

    assert control(campaign_sandbox, "POST", "tokens/expire")["expired"] == 1
    before = control(campaign_sandbox, "GET", "clock")["now"]
    assert control(campaign_sandbox, "POST", "clock/advance", {"seconds": 600})["now"] >= before + 600

    control(campaign_sandbox, "POST", "budget", {"limit": 1, "perSeconds": 60})
    assert control(campaign_sandbox, "GET", "budget")["limit"] == 1
    control(campaign_sandbox, "DELETE", "budget")

    control(campaign_sandbox, "POST", "workflows/WKF_D365_INITIAL/state", {"state": "paused"})
    assert campaign_client.workflows().workflow_status("WKF_D365_INITIAL") == "paused"
    assert control(campaign_sandbox, "GET", "triggers/WKF_D365_INITIAL") == []

    control(campaign_sandbox, "POST", "reset", {"config": {"organization": "other", "optoutSpelling": "blackList"}})
    assert campaign_sandbox.base_url.endswith("/other/campaign/")
    assert control(campaign_sandbox, "GET", "rows/profile") == []


def test_control_api_errors_are_json(campaign_sandbox: CampaignSandbox) -> None:
    response = requests.get(campaign_sandbox.control_url + "nope", timeout=5)
    assert response.status_code == 404
    response = requests.post(campaign_sandbox.control_url + "faults", json={"action": "explode"}, timeout=5)
    assert response.status_code == 400


def test_command_line_start(tmp_path: pathlib.Path) -> None:
    port = free_port()
    config = tmp_path / "campaign.json"
    config.write_text(json.dumps({"organization": "demo", "signalWindow": 5, "customResources": []}))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.campaign",
            "--port",
            str(port),
            "--config",
            str(config),
            "--client-id",
            "cli-id",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["base_url"] == f"http://127.0.0.1:{port}/demo/campaign/"
        assert info["client_id"] == "cli-id"
        token = requests.post(
            info["ims_url"],
            data={
                "grant_type": "client_credentials",
                "client_id": "cli-id",
                "client_secret": info["client_secret"],
                "scope": ",".join(CAMPAIGN_SCOPES),
            },
            timeout=5,
        ).json()["access_token"]
        listing = requests.get(
            info["base_url"] + "profileAndServicesExt/",
            headers={"Authorization": f"Bearer {token}", "X-Api-Key": "cli-id"},
            timeout=5,
        )
        assert listing.status_code == 200
        assert listing.json()["content"] == [
            {"name": "profile", "href": info["base_url"] + "profileAndServicesExt/profile"}
        ]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


def test_unlinked_custom_resources_live_under_custom_resources() -> None:
    config = SandboxConfig(
        custom_resources=(
            {"name": "cusStore", "key": "code", "linked": False, "attributes": {"code": "string", "city": "string"}},
        )
    )
    with CampaignSandbox.start(config) as sandbox:
        client = make_campaign_client(sandbox, FakeTime(sandbox))
        stores = client.resource("cusStore", root=CUSTOM_RESOURCES)
        created = stores.create({"code": "S1", "city": "Porto"})
        assert "/customResources/cusStore/" in created.href
        assert client.resource_type("cusStore", root=CUSTOM_RESOURCES).attributes["city"] == "string"
        assert sandbox.rows("cusStore")[0]["city"] == "Porto"


def test_custom_key_get_and_metadata_shapes(campaign_sandbox: CampaignSandbox, campaign_client: CampaignClient) -> None:
    created = campaign_client.resource("profile").create({"externalId": "c-77"})
    # GET /profileAndServicesExt/profile/<customKey> (must-read.md)
    body = campaign_client.get_json(campaign_client.url("profileAndServicesExt/profile/c-77"))
    assert body["PKey"] == created.pkey
    meta = campaign_client.get_json(campaign_client.url("profileAndServicesExt/resourceType/profile"))
    assert meta["schema"] == "nms:recipient"
    assert meta["content"]["gender"]["values"]["male"]["name"] == "male"
    assert meta["filters"]["href"].endswith("/filters")


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="cus"):
        CampaignSandbox.start(SandboxConfig(custom_resources=({"name": "LoyaltyCard", "attributes": {}},)))
    with pytest.raises(ValueError, match="unknown sandbox settings"):
        SandboxConfig.from_mapping({"colour": "blue"})


def test_seconds_not_minutes(campaign_sandbox: CampaignSandbox) -> None:
    """The real server answers quickly: a sanity bound so a regression to per-call sleeps shows up."""
    client = make_campaign_client(campaign_sandbox, FakeTime(campaign_sandbox))
    started = time.perf_counter()
    for i in range(50):
        client.resource("profile").create({"externalId": f"c-{i}"})
    assert time.perf_counter() - started < 10
