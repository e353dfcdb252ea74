"""The sandbox itself: deterministic seeding at scale, control API over HTTP, command line, custom tables."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

import requests

from sandbox.dataverse import DataverseSandbox
from sandbox.dataverse.generate import guid_for, index_of
from shared.clients.dataverse import build_verified_session
from tests.fixtures.ports import free_port

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_seeding_is_deterministic_and_realistic(dataverse_sandbox: DataverseSandbox) -> None:
    dataverse_sandbox.seed_contacts(50, seed=42)
    rows = dataverse_sandbox.rows("contacts")
    other = DataverseSandbox().start()
    try:
        other.seed_contacts(50, seed=42)
        assert other.rows("contacts") == rows
        other.seed_contacts(50, seed=43)
        assert other.rows("contacts")[50:] != rows
    finally:
        other.stop()
    first = rows[0]
    assert first["fullname"] == f"{first['firstname']} {first['lastname']}"
    assert first["emailaddress1"].split("@")[1] in ("example.com", "example.org", "example.net")
    assert " 555 01" in first["telephone1"]
    assert {r["statecode"] for r in dataverse_sandbox.rows("contacts")} <= {0, 1}
    assert len({r["contactid"] for r in rows}) == 50


def test_a_million_contacts_seed_at_once_and_any_of_them_is_addressable(dataverse_sandbox: DataverseSandbox) -> None:
    started = time.perf_counter()
    dataverse_sandbox.seed_contacts(1_000_000)
    assert time.perf_counter() - started < 1.0
    assert dataverse_sandbox.count("contacts") == 1_000_000

    deep = guid_for(987_654, 1)
    assert index_of(deep) == 987_654
    row = dataverse_sandbox.get("contacts", deep)
    assert row is not None and row["contactid"] == deep
    dataverse_sandbox.update("contacts", deep, {"lastname": "Moved"})
    dataverse_sandbox.delete("contacts", guid_for(5, 1))
    assert dataverse_sandbox.get("contacts", deep)["lastname"] == "Moved"  # type: ignore[index]
    assert dataverse_sandbox.get("contacts", guid_for(5, 1)) is None
    assert dataverse_sandbox.count("contacts") == 999_999


def test_reading_5000_row_pages_of_a_million_contacts_is_fast(dataverse_sandbox: DataverseSandbox) -> None:
    dataverse_sandbox.seed_contacts(1_000_000)
    session = build_verified_session(str(dataverse_sandbox.ca_path))
    headers = {
        "Authorization": f"Bearer {dataverse_sandbox.issue_token()}",
        "Prefer": "odata.track-changes,odata.maxpagesize=5000",
    }
    url: str | None = f"{dataverse_sandbox.api_url}contacts?$select=firstname,lastname,emailaddress1,statecode"
    rows, started = 0, time.perf_counter()
    for _ in range(10):
        assert url is not None
        body = session.get(url, headers=headers, timeout=60).json()
        rows += len(body["value"])
        url = body.get("@odata.nextLink")
    rate = rows / (time.perf_counter() - started)
    assert rows == 50_000
    assert rate > 5_000, f"{rate:.0f} rows/s"  # a loose floor: the README has the measured rate


def test_control_api_over_http(dataverse_sandbox: DataverseSandbox) -> None:
    control = dataverse_sandbox.url + "/_control/"
    session = build_verified_session(str(dataverse_sandbox.ca_path))

    def call(method: str, path: str, body: object = None) -> requests.Response:
        return session.request(method, control + path, json=body, timeout=10)

    assert call("GET", "health").json() == {"status": "ok"}
    assert call("POST", "seed", {"table": "contact", "count": 100, "seed": 3}).json()["count"] == 100
    created = call("POST", "rows/contacts", {"firstname": "Eve", "lastname": "Stone"}).json()["id"]
    assert call("PATCH", f"rows/contacts/{created}", {"donotbulkemail": True}).status_code == 200
    assert call("GET", f"rows/contacts/{created}").json()["donotbulkemail"] is True
    assert len(call("GET", "rows/contacts?limit=10").json()) == 10
    assert call("DELETE", f"rows/contacts/{created}").status_code == 200
    assert call("GET", f"rows/contacts/{created}").status_code == 404
    assert call("GET", "stats").json()["rows"]["contacts"] == 100

    call("POST", "faults", {"path": "WhoAmI", "kind": "503", "count": 1})
    token = call("POST", "tokens").json()["access_token"]
    who = session.get(dataverse_sandbox.api_url + "WhoAmI", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert who.status_code == 503
    log = call("GET", "requests").json()
    assert [(e["path"], e["status"], e["fault"]) for e in log] == [("/api/data/v9.2/WhoAmI", 503, "503")]
    assert call("POST", "expire-access-tokens").status_code == 200
    who = session.get(dataverse_sandbox.api_url + "WhoAmI", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert who.status_code == 401
    assert call("POST", "throttle", {"kind": "requests", "limit": 5}).status_code == 200
    assert call("DELETE", "throttle").status_code == 200
    assert call("POST", "clock/advance", {"seconds": 10}).status_code == 200
    assert call("POST", "expire-delta-tokens").status_code == 200
    assert call("GET", "settings").json()["tenant_id"] == dataverse_sandbox.tenant_id
    assert call("GET", "nonsense").status_code == 404


def test_custom_tables_given_at_start() -> None:
    tables = [
        {
            "logical_name": "new_membership",
            "entity_set": "new_memberships",
            "primary_key": "new_membershipid",
            "primary_name": "new_name",
            "change_tracking": True,
            "columns": {"new_level": {"type": "Picklist", "options": {"1": "Basic", "2": "Plus"}}},
        },
        {"logical_name": "new_smsevent", "entity_set": "new_smsevents", "is_activity": True, "columns": {}},
    ]
    with DataverseSandbox(tables=tables) as sandbox:
        member = sandbox.create("new_memberships", {"new_name": "M", "new_level": 2})
        contact = sandbox.create("contacts", {"lastname": "C"})
        sms = sandbox.create(
            "new_smsevents",
            {"subject": "sent", "regardingobjectid_contact_new_smsevent@odata.bind": f"/contacts({contact})"},
        )
        assert sandbox.get("new_memberships", member)["new_level"] == 2  # type: ignore[index]
        assert sandbox.get("new_smsevents", sms)["_regardingobjectid_value"] == contact  # type: ignore[index]
        assert "new_loyaltycards" not in sandbox.store.by_set


def test_command_line_serves_until_terminated(tmp_path: pathlib.Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.dataverse",
            "--port",
            str(port),
            "--contacts",
            "1000",
            "--workdir",
            str(tmp_path),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        settings = json.loads(process.stdout.readline())
        assert settings["url"] == f"https://127.0.0.1:{port}"
        session = build_verified_session(settings["ca_path"])
        stats = session.get(settings["control_url"] + "stats", timeout=10).json()
        assert stats["rows"]["contacts"] == 1000
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0


def _session(sandbox: DataverseSandbox) -> tuple[requests.Session, dict[str, str]]:
    headers = {"Authorization": f"Bearer {sandbox.issue_token()}", "Accept": "application/json"}
    return build_verified_session(str(sandbox.ca_path)), headers


def test_sandbox_write_preferences_follow_the_docs(dataverse_sandbox: DataverseSandbox) -> None:
    session, headers = _session(dataverse_sandbox)
    url = f"{dataverse_sandbox.api_url}contacts"

    plain = session.post(url, json={"lastname": "A"}, headers=headers, timeout=10)
    assert plain.status_code == 204 and plain.headers["OData-EntityId"].startswith(url + "(")
    shown = session.post(
        url + "?$select=lastname", json={"lastname": "B"}, headers={**headers, "Prefer": "return=representation"}
    )
    assert shown.status_code == 201 and shown.json()["lastname"] == "B"
    row_id = shown.json()["contactid"]
    # Upsert: 200 for an update, 201 for a create with return=representation; If-None-Match: * never updates.
    represent = {**headers, "Prefer": "return=representation"}
    assert session.patch(f"{url}({row_id})", json={"lastname": "C"}, headers=represent).status_code == 200
    new_id = "0f0f0f0f-0000-4000-8000-000000000001"
    assert session.patch(f"{url}({new_id})", json={"lastname": "D"}, headers=represent).status_code == 201
    refused = session.patch(f"{url}({row_id})", json={"lastname": "E"}, headers={**headers, "If-None-Match": "*"})
    assert refused.status_code == 412 and refused.json()["error"]["code"] == "0x80040237"
    by_key = session.get(f"{url}(emailaddress1='a@example.com')", headers=headers)
    assert by_key.status_code == 400 and "The key in the request URI is not valid" in by_key.json()["error"]["message"]
    unknown = session.get(f"{dataverse_sandbox.api_url}accounts", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "0x80060888"


def test_sandbox_service_documents(dataverse_sandbox: DataverseSandbox) -> None:
    session, headers = _session(dataverse_sandbox)
    api = dataverse_sandbox.api_url

    metadata = session.get(api + "$metadata", headers=headers, timeout=10).text
    tracked = metadata.split('<EntitySet Name="new_loyaltycards"')[1].split("</EntitySet>")[0]
    untracked = metadata.split('<EntitySet Name="new_untrackeds"')[1].split("</EntitySet>")[0]
    assert "Org.OData.Capabilities.V1.ChangeTracking" in tracked
    assert "ChangeTracking" not in untracked
    assert set(session.get(api + "WhoAmI", headers=headers).json()) >= {"UserId", "BusinessUnitId", "OrganizationId"}
    assert session.get(api + "organizations", headers=headers).json()["value"][0]["expirechangetrackingindays"] == 7
    tracked_tables = session.get(
        api + "EntityDefinitions?$select=LogicalName&$filter=ChangeTrackingEnabled eq true", headers=headers
    ).json()["value"]
    assert {t["LogicalName"] for t in tracked_tables} == {
        "contact",
        "task",
        "new_loyaltycard",
        "new_campaignemailevent",
    }
