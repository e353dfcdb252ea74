"""Writes: create with a client GUID, update never creates, upsert, delete, lookups, validation errors."""

from __future__ import annotations

import uuid

import pytest

from sandbox.dataverse import DataverseSandbox
from shared.clients.dataverse import DataverseClient, odata_bind
from shared.http import ApiError, Outcome


def test_create_with_a_client_chosen_guid_and_a_second_create_is_a_record_error(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    chosen = str(uuid.uuid4())

    created = dataverse_client.create("contacts", {"firstname": "Ana", "lastname": "Lima"}, id=chosen)

    assert created == chosen
    row = dataverse_sandbox.get("contacts", chosen)
    assert row is not None and row["fullname"] == "Ana Lima" and row["statecode"] == 0
    with pytest.raises(ApiError) as caught:
        dataverse_client.create("contacts", {"lastname": "Other"}, id=chosen)
    assert (caught.value.outcome, caught.value.status, caught.value.code) == (Outcome.RECORD_ERROR, 412, "0x80040237")
    assert dataverse_sandbox.count("contacts") == 1


def test_create_without_id_returns_the_server_id(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    created = dataverse_client.create("new_loyaltycards", {"new_name": "Card", "new_tier": 2})
    assert dataverse_sandbox.get("new_loyaltycards", created)["new_tier"] == 2  # type: ignore[index]


def test_update_of_a_missing_row_is_404_and_never_creates_it(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    missing = str(uuid.uuid4())

    with pytest.raises(ApiError) as caught:
        dataverse_client.update("contacts", missing, {"donotbulkemail": True})

    assert (caught.value.outcome, caught.value.status, caught.value.code) == (Outcome.RECORD_ERROR, 404, "0x80040217")
    assert dataverse_sandbox.get("contacts", missing) is None
    assert dataverse_sandbox.requests()[-1]["headers"]["if-match"] == "*"


def test_update_changes_only_the_given_columns_of_a_seeded_contact(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    dataverse_sandbox.seed_contacts(5)
    before = dataverse_sandbox.rows("contacts")[3]

    dataverse_client.update("contacts", before["contactid"], {"donotbulkemail": not before["donotbulkemail"]})

    after = dataverse_sandbox.get("contacts", before["contactid"])
    assert after is not None
    changed = {k for k in before if before[k] != after[k]}
    # The platform also records who made the change: the client's application user.
    assert changed == {"donotbulkemail", "modifiedon", "versionnumber", "@odata.etag", "_modifiedby_value"}
    assert after["_modifiedby_value"] == dataverse_sandbox.application_user_id


def test_upsert_with_a_client_guid_twice_creates_one_row(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    chosen = str(uuid.uuid4())

    dataverse_client.upsert("contacts", chosen, {"lastname": "First"})
    dataverse_client.upsert("contacts", chosen, {"lastname": "Second"})

    assert dataverse_sandbox.count("contacts") == 1
    assert dataverse_sandbox.get("contacts", chosen)["lastname"] == "Second"  # type: ignore[index]
    assert all("if-match" not in r["headers"] for r in dataverse_sandbox.requests() if r["method"] == "PATCH")


def test_delete_and_delete_again(dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient) -> None:
    dataverse_sandbox.seed_contacts(3)
    victim = dataverse_sandbox.rows("contacts")[1]["contactid"]

    dataverse_client.delete("contacts", victim)

    assert dataverse_sandbox.get("contacts", victim) is None
    assert dataverse_sandbox.count("contacts") == 2
    with pytest.raises(ApiError) as caught:
        dataverse_client.delete("contacts", victim)
    assert caught.value.outcome is Outcome.RECORD_ERROR and caught.value.status == 404


def test_lookup_binds_must_point_at_existing_rows(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    contact = dataverse_sandbox.create("contacts", {"lastname": "Owner"})

    task = dataverse_client.create(
        "tasks", {"subject": "Call back", "regardingobjectid_contact_task@odata.bind": odata_bind("contacts", contact)}
    )

    row = dataverse_client.retrieve("tasks", task, ["subject", "_regardingobjectid_value"])
    assert row is not None
    assert {k: v for k, v in row.items() if not k.startswith("@")} == {
        "subject": "Call back",
        "_regardingobjectid_value": contact,
        "activityid": task,
    }
    assert dataverse_client.retrieve("tasks", str(uuid.uuid4()), ["subject"]) is None
    nobody = str(uuid.uuid4())
    with pytest.raises(ApiError) as caught:
        dataverse_client.create(
            "tasks", {"subject": "x", "regardingobjectid_contact_task@odata.bind": odata_bind("contacts", nobody)}
        )
    assert (caught.value.outcome, caught.value.status, caught.value.code) == (Outcome.RECORD_ERROR, 404, "0x80040217")
    with pytest.raises(ApiError) as wrong_nav:
        dataverse_client.create(
            "tasks", {"subject": "x", "regardingobjectid_contact@odata.bind": f"/contacts({contact})"}
        )
    assert wrong_nav.value.status == 400
    assert dataverse_sandbox.count("tasks") == 1


def test_custom_activity_regarding_a_contact(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    contact = dataverse_sandbox.create("contacts", {"lastname": "Reader"})

    event = dataverse_client.create(
        "new_campaignemailevents",
        {
            "subject": "Clicked: spring newsletter",
            "new_eventtype": 3,
            "new_eventdate": "2024-04-01T10:00:00Z",
            "regardingobjectid_contact_new_campaignemailevent@odata.bind": odata_bind("contacts", contact),
        },
        id=str(uuid.uuid4()),
    )

    row = dataverse_sandbox.get("new_campaignemailevents", event)
    assert row is not None
    assert (row["_regardingobjectid_value"], row["activitytypecode"], row["statecode"]) == (
        contact,
        "new_campaignemailevent",
        0,
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"subject": "x" * 201}, 400, "0x80044331"),  # documented: subject over 200 characters
        ({"subject": "ok", "prioritycode": 9}, 400, "0x8004431a"),  # option outside the option set
        ({"subject": "ok", "nosuchcolumn": 1}, 400, "0x80060888"),  # undeclared property
        ({"subject": 5}, 400, "0x80060888"),  # wrong type
    ],
)
def test_invalid_bodies_are_record_errors(
    dataverse_client: DataverseClient, body: dict, status: int, code: str
) -> None:
    with pytest.raises(ApiError) as caught:
        dataverse_client.create("tasks", body)
    assert (caught.value.outcome, caught.value.status, caught.value.code) == (Outcome.RECORD_ERROR, status, code)


def test_error_messages_never_carry_email_addresses(dataverse_client: DataverseClient) -> None:
    with pytest.raises(ApiError) as caught:
        dataverse_client.create("contacts", {"emailaddress1": "someone.private@example.com" + "x" * 100})
    assert caught.value.code == "0x80044331"
    assert "someone.private" not in str(caught.value)


def test_every_request_carries_the_odata_headers(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    dataverse_client.create("contacts", {"lastname": "Header"})
    dataverse_client.total_record_count(["contact"])

    for entry in dataverse_sandbox.requests():
        if entry["path"].startswith("/api/"):
            headers = entry["headers"]
            assert headers["accept"] == "application/json"
            assert headers["odata-version"] == headers["odata-maxversion"] == "4.0"
            assert headers["if-none-match"] == "null"
