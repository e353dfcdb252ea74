"""CreateMultiple, UpdateMultiple and UpsertMultiple on standard tables: one request, all or nothing."""

from __future__ import annotations

import uuid

from sandbox.dataverse import DataverseSandbox
from tests.fixtures.dataverse import Api

CARD = "Microsoft.Dynamics.CRM.new_loyaltycard"


def test_create_multiple_answers_the_new_ids(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    chosen = str(uuid.uuid4())
    targets = [{"@odata.type": CARD, "new_name": f"card {i}"} for i in range(3)]
    targets.append({"@odata.type": CARD, "new_name": "chosen", "new_loyaltycardid": chosen})

    response = dv_api.post("new_loyaltycards/Microsoft.Dynamics.CRM.CreateMultiple", {"Targets": targets})

    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse")
    assert len(body["Ids"]) == 4 and body["Ids"][3] == chosen
    assert sorted(r["new_name"] for r in dataverse_sandbox.rows("new_loyaltycards")) == [
        "card 0",
        "card 1",
        "card 2",
        "chosen",
    ]


def test_one_bad_target_rolls_the_whole_operation_back(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    before = dv_api.get("new_loyaltycards?$select=new_name", Prefer="odata.track-changes").json()["@odata.deltaLink"]
    targets = [{"@odata.type": CARD, "new_name": "ok"}, {"@odata.type": CARD, "new_tier": 42}]

    response = dv_api.post("new_loyaltycards/Microsoft.Dynamics.CRM.CreateMultiple", {"Targets": targets})

    assert (response.status_code, response.json()["error"]["code"]) == (400, "0x8004431a")
    assert dataverse_sandbox.count("new_loyaltycards") == 0
    assert dv_api.get(before).json()["value"] == []  # nothing reaches the change log either


def test_upsert_multiple_by_alternate_key_creates_and_updates(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    existing = dataverse_sandbox.create("new_loyaltycards", {"new_name": "old", "new_cardnumber": "U-1"})
    targets = [
        {"@odata.type": CARD, "new_name": "renamed", "@odata.id": "new_loyaltycards(new_cardnumber='U-1')"},
        {"@odata.type": CARD, "new_name": "fresh", "@odata.id": "new_loyaltycards(new_cardnumber='U-2')"},
    ]

    response = dv_api.post("new_loyaltycards/Microsoft.Dynamics.CRM.UpsertMultiple", {"Targets": targets})

    assert response.status_code == 204  # the documented answer: no UpsertMultipleResponse body
    cards = {r["new_cardnumber"]: r for r in dataverse_sandbox.rows("new_loyaltycards")}
    assert set(cards) == {"U-1", "U-2"}
    assert (cards["U-1"]["new_loyaltycardid"], cards["U-1"]["new_name"]) == (existing, "renamed")
    assert cards["U-2"]["new_name"] == "fresh"
    again = dv_api.post("new_loyaltycards/Microsoft.Dynamics.CRM.UpsertMultiple", {"Targets": targets})
    assert again.status_code == 204 and dataverse_sandbox.count("new_loyaltycards") == 2


def test_upsert_multiple_by_primary_key_and_update_multiple(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    one, two = str(uuid.uuid4()), str(uuid.uuid4())
    upserts = [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": i, "lastname": "U"} for i in (one, two)]
    dv_api.post("contacts/Microsoft.Dynamics.CRM.UpsertMultiple", {"Targets": upserts})

    updated = dv_api.post(
        "contacts/Microsoft.Dynamics.CRM.UpdateMultiple",
        {"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": one, "lastname": "Changed"}]},
    )
    missing = dv_api.post(
        "contacts/Microsoft.Dynamics.CRM.UpdateMultiple",
        {
            "Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": str(uuid.uuid4()), "lastname": "x"}
            ]
        },
    )

    assert updated.status_code == 204
    assert dataverse_sandbox.get("contacts", one)["lastname"] == "Changed"  # type: ignore[index]
    assert dataverse_sandbox.get("contacts", two)["lastname"] == "U"  # type: ignore[index]
    assert missing.status_code == 404 and dataverse_sandbox.count("contacts") == 2


def test_bulk_actions_need_typed_targets_and_standard_tables(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    untyped = dv_api.post("new_loyaltycards/Microsoft.Dynamics.CRM.CreateMultiple", {"Targets": [{"new_name": "x"}]})
    wrong = dv_api.post(
        "new_loyaltycards/Microsoft.Dynamics.CRM.CreateMultiple",
        {"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "new_name": "x"}]},
    )
    empty = dv_api.post("new_loyaltycards/Microsoft.Dynamics.CRM.CreateMultiple", {"Targets": []})
    activity = dv_api.post(
        "tasks/Microsoft.Dynamics.CRM.CreateMultiple",
        {"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.task", "subject": "s"}]},
    )
    keyless = dv_api.post(
        "new_loyaltycards/Microsoft.Dynamics.CRM.UpsertMultiple", {"Targets": [{"@odata.type": CARD, "new_name": "x"}]}
    )

    assert [r.status_code for r in (untyped, wrong, empty, activity, keyless)] == [400] * 5
    assert "does not support entities of type 'task'" in activity.json()["error"]["message"]
    assert dataverse_sandbox.count("new_loyaltycards") == 0 and dataverse_sandbox.count("tasks") == 0
