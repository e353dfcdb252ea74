"""Alternate keys: addressing rows by key for GET, PATCH (update and upsert), DELETE and @odata.bind; uniqueness."""

from __future__ import annotations

import uuid

from sandbox.dataverse import DataverseSandbox
from tests.fixtures.dataverse import Api

INVALID_KEY = (
    "The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.new_loyaltycard'. Ensure that the "
    "names and number of key properties match the declared or alternate key properties for the resource "
    "'Microsoft.Dynamics.CRM.new_loyaltycard'."
)


def test_upsert_by_alternate_key_creates_then_updates(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    url = "new_loyaltycards(new_cardnumber='C-001')"

    created = dv_api.patch(url, {"new_name": "First", "new_points": 1}, Prefer="return=representation")
    updated = dv_api.patch(url, {"new_points": 2})

    assert created.status_code == 201
    card_id = created.json()["new_loyaltycardid"]
    assert created.json()["new_cardnumber"] == "C-001"  # the key columns come from the URL
    assert updated.status_code == 204 and updated.headers["OData-EntityId"].endswith(f"new_loyaltycards({card_id})")
    assert dataverse_sandbox.count("new_loyaltycards") == 1
    row = dv_api.get(f"{url}?$select=new_name,new_points").json()
    assert (row["new_name"], row["new_points"], row["new_loyaltycardid"]) == ("First", 2, card_id)


def test_update_only_by_key_and_delete_by_key(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    missing = dv_api.patch("new_loyaltycards(new_cardnumber='NOPE')", {"new_points": 5}, If_Match="*")
    dataverse_sandbox.create("new_loyaltycards", {"new_name": "Card", "new_cardnumber": "K-9"})

    updated = dv_api.patch("new_loyaltycards(new_cardnumber='k-9')", {"new_points": 9}, If_Match="*")  # any case
    deleted = dv_api.delete("new_loyaltycards(new_cardnumber='K-9')")
    again = dv_api.delete("new_loyaltycards(new_cardnumber='K-9')")

    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "0x80040217")
    assert updated.status_code == 204
    assert deleted.status_code == 204 and again.status_code == 404
    assert dataverse_sandbox.count("new_loyaltycards") == 0


def test_a_column_that_is_not_a_key_gives_the_documented_error(dv_api: Api) -> None:
    for url in (
        "new_loyaltycards(new_name='x')",
        "new_loyaltycards(new_cardnumber='x',new_name='y')",
        "new_loyaltycards(new_cardnumber=5)",  # a string key needs a quoted value
        "new_loyaltycards(nosuch='x')",
    ):
        response = dv_api.get(url)
        assert response.status_code == 400, url
        assert response.json()["error"]["message"] == INVALID_KEY


def test_key_values_are_unique(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    first = dataverse_sandbox.create("new_loyaltycards", {"new_name": "A", "new_cardnumber": "DUP-1"})
    other = dataverse_sandbox.create("new_loyaltycards", {"new_name": "B", "new_cardnumber": "DUP-2"})

    on_create = dv_api.post("new_loyaltycards", {"new_name": "C", "new_cardnumber": "dup-1"})
    on_update = dv_api.patch(f"new_loyaltycards({other})", {"new_cardnumber": "DUP-1"}, If_Match="*")
    same_row = dv_api.patch(f"new_loyaltycards({first})", {"new_cardnumber": "DUP-1", "new_points": 3})
    nulls = [dv_api.post("new_loyaltycards", {"new_name": f"no number {i}"}) for i in range(2)]

    for refused in (on_create, on_update):
        assert (refused.status_code, refused.json()["error"]["code"]) == (412, "0x80060892")
        assert refused.json()["error"]["message"].startswith("Entity Key new_CardNumberKey violated.")
    assert same_row.status_code == 204
    assert all(r.status_code == 204 for r in nulls)  # rows without a key value are not indexed
    assert dataverse_sandbox.count("new_loyaltycards") == 4
    assert dataverse_sandbox.get("new_loyaltycards", other)["new_cardnumber"] == "DUP-2"  # type: ignore[index]


def test_multi_part_and_lookup_keys(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    made = dv_api.post(
        "EntityDefinitions(LogicalName='new_loyaltycard')/Keys",
        {
            "SchemaName": "new_ContactTierKey",
            "DisplayName": {"LocalizedLabels": [{"Label": "Contact and tier", "LanguageCode": 1033}]},
            "KeyAttributes": ["new_contactid", "new_tier"],
        },
    )
    contact = dataverse_sandbox.create("contacts", {"lastname": "Holder"})

    upserted = dv_api.patch(
        f"new_loyaltycards(_new_contactid_value={contact},new_tier=2)", {"new_name": "Silver of Holder"}
    )
    found = dv_api.get(f"new_loyaltycards(new_tier=2,_new_contactid_value={contact})?$select=new_name")

    assert made.status_code == 204
    assert upserted.status_code == 204
    assert found.status_code == 200 and found.json()["new_name"] == "Silver of Holder"
    row = dataverse_sandbox.rows("new_loyaltycards")[0]
    assert (row["_new_contactid_value"], row["new_tier"]) == (contact, 2)


def test_odata_bind_by_alternate_key(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    dv_api.post(
        "EntityDefinitions(LogicalName='contact')/Keys",
        {"SchemaName": "new_EmailKey", "KeyAttributes": ["emailaddress1"]},
    )
    contact = dataverse_sandbox.create("contacts", {"lastname": "Keyed", "emailaddress1": "keyed@example.com"})

    made = dv_api.post(
        "tasks",
        {
            "subject": "By key",
            "regardingobjectid_contact_task@odata.bind": "/contacts(emailaddress1='keyed@example.com')",
        },
    )
    nobody = dv_api.post(
        "tasks",
        {"subject": "x", "regardingobjectid_contact_task@odata.bind": "/contacts(emailaddress1='no@example.com')"},
    )

    assert made.status_code == 204
    task = made.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    assert dataverse_sandbox.get("tasks", task)["_regardingobjectid_value"] == contact  # type: ignore[index]
    assert nobody.status_code == 404


def test_upserts_by_key_in_a_batch_with_continue_on_error(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    boundary = "batch_keys"
    parts = []
    for number, body in (
        ("B-1", '{"new_name":"one"}'),
        ("B-2", '{"new_name":"two"}'),
        ("B-1", '{"new_points":7}'),
        ("B-3", '{"new_tier":99}'),
    ):
        parts.append(
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            f"PATCH new_loyaltycards(new_cardnumber='{number}') HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
            f"{body}\r\n"
        )
    payload = "".join(parts) + f"--{boundary}--\r\n"

    response = dv_api.session.post(
        dv_api.sandbox.api_url + "$batch",
        data=payload.encode(),
        headers={
            **dv_api.headers,
            "Content-Type": f"multipart/mixed; boundary={boundary}",
            "Prefer": "odata.continue-on-error",
        },
        timeout=30,
    )

    assert response.status_code == 200
    statuses = [int(line.split()[1]) for line in response.text.splitlines() if line.startswith("HTTP/1.1")]
    assert statuses == [204, 204, 204, 400]
    cards = {r["new_cardnumber"]: r for r in dataverse_sandbox.rows("new_loyaltycards")}
    assert set(cards) == {"B-1", "B-2"}
    assert (cards["B-1"]["new_name"], cards["B-1"]["new_points"]) == ("one", 7)


def test_a_key_over_duplicate_rows_fails_and_pending_keys_wait_for_their_index(
    dataverse_sandbox: DataverseSandbox, dv_api: Api
) -> None:
    for _ in range(2):
        dataverse_sandbox.create("contacts", {"lastname": "Same"})
    dataverse_sandbox.hold_new_keys()

    dv_api.post(
        "EntityDefinitions(LogicalName='contact')/Keys", {"SchemaName": "new_LastKey", "KeyAttributes": ["lastname"]}
    )
    pending = dv_api.get("EntityDefinitions(LogicalName='contact')/Keys").json()["value"][0]["EntityKeyIndexStatus"]
    use_pending = dv_api.get("contacts(lastname='Same')")
    activated = dataverse_sandbox.activate_keys()
    failed = dv_api.get("EntityDefinitions(LogicalName='contact')/Keys").json()["value"][0]["EntityKeyIndexStatus"]

    assert pending == "Pending"
    assert use_pending.status_code == 400
    assert activated == [{"entity": "contact", "key": "new_LastKey", "status": "Failed"}]
    assert failed == "Failed"
    # Without duplicates the index builds and the key works.
    dv_api.post(
        "EntityDefinitions(LogicalName='contact')/Keys",
        {"SchemaName": "new_MailKey", "KeyAttributes": ["emailaddress1"]},
    )
    dataverse_sandbox.activate_keys()
    assert dv_api.get("contacts(emailaddress1='nobody@example.com')").status_code == 404


def test_a_key_on_seeded_contacts_indexes_them(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    dataverse_sandbox.seed_contacts(20_000)
    dv_api.post(
        "EntityDefinitions(LogicalName='contact')/Keys",
        {"SchemaName": "new_MailKey", "KeyAttributes": ["emailaddress1"]},
    )
    sample = dataverse_sandbox.rows("contacts", limit=20_000)[12_345]

    found = dv_api.get(f"contacts(emailaddress1='{sample['emailaddress1']}')?$select=contactid").json()
    clash = dv_api.post("contacts", {"lastname": "Copy", "emailaddress1": sample["emailaddress1"].upper()})

    assert found["contactid"] == sample["contactid"]
    assert clash.status_code == 412
    fresh = str(uuid.uuid4())
    assert dv_api.patch(f"contacts({fresh})", {"emailaddress1": "fresh@example.com"}).status_code == 204
