"""Row filters: every operator, AND vs OR, type coercion of the configured value, missing values.

Every case runs twice: through passes() (the reference) and through compile_filters() (the compiled form the
flows use per row); both must give the literal expected result, or the same FilterError.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from shared.config.model import Combine, FilterRule, FilterSet
from shared.core.errors import FilterError, RecordError
from shared.core.filters import compile_filters, compile_rule, passes, rule_passes

Passes = Callable[[Mapping[str, Any], FilterSet], bool]


def compiled(row: Mapping[str, Any], filters: FilterSet) -> bool:
    return compile_filters(filters)(row)


@pytest.fixture(params=[passes, compiled], ids=["reference", "compiled"])
def passes_fn(request: pytest.FixtureRequest) -> Passes:
    return request.param


def one(operator: str, value: Any = None, field: str = "f") -> FilterSet:
    return FilterSet(rules=(FilterRule(field, operator, value),))


def check(passes_fn: Passes, row_value: Any, operator: str, value: Any = None) -> bool:
    return passes_fn({"f": row_value}, one(operator, value))


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
        # a date that does not exist is text, on either side
        ("2024-01-01", "lt", "2024-02-30", True),
        ("2024-03-01", "lt", "2024-02-30", False),
        ("2024-02-30", "gt", "2024-02-29T23:00:00Z", True),
        ("2024-05-01", "eq", "2024-05-01 00:00", True),
    ],
)
def test_operator(passes_fn: Passes, row_value: Any, operator: str, value: Any, expected: bool) -> None:
    assert check(passes_fn, row_value, operator, value) is expected


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
def test_missing_and_null_values(passes_fn: Passes, operator: str, value: Any, expected: bool) -> None:
    assert passes_fn({"f": None}, one(operator, value)) is expected
    assert passes_fn({}, one(operator, value)) is expected


def test_no_rules_pass_everything(passes_fn: Passes) -> None:
    assert passes_fn({}, FilterSet()) is True
    assert passes_fn({"statecode": 1}, FilterSet(combine=Combine.OR)) is True


def test_and_versus_or(passes_fn: Passes) -> None:
    rules = (FilterRule("statecode", "eq", 0), FilterRule("lastname", "startswith", "L"))
    both = {"statecode": 0, "lastname": "Lee"}
    first = {"statecode": 0, "lastname": "Kim"}
    second = {"statecode": 1, "lastname": "Lee"}
    neither = {"statecode": 1, "lastname": "Kim"}
    and_set = FilterSet(rules=rules, combine=Combine.AND)
    or_set = FilterSet(rules=rules, combine=Combine.OR)
    assert [passes_fn(r, and_set) for r in (both, first, second, neither)] == [True, False, False, False]
    assert [passes_fn(r, or_set) for r in (both, first, second, neither)] == [True, True, True, False]


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
        (5, "eq", float("nan")),
    ],
)
def test_values_that_cannot_be_compared_raise(passes_fn: Passes, row_value: Any, operator: str, value: Any) -> None:
    with pytest.raises(FilterError) as caught:
        check(passes_fn, row_value, operator, value)
    assert isinstance(caught.value, RecordError)
    assert caught.value.field == "f"
    assert "abc" not in str(caught.value) and "yes" not in str(caught.value)


@pytest.mark.parametrize(
    ("row_value", "value", "reason"),
    [
        (5, "abc", "filter on 'f': the configured value does not match the field's type"),
        (True, 1, "filter on 'f': the configured value does not match the field's type"),
        ([1], 1, "filter on 'f': the row value is not a scalar"),
        (float("nan"), 1, "filter on 'f': not a finite number"),
        (5, float("inf"), "filter on 'f': not a finite number"),
    ],
)
def test_comparison_error_reasons(passes_fn: Passes, row_value: Any, value: Any, reason: str) -> None:
    with pytest.raises(FilterError) as caught:
        check(passes_fn, row_value, "eq", value)
    assert caught.value.reason == reason


def test_a_comparison_error_surfaces_even_when_or_is_already_decided(passes_fn: Passes) -> None:
    filters = FilterSet(
        rules=(FilterRule("statecode", "eq", 0), FilterRule("statuscode", "eq", "active")), combine=Combine.OR
    )
    with pytest.raises(FilterError, match="statuscode"):
        passes_fn({"statecode": 0, "statuscode": 1}, filters)


def test_unknown_operator_raises() -> None:
    rule = FilterRule("f", "like", 1)
    with pytest.raises(FilterError, match="unknown operator"):
        rule_passes(1, rule)
    with pytest.raises(FilterError, match="unknown operator"):
        compile_rule(rule)(1)
    assert rule_passes(None, rule) is False and compile_rule(rule)(None) is False
    mismatched = FilterRule("f", "like", "abc")  # the comparison error comes first
    with pytest.raises(FilterError, match="does not match the field's type"):
        rule_passes(5, mismatched)
    with pytest.raises(FilterError, match="does not match the field's type"):
        compile_rule(mismatched)(5)


def test_filter_fields_need_not_be_mapped_and_row_is_read_only(passes_fn: Passes) -> None:
    row = {"statecode": 0}
    assert passes_fn(row, one("eq", 0, field="statecode")) is True
    assert row == {"statecode": 0}
