"""Metadata through the client: entity definitions, option labels (cached), table sizes, paged plain reads."""

from __future__ import annotations

from collections.abc import Callable

from sandbox.dataverse import DataverseSandbox
from shared.clients.dataverse import DataverseClient


def test_entity_definition_names_the_set_the_tracking_flag_and_attribute_types(
    dataverse_client: DataverseClient,
) -> None:
    contact = dataverse_client.entity_definition("contact")

    assert (contact.entity_set, contact.primary_id, contact.change_tracking_enabled) == ("contacts", "contactid", True)
    assert contact.attributes["emailaddress1"] == "String"
    assert contact.attributes["gendercode"] == "Picklist"
    assert contact.attributes["statecode"] == "State"
    assert contact.attributes["donotbulkemail"] == "Boolean"
    assert contact.attributes["birthdate"] == "DateTime"
    assert contact.attributes["parentcustomerid"] == "Lookup"
    untracked = dataverse_client.entity_definition("new_untracked")
    assert (untracked.entity_set, untracked.change_tracking_enabled) == ("new_untrackeds", False)
    activity = dataverse_client.entity_definition("new_campaignemailevent")
    assert activity.is_activity and activity.primary_id == "activityid"
    assert activity.attributes["regardingobjectid"] == "Lookup"


def test_picklist_labels_for_every_choice_kind_and_they_are_cached(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    assert dataverse_client.picklist_labels("contact", "preferredcontactmethodcode") == {
        1: "Any",
        2: "Email",
        3: "Phone",
        4: "Fax",
        5: "Mail",
    }
    assert dataverse_client.picklist_labels("contact", "statecode") == {0: "Active", 1: "Inactive"}
    assert dataverse_client.picklist_labels("contact", "donotsendmm") == {1: "Do Not Send", 0: "Send"}
    assert dataverse_client.picklist_labels("new_loyaltycard", "new_tier") == {1: "Bronze", 2: "Silver", 3: "Gold"}
    before = len(dataverse_sandbox.requests())

    dataverse_client.picklist_labels("contact", "preferredcontactmethodcode")

    assert len(dataverse_sandbox.requests()) == before


def test_total_record_count(dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient) -> None:
    dataverse_sandbox.seed_contacts(12_345)
    dataverse_sandbox.create("tasks", {"subject": "one"})

    assert dataverse_client.total_record_count(["contact", "task", "new_loyaltycard"]) == {
        "contact": 12_345,
        "task": 1,
        "new_loyaltycard": 0,
    }


def test_primary_key_lookup_by_entity_set(dataverse_client: DataverseClient) -> None:
    assert dataverse_client.primary_key("new_loyaltycards") == "new_loyaltycardid"
    assert dataverse_client.primary_key("tasks") == "activityid"


def test_plain_paged_read_with_a_filter(
    dataverse_sandbox: DataverseSandbox, make_dataverse_client: Callable[..., DataverseClient]
) -> None:
    dataverse_sandbox.seed_contacts(500)
    client = make_dataverse_client(page_size=100)
    inactive = [r["contactid"] for r in dataverse_sandbox.rows("contacts") if r["statecode"] == 1]

    pages = list(client.iter_rows("contacts", ["contactid", "statecode"], filter="statecode eq 1"))

    assert [r["contactid"] for p in pages for r in p.rows] == inactive
    assert all(p.delta_link is None for p in pages)
    everything = list(client.iter_rows("contacts", ["contactid"]))
    assert [len(p.rows) for p in everything] == [100] * 5
    assert all(p.next_link for p in everything[:-1]) and everything[-1].next_link is None
