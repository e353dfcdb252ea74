"""Metadata reads as Microsoft documents them: $expand on the collection, type casts, option sets, keys, strict
property names."""

from __future__ import annotations

from tests.fixtures.dataverse import Api

CRM = "Microsoft.Dynamics.CRM."


def test_expand_attributes_on_the_entity_definitions_collection(dv_api: Api) -> None:
    body = dv_api.get(
        "EntityDefinitions?$select=LogicalName,EntitySetName,PrimaryIdAttribute,CanChangeTrackingBeEnabled,"
        "ChangeTrackingEnabled&$expand=Attributes($select=LogicalName,AttributeType)"
    ).json()

    tables = {t["LogicalName"]: t for t in body["value"]}
    contact = tables["contact"]
    assert contact["EntitySetName"] == "contacts" and contact["ChangeTrackingEnabled"] is True
    assert contact["CanChangeTrackingBeEnabled"]["Value"] is True
    attributes = {a["LogicalName"]: a["AttributeType"] for a in contact["Attributes"]}
    assert attributes["emailaddress1"] == "String"
    assert attributes["birthdate"] == "DateTime"
    assert attributes["ownerid"] == "Owner"
    assert attributes["parentcustomerid"] == "Lookup"
    assert set(contact["Attributes"][0]) == {"@odata.type", "LogicalName", "AttributeType", "MetadataId"}
    assert tables["new_untracked"]["ChangeTrackingEnabled"] is False
    assert "Attributes" in tables["activitypointer"]


def test_cast_filters_the_attribute_collection_and_expands_option_sets(dv_api: Api) -> None:
    base = "EntityDefinitions(LogicalName='contact')/Attributes/"

    picklists = dv_api.get(
        base + CRM + "PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options)"
    )
    booleans = dv_api.get(base + CRM + "BooleanAttributeMetadata?$select=LogicalName&$expand=OptionSet").json()
    states = dv_api.get(base + CRM + "StateAttributeMetadata?$select=LogicalName&$expand=OptionSet").json()
    statuses = dv_api.get(base + CRM + "StatusAttributeMetadata?$select=LogicalName&$expand=OptionSet").json()

    assert picklists.status_code == 200
    by_name = {a["LogicalName"]: a for a in picklists.json()["value"]}
    assert set(by_name) == {"gendercode", "preferredcontactmethodcode"}
    options = by_name["preferredcontactmethodcode"]["OptionSet"]["Options"]
    assert [(o["Value"], o["Label"]["LocalizedLabels"][0]["Label"]) for o in options] == [
        (1, "Any"),
        (2, "Email"),
        (3, "Phone"),
        (4, "Fax"),
        (5, "Mail"),
    ]
    assert set(by_name["gendercode"]["OptionSet"]) == {"Options", "MetadataId"}
    donotemail = next(a for a in booleans["value"] if a["LogicalName"] == "donotemail")
    assert donotemail["OptionSet"]["TrueOption"]["Label"]["UserLocalizedLabel"]["Label"] == "Do Not Allow"
    assert donotemail["OptionSet"]["FalseOption"]["Value"] == 0
    assert [a["LogicalName"] for a in states["value"]] == ["statecode"]
    status_options = statuses["value"][0]["OptionSet"]["Options"]
    assert [(o["Value"], o["State"]) for o in status_options] == [(1, 0), (2, 1)]
    assert all(a["@odata.type"] == "#Microsoft.Dynamics.CRM.PicklistAttributeMetadata" for a in by_name.values())


def test_datetime_cast_carries_behavior_and_format(dv_api: Api) -> None:
    body = dv_api.get(
        "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.DateTimeAttributeMetadata"
        "?$select=LogicalName,DateTimeBehavior,Format"
    ).json()

    behaviors = {a["LogicalName"]: (a["DateTimeBehavior"]["Value"], a["Format"]) for a in body["value"]}
    assert behaviors == {
        "createdon": ("UserLocal", "DateAndTime"),
        "modifiedon": ("UserLocal", "DateAndTime"),
        "birthdate": ("DateOnly", "DateOnly"),
    }


def test_single_attribute_cast_and_the_wrong_cast(dv_api: Api) -> None:
    base = "EntityDefinitions(LogicalName='new_loyaltycard')/Attributes(LogicalName='new_tier')/"

    tier = dv_api.get(base + CRM + "PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet").json()
    wrong = dv_api.get(base + CRM + "BooleanAttributeMetadata")
    unknown_cast = dv_api.get("EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.Nope")
    multi = dv_api.get(
        "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.MultiSelectPicklistAttributeMetadata"
    )

    assert [o["Value"] for o in tier["OptionSet"]["Options"]] == [1, 2, 3]
    assert wrong.status_code == 404
    assert unknown_cast.status_code == 404
    assert multi.status_code == 200 and multi.json()["value"] == []  # a real type no sandbox column has


def test_typed_properties_and_option_sets_need_the_cast(dv_api: Api) -> None:
    base = "EntityDefinitions(LogicalName='contact')/Attributes"

    uncast = dv_api.get(base + "?$select=LogicalName,DateTimeBehavior")
    expand = dv_api.get(base + "?$select=LogicalName&$expand=OptionSet")
    cast = dv_api.get(base + "/Microsoft.Dynamics.CRM.StringAttributeMetadata?$select=LogicalName,MaxLength")

    assert uncast.status_code == 400 and "DateTimeBehavior" in uncast.json()["error"]["message"]
    assert expand.status_code == 400
    lengths = {a["LogicalName"]: a["MaxLength"] for a in cast.json()["value"]}
    assert lengths["emailaddress1"] == 100 and lengths["firstname"] == 50


def test_unknown_metadata_properties_are_refused_in_filter_and_select(dv_api: Api) -> None:
    bad_filter = dv_api.get("EntityDefinitions?$select=LogicalName&$filter=NoSuchProperty eq true")
    bad_select = dv_api.get("EntityDefinitions?$select=LogicalName,Nonsense")
    bad_expand = dv_api.get("EntityDefinitions?$expand=Whatever")
    relationships = dv_api.get("EntityDefinitions(LogicalName='contact')/ManyToOneRelationships")
    private = dv_api.get("EntityDefinitions?$select=LogicalName&$filter=IsPrivate eq false").json()["value"]
    by_set = dv_api.get("EntityDefinitions?$select=LogicalName&$filter=EntitySetName eq 'tasks'").json()["value"]

    assert bad_filter.status_code == 400
    assert bad_filter.json()["error"]["message"] == (
        "Could not find a property named 'NoSuchProperty' on type 'Microsoft.Dynamics.CRM.EntityMetadata'."
    )
    assert bad_select.status_code == 400 and bad_expand.status_code == 400
    assert relationships.status_code == 501
    assert "contact" in {t["LogicalName"] for t in private}
    assert by_set == [{"LogicalName": "task", "MetadataId": by_set[0]["MetadataId"]}]


def test_alternate_keys_in_metadata(dv_api: Api) -> None:
    keys = dv_api.get("EntityDefinitions(LogicalName='new_loyaltycard')/Keys").json()["value"]
    expanded = dv_api.get("EntityDefinitions?$select=SchemaName&$expand=Keys($select=KeyAttributes)").json()["value"]
    one = dv_api.get("EntityDefinitions(LogicalName='new_loyaltycard')/Keys(LogicalName='new_cardnumberkey')")

    assert [(k["SchemaName"], k["KeyAttributes"], k["EntityKeyIndexStatus"]) for k in keys] == [
        ("new_CardNumberKey", ["new_cardnumber"], "Active")
    ]
    with_keys = {t["SchemaName"]: [k["KeyAttributes"] for k in t["Keys"]] for t in expanded if t["Keys"]}
    assert with_keys == {"new_Loyaltycard": [["new_cardnumber"]]}
    assert one.status_code == 200 and one.json()["EntityLogicalName"] == "new_loyaltycard"
    assert dv_api.get("EntityDefinitions(LogicalName='contact')/Keys").json()["value"] == []
