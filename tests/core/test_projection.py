"""Projection of a Dataverse row onto a Campaign payload, and the payload hash."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from shared.config import load_sync_config
from shared.config.model import FieldMapping, PicklistMode, Replacement, TableMapping
from shared.core.errors import RecordError
from shared.core.projection import payload_hash, project

CONTACT_ID = "ABCDEF01-2345-6789-ABCD-EF0123456789"
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "sync.example.json"


def table(*fields: FieldMapping, **kwargs: Any) -> TableMapping:
    return TableMapping(
        name="contacts",
        entity="contact",
        entity_set="contacts",
        primary_key="contactid",
        resource="profile",
        key_attribute="externalId",
        lookup_filter="byExternalId",
        lookup_parameter="externalId_parameter",
        fields=fields,
        **kwargs,
    )


def run(row: dict[str, Any], mapping: TableMapping, *, full: bool = True, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("source_types", {})
    kwargs.setdefault("target_types", {})
    return project({"contactid": CONTACT_ID, **row}, mapping, full=full, **kwargs)


def test_full_and_update_payloads() -> None:
    mapping = table(
        FieldMapping("firstname", "firstName"),
        FieldMapping("gendercode", "gender", apply_updates=False),
        FieldMapping("birthdate", "birthDate"),
    )
    row = {"firstname": "Ann", "gendercode": 2, "birthdate": "1990-02-03"}
    types = {"source_types": {"gendercode": "Picklist", "birthdate": "Date"}, "target_types": {"birthDate": "date"}}
    assert run(row, mapping, full=True, **types) == {
        "firstName": "Ann",
        "gender": 2,
        "birthDate": "1990-02-03",
        "externalId": CONTACT_ID.lower(),
    }
    assert run(row, mapping, full=False, **types) == {
        "firstName": "Ann",
        "birthDate": "1990-02-03",
        "externalId": CONTACT_ID.lower(),
    }


def test_null_clears_and_absent_columns_are_left_out() -> None:
    mapping = table(FieldMapping("firstname", "firstName"), FieldMapping("lastname", "lastName"))
    assert run({"firstname": None}, mapping) == {"firstName": None, "externalId": CONTACT_ID.lower()}


def test_replacement_then_conversion_from_the_replacement_type() -> None:
    mapping = table(
        FieldMapping("gendercode", "gender", source_type="Picklist", target_type="string"),
        FieldMapping("donotemail", "blackListEmail", source_type="Boolean", target_type="boolean"),
        FieldMapping("statecode", "active", source_type="State", target_type="boolean"),
        replacements=(
            Replacement("gendercode", 1, "male"),
            Replacement("gendercode", None, "unknown"),
            Replacement("donotemail", True, "false"),  # text that still reads as a Boolean
            Replacement("statecode", 0, 1),
        ),
    )
    payload = run({"gendercode": 1, "donotemail": True, "statecode": 0}, mapping)
    assert payload == {"gender": "male", "blackListEmail": False, "active": True, "externalId": CONTACT_ID.lower()}
    assert run({"gendercode": None}, mapping)["gender"] == "unknown"
    assert run({"gendercode": 2}, mapping)["gender"] == "2"  # not replaced: the Picklist code as text


def test_declared_types_win_over_metadata_and_metadata_over_guessing() -> None:
    declared = table(FieldMapping("new_points", "points", source_type="String", target_type="string"))
    metadata = {"source_types": {"new_points": "Integer"}, "target_types": {"points": "double"}}
    assert run({"new_points": "7"}, declared, **metadata)["points"] == "7"
    undeclared = table(FieldMapping("new_points", "points"))
    assert run({"new_points": 7}, undeclared, **metadata)["points"] == 7.0
    # Neither: the JSON type decides and the target type follows it.
    assert run({"new_points": 7}, undeclared)["points"] == 7
    assert run({"new_points": 7.5}, undeclared)["points"] == 7.5
    assert run({"new_points": True}, undeclared)["points"] is True


def test_picklist_labels_per_field() -> None:
    mapping = table(FieldMapping("new_tier", "tier", source_type="Picklist"), picklists=PicklistMode.LABEL)
    labels = {"new_tier": {100000001: "Gold"}}
    assert run({"new_tier": 100000001}, mapping, labels=labels)["tier"] == "Gold"
    with pytest.raises(RecordError, match="field 'new_tier'"):
        run({"new_tier": 5}, mapping, labels=labels)


def test_conversion_failure_names_the_field_not_the_value() -> None:
    mapping = table(FieldMapping("new_points", "points", source_type="String", target_type="long"))
    with pytest.raises(RecordError) as caught:
        run({"new_points": "zqx-secret"}, mapping)
    assert caught.value.field == "new_points"
    assert "new_points" in str(caught.value)
    assert "zqx" not in str(caught.value)


def test_list_values_are_a_record_error() -> None:
    with pytest.raises(RecordError, match="field 'tags'"):
        run({"tags": [1, 2]}, table(FieldMapping("tags", "tags")))


@pytest.mark.parametrize("key", [None, "", "not-a-guid", 12])
def test_a_bad_primary_key_is_a_record_error(key: Any) -> None:
    mapping = table(FieldMapping("firstname", "firstName"))
    with pytest.raises(RecordError, match="primary key 'contactid'") as caught:
        project({"contactid": key, "firstname": "A"}, mapping, full=True, source_types={}, target_types={})
    assert caught.value.field == "contactid"


def test_the_key_attribute_is_the_lower_case_primary_key() -> None:
    payload = run({}, table(FieldMapping("firstname", "firstName")))
    assert payload == {"externalId": "abcdef01-2345-6789-abcd-ef0123456789"}


def test_the_shipped_example_projects_sandbox_rows() -> None:
    config = load_sync_config(str(EXAMPLE))
    contact = {
        "contactid": CONTACT_ID,
        "firstname": "Ann",
        "lastname": "Lee",
        "emailaddress1": "ann@example.com",
        "telephone1": None,
        "mobilephone": "+33 6 00 00 00 00",
        "birthdate": "1990-02-03",
        "gendercode": None,
        "donotbulkemail": True,
        "donotphone": False,
    }
    payload = project(contact, config.table("contacts"), full=True, source_types={}, target_types={})
    assert payload["gender"] == "unknown" and payload["denyListEmail"] is True and payload["phone"] is None
    assert "gender" not in project(contact, config.table("contacts"), full=False, source_types={}, target_types={})
    card = {
        "new_loyaltycardid": "11111111-2222-3333-4444-555555555555",
        "new_cardnumber": "LC-1",
        "new_points": 1200,
        "new_tier": 3,
        "new_validuntil": "2027-01-31",
        "_new_contactid_value": CONTACT_ID,
    }
    cards = config.table("loyaltycards")
    assert project(card, cards, full=True, source_types={}, target_types={}) == {
        "cardNumber": "LC-1",
        "points": 1200,
        "tier": "gold",  # through the replacements onto Campaign's enumeration values
        "validUntil": "2027-01-31",
        "contactId": CONTACT_ID.lower(),
        "crmId": "11111111-2222-3333-4444-555555555555",
    }


def test_hash_is_independent_of_key_order() -> None:
    a = {"firstName": "Ann", "lastName": "Lee", "externalId": "x", "nested": {"b": 1, "a": 2}}
    b = {"nested": {"a": 2, "b": 1}, "externalId": "x", "lastName": "Lee", "firstName": "Ann"}
    assert payload_hash(a) == payload_hash(b)


@pytest.mark.parametrize(
    "changed",
    [
        {"firstName": "Anne", "externalId": "x"},
        {"firstName": "Ann", "externalId": "y"},
        {"firstName": "Ann", "externalId": "x", "phone": None},  # clearing a field is a change
        {"firstName": "ann", "externalId": "x"},
    ],
)
def test_hash_changes_with_any_value(changed: dict[str, Any]) -> None:
    assert payload_hash({"firstName": "Ann", "externalId": "x"}) != payload_hash(changed)


def test_hash_sees_types() -> None:
    assert payload_hash({"v": 1}) != payload_hash({"v": "1"})
    assert payload_hash({"v": True}) != payload_hash({"v": 1})


def test_hash_is_sha256_hex_of_canonical_json() -> None:
    expected = hashlib.sha256('{"a":1,"b":"é"}'.encode()).hexdigest()
    assert payload_hash({"b": "é", "a": 1}) == expected
    assert len(expected) == 64


def test_hash_refuses_nan() -> None:
    with pytest.raises(ValueError):
        payload_hash({"v": float("nan")})
