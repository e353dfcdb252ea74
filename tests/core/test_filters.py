"""Row filters: every operator, AND vs OR, type coercion of the configured value, missing values."""

from __future__ import annotations

from typing import Any

import pytest

from shared.config.model import Combine, FilterRule, FilterSet
from shared.core.errors import FilterError, RecordError
from shared.core.filters import passes, rule_passes


def one(operator: str, value: Any = None, field: str = "f") -> FilterSet:
    return FilterSet(rules=(FilterRule(field, operator, value),))


def check(row_value: Any, operator: str, value: Any = None) -> bool:
    return passes({"f": row_value}, one(operator, value))


@pytest.mark.parametrize(
    ("row_value", "operator", "value", "expected"),
    [
        # numbers: the configured value is read as a number, "5" == 5 == 5.0
        (5, "eq", 5, True),
        (5, "eq", "5", True),
        (5, "eq", 5.0, True),
        (5.5, "eq", "5.50", True),
        (5, "eq", 6, False),
        (5, "ne", 6, True),
        (5, "ne", "5", False),
        (5, "lt", 6, True),
        (5, "lt", 5, False),
        (5, "le", 5, True),
        (5, "le", "4", False),
        (5, "gt", 4.5, True),
        (5, "gt", 5, False),
        (5, "ge", 5, True),
        (5, "ge", 6, False),
        (2, "in", (0, 1, "2"), True),
        (3, "in", (0, 1, 2), False),
        (3, "notin", (0, 1, 2), True),
        (1, "notin", ("1",), False),
        (12345, "contains", "234", True),
        (12345, "startswith", "12", True),
        (12345, "endswith", "5", True),
        (12345, "endswith", "4", False),
        (0, "null", None, False),
        (0, "notnull", None, True),
        # Booleans: true/false or "true"/"false" in any case
        (True, "eq", True, True),
        (True, "eq", "TRUE", True),
        (False, "eq", "false", True),
        (False, "ne", True, True),
        (True, "in", (False,), False),
        (True, "notin", (False,), True),
        (False, "null", None, False),
        # text: case-sensitive comparisons, case-insensitive contains/startswith/endswith
        ("Paris", "eq", "Paris", True),
        ("Paris", "eq", "paris", False),
        ("Paris", "ne", "paris", True),
        ("Paris", "in", ("Lyon", "Paris"), True),
        ("Paris", "notin", ("Lyon", "Paris"), False),
        ("b", "lt", "c", True),
        ("b", "gt", "c", False),
        ("b", "ge", "b", True),
        ("b", "le", "a", False),
        ("Paris", "contains", "AR", True),
        ("Paris", "contains", "x", False),
        ("Paris", "startswith", "pA", True),
        ("Paris", "startswith", "ris", False),
        ("Paris", "endswith", "RIS", True),
        ("Paris", "endswith", "Par", False),
        ("", "eq", "", True),
        ("", "notnull", None, True),  # empty text is a value
        ("10", "eq", 10, True),  # a number configured for a text field is compared as its text
        ("10", "lt", "9", True),  # text order, not numeric
        ("true", "eq", True, True),
        # dates and datetimes compare as points in time
        ("2024-05-01T10:20:30Z", "gt", "2024-05-01", True),
        ("2024-05-01T10:20:30Z", "lt", "2024-05-01T10:20:31Z", True),
        ("2024-05-01T10:20:30Z", "eq", "2024-05-01T12:20:30+02:00", True),
        ("2024-05-01T10:20:30Z", "ne", "2024-05-01T10:20:30Z", False),
        ("2024-05-01", "eq", "2024-05-01T00:00:00Z", True),
        ("2024-05-01", "ge", "2024-05-02", False),
        ("2024-05-01", "le", "2024-05-01", True),
        ("2024-05-01", "in", ("2024-01-01", "2024-05-01T00:00:00Z"), True),
        ("2024-05-01T10:20:30Z", "startswith", "2024-05", True),
    ],
)
def test_operator(row_value: Any, operator: str, value: Any, expected: bool) -> None:
    assert check(row_value, operator, value) is expected


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("null", None, True),
        ("notnull", None, False),
        ("eq", 1, False),
        ("ne", 1, True),
        ("lt", 1, False),
        ("le", 1, False),
        ("gt", 1, False),
        ("ge", 1, False),
        ("in", (1, 2), False),
        ("notin", (1, 2), True),
        ("contains", "a", False),
        ("startswith", "a", False),
        ("endswith", "a", False),
    ],
)
def test_missing_and_null_values(operator: str, value: Any, expected: bool) -> None:
    assert passes({"f": None}, one(operator, value)) is expected
    assert passes({}, one(operator, value)) is expected


def test_no_rules_pass_everything() -> None:
    assert passes({}, FilterSet()) is True
    assert passes({"statecode": 1}, FilterSet(combine=Combine.OR)) is True


def test_and_versus_or() -> None:
    rules = (FilterRule("statecode", "eq", 0), FilterRule("lastname", "startswith", "L"))
    both = {"statecode": 0, "lastname": "Lee"}
    first = {"statecode": 0, "lastname": "Kim"}
    second = {"statecode": 1, "lastname": "Lee"}
    neither = {"statecode": 1, "lastname": "Kim"}
    and_set = FilterSet(rules=rules, combine=Combine.AND)
    or_set = FilterSet(rules=rules, combine=Combine.OR)
    assert [passes(r, and_set) for r in (both, first, second, neither)] == [True, False, False, False]
    assert [passes(r, or_set) for r in (both, first, second, neither)] == [True, True, True, False]


@pytest.mark.parametrize(
    ("row_value", "operator", "value"),
    [
        (5, "eq", "abc"),
        (5, "lt", True),
        (5, "in", (1, "x")),
        (True, "eq", 1),
        (True, "eq", "yes"),
        ([1], "eq", 1),
        ({"a": 1}, "contains", "a"),
        (float("nan"), "eq", 1),
    ],
)
def test_values_that_cannot_be_compared_raise(row_value: Any, operator: str, value: Any) -> None:
    with pytest.raises(FilterError) as caught:
        check(row_value, operator, value)
    assert isinstance(caught.value, RecordError)
    assert caught.value.field == "f"
    assert "abc" not in str(caught.value) and "yes" not in str(caught.value)


def test_a_comparison_error_surfaces_even_when_or_is_already_decided() -> None:
    filters = FilterSet(
        rules=(FilterRule("statecode", "eq", 0), FilterRule("statuscode", "eq", "active")), combine=Combine.OR
    )
    with pytest.raises(FilterError, match="statuscode"):
        passes({"statecode": 0, "statuscode": 1}, filters)


def test_unknown_operator_raises() -> None:
    with pytest.raises(FilterError, match="unknown operator"):
        rule_passes(1, FilterRule("f", "like", 1))


def test_filter_fields_need_not_be_mapped_and_row_is_read_only() -> None:
    row = {"statecode": 0}
    assert passes(row, one("eq", 0, field="statecode")) is True
    assert row == {"statecode": 0}
