"""Metadata create calls as Microsoft documents them: tables (standard and activity), columns, lookups, keys."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.dataverse import DataverseSandbox
from tests.fixtures.dataverse import Api


def label(text: str) -> dict[str, Any]:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.Label",
        "LocalizedLabels": [
            {"@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel", "Label": text, "LanguageCode": 1033}
        ],
    }


def string_column(schema: str, *, primary: bool = False, length: int = 100) -> dict[str, Any]:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
        "AttributeType": "String",
        "AttributeTypeName": {"Value": "StringType"},
        "SchemaName": schema,
        "DisplayName": label(schema),
        "RequiredLevel": {"Value": "None"},
        "MaxLength": length,
        "FormatName": {"Value": "Text"},
        "IsPrimaryName": primary,
    }


def table_body(schema: str, *, activity: bool = False, tracking: bool = False, **extra: Any) -> dict[str, Any]:
    body = {
        "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata",
        "SchemaName": schema,
        "DisplayName": label(schema),
        "DisplayCollectionName": label(schema + "s"),
        "Description": label("made by a test"),
        "OwnershipType": "UserOwned",
        "IsActivity": activity,
        "HasActivities": False,
        "HasNotes": activity,
        "ChangeTrackingEnabled": tracking,
        "Attributes": [string_column("Subject" if activity else "new_Name", primary=True)],
    }
    body.update(extra)
    return body


def test_create_a_standard_table_and_use_it_at_once(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    created = dv_api.post(
        "EntityDefinitions",
        table_body("new_BankAccount", tracking=True),
        **{"MSCRM.SolutionUniqueName": "examplesolution"},
    )

    assert created.status_code == 204
    table = dv_api.get(
        "EntityDefinitions(LogicalName='new_bankaccount')?$select=EntitySetName,PrimaryIdAttribute,"
        "PrimaryNameAttribute,ChangeTrackingEnabled,OwnershipType"
    ).json()
    assert created.headers["OData-EntityId"].endswith(f"EntityDefinitions({table['MetadataId']})")
    assert (table["EntitySetName"], table["PrimaryIdAttribute"], table["PrimaryNameAttribute"]) == (
        "new_bankaccounts",
        "new_bankaccountid",
        "new_name",
    )
    assert table["ChangeTrackingEnabled"] is True and table["OwnershipType"] == "UserOwned"
    assert dv_api.post("new_bankaccounts", {"new_name": "Main"}).status_code == 204
    first = dv_api.get("new_bankaccounts?$select=new_name", Prefer="odata.track-changes").json()
    assert [r["new_name"] for r in first["value"]] == ["Main"] and "@odata.deltaLink" in first
    dataverse_sandbox.create("new_bankaccounts", {"new_name": "Savings"})
    delta = dv_api.get(first["@odata.deltaLink"]).json()
    assert [r["new_name"] for r in delta["value"]] == ["Savings"]


def test_create_columns_of_each_kind(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    dv_api.post("EntityDefinitions", table_body("new_Thing"))
    base = "EntityDefinitions(LogicalName='new_thing')/Attributes"
    columns = [
        {
            "@odata.type": "Microsoft.Dynamics.CRM.MemoAttributeMetadata",
            "SchemaName": "new_Notes",
            "MaxLength": 500,
            "Format": "TextArea",
            "DisplayName": label("Notes"),
        },
        {
            "@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
            "SchemaName": "new_Count",
            "DisplayName": label("Count"),
        },
        {
            "@odata.type": "Microsoft.Dynamics.CRM.DateTimeAttributeMetadata",
            "SchemaName": "new_When",
            "Format": "DateAndTime",
            "DisplayName": label("When"),
        },
        {
            "@odata.type": "Microsoft.Dynamics.CRM.DateTimeAttributeMetadata",
            "SchemaName": "new_Day",
            "Format": "DateOnly",
            "DateTimeBehavior": {"Value": "DateOnly"},
            "DisplayName": label("Day"),
        },
        {
            "@odata.type": "Microsoft.Dynamics.CRM.BooleanAttributeMetadata",
            "SchemaName": "new_Flag",
            "DisplayName": label("Flag"),
            "OptionSet": {
                "TrueOption": {"Value": 1, "Label": label("On")},
                "FalseOption": {"Value": 0, "Label": label("Off")},
            },
        },
        {
            "@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
            "SchemaName": "new_Kind",
            "DisplayName": label("Kind"),
            "OptionSet": {
                "@odata.type": "Microsoft.Dynamics.CRM.OptionSetMetadata",
                "IsGlobal": False,
                "OptionSetType": "Picklist",
                "Options": [
                    {"Value": 727000000, "Label": label("Alpha")},
                    {"Value": 727000001, "Label": label("Beta")},
                ],
            },
        },
        string_column("new_Code", length=20),
    ]

    answers = [dv_api.post(base, column) for column in columns]

    assert [a.status_code for a in answers] == [204] * len(columns)
    assert all("/Attributes(" in a.headers["OData-EntityId"] for a in answers)
    types = {
        a["LogicalName"]: a["AttributeType"]
        for a in dv_api.get(base + "?$select=LogicalName,AttributeType").json()["value"]
    }
    assert {
        k: types[k] for k in ("new_notes", "new_count", "new_when", "new_day", "new_flag", "new_kind", "new_code")
    } == {
        "new_notes": "Memo",
        "new_count": "Integer",
        "new_when": "DateTime",
        "new_day": "DateTime",
        "new_flag": "Boolean",
        "new_kind": "Picklist",
        "new_code": "String",
    }
    day = dv_api.get(base + "(LogicalName='new_day')/Microsoft.Dynamics.CRM.DateTimeAttributeMetadata").json()
    assert (day["Format"], day["DateTimeBehavior"]["Value"]) == ("DateOnly", "DateOnly")
    kind = dv_api.get(
        base + "(LogicalName='new_kind')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$expand=OptionSet"
    ).json()
    assert [o["Value"] for o in kind["OptionSet"]["Options"]] == [727000000, 727000001]
    row = {
        "new_name": "x",
        "new_notes": "n" * 500,
        "new_count": 3,
        "new_when": "2024-05-01T10:00:00Z",
        "new_day": "2024-05-01",
        "new_flag": True,
        "new_kind": 727000001,
        "new_code": "C",
    }
    assert dv_api.post("new_things", row).status_code == 204
    assert dv_api.post("new_things", {"new_kind": 5}).json()["error"]["code"] == "0x8004431a"
    assert dv_api.post("new_things", {"new_code": "x" * 21}).json()["error"]["code"] == "0x80044331"


def test_create_a_custom_activity_table_for_the_timeline(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    created = dv_api.post("EntityDefinitions", table_body("new_EmailClick", activity=True, tracking=True))
    contact = dataverse_sandbox.create("contacts", {"lastname": "Clicker"})

    made = dv_api.post(
        "new_emailclicks",
        {
            "subject": "Campaign Name: Spring; Delivery Name: Mail 1",
            "regardingobjectid_contact_new_emailclick@odata.bind": f"/contacts({contact})",
        },
    )

    assert created.status_code == 204
    meta = dv_api.get(
        "EntityDefinitions(LogicalName='new_emailclick')?$select=IsActivity,PrimaryIdAttribute,"
        "PrimaryNameAttribute,HasNotes"
    ).json()
    assert (meta["IsActivity"], meta["PrimaryIdAttribute"], meta["PrimaryNameAttribute"], meta["HasNotes"]) == (
        True,
        "activityid",
        "subject",
        True,
    )
    assert made.status_code == 204
    pointer = dv_api.get(
        f"activitypointers?$select=activitytypecode,subject&$filter=_regardingobjectid_value eq {contact}"
    ).json()
    assert [(p["activitytypecode"], p["subject"]) for p in pointer["value"]] == [
        ("new_emailclick", "Campaign Name: Spring; Delivery Name: Mail 1")
    ]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (table_body("new_Bad", activity=True, Attributes=[string_column("new_Name", primary=True)]), "0x8004F126"),
        (table_body("new_Bad", activity=True, HasActivities=True), "0x8004F121"),
        (table_body("new_Bad", activity=True, HasNotes=False), "0x8004F123"),
        (table_body("noprefix"), "0x80040203"),
        (table_body("new_Bad", Attributes=[]), "0x80040203"),
    ],
)
def test_invalid_table_definitions_are_refused(dv_api: Api, body: dict[str, Any], code: str) -> None:
    response = dv_api.post("EntityDefinitions", body)

    assert (response.status_code, response.json()["error"]["code"]) == (400, code)
    assert dv_api.get("EntityDefinitions(LogicalName='new_bad')").status_code == 404


def test_creating_what_exists_is_an_error_with_a_recognisable_code(dv_api: Api) -> None:
    assert dv_api.post("EntityDefinitions", table_body("new_Once")).status_code == 204
    base = "EntityDefinitions(LogicalName='new_once')"
    assert dv_api.post(base + "/Attributes", string_column("new_Code")).status_code == 204
    assert dv_api.post(base + "/Keys", {"SchemaName": "new_CodeKey", "KeyAttributes": ["new_code"]}).status_code == 204

    table = dv_api.post("EntityDefinitions", table_body("new_Once"))
    column = dv_api.post(base + "/Attributes", string_column("new_Code"))
    key = dv_api.post(base + "/Keys", {"SchemaName": "new_CodeKey", "KeyAttributes": ["new_name"]})
    same_columns = dv_api.post(base + "/Keys", {"SchemaName": "new_OtherKey", "KeyAttributes": ["new_code"]})
    memo_key = dv_api.post(
        base + "/Attributes", {"@odata.type": "Microsoft.Dynamics.CRM.MemoAttributeMetadata", "SchemaName": "new_Text"}
    )
    bad_key = dv_api.post(base + "/Keys", {"SchemaName": "new_TextKey", "KeyAttributes": ["new_text"]})

    codes = [r.json()["error"]["code"] for r in (table, column, key, same_columns)]
    assert codes == ["0x80047010", "0x80047013", "0x80060893", "0x80060894"]
    assert memo_key.status_code == 204 and bad_key.status_code == 400  # memo columns cannot be key columns


def test_lookups_are_created_with_their_relationship(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    dv_api.post("EntityDefinitions", table_body("new_Membership"))
    lookup_on_attributes = dv_api.post(
        "EntityDefinitions(LogicalName='new_membership')/Attributes",
        {"@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata", "SchemaName": "new_ContactId"},
    )
    relationship = {
        "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        "SchemaName": "new_contact_new_membership",
        "ReferencedEntity": "contact",
        "ReferencedAttribute": "contactid",
        "ReferencingEntity": "new_membership",
        "Lookup": {
            "@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata",
            "SchemaName": "new_ContactId",
            "DisplayName": label("Contact"),
        },
    }

    created = dv_api.post("RelationshipDefinitions", relationship)
    again = dv_api.post("RelationshipDefinitions", relationship)
    contact = dataverse_sandbox.create("contacts", {"lastname": "Member"})
    member = dv_api.post("new_memberships", {"new_name": "m", "new_ContactId@odata.bind": f"/contacts({contact})"})

    assert lookup_on_attributes.status_code == 400
    assert created.status_code == 204 and "RelationshipDefinitions(" in created.headers["OData-EntityId"]
    assert again.json()["error"]["code"] == "0x8004432B"
    assert member.status_code == 204
    rows = dv_api.get("new_memberships?$select=_new_contactid_value").json()["value"]
    assert [r["_new_contactid_value"] for r in rows] == [contact]


def test_definitions_are_updated_with_put_never_patch(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    dv_api.post("EntityDefinitions", table_body("new_Later"))
    url = "EntityDefinitions(LogicalName='new_later')"
    definition = dv_api.get(url).json()

    patched = dv_api.patch(url, {"ChangeTrackingEnabled": True})
    put = dv_api.put(
        url,
        {**definition, "ChangeTrackingEnabled": True, "DisplayName": label("Later on")},
        **{"MSCRM.MergeLabels": "true"},
    )
    off_again = dv_api.put(url, {**definition, "ChangeTrackingEnabled": False})

    assert patched.status_code == 405
    assert put.status_code == 204
    after = dv_api.get(url + "?$select=ChangeTrackingEnabled,DisplayName").json()
    assert after["ChangeTrackingEnabled"] is True
    assert after["DisplayName"]["UserLocalizedLabel"]["Label"] == "Later on"
    assert off_again.status_code == 400  # tracking cannot be turned off
    assert dv_api.post("PublishAllXml").status_code == 204  # nothing to publish: changes apply at once


def test_create_entities_action_as_microsofts_sdk_sends_it(dv_api: Api) -> None:
    primary = {
        **string_column("new_Title", primary=True),
        "@odata.type": "Microsoft.Dynamics.CRM.ComplexStringAttributeMetadata",
    }
    body = {
        "Entities": [
            {
                **table_body("new_Gadget", Attributes=[primary]),
                "@odata.type": "Microsoft.Dynamics.CRM.ComplexEntityMetadata",
            }
        ]
    }

    response = dv_api.post("CreateEntities", body)

    assert response.status_code == 200 and len(response.json()["EntityIds"]) == 1
    assert dv_api.post("new_gadgets", {"new_title": "g"}).status_code == 204
