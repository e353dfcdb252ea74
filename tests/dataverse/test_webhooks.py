"""Webhooks as Dataverse sends them: registration, firing after committed writes, the RemoteExecutionContext body
and headers, authentication, retries, size limit, and the knobs that make delivery deterministic for tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.dataverse import DataverseSandbox, users
from tests.fixtures.dataverse import Api, WebhookReceiver

CONTRACTS = "http://schemas.microsoft.com/xrm/2011/Contracts"


def attributes(body: dict[str, Any]) -> dict[str, Any]:
    target = body["InputParameters"][0]["value"]
    return {pair["key"]: pair["value"] for pair in target["Attributes"]}


def ms(iso: str) -> str:
    import datetime

    return f"/Date({round(datetime.datetime.fromisoformat(iso).timestamp() * 1000)})/"


def test_an_update_posts_the_remote_execution_context_with_the_documented_headers(
    dataverse_sandbox: DataverseSandbox, dv_api: Api, webhook_receiver: WebhookReceiver
) -> None:
    step = dataverse_sandbox.register_webhook(
        webhook_receiver.url, messages=["Update"], filtering_attributes=["donotbulkemail"], value="function-key"
    )
    contact = dataverse_sandbox.create("contacts", {"firstname": "Ada", "lastname": "Stone"})

    dv_api.patch(f"contacts({contact})", {"donotbulkemail": True}, If_Match="*")
    dataverse_sandbox.flush_webhooks()

    [request] = webhook_receiver.received
    assert request["query"] == {"code": "function-key"}
    headers = request["headers"]
    assert headers["x-ms-dynamics-entity-name"] == "contact"
    assert headers["x-ms-dynamics-request-name"] == "Update"
    assert headers["x-ms-dynamics-organization"] == "127.0.0.1"
    assert headers["content-type"].startswith("application/json")
    assert "x-ms-dynamics-msg-size-exceeded" not in headers
    body = request["body"]
    assert headers["x-ms-correlation-request-id"] == body["CorrelationId"]
    app_user = dataverse_sandbox.application_user_id
    row = dataverse_sandbox.get("contacts", contact)
    assert row is not None
    assert (body["MessageName"], body["Mode"], body["Stage"], body["Depth"]) == ("Update", 1, 40, 1)
    assert (body["PrimaryEntityName"], body["PrimaryEntityId"]) == ("contact", contact)
    assert body["InitiatingUserId"] == body["UserId"] == app_user
    assert body["OrganizationName"] == "sandbox" and body["IsInTransaction"] is False
    assert (
        body["OwningExtension"]["Id"] == step and body["OwningExtension"]["LogicalName"] == "sdkmessageprocessingstep"
    )
    target = body["InputParameters"][0]["value"]
    assert target["__type"] == f"Entity:{CONTRACTS}"
    assert (target["LogicalName"], target["Id"], target["RowVersion"]) == (
        "contact",
        contact,
        str(row["versionnumber"]),
    )
    assert attributes(body) == {
        "donotbulkemail": True,  # [U] booleans as JSON booleans
        "contactid": contact,
        "modifiedon": ms(row["modifiedon"]),
        "modifiedby": {
            "__type": f"EntityReference:{CONTRACTS}",
            "Id": app_user,
            "KeyAttributes": [],
            "LogicalName": "systemuser",
            "Name": None,
            "RowVersion": None,
        },
        "modifiedonbehalfby": None,
    }
    assert body["ParentContext"]["Stage"] == 30 and body["PreEntityImages"] == body["PostEntityImages"] == []
    assert b"\\/Date(" in request["raw"]  # serialised like DataContractJsonSerializer
    [logged] = dataverse_sandbox.webhook_deliveries()
    assert logged["status"] == "delivered" and [a["status"] for a in logged["attempts"]] == [200]
    assert "function-key" not in json.dumps(logged)  # the key never reaches the log


def test_filtering_attributes_decide_and_control_changes_are_made_as_a_dynamics_user(
    dataverse_sandbox: DataverseSandbox, webhook_receiver: WebhookReceiver
) -> None:
    dataverse_sandbox.register_webhook(
        webhook_receiver.url, messages=["Update"], filtering_attributes="donotbulkemail,donotemail", value="k"
    )
    contact = dataverse_sandbox.create("contacts", {"lastname": "Filter"})

    dataverse_sandbox.update("contacts", contact, {"lastname": "Renamed"})  # not a filtering attribute
    dataverse_sandbox.update("contacts", contact, {"donotemail": False})  # unchanged value still fires
    dataverse_sandbox.update("contacts", contact, {"donotbulkemail": True}, as_user="sam.sales")
    dataverse_sandbox.flush_webhooks()

    bodies = webhook_receiver.bodies()
    assert [sorted(attributes(b)) for b in bodies] == [
        ["contactid", "donotemail", "modifiedby", "modifiedon", "modifiedonbehalfby"],
        ["contactid", "donotbulkemail", "modifiedby", "modifiedon", "modifiedonbehalfby"],
    ]
    assert [b["UserId"] for b in bodies] == [users.DEFAULT_USER.systemuserid, users.NAMED_USERS[1].systemuserid]
    assert attributes(bodies[1])["modifiedby"]["Id"] == users.NAMED_USERS[1].systemuserid


def test_create_and_delete_messages(dataverse_sandbox: DataverseSandbox, webhook_receiver: WebhookReceiver) -> None:
    dataverse_sandbox.register_webhook(webhook_receiver.url, messages=["Create", "Delete"], value="k")

    contact = dataverse_sandbox.create("contacts", {"firstname": "New", "lastname": "Born", "gendercode": 2})
    dataverse_sandbox.delete("contacts", contact)
    dataverse_sandbox.flush_webhooks()

    created, deleted = webhook_receiver.bodies()
    values = attributes(created)
    assert created["MessageName"] == "Create"
    assert {"firstname", "lastname", "fullname", "contactid", "createdon", "ownerid", "statecode"} <= set(values)
    assert values["gendercode"] == {"__type": f"OptionSetValue:{CONTRACTS}", "Value": 2}  # [U] option set values
    assert values["fullname"] == "New Born"
    assert created["OutputParameters"] == [{"key": "id", "value": contact}]
    assert deleted["MessageName"] == "Delete"
    assert deleted["InputParameters"][0]["value"] == {
        "__type": f"EntityReference:{CONTRACTS}",
        "Id": contact,
        "KeyAttributes": [],
        "LogicalName": "contact",
        "Name": None,
        "RowVersion": None,
    }


@pytest.mark.parametrize(
    ("auth", "value", "check"),
    [
        ("HttpHeader", {"x-shared-secret": "s3cret"}, lambda r: r["headers"]["x-shared-secret"] == "s3cret"),
        (
            "HttpQueryString",
            {"token": "t0ken", "env": "test"},
            lambda r: r["query"] == {"token": "t0ken", "env": "test"},
        ),
    ],
)
def test_header_and_query_string_authentication(
    dataverse_sandbox: DataverseSandbox, webhook_receiver: WebhookReceiver, auth: str, value: Any, check: Any
) -> None:
    dataverse_sandbox.register_webhook(webhook_receiver.url, messages=["Create"], auth=auth, value=value)

    dataverse_sandbox.create("contacts", {"lastname": "Auth"})
    dataverse_sandbox.flush_webhooks()

    assert check(webhook_receiver.received[0])
    logged = json.dumps(dataverse_sandbox.webhook_deliveries())
    assert "s3cret" not in logged and "t0ken" not in logged


@pytest.mark.parametrize(
    ("statuses", "attempts", "outcome"),
    [
        ([503], [503, 200], "delivered"),  # 502/503/504 get exactly one more attempt
        ([502, 504], [502, 504], "failed"),
        ([500], [500], "failed"),  # any other non-2xx is a failure, never retried
        ([404], [404], "failed"),
        ([202], [202], "delivered"),
    ],
)
def test_retry_only_502_503_504_once(
    dataverse_sandbox: DataverseSandbox,
    webhook_receiver: WebhookReceiver,
    statuses: list[int],
    attempts: list[int],
    outcome: str,
) -> None:
    webhook_receiver.statuses = list(statuses)
    dataverse_sandbox.register_webhook(webhook_receiver.url, messages=["Create"], value="k")

    dataverse_sandbox.create("contacts", {"lastname": "Retry"})
    dataverse_sandbox.flush_webhooks()

    [delivery] = dataverse_sandbox.webhook_deliveries()
    assert ([a["status"] for a in delivery["attempts"]], delivery["status"]) == (attempts, outcome)
    assert len(webhook_receiver.received) == len(attempts)
    assert len({r["body"]["OperationId"] for r in webhook_receiver.received}) == 1  # the same message again


@pytest.fixture
def quick_timeout_sandbox() -> Iterator[DataverseSandbox]:
    sandbox = DataverseSandbox(webhook_timeout=0.2).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def test_a_receiver_slower_than_the_timeout_is_a_failure(
    quick_timeout_sandbox: DataverseSandbox, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.delay = 0.6
    quick_timeout_sandbox.register_webhook(webhook_receiver.url, messages=["Create"], value="k")

    quick_timeout_sandbox.create("contacts", {"lastname": "Slow"})
    quick_timeout_sandbox.flush_webhooks()

    [delivery] = quick_timeout_sandbox.webhook_deliveries()
    assert delivery["status"] == "failed"
    assert [(a["status"], a["error"]) for a in delivery["attempts"]] == [(0, "timeout")]


def test_a_body_over_256_kb_goes_without_inputs_and_images(
    dataverse_sandbox: DataverseSandbox, dv_api: Api, webhook_receiver: WebhookReceiver
) -> None:
    dv_api.post(
        "EntityDefinitions(LogicalName='contact')/Attributes",
        {
            "@odata.type": "Microsoft.Dynamics.CRM.MemoAttributeMetadata",
            "SchemaName": "new_Notes",
            "MaxLength": 400_000,
        },
    )
    dataverse_sandbox.register_webhook(
        webhook_receiver.url, messages=["Update"], value="k", pre_image=["lastname"], post_image=["lastname"]
    )
    contact = dataverse_sandbox.create("contacts", {"lastname": "Big"})

    dataverse_sandbox.update("contacts", contact, {"new_notes": "n" * 300_000})
    dataverse_sandbox.update("contacts", contact, {"lastname": "Small"})
    dataverse_sandbox.flush_webhooks()

    big, small = webhook_receiver.received
    assert big["headers"]["x-ms-dynamics-msg-size-exceeded"]
    assert not {"ParentContext", "InputParameters", "PreEntityImages", "PostEntityImages"} & set(big["body"])
    assert big["body"]["PrimaryEntityId"] == contact and big["body"]["MessageName"] == "Update"
    assert "x-ms-dynamics-msg-size-exceeded" not in small["headers"] and small["body"]["InputParameters"]


def test_entity_images(dataverse_sandbox: DataverseSandbox, webhook_receiver: WebhookReceiver) -> None:
    dataverse_sandbox.register_webhook(
        webhook_receiver.url, messages=["Update"], value="k", pre_image=["donotbulkemail"], post_image=True
    )
    contact = dataverse_sandbox.create("contacts", {"lastname": "Imaged"})

    dataverse_sandbox.update("contacts", contact, {"donotbulkemail": True})
    dataverse_sandbox.flush_webhooks()

    [body] = webhook_receiver.bodies()
    [pre] = body["PreEntityImages"]
    [post] = body["PostEntityImages"]
    assert pre["key"] == "PreImage"
    assert {p["key"]: p["value"] for p in pre["value"]["Attributes"]} == {"donotbulkemail": False, "contactid": contact}
    post_values = {p["key"]: p["value"] for p in post["value"]["Attributes"]}
    assert post["key"] == "PostImage" and post_values["donotbulkemail"] is True and post_values["lastname"] == "Imaged"


def _batch(api: Api, parts: list[str], *, changeset: bool, continue_on_error: bool = False) -> int:
    def part(request: str) -> str:
        return f"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n{request}\r\n"

    if changeset:
        inner = "".join(f"--cs\r\n{part(p)}" for p in parts) + "--cs--\r\n"
        payload = f"--b\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n{inner}--b--\r\n"
    else:
        payload = "".join(f"--b\r\n{part(p)}" for p in parts) + "--b--\r\n"
    headers = {**api.headers, "Content-Type": "multipart/mixed; boundary=b"}
    if continue_on_error:
        headers["Prefer"] = "odata.continue-on-error"
    return api.session.post(
        api.sandbox.api_url + "$batch", data=payload.encode(), headers=headers, timeout=30
    ).status_code


def _update(contact: str, body: str) -> str:
    return f"PATCH contacts({contact}) HTTP/1.1\r\nContent-Type: application/json\r\nIf-Match: *\r\n\r\n{body}"


def test_batch_parts_fire_only_once_committed(
    dataverse_sandbox: DataverseSandbox, dv_api: Api, webhook_receiver: WebhookReceiver
) -> None:
    dataverse_sandbox.register_webhook(webhook_receiver.url, messages=["Update"], value="k")
    a = dataverse_sandbox.create("contacts", {"lastname": "A"})
    b = dataverse_sandbox.create("contacts", {"lastname": "B"})

    _batch(dv_api, [_update(a, '{"donotbulkemail":true}'), _update(b, '{"gendercode":99}')], changeset=True)
    dataverse_sandbox.flush_webhooks()
    rolled_back = list(webhook_receiver.received)
    _batch(dv_api, [_update(a, '{"donotbulkemail":true}'), _update(b, '{"donotemail":true}')], changeset=True)
    dataverse_sandbox.flush_webhooks()
    committed = [r["body"]["PrimaryEntityId"] for r in webhook_receiver.received]
    _batch(
        dv_api,
        [_update(a, '{"gendercode":99}'), _update(b, '{"lastname":"B2"}')],
        changeset=False,
        continue_on_error=True,
    )
    dataverse_sandbox.flush_webhooks()

    assert rolled_back == []
    assert committed == [a, b]
    assert [r["body"]["PrimaryEntityId"] for r in webhook_receiver.received][2:] == [b]
    assert all(r["body"]["UserId"] == dataverse_sandbox.application_user_id for r in webhook_receiver.received)


def test_bulk_operations_fire_the_single_messages(
    dataverse_sandbox: DataverseSandbox, dv_api: Api, webhook_receiver: WebhookReceiver
) -> None:
    dataverse_sandbox.register_webhook(
        webhook_receiver.url, entity="new_loyaltycard", messages=["Create", "Update"], value="k"
    )
    existing = dataverse_sandbox.create("new_loyaltycards", {"new_name": "old", "new_cardnumber": "W-1"})
    dataverse_sandbox.flush_webhooks()
    webhook_receiver.received.clear()
    card = "Microsoft.Dynamics.CRM.new_loyaltycard"

    dv_api.post(
        "new_loyaltycards/Microsoft.Dynamics.CRM.UpsertMultiple",
        {
            "Targets": [
                {"@odata.type": card, "new_points": 1, "@odata.id": "new_loyaltycards(new_cardnumber='W-1')"},
                {"@odata.type": card, "new_points": 2, "@odata.id": "new_loyaltycards(new_cardnumber='W-2')"},
            ]
        },
    )
    dataverse_sandbox.flush_webhooks()

    messages = [(b["MessageName"], b["PrimaryEntityId"] == existing) for b in webhook_receiver.bodies()]
    assert messages == [("Update", True), ("Create", False)]


def test_duplicate_pause_and_reordered_release(
    dataverse_sandbox: DataverseSandbox, webhook_receiver: WebhookReceiver
) -> None:
    dataverse_sandbox.register_webhook(webhook_receiver.url, messages=["Update"], value="k")
    contact = dataverse_sandbox.create("contacts", {"lastname": "Order"})

    dataverse_sandbox.duplicate_webhooks(1)
    dataverse_sandbox.update("contacts", contact, {"donotemail": True})
    dataverse_sandbox.flush_webhooks()
    first, again = webhook_receiver.bodies()
    dataverse_sandbox.pause_webhooks()
    for value in (False, True, False):
        dataverse_sandbox.update("contacts", contact, {"donotbulkemail": value})
    with pytest.raises(RuntimeError):
        dataverse_sandbox.flush_webhooks(timeout=1)
    held = len(webhook_receiver.received)
    dataverse_sandbox.resume_webhooks("lifo")
    dataverse_sandbox.flush_webhooks()

    assert first == again  # the same message delivered twice
    log = dataverse_sandbox.webhook_deliveries()
    assert log[1]["duplicate_of"] == log[0]["id"]
    assert held == 2
    versions = [int(b["InputParameters"][0]["value"]["RowVersion"]) for b in webhook_receiver.bodies()[2:]]
    assert versions == sorted(versions, reverse=True) and len(versions) == 3  # newest first: reordered


def test_release_in_an_explicit_order(dataverse_sandbox: DataverseSandbox, webhook_receiver: WebhookReceiver) -> None:
    dataverse_sandbox.register_webhook(webhook_receiver.url, messages=["Create"], value="k")
    dataverse_sandbox.pause_webhooks()
    names = ["one", "two", "three"]
    for name in names:
        dataverse_sandbox.create("contacts", {"lastname": name})
    queued = [d for d in dataverse_sandbox.webhook_deliveries() if d["status"] == "queued"]

    ids = {attributes(d["body"])["lastname"]: d["id"] for d in dataverse_sandbox.webhook_deliveries()}
    dataverse_sandbox.resume_webhooks([ids["three"], ids["one"]])
    dataverse_sandbox.flush_webhooks()

    assert len(queued) == 3
    assert [attributes(b)["lastname"] for b in webhook_receiver.bodies()] == ["three", "one", "two"]


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"url": "https://example.com/hook", "value": "k"}, "loopback"),
        ({"url": "ftp://127.0.0.1/hook", "value": "k"}, "http"),
        ({"url": "http://127.0.0.1/hook", "value": "k", "entity": "account"}, "account"),
        ({"url": "http://127.0.0.1/hook", "value": "k", "messages": ["Merge"]}, "messages"),
        ({"url": "http://127.0.0.1/hook", "value": "k", "filtering_attributes": ["nosuch"]}, "nosuch"),
        ({"url": "http://127.0.0.1/hook"}, "WebhookKey"),
        ({"url": "http://127.0.0.1/hook", "auth": "HttpHeader", "value": "k"}, "HttpHeader"),
    ],
)
def test_invalid_registrations_are_refused(
    dataverse_sandbox: DataverseSandbox, options: dict[str, Any], problem: str
) -> None:
    url = options.pop("url")
    with pytest.raises(ValueError, match=problem):
        dataverse_sandbox.register_webhook(url, **options)
    assert dataverse_sandbox.webhook_registrations() == []


def test_webhooks_over_the_control_api(dataverse_sandbox: DataverseSandbox, webhook_receiver: WebhookReceiver) -> None:
    session = Api(dataverse_sandbox).session
    control = dataverse_sandbox.url + "/_control/"

    made = session.post(
        control + "webhooks",
        json={"url": webhook_receiver.url, "messages": ["Create"], "auth": "WebhookKey", "value": "k"},
        timeout=10,
    )
    bad = session.post(control + "webhooks", json={"url": "https://example.com/x", "value": "k"}, timeout=10)
    session.post(control + "rows/contacts?as_user=alex.service", json={"lastname": "Over HTTP"}, timeout=10)
    flushed = session.post(control + "webhooks/flush", json={"timeout": 10}, timeout=30)
    log = session.get(control + "webhooks/deliveries", timeout=10).json()
    listed = session.get(control + "webhooks", timeout=10).json()
    paused = session.post(control + "webhooks/pause", timeout=10)
    session.post(control + "rows/contacts", json={"lastname": "Held"}, timeout=10)
    refused = session.post(control + "webhooks/flush", json={"timeout": 1}, timeout=30)
    session.post(control + "webhooks/resume", json={"order": "fifo"}, timeout=10)
    session.post(control + "webhooks/flush", json={}, timeout=30)
    removed = session.delete(control + f"webhooks/{made.json()['id']}", timeout=10)

    assert made.status_code == 201 and bad.status_code == 400
    assert flushed.status_code == 200 and paused.status_code == 200 and refused.status_code == 409
    assert [d["status"] for d in log] == ["delivered"]
    assert log[0]["body"]["UserId"] == users.NAMED_USERS[2].systemuserid
    assert listed[0]["messages"] == ["Create"] and "value" not in listed[0]
    assert len(webhook_receiver.received) == 2 and removed.status_code == 200
    assert session.get(control + "webhooks", timeout=10).json() == []
