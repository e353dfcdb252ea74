"""Formatted values and lookup annotations (Prefer: odata.include-annotations), as select-columns.md shows them."""

from __future__ import annotations

from sandbox.dataverse import DataverseSandbox, users
from tests.fixtures.dataverse import Api

FORMATTED = "@OData.Community.Display.V1.FormattedValue"


def _card(sandbox: DataverseSandbox) -> tuple[str, str]:
    contact = sandbox.create("contacts", {"firstname": "Ada", "lastname": "Stone", "gendercode": 2})
    card = sandbox.create(
        "new_loyaltycards",
        {
            "new_name": "Gold card",
            "new_tier": 3,
            "new_validuntil": "2025-03-09",
            "new_ContactId@odata.bind": f"/contacts({contact})",
        },
    )
    return contact, card


def test_formatted_values_for_choices_booleans_lookups_owners_and_dates(
    dataverse_sandbox: DataverseSandbox, dv_api: Api
) -> None:
    contact, card = _card(dataverse_sandbox)
    dataverse_sandbox.update("contacts", contact, {"donotbulkemail": True})
    prefer = 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'

    row = dv_api.get(
        f"contacts({contact})?$select=gendercode,donotbulkemail,donotsendmm,statecode,_ownerid_value,lastname",
        Prefer=prefer,
    )
    card_row = dv_api.get(
        f"new_loyaltycards({card})?$select=new_tier,_new_contactid_value,new_validuntil,createdon", Prefer=prefer
    ).json()

    assert row.headers["Preference-Applied"] == prefer
    body = row.json()
    assert body[f"gendercode{FORMATTED}"] == "Female"
    assert body[f"donotbulkemail{FORMATTED}"] == "Do Not Allow"
    assert body[f"donotsendmm{FORMATTED}"] == "Send"
    assert body[f"statecode{FORMATTED}"] == "Active"
    assert body[f"_ownerid_value{FORMATTED}"] == users.DEFAULT_USER.fullname
    assert f"lastname{FORMATTED}" not in body  # plain text has no formatted value
    keys = list(body)
    assert keys.index(f"gendercode{FORMATTED}") == keys.index("gendercode") - 1  # the annotation comes first
    assert card_row[f"new_tier{FORMATTED}"] == "Gold"
    assert card_row[f"_new_contactid_value{FORMATTED}"] == "Ada Stone"
    assert card_row[f"new_validuntil{FORMATTED}"] == "3/9/2025"
    created = card_row["createdon"]  # e.g. 2026-01-05T14:07:09Z -> 1/5/2026 2:07 PM (the sandbox's users: UTC)
    hour = int(created[11:13])
    expected = f"{int(created[5:7])}/{int(created[8:10])}/{created[:4]} {hour % 12 or 12}:{created[14:16]} " + (
        "AM" if hour < 12 else "PM"
    )
    assert card_row[f"createdon{FORMATTED}"] == expected


def test_all_annotations_add_lookup_logical_names_and_navigation_properties(
    dataverse_sandbox: DataverseSandbox, dv_api: Api
) -> None:
    contact = dataverse_sandbox.create("contacts", {"lastname": "Reader"})
    task = dataverse_sandbox.create(
        "tasks", {"subject": "Call", "regardingobjectid_contact_task@odata.bind": f"/contacts({contact})"}
    )

    page = dv_api.get(
        "tasks?$select=subject,_regardingobjectid_value,_ownerid_value", Prefer='odata.include-annotations="*"'
    )

    row = page.json()["value"][0]
    assert page.headers["Preference-Applied"] == 'odata.include-annotations="*"'
    assert row["activityid"] == task
    assert row["_regardingobjectid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "contact"
    assert row["_regardingobjectid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"] == (
        "regardingobjectid_contact_task"
    )
    assert row[f"_regardingobjectid_value{FORMATTED}"] == "Reader"
    assert row["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "systemuser"
    assert row["_ownerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"] == "ownerid"


def test_no_annotations_without_the_preference_and_only_the_named_ones(
    dataverse_sandbox: DataverseSandbox, dv_api: Api
) -> None:
    contact, _ = _card(dataverse_sandbox)

    plain = dv_api.get(f"contacts({contact})?$select=gendercode,_ownerid_value")
    lookups_only = dv_api.get(
        f"contacts({contact})?$select=gendercode,_ownerid_value",
        Prefer='odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"',
    ).json()

    assert not any("@" in k for k in plain.json() if k not in ("@odata.context", "@odata.etag"))
    assert "Preference-Applied" not in plain.headers
    annotated = {k for k in lookups_only if "@" in k and not k.startswith("@")}
    assert annotated == {"_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"}


def test_annotations_on_change_tracking_pages_keep_the_delta_link(
    dataverse_sandbox: DataverseSandbox, dv_api: Api
) -> None:
    dataverse_sandbox.create("contacts", {"lastname": "Tracked", "gendercode": 1})

    page = dv_api.get(
        "contacts?$select=gendercode",
        Prefer='odata.track-changes,odata.include-annotations="OData.Community.Display.V1.FormattedValue"',
    )

    assert page.json()["value"][0][f"gendercode{FORMATTED}"] == "Male"
    assert "@odata.deltaLink" in page.json()
    assert page.headers["Preference-Applied"].startswith("odata.track-changes")
