"""Microsoft's own Dataverse client works against the sandbox: each SDK call here either passes, or is listed in
sandbox/dataverse/README.md as not modelled (and then must fail loudly, as tested at the end)."""

from __future__ import annotations

import enum
from pathlib import Path

import pytest
from azure.identity import ClientSecretCredential
from PowerPlatform.Dataverse.client import DataverseClient
from PowerPlatform.Dataverse.core.errors import HttpError
from PowerPlatform.Dataverse.models.upsert import UpsertItem

from sandbox.dataverse import DataverseSandbox

FORMATTED = "@OData.Community.Display.V1.FormattedValue"


def test_authentication_through_azure_identity(
    dataverse_sandbox: DataverseSandbox, credential: ClientSecretCredential, sdk: DataverseClient
) -> None:
    token = credential.get_token(f"{dataverse_sandbox.url}/.default")
    sdk.records.create("contact", {"lastname": "Authenticated"})

    assert token.token and token.expires_on > 0
    api_calls = [r for r in dataverse_sandbox.requests() if r["path"].startswith("/api/")]
    assert api_calls and all(r["authorized"] and r["status"] < 400 for r in api_calls)


def test_create_retrieve_update_delete(dataverse_sandbox: DataverseSandbox, sdk: DataverseClient) -> None:
    contact = sdk.records.create("contact", {"firstname": "Ada", "lastname": "Stone", "donotbulkemail": True})

    record = sdk.records.retrieve("contact", contact, select=["fullname", "donotbulkemail"])
    sdk.records.update("contact", contact, {"lastname": "Lovelace"})
    updated = sdk.records.retrieve("contact", contact, select=["fullname"])
    sdk.records.delete("contact", contact)

    assert record is not None and (record["fullname"], record["donotbulkemail"]) == ("Ada Stone", True)
    assert updated is not None and updated["fullname"] == "Ada Lovelace"
    assert sdk.records.retrieve("contact", contact) is None
    assert dataverse_sandbox.count("contacts") == 0


def test_list_with_filter_order_top_count_and_paging(dataverse_sandbox: DataverseSandbox, sdk: DataverseClient) -> None:
    for i in range(7):
        dataverse_sandbox.create("contacts", {"lastname": f"P{i}", "gendercode": 1 + i % 2})

    pages = list(sdk.records.list_pages("contact", select=["lastname"], orderby=["lastname desc"], page_size=3))
    women = sdk.records.list("contact", select=["lastname"], filter="gendercode eq 2", orderby=["lastname"])
    top = sdk.records.list("contact", select=["lastname"], orderby=["lastname"], top=2)

    assert [len(p) for p in pages] == [3, 3, 1]
    assert [r["lastname"] for p in pages for r in p] == [f"P{i}" for i in range(6, -1, -1)]
    assert [r["lastname"] for r in women] == ["P1", "P3", "P5"]
    assert [r["lastname"] for r in top] == ["P0", "P1"]


def test_picklist_labels_and_formatted_values(dataverse_sandbox: DataverseSandbox, sdk: DataverseClient) -> None:
    card = sdk.records.create("new_loyaltycard", {"new_name": "Gold card", "new_tier": "Gold"})  # label -> value

    record = sdk.records.retrieve(
        "new_loyaltycard", card, select=["new_tier"], include_annotations="OData.Community.Display.V1.FormattedValue"
    )

    assert dataverse_sandbox.get("new_loyaltycards", card)["new_tier"] == 3  # type: ignore[index]
    assert record is not None and record[f"new_tier{FORMATTED}"] == "Gold"
    picklist_reads = [r for r in dataverse_sandbox.requests() if "PicklistAttributeMetadata" in r["path"]]
    assert [r["status"] for r in picklist_reads] == [200]


def test_table_metadata_reads(sdk: DataverseClient) -> None:
    contact = sdk.tables.get("contact")
    tables = {t["LogicalName"] for t in sdk.tables.list(select=["LogicalName"])}
    columns = {c["LogicalName"] for c in sdk.tables.list_columns("contact", select=["LogicalName"])}
    email = sdk.tables.get_column("contact", "emailaddress1")

    assert contact is not None and (contact.entity_set_name, contact.primary_id_attribute) == ("contacts", "contactid")
    assert {"contact", "task", "new_loyaltycard"} <= tables
    assert {"emailaddress1", "donotbulkemail", "ownerid"} <= columns
    assert email is not None and email["AttributeType"] == "String"


class Size(enum.IntEnum):
    Small = 100000000
    Large = 100000001


def test_create_a_table_with_columns_keys_and_a_lookup(
    dataverse_sandbox: DataverseSandbox, sdk: DataverseClient
) -> None:
    info = sdk.tables.create("new_Widget", {"new_Count": "int", "new_When": "datetime", "new_Size": Size})
    added = sdk.tables.add_columns("new_Widget", {"new_Code": "string", "new_Flag": "bool"})
    key = sdk.tables.create_alternate_key("new_Widget", "new_CodeKey", ["new_code"])
    sdk.tables.create_lookup_field("new_widget", "new_ContactId", "contact")
    contact = dataverse_sandbox.create("contacts", {"lastname": "Owner"})

    widget = sdk.records.create(
        "new_widget",
        {"new_name": "w", "new_code": "W-1", "new_size": "Large", "new_ContactId@odata.bind": f"/contacts({contact})"},
    )
    keys = sdk.tables.get_alternate_keys("new_Widget")

    assert (info.logical_name, info.entity_set_name, info.primary_id_attribute) == (
        "new_widget",
        "new_widgets",
        "new_widgetid",
    )
    assert added == ["new_Code", "new_Flag"]
    assert key.key_attributes == ["new_code"]
    assert [(k.schema_name, k.key_attributes, k.status) for k in keys] == [("new_CodeKey", ["new_code"], "Active")]
    row = dataverse_sandbox.get("new_widgets", widget)
    assert row is not None and (row["new_size"], row["_new_contactid_value"]) == (Size.Large, contact)
    sdk.tables.delete_alternate_key("new_Widget", keys[0].metadata_id)
    assert sdk.tables.get_alternate_keys("new_Widget") == []
    assert sdk.tables.remove_columns("new_Widget", ["new_flag"]) == ["new_flag"]
    sdk.tables.delete("new_Widget")
    assert sdk.tables.get("new_Widget") is None


def test_upsert_by_alternate_key_single_and_multiple(dataverse_sandbox: DataverseSandbox, sdk: DataverseClient) -> None:
    sdk.records.upsert(
        "new_loyaltycard", [UpsertItem(alternate_key={"new_cardnumber": "S-1"}, record={"new_name": "a"})]
    )
    sdk.records.upsert(
        "new_loyaltycard",
        [
            UpsertItem(alternate_key={"new_cardnumber": "S-1"}, record={"new_name": "renamed"}),
            UpsertItem(alternate_key={"new_cardnumber": "S-2"}, record={"new_name": "new"}),
        ],
    )

    cards = {r["new_cardnumber"]: r["new_name"] for r in dataverse_sandbox.rows("new_loyaltycards")}
    assert cards == {"S-1": "renamed", "S-2": "new"}
    paths = [r["path"] for r in dataverse_sandbox.requests() if r["method"] in ("PATCH", "POST")]
    assert any(p.endswith("Microsoft.Dynamics.CRM.UpsertMultiple") for p in paths)


def test_create_and_update_many(dataverse_sandbox: DataverseSandbox, sdk: DataverseClient) -> None:
    ids = sdk.records.create("contact", [{"lastname": "M1"}, {"lastname": "M2"}, {"lastname": "M3"}])
    sdk.records.update("contact", ids, {"donotbulkemail": True})
    sdk.records.update("contact", ids[:2], [{"lastname": "N1"}, {"lastname": "N2"}])

    rows = {r["contactid"]: r for r in dataverse_sandbox.rows("contacts")}
    assert len(ids) == 3 and set(ids) == set(rows)
    assert [rows[i]["lastname"] for i in ids] == ["N1", "N2", "M3"]
    assert all(rows[i]["donotbulkemail"] for i in ids)


def test_batch_with_a_change_set_and_continue_on_error(
    dataverse_sandbox: DataverseSandbox, sdk: DataverseClient
) -> None:
    existing = dataverse_sandbox.create("contacts", {"lastname": "Existing"})
    batch = sdk.batch.new()
    batch.records.create("contact", {"lastname": "B1"})
    batch.records.update("contact", existing, {"lastname": "Renamed"})
    batch.records.create("new_loyaltycard", {"new_name": "bad", "new_tier": 99})
    with batch.changeset() as changeset:
        ref = changeset.records.create("contact", {"lastname": "In change set"})
        changeset.records.update("contact", ref, {"donotemail": True})

    result = batch.execute(continue_on_error=True)

    assert [r.status_code for r in result.responses] == [204, 204, 400, 204, 204]
    assert result.has_errors and [r.error_code for r in result.failed] == ["0x8004431a"]
    names = {r["lastname"]: r for r in dataverse_sandbox.rows("contacts")}
    assert set(names) == {"B1", "Renamed", "In change set"} and names["In change set"]["donotemail"] is True


def test_what_the_sandbox_does_not_model_fails_loudly(
    dataverse_sandbox: DataverseSandbox, sdk: DataverseClient, tmp_path: Path
) -> None:
    ids = [dataverse_sandbox.create("contacts", {"lastname": f"D{i}"}) for i in range(2)]
    document = tmp_path / "note.txt"
    document.write_text("hello")

    with pytest.raises(HttpError) as sql:
        sdk.query.sql("SELECT lastname FROM contact")
    with pytest.raises(HttpError) as bulk_delete:
        sdk.records.delete("contact", ids)
    with pytest.raises(HttpError) as upload:
        sdk.files.upload("contact", ids[0], "new_Document", str(document))

    assert [e.value.status_code for e in (sql, bulk_delete, upload)] == [501, 501, 501]
    assert dataverse_sandbox.count("contacts") == 2  # nothing happened
    sdk.records.delete("contact", ids, use_bulk_delete=False)  # one DELETE per row is modelled
    assert dataverse_sandbox.count("contacts") == 0


def test_query_builder_with_in_filters(dataverse_sandbox: DataverseSandbox, sdk: DataverseClient) -> None:
    from PowerPlatform.Dataverse.models.filters import col

    ids = [dataverse_sandbox.create("contacts", {"lastname": f"Q{i}", "gendercode": 1 + i % 2}) for i in range(6)]

    found = (
        sdk.query.builder("contact")
        .select("lastname")
        .where(col("contactid").in_(ids[:4]))
        .where(col("gendercode") == 1)
        .order_by("lastname", descending=True)
        .execute()
    )
    excluded = sdk.query.builder("contact").select("lastname").where(col("gendercode").not_in([2])).execute()

    assert [r["lastname"] for r in found] == ["Q2", "Q0"]
    assert sorted(r["lastname"] for r in excluded) == ["Q0", "Q2", "Q4"]


def test_dataframes(dataverse_sandbox: DataverseSandbox, sdk: DataverseClient) -> None:
    import pandas as pd

    frame = pd.DataFrame({"lastname": ["F1", "F2"], "donotbulkemail": [True, False]})

    ids = sdk.dataframe.create("contact", frame)
    read = (
        sdk.query.builder("contact").select("lastname", "donotbulkemail").order_by("lastname").execute().to_dataframe()
    )

    assert len(ids) == 2 and dataverse_sandbox.count("contacts") == 2
    assert list(read["lastname"]) == ["F1", "F2"] and list(read["donotbulkemail"]) == [True, False]


def test_update_a_column_definition(sdk: DataverseClient) -> None:
    sdk.tables.create("new_Gizmo", {"new_Label": {"type": "string", "max_length": 50}})

    sdk.tables.update_column("new_Gizmo", "new_label", {"max_length": 80, "display_name": "Label text"})

    column = sdk.tables.get_column("new_Gizmo", "new_label")
    assert column is not None and column["DisplayName"]["UserLocalizedLabel"]["Label"] == "Label text"


def test_fetchxml_and_typed_column_reads_are_not_modelled(sdk: DataverseClient) -> None:
    with pytest.raises(HttpError) as fetch:
        sdk.query.fetchxml('<fetch><entity name="contact"><attribute name="lastname"/></entity></fetch>').execute()
    with pytest.raises(HttpError) as typed:
        sdk.tables.list_columns("contact", typed=True)  # RetrieveMetadataChanges

    assert fetch.value.status_code == typed.value.status_code == 501
