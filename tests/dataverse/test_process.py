"""A sandbox in its own process (python -m sandbox.dataverse), as benchmarks run it, is controlled over HTTP only."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.dataverse import users
from tests.fixtures.dataverse import WebhookReceiver
from tests.fixtures.ports import free_port

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def sandbox_process(tmp_path: pathlib.Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.dataverse", "--port", str(port), "--workdir", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield json.loads(process.stdout.readline())
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0


def test_everything_new_is_reachable_over_the_control_api(
    sandbox_process: dict[str, Any], webhook_receiver: WebhookReceiver
) -> None:
    settings = sandbox_process
    session = requests.Session()
    session.verify = settings["ca_path"]
    session.trust_env = False
    control = settings["control_url"]

    def call(method: str, path: str, body: Any = None) -> Any:
        response = session.request(method, control + path, json=body, timeout=30)
        assert response.status_code < 300, response.text
        return response.json()

    token = call("POST", "tokens")["access_token"]
    api = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    app_user = session.get(settings["api_url"] + "WhoAmI", headers=api, timeout=10).json()["UserId"]
    assert app_user == settings["application_user_id"]
    assert {u["fullname"] for u in call("GET", "users")} >= {"Dana Marketing", "Sam Sales"}
    made = call("POST", "users", {"fullname": "Robin Ops", "domainname": "robin.ops@example.com"})["id"]

    call(
        "POST",
        "webhooks",
        {
            "url": webhook_receiver.url,
            "messages": ["Update"],
            "filtering_attributes": ["donotbulkemail"],
            "value": "key",
            "pre_image": ["donotbulkemail"],
        },
    )
    contact = call("POST", "rows/contacts", {"lastname": "Remote"})["id"]
    call("PATCH", f"rows/contacts/{contact}?as_user=robin.ops@example.com", {"donotbulkemail": True})
    call("POST", "webhooks/flush", {"timeout": 10})
    [delivery] = call("GET", "webhooks/deliveries")
    assert delivery["status"] == "delivered" and delivery["body"]["UserId"] == made
    assert webhook_receiver.bodies()[0]["PreEntityImages"][0]["value"]["Attributes"][0]["value"] is False

    call("POST", "keys/hold", {"hold": True})
    key = session.post(
        settings["api_url"] + "EntityDefinitions(LogicalName='contact')/Keys",
        json={"SchemaName": "new_PhoneKey", "KeyAttributes": ["telephone1"]},
        headers=api,
        timeout=10,
    )
    assert key.status_code == 204
    assert call("POST", "keys/activate") == [{"entity": "contact", "key": "new_PhoneKey", "status": "Active"}]

    call("POST", "latency", {"ms": 20})
    session.get(settings["api_url"] + "WhoAmI", headers=api, timeout=10)
    assert call("GET", "requests")[-1]["latency_ms"] == 20
    assert call("GET", "stats")["latency_ms"] == 20
    assert users.DEFAULT_USER.systemuserid in {u["systemuserid"] for u in call("GET", "users")}
