"""Projection of a Dataverse row onto a Campaign payload, and the payload hash.

Every projection case runs twice: through project() (the reference) and through compile_projection() (the
form the flows build once per table and run per row); both must give the literal payload or RecordError.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest

from shared.config import load_sync_config
from shared.config.model import FieldMapping, PicklistMode, Replacement, TableMapping
from shared.core.errors import RecordError
from shared.core.projection import compile_projection, payload_hash, project

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


class Project(Protocol):
    def __call__(
        self,
        row: Mapping[str, Any],
        table: TableMapping,
        *,
        full: bool,
        source_types: Mapping[str, str],
        target_types: Mapping[str, str],
        labels: Mapping[str, Mapping[int, str]] | None = None,
    ) -> dict[str, Any]: ...


def compiled(
    row: Mapping[str, Any],
    table: TableMapping,
    *,
    full: bool,
    source_types: Mapping[str, str],
    target_types: Mapping[str, str],
    labels: Mapping[str, Mapping[int, str]] | None = None,
) -> dict[str, Any]:
    projection = compile_projection(table, source_types=source_types, target_types=target_types, labels=labels)
    return projection.project(row, full=full)


@pytest.fixture(params=[project, compiled], ids=["reference", "compiled"])
def shape(request: pytest.FixtureRequest) -> Project:
    return request.param


def run(
    shape: Project, row: dict[str, Any], mapping: TableMapping, *, full: bool = True, **kwargs: Any
) -> dict[str, Any]:
    kwargs.setdefault("source_types", {})
    kwargs.setdefault("target_types", {})
    return shape({"contactid": CONTACT_ID, **row}, mapping, full=full, **kwargs)


def test_full_and_update_payloads(shape: Project) -> None:
    mapping = table(
        FieldMapping("firstname", "firstName"),
        FieldMapping("gendercode", "gender", apply_updates=False),
        FieldMapping("birthdate", "birthDate"),
    )
    row = {"firstname": "Ann", "gendercode": 2, "birthdate": "1990-02-03"}
    types = {"source_types": {"gendercode": "Picklist", "birthdate": "Date"}, "target_types": {"birthDate": "date"}}
    assert run(shape, row, mapping, full=True, **types) == {
        "firstName": "Ann",
        "gender": 2,
        "birthDate": "1990-02-03",
        "externalId": CONTACT_ID.lower(),
    }
    assert run(shape, row, mapping, full=False, **types) == {
        "firstName": "Ann",
        "birthDate": "1990-02-03",
        "externalId": CONTACT_ID.lower(),
    }


def test_null_clears_and_absent_columns_are_left_out(shape: Project) -> None:
    mapping = table(FieldMapping("firstname", "firstName"), FieldMapping("lastname", "lastName"))
    assert run(shape, {"firstname": None}, mapping) == {"firstName": None, "externalId": CONTACT_ID.lower()}


def test_replacement_then_conversion_from_the_replacement_type(shape: Project) -> None:
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
    payload = run(shape, {"gendercode": 1, "donotemail": True, "statecode": 0}, mapping)
    assert payload == {"gender": "male", "blackListEmail": False, "active": True, "externalId": CONTACT_ID.lower()}
    assert run(shape, {"gendercode": None}, mapping)["gender"] == "unknown"
    assert run(shape, {"gendercode": 2}, mapping)["gender"] == "2"  # not replaced: the Picklist code as text


def test_declared_types_win_over_metadata_and_metadata_over_guessing(shape: Project) -> None:
    declared = table(FieldMapping("new_points", "points", source_type="String", target_type="string"))
    metadata = {"source_types": {"new_points": "Integer"}, "target_types": {"points": "double"}}
    assert run(shape, {"new_points": "7"}, declared, **metadata)["points"] == "7"
    undeclared = table(FieldMapping("new_points", "points"))
    assert run(shape, {"new_points": 7}, undeclared, **metadata)["points"] == 7.0
    # Neither: the JSON type decides and the target type follows it.
    assert run(shape, {"new_points": 7}, undeclared)["points"] == 7
    assert run(shape, {"new_points": 7.5}, undeclared)["points"] == 7.5
    assert run(shape, {"new_points": True}, undeclared)["points"] is True


def test_picklist_labels_per_field(shape: Project) -> None:
    mapping = table(FieldMapping("new_tier", "tier", source_type="Picklist"), picklists=PicklistMode.LABEL)
    labels = {"new_tier": {100000001: "Gold"}}
    assert run(shape, {"new_tier": 100000001}, mapping, labels=labels)["tier"] == "Gold"
    with pytest.raises(RecordError, match="field 'new_tier'"):
        run(shape, {"new_tier": 5}, mapping, labels=labels)


def test_conversion_failure_names_the_field_not_the_value(shape: Project) -> None:
    mapping = table(FieldMapping("new_points", "points", source_type="String", target_type="long"))
    with pytest.raises(RecordError) as caught:
        run(shape, {"new_points": "zqx-secret"}, mapping)
    assert caught.value.field == "new_points"
    assert "new_points" in str(caught.value)
    assert "zqx" not in str(caught.value)


def test_list_values_are_a_record_error(shape: Project) -> None:
    with pytest.raises(RecordError, match="field 'tags'"):
        run(shape, {"tags": [1, 2]}, table(FieldMapping("tags", "tags")))


@pytest.mark.parametrize("key", [None, "", "not-a-guid", 12])
def test_a_bad_primary_key_is_a_record_error(shape: Project, key: Any) -> None:
    mapping = table(FieldMapping("firstname", "firstName"))
    with pytest.raises(RecordError, match="primary key 'contactid'") as caught:
        shape({"contactid": key, "firstname": "A"}, mapping, full=True, source_types={}, target_types={})
    assert caught.value.field == "contactid"


def test_the_key_attribute_is_the_lower_case_primary_key(shape: Project) -> None:
    payload = run(shape, {}, table(FieldMapping("firstname", "firstName")))
    assert payload == {"externalId": "abcdef01-2345-6789-abcd-ef0123456789"}


def test_the_shipped_example_projects_sandbox_rows(shape: Project) -> None:
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
    payload = shape(contact, config.table("contacts"), full=True, source_types={}, target_types={})
    assert payload["gender"] == "unknown" and payload["denyListEmail"] is True and payload["phone"] is None
    assert "gender" not in shape(contact, config.table("contacts"), full=False, source_types={}, target_types={})
    card = {
        "new_loyaltycardid": "11111111-2222-3333-4444-555555555555",
        "new_cardnumber": "LC-1",
        "new_points": 1200,
        "new_tier": 3,
        "new_validuntil": "2027-01-31",
        "_new_contactid_value": CONTACT_ID,
    }
    cards = config.table("loyaltycards")
    assert shape(card, cards, full=True, source_types={}, target_types={}) == {
        "cardNumber": "LC-1",
        "points": 1200,
        "tier": "gold",  # through the replacements onto Campaign's enumeration values
        "validUntil": "2027-01-31",
        "contactId": CONTACT_ID.lower(),
        "crmId": "11111111-2222-3333-4444-555555555555",
    }


KEY = CONTACT_ID.lower()
POINTS = FieldMapping("new_points", "points")
CASES: list[tuple[str, TableMapping, dict[str, Any], bool, dict[str, Any], dict[str, Any] | str]] = [
    ("json int, no types", table(POINTS), {"new_points": 7}, True, {}, {"points": 7, "externalId": KEY}),
    ("json text, no types", table(POINTS), {"new_points": "7"}, True, {}, {"points": "7", "externalId": KEY}),
    ("json bool, no types", table(POINTS), {"new_points": False}, True, {}, {"points": False, "externalId": KEY}),
    ("json float, no types", table(POINTS), {"new_points": 2.5}, True, {}, {"points": 2.5, "externalId": KEY}),
    ("null, no types", table(POINTS), {"new_points": None}, True, {}, {"points": None, "externalId": KEY}),
    ("object, no types", table(POINTS), {"new_points": {"a": 1}}, True, {},
     "field 'new_points': a list or object value cannot be mapped"),
    ("json int to metadata text", table(POINTS), {"new_points": 7}, True, {"target_types": {"points": "string"}},
     {"points": "7", "externalId": KEY}),
    ("metadata source type", table(POINTS), {"new_points": "eight"}, True, {"source_types": {"new_points": "Integer"}},
     "field 'new_points': value is not a valid Integer"),
    ("replacement that cannot convert",
     table(FieldMapping("new_points", "points", target_type="long"), replacements=(Replacement("new_points", 1, "x"),)),
     {"new_points": 1}, True, {}, "field 'new_points': String value cannot be converted to long"),
    ("same mapping, value not replaced",
     table(FieldMapping("new_points", "points", target_type="long"), replacements=(Replacement("new_points", 1, "x"),)),
     {"new_points": 2}, True, {}, {"points": 2, "externalId": KEY}),
    ("replacement to a list",
     table(POINTS, replacements=(Replacement("new_points", 1, [1]),)),
     {"new_points": 1}, True, {}, "field 'new_points': a list or object value cannot be mapped"),
    ("replacement to null clears",
     table(FieldMapping("new_points", "points", target_type="long"),
           replacements=(Replacement("new_points", 0, None),)),
     {"new_points": 0}, True, {}, {"points": None, "externalId": KEY}),
    ("the first bad field is named",
     table(FieldMapping("a", "a", source_type="Integer"), FieldMapping("b", "b", source_type="Integer")),
     {"a": "x", "b": "y"}, True, {}, "field 'a': value is not a valid Integer"),
    ("a field error before a key error",
     table(FieldMapping("a", "a", source_type="Integer")), {"contactid": "nope", "a": "x"}, True, {},
     "field 'a': value is not a valid Integer"),
    ("an update skips a bad field it does not carry",
     table(FieldMapping("a", "a", source_type="Integer", apply_updates=False), FieldMapping("b", "b")),
     {"a": "x", "b": "y"}, False, {}, {"b": "y", "externalId": KEY}),
    ("the key attribute wins over a field of the same name",
     table(FieldMapping("firstname", "externalId")), {"firstname": "Ann"}, True, {}, {"externalId": KEY}),
    ("labels only for their field",
     table(FieldMapping("a", "a", source_type="Picklist"), FieldMapping("b", "b", source_type="Picklist"),
           picklists=PicklistMode.LABEL),
     {"a": 1, "b": 1}, True, {"labels": {"a": {1: "One"}}}, "field 'b': option code has no label"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mapping", "row", "full", "types", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_projection_cases(
    shape: Project,
    mapping: TableMapping,
    row: dict[str, Any],
    full: bool,
    types: dict[str, Any],
    expected: dict[str, Any] | str,
) -> None:
    if isinstance(expected, str):
        with pytest.raises(RecordError) as caught:
            run(shape, row, mapping, full=full, **types)
        assert caught.value.reason == expected
    else:
        assert run(shape, row, mapping, full=full, **types) == expected


def test_one_compiled_projection_serves_rows_of_every_json_type() -> None:
    """The per-type converters are chosen from the first value of each type and reused for the next ones."""
    projection = compile_projection(table(POINTS), source_types={}, target_types={})
    values = [7, "7", True, None, 2.5, 8, "x", False]
    payloads = [projection.project({"contactid": CONTACT_ID, "new_points": v}, full=True)["points"] for v in values]
    assert payloads == [7, "7", True, None, 2.5, 8, "x", False]
    assert [type(p) for p in payloads] == [int, str, bool, type(None), float, int, str, bool]


def test_compiled_projection_renames_to_the_instance_names() -> None:
    mapping = table(FieldMapping("firstname", "firstName"), FieldMapping("donotemail", "denyListEmail"))
    projection = compile_projection(
        mapping,
        source_types={"donotemail": "Boolean"},
        target_types={},
        renames={"denyListEmail": "blackListEmail", "externalId": "crmId"},
    )
    assert projection.project({"contactid": CONTACT_ID, "firstname": "Ann", "donotemail": True}, full=True) == {
        "firstName": "Ann",
        "blackListEmail": True,
        "crmId": KEY,
    }
    assert projection.record_key({"contactid": CONTACT_ID}) == KEY


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
