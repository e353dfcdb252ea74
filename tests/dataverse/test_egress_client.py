"""Client calls egress relies on, against the Dataverse sandbox: create-if-absent in $batch and the classification
of its parts, WhoAmI, entity set -> table, navigation properties from $metadata, and the metadata create calls."""

from __future__ import annotations

import uuid

import pytest

from sandbox.dataverse import DataverseSandbox
from shared.clients.dataverse import Creation, DataverseClient, Operation, OperationResult, creation
from shared.http import Outcome


def test_create_if_absent_creates_once_and_then_answers_exists_without_changing_the_row(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    contact = dataverse_sandbox.create("contacts", {"lastname": "Target"})
    task = str(uuid.uuid4())
    body = {"subject": "follow up", "regardingobjectid_contact_task@odata.bind": f"/contacts({contact})"}
    [first] = dataverse_client.batch([Operation.create_if_absent("tasks", task, body)])
    assert creation(first) is Creation.CREATED
    dataverse_sandbox.update("tasks", task, {"subject": "changed by a user", "statecode": 1, "statuscode": 5})
    [again] = dataverse_client.batch([Operation.create_if_absent("tasks", task, {**body, "subject": "other"})])
    assert (again.status, creation(again)) == (412, Creation.EXISTS)
    row = dataverse_sandbox.get("tasks", task)
    assert row is not None and (row["subject"], row["statecode"]) == ("changed by a user", 1)


def test_a_bind_to_a_missing_contact_and_a_refused_row_are_told_apart(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    missing = str(uuid.uuid4())
    contact = dataverse_sandbox.create("contacts", {"lastname": "There"})
    results = dataverse_client.batch(
        [
            Operation.create_if_absent("tasks", str(uuid.uuid4()), {
                "subject": "a", "regardingobjectid_contact_task@odata.bind": f"/contacts({missing})"}),
            Operation.create_if_absent("tasks", str(uuid.uuid4()), {
                "subject": "x" * 250, "regardingobjectid_contact_task@odata.bind": f"/contacts({contact})"}),
            Operation.create_if_absent("tasks", str(uuid.uuid4()), {
                "subject": "ok", "regardingobjectid_contact_task@odata.bind": f"/contacts({contact})"}),
        ]
    )  # fmt: skip
    assert [creation(r) for r in results] == [Creation.MISSING_REFERENCE, Creation.REFUSED, Creation.CREATED]
    assert results[0].status == 404 and results[0].code == "0x80040217"
    assert dataverse_sandbox.count("tasks") == 1


def test_creation_classes_of_parts_that_did_not_go_through() -> None:
    def part(status: int, outcome: Outcome, code: str = "") -> Creation:
        return creation(OperationResult(0, status, outcome, code=code))

    assert part(0, Outcome.RETRY) is Creation.RETRY  # not processed (the batch stopped, or was rolled back)
    assert part(429, Outcome.RATE_LIMITED, "0x80072322") is Creation.RETRY
    assert part(503, Outcome.RETRY) is Creation.RETRY
    assert part(412, Outcome.RECORD_ERROR, "0x80060892") is Creation.EXISTS  # another row holds the event's key
    assert part(403, Outcome.FATAL, "0x80040220") is Creation.FATAL
    assert part(401, Outcome.AUTH_EXPIRED) is Creation.FATAL


def test_who_am_i_and_the_table_behind_an_entity_set(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    assert dataverse_client.who_am_i() == dataverse_sandbox.application_user_id
    assert dataverse_client.logical_name_of("tasks") == "task"
    assert dataverse_client.logical_name_of("new_nothings") is None
    assert dataverse_client.exists("systemusers", dataverse_sandbox.application_user_id)
    assert not dataverse_client.exists("systemusers", str(uuid.uuid4()))


def test_navigation_properties_come_from_the_service_metadata(dataverse_client: DataverseClient) -> None:
    navigation = dataverse_client.navigation_properties("task")
    assert navigation["regardingobjectid_contact_task"] == "contact"
    assert dataverse_client.navigation_properties("no_such_table") == {}


def test_metadata_create_calls_make_an_activity_table_its_column_and_key(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    label = {"LocalizedLabels": [{"Label": "Thing", "LanguageCode": 1033}]}
    dataverse_client.create_entity({
        "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata", "SchemaName": "new_thing",
        "EntitySetName": "new_things", "DisplayName": label, "DisplayCollectionName": label,
        "OwnershipType": "UserOwned", "IsActivity": True, "HasActivities": False, "HasNotes": True,
        "Attributes": [{"@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata", "SchemaName": "Subject",
                        "IsPrimaryName": True, "MaxLength": 200, "DisplayName": label}],
    })  # fmt: skip
    dataverse_client.create_attribute("new_thing", {"@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                                                    "SchemaName": "new_eventid", "MaxLength": 100,
                                                    "DisplayName": label})  # fmt: skip
    dataverse_client.create_key("new_thing", {"SchemaName": "new_thing_eventidkey", "KeyAttributes": ["new_eventid"],
                                              "DisplayName": label})  # fmt: skip
    assert dataverse_client.logical_name_of("new_things") == "new_thing"
    definition = dataverse_client.entity_definition("new_thing", refresh=True)
    assert definition.is_activity and definition.attributes["new_eventid"] == "String"
    [key] = dataverse_client.entity_keys("new_thing").values()
    assert (key.attributes, key.index_status) == (("new_eventid",), "Active")
    assert "regardingobjectid_contact_new_thing" in dataverse_client.navigation_properties("new_thing", refresh=True)


def test_provisioning_reports_what_exists_and_does_not_fit(dataverse_client: DataverseClient) -> None:
    from shared.config.model import EgressConfig
    from shared.flows.egress_provision import ProvisionError, plan

    label = {"LocalizedLabels": [{"Label": "Sends", "LanguageCode": 1033}]}
    dataverse_client.create_entity({
        "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata", "SchemaName": "new_campaignsend",
        "EntitySetName": "new_campaignsends", "DisplayName": label, "DisplayCollectionName": label,
        "OwnershipType": "UserOwned", "Attributes": [{"@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                                                      "SchemaName": "new_name", "IsPrimaryName": True}],
    })  # fmt: skip
    config = EgressConfig(enabled=True, events=frozenset({"send", "open"}),
                          activity_tables={"send": "new_campaignsends", "open": "new_campaignopens"})  # fmt: skip
    with pytest.raises(ProvisionError) as refused:
        plan(config, dataverse_client)
    assert str(refused.value) == "table new_campaignsend (new_campaignsends) exists and is not an activity table"
    only_opens = EgressConfig(enabled=True, events=frozenset({"open"}), activity_tables={"open": "new_campaignopens"})
    steps = plan(only_opens, dataverse_client)
    assert [s.describe() for s in steps][:2] == [
        "create activity table new_campaignopen (entity set new_campaignopens)",
        "create column new_campaignopen.new_campaignname",
    ]
    assert steps[-1].describe() == "create alternate key new_campaignopen.new_campaignopen_eventidkey on new_eventid"


def test_a_single_create_if_absent_says_whether_it_created(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    task = str(uuid.uuid4())
    assert dataverse_client.create_if_absent("tasks", task, {"subject": "first"}) is True
    assert dataverse_client.create_if_absent("tasks", task, {"subject": "second"}) is False
    assert dataverse_sandbox.get("tasks", task)["subject"] == "first"  # type: ignore[index]
