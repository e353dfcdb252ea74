"""The sandbox answers what it models and refuses the rest loudly: service document, query options, $filter."""

from __future__ import annotations

import pytest

from sandbox.dataverse import DataverseSandbox
from tests.fixtures.dataverse import Api


def test_service_root_answers_the_service_document(dv_api: Api) -> None:
    response = dv_api.get("")

    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == f"{dv_api.sandbox.api_url}$metadata"
    sets = {item["name"]: item for item in body["value"]}
    assert sets["contacts"] == {"name": "contacts", "kind": "EntitySet", "url": "contacts"}
    assert {"tasks", "systemusers", "activitypointers", "new_loyaltycards"} <= set(sets)
    # Without the trailing slash too, as Airbyte's connection check may send it.
    assert dv_api.get(dv_api.sandbox.api_url.rstrip("/")).status_code == 200


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("$select=lastname&$bogus=1", 400, "0x80060888"),  # unknown system query option
        ("$skip=10", 400, "0x80060888"),  # documented as not supported
        ("$select=lastname&$expand=parentcustomerid_contact", 501, "0x80040216"),  # real, not modelled
        ("$apply=groupby((lastname))", 501, "0x80040216"),
        ("sql=SELECT%20lastname%20FROM%20contact", 501, "0x80040216"),
        ("fetchXml=%3Cfetch%2F%3E", 501, "0x80040216"),
        ("whatever=1", 400, "0x80060888"),  # an unknown custom option is refused, never ignored
        ("$filter=tolower(lastname) eq 'a'", 501, "0x80040216"),  # unmodelled function
        ("$filter=lastname in ('a','b')", 501, "0x80040216"),  # unmodelled operator
        ("$filter=Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=3)", 501, "0x80040216"),
        ("$filter=nosuchcolumn eq 1", 400, "0x80060888"),
        ("$top=abc", 400, "0x80060888"),
    ],
)
def test_what_is_not_modelled_is_refused_never_answered_as_success(
    dataverse_sandbox: DataverseSandbox, dv_api: Api, query: str, status: int, code: str
) -> None:
    dataverse_sandbox.seed_contacts(3)

    response = dv_api.get(f"contacts?{query}")

    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert "value" not in response.json()


def test_unknown_options_are_refused_on_single_rows_and_metadata_too(dv_api: Api) -> None:
    contact = dv_api.sandbox.create("contacts", {"lastname": "One"})

    assert dv_api.get(f"contacts({contact})?$select=lastname&$bogus=1").status_code == 400
    assert dv_api.get(f"contacts({contact})?$expand=parentcustomerid_contact").status_code == 501
    assert dv_api.get("EntityDefinitions?$bogus=1").status_code == 400
    assert dv_api.get("RetrieveMetadataChanges(Query=@p1)?@p1={}").status_code == 501
    assert dv_api.get("tasks/Microsoft.Dynamics.CRM.SomethingElse").status_code == 501


def test_the_in_query_function_and_parameter_aliases(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    ids = [dataverse_sandbox.create("contacts", {"lastname": f"L{i}", "gendercode": 1 + i % 2}) for i in range(5)]
    picked = [ids[1], ids[3].upper()]  # GUIDs compare case-insensitively

    values = "[" + ",".join(f"'{i}'" for i in picked) + "]"
    found = dv_api.get(
        f"contacts?$select=lastname&$filter=Microsoft.Dynamics.CRM.In(PropertyName='contactid',PropertyValues={values})"
    ).json()["value"]
    excluded = dv_api.get(
        "contacts?$select=lastname&$filter=Microsoft.Dynamics.CRM.NotIn(PropertyName='gendercode',PropertyValues=['2'])"
    ).json()["value"]
    aliased = dv_api.get("contacts?$select=lastname&$filter=lastname eq @name&@name='L4'").json()["value"]

    assert sorted(r["lastname"] for r in found) == ["L1", "L3"]
    assert sorted(r["lastname"] for r in excluded) == ["L0", "L2", "L4"]
    assert [r["lastname"] for r in aliased] == ["L4"]
    missing = dv_api.get("contacts?$filter=lastname eq @nope")
    assert missing.status_code == 400


def test_count_with_a_filter_counts_the_matching_rows(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    for i in range(6):
        dataverse_sandbox.create("contacts", {"lastname": "Even" if i % 2 == 0 else "Odd"})

    assert dv_api.get("contacts/$count?$filter=lastname eq 'Odd'").text == "3"
    assert dv_api.get("contacts/$count").text == "6"
