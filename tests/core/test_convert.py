"""Type conversion: Dataverse Web API JSON values -> Campaign attribute values.

The literal tables run through convert_value (the reference) and compile_converter (the per-field form
projections use); both must give the expected value, or a ConversionError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from shared.config.model import SOURCE_TYPES, TARGET_TYPES, PicklistMode
from shared.config.types import convertible
from shared.core.convert import compile_converter, convert_value
from shared.core.errors import ConversionError


def compiled(
    value: Any,
    source: str,
    target: str,
    *,
    picklist_mode: PicklistMode = PicklistMode.VALUE,
    labels: Mapping[int, str] | None = None,
) -> Any:
    return compile_converter(source, target, picklist_mode=picklist_mode, labels=labels)(value)


@pytest.fixture(params=[convert_value, compiled], ids=["reference", "compiled"])
def convert(request: pytest.FixtureRequest) -> Any:
    return request.param


GUID = "ABCDEF01-2345-6789-ABCD-EF0123456789"
GUID_LOWER = GUID.lower()

# (value, source type, target type, expected)
GOOD = [
    # Boolean
    (True, "Boolean", "boolean", True),
    (False, "Boolean", "string", "false"),
    (True, "Boolean", "long", 1),
    (False, "Boolean", "byte", 0),
    (True, "Boolean", "double", 1.0),
    (True, "Boolean", "float", 1.0),
    ("true", "Boolean", "boolean", True),
    (0, "Boolean", "boolean", False),
    # Integer / BigInt
    (42, "Integer", "long", 42),
    (42, "Integer", "string", "42"),
    (1, "Integer", "boolean", True),
    (0, "Integer", "boolean", False),
    (42, "Integer", "double", 42.0),
    (7.0, "Integer", "short", 7),
    (2**40, "BigInt", "int64", 2**40),
    (-5, "Integer", "int64", -5),
    # Decimal / Money / Double
    (12.5, "Decimal", "double", 12.5),
    (12.5, "Decimal", "string", "12.5"),
    (12.0, "Decimal", "long", 12),
    (12, "Money", "double", 12.0),
    (0.1, "Double", "double", 0.1),
    (0.1, "Double", "string", "0.1"),
    (1, "Double", "boolean", True),
    (1e-7, "Decimal", "string", "0.0000001"),
    # String / Memo
    ("Ann", "String", "string", "Ann"),
    ("long text", "Memo", "memo", "long text"),
    ("42", "String", "long", 42),
    (" 42 ", "String", "int64", 42),
    ("-3.0", "String", "short", -3),
    ("1e3", "String", "double", 1000.0),
    ("2.5", "String", "float", 2.5),
    ("TRUE", "String", "boolean", True),
    ("false", "String", "boolean", False),
    ("1", "String", "boolean", True),
    ("0", "String", "boolean", False),
    ("2024-05-01", "String", "date", "2024-05-01"),
    ("2024-05-01T10:20:30+02:00", "String", "datetime", "2024-05-01T08:20:30Z"),
    ("2024-05-01", "String", "datetime", "2024-05-01T00:00:00Z"),
    ("2024-05-01T23:30:00-02:00", "String", "date", "2024-05-02"),
    (GUID, "String", "uuid", GUID_LOWER),
    # DateTime
    ("2024-05-01T10:20:30Z", "DateTime", "datetime", "2024-05-01T10:20:30Z"),
    ("2024-05-01T10:20:30.1234567Z", "DateTime", "datetime", "2024-05-01T10:20:30Z"),
    ("2024-05-01T10:20:30", "DateTime", "datetime", "2024-05-01T10:20:30Z"),  # no offset: UTC
    ("2024-05-01T10:20:30+02:00", "DateTime", "string", "2024-05-01T08:20:30Z"),
    ("2024-05-01T10:20:30Z", "DateTime", "date", "2024-05-01"),
    ("2024-05-01T23:30:00-02:00", "DateTime", "date", "2024-05-02"),  # its UTC day
    ("0001-01-01T00:00:00Z", "DateTime", "datetime", "0001-01-01T00:00:00Z"),
    # Date (DateOnly)
    ("2024-05-01", "Date", "date", "2024-05-01"),
    ("2024-02-29", "Date", "date", "2024-02-29"),  # a leap day
    ("2024-05-01", "Date", "datetime", "2024-05-01T00:00:00Z"),
    ("2024-05-01", "Date", "string", "2024-05-01"),
    ("2024-05-01T00:00:00Z", "Date", "date", "2024-05-01"),  # older endpoints write date-only values with a time
    # Picklist / State / Status
    (3, "Picklist", "long", 3),
    (3, "Picklist", "string", "3"),
    (0, "State", "byte", 0),
    (1, "State", "boolean", True),
    (2, "Status", "int64", 2),
    # Uniqueidentifier / Lookup
    (GUID, "Uniqueidentifier", "uuid", GUID_LOWER),
    (GUID, "Lookup", "string", GUID_LOWER),
    ("{" + GUID + "}", "Lookup", "uuid", GUID_LOWER),
    # Other Dataverse types are sent as strings; unknown Campaign types receive strings
    ("Ann Owner", "Owner", "string", "Ann Owner"),
    ("contact", "EntityName", "string", "contact"),
    ("1,3", "MultiSelectPicklist", "string", "1,3"),
    (5, "Virtual", "string", "5"),
    (True, "Virtual", "string", "true"),
    (2, "Picklist", "enumeration", "2"),
]


@pytest.mark.parametrize(("value", "source", "target", "expected"), GOOD)
def test_converts(convert: Any, value: Any, source: str, target: str, expected: Any) -> None:
    result = convert(value, source, target)
    assert result == expected
    assert type(result) is type(expected)


# Pairs that can never convert, whatever the value.
INCOMPATIBLE = [
    ("Boolean", "date"),
    ("Boolean", "datetime"),
    ("Boolean", "uuid"),
    ("Integer", "date"),
    ("Decimal", "datetime"),
    ("DateTime", "boolean"),
    ("DateTime", "long"),
    ("Date", "double"),
    ("Date", "uuid"),
    ("Uniqueidentifier", "long"),
    ("Lookup", "boolean"),
    ("Lookup", "date"),
    ("Picklist", "date"),
]


@pytest.mark.parametrize(("source", "target"), INCOMPATIBLE)
def test_incompatible_pairs_are_refused(convert: Any, source: str, target: str) -> None:
    samples = {"Boolean": True, "Integer": 1, "Decimal": 1.5, "DateTime": "2024-05-01T00:00:00Z"}
    value = samples.get(source, {"Date": "2024-05-01", "Picklist": 1}.get(source, GUID))
    with pytest.raises(ConversionError, match=f"{source} cannot be converted to {target}"):
        convert(value, source, target)


# Values that fail for their own sake.
BAD = [
    (42, "Integer", "boolean"),  # only 0/1 are Booleans
    (12.5, "Decimal", "long"),  # not integral
    ("4.2", "String", "long"),
    ("abc", "String", "long"),
    ("0x10", "String", "long"),
    ("12abc", "String", "double"),
    ("yes", "String", "boolean"),
    ("", "String", "boolean"),
    ("1e400", "String", "double"),  # overflows a float
    ("May 1st", "String", "date"),
    ("2024-02-30", "String", "date"),
    ("not-a-guid", "String", "uuid"),
    ("yesterday", "DateTime", "datetime"),
    ("2024-13-01T00:00:00Z", "DateTime", "datetime"),
    ("2024-02-30", "Date", "date"),
    ("2023-02-29", "Date", "date"),
    ("0000-01-01", "Date", "date"),  # no year 0
    ("\u0662\u0660\u0662\u0664-05-01", "Date", "date"),  # digits, but not ASCII ones
    (20240501, "Date", "date"),
    ("x", "Boolean", "boolean"),
    (2, "Boolean", "boolean"),
    (True, "Integer", "long"),  # a Boolean is not an Integer
    ("abc", "Integer", "long"),
    (float("nan"), "Double", "double"),
    (float("inf"), "Decimal", "string"),
    ("nope", "Lookup", "string"),
    (3.5, "Picklist", "long"),
    (5, "String", "string"),  # a declared String must be text
    ([1, 2], "Virtual", "string"),
    (2, "Integer", "uuid"),
]


@pytest.mark.parametrize(("value", "source", "target"), BAD)
def test_bad_values_raise(convert: Any, value: Any, source: str, target: str) -> None:
    with pytest.raises(ConversionError):
        convert(value, source, target)


@pytest.mark.parametrize(
    ("value", "source", "target", "reason"),
    [
        (42, "Integer", "boolean", "Integer value cannot be converted to boolean"),
        ("abc", "String", "long", "String value cannot be converted to long"),
        ("yesterday", "DateTime", "datetime", "value is not a valid DateTime"),
        (True, "Integer", "long", "value is not a valid Integer"),
        (5, "String", "string", "value is not a valid String"),
        (300, "Integer", "byte", "value is out of range for byte"),
        ("1e400", "String", "double", "value is out of range for a floating-point number"),
        (1, "Lookup", "boolean", "Lookup cannot be converted to boolean"),
    ],
)
def test_error_reasons(convert: Any, value: Any, source: str, target: str, reason: str) -> None:
    with pytest.raises(ConversionError) as caught:
        convert(value, source, target)
    assert str(caught.value) == reason


@pytest.mark.parametrize(
    ("target", "low", "high"),
    [("byte", -128, 127), ("short", -32768, 32767), ("long", -(2**31), 2**31 - 1), ("int64", -(2**63), 2**63 - 1)],
)
def test_integer_ranges(convert: Any, target: str, low: int, high: int) -> None:
    assert convert(low, "BigInt", target) == low
    assert convert(high, "BigInt", target) == high
    assert convert(str(high), "String", target) == high
    for outside in (low - 1, high + 1):
        with pytest.raises(ConversionError, match=f"out of range for {target}"):
            convert(outside, "BigInt", target)


@pytest.mark.parametrize("source", SOURCE_TYPES)
@pytest.mark.parametrize("target", TARGET_TYPES)
def test_null_clears_whatever_the_types(convert: Any, source: str, target: str) -> None:
    assert convert(None, source, target) is None


def test_picklist_labels(convert: Any) -> None:
    labels = {100000000: "Silver", 100000001: "Gold"}
    assert convert(100000001, "Picklist", "string", picklist_mode=PicklistMode.LABEL, labels=labels) == "Gold"
    assert convert(1, "State", "memo", picklist_mode=PicklistMode.LABEL, labels={1: "Inactive"}) == "Inactive"
    assert convert(100000001, "Picklist", "long", picklist_mode=PicklistMode.VALUE, labels=labels) == 100000001


def test_picklist_label_mode_errors(convert: Any) -> None:
    with pytest.raises(ConversionError, match="no label"):
        convert(7, "Picklist", "string", picklist_mode=PicklistMode.LABEL, labels={1: "A"})
    with pytest.raises(ConversionError, match="no label"):
        convert(7, "Picklist", "string", picklist_mode=PicklistMode.LABEL, labels=None)
    with pytest.raises(ConversionError, match="cannot be converted"):
        convert(1, "Picklist", "long", picklist_mode=PicklistMode.LABEL, labels={1: "A"})


def test_errors_never_carry_the_value(convert: Any) -> None:
    secret = "zqx.lee@example.com"
    for target in ("long", "boolean", "date", "datetime", "uuid", "double"):
        with pytest.raises(ConversionError) as caught:
            convert(secret, "String", target)
        assert secret not in str(caught.value)
        assert "zqx" not in str(caught.value).lower()


@pytest.mark.parametrize("source", SOURCE_TYPES)
@pytest.mark.parametrize("target", TARGET_TYPES)
def test_every_convertible_pair_can_convert_some_value(convert: Any, source: str, target: str) -> None:
    """The compatibility table and the converter agree: every pair it allows converts a sample value."""
    if not convertible(source, target):
        return
    samples: dict[str, list[Any]] = {
        "Boolean": [True],
        "Integer": [1],
        "BigInt": [1],
        "Decimal": [1],
        "Double": [1.0],
        "Money": [1],
        "String": ["1", "2024-05-01", GUID],
        "Memo": ["1", "2024-05-01", GUID],
        "DateTime": ["2024-05-01T00:00:00Z"],
        "Date": ["2024-05-01"],
        "Picklist": [1],
        "State": [1],
        "Status": [1],
        "Uniqueidentifier": [GUID],
        "Lookup": [GUID],
    }
    converted = []
    for value in samples[source]:
        try:
            converted.append(convert(value, source, target))
        except ConversionError:
            pass
    assert converted, f"{source} -> {target} is allowed but converted nothing"
