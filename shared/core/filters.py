"""Whether a Dataverse row passes a table's filter set.

Rules:
- No rules: every row passes. AND: every rule must pass; OR: one is enough. Every rule is evaluated, so a
  comparison error surfaces even when an earlier rule already decided the outcome.
- The configured value is read as the row value's type: a number field compares numerically ("5" == 5),
  a Boolean field takes true/false ("true" too), and a text field holding an ISO date/datetime compared
  with an ISO date/datetime compares as points in time (a bare date is midnight UTC). Other text compares
  as text: eq/ne/in/notin/lt/le/gt/ge are case-sensitive, contains/startswith/endswith ignore case.
- A missing or null row value fails every rule except null, ne and notin (null is not equal to anything).
- A value that cannot be compared (a number field against "abc") raises FilterError: a typo in the
  configuration must not silently drop (or, with deleteFilteredOut, delete) every record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from shared.config.model import Combine, FilterRule, FilterSet
from shared.config.values import is_number, parse_bool_word, parse_number_text, scalar_text, to_decimal
from shared.core.errors import FilterError
from shared.core.parse import is_temporal_text, parse_datetime

Comparable = bool | Decimal | str | dt.datetime

_ORDERING = {
    "lt": lambda c: c < 0,
    "le": lambda c: c <= 0,
    "gt": lambda c: c > 0,
    "ge": lambda c: c >= 0,
}


def passes(row: Mapping[str, Any], filters: FilterSet) -> bool:
    if not filters.rules:
        return True
    results = [rule_passes(row.get(rule.field), rule) for rule in filters.rules]
    return all(results) if filters.combine is Combine.AND else any(results)


RowPredicate = Callable[[Mapping[str, Any]], bool]
ValuePredicate = Callable[[Any], bool]


def compile_filters(filters: FilterSet) -> RowPredicate:
    """passes() for one filter set, each rule's operator and configured value resolved once.

    Same results and the same FilterErrors as passes(filters): every rule is still evaluated, in order.
    """
    if not filters.rules:
        return _every_row
    rules = tuple((rule.field, compile_rule(rule)) for rule in filters.rules)
    combine = all if filters.combine is Combine.AND else any

    def check(row: Mapping[str, Any]) -> bool:
        return combine([test(row.get(field)) for field, test in rules])

    return check


def _every_row(row: Mapping[str, Any]) -> bool:
    return True


def compile_rule(rule: FilterRule) -> ValuePredicate:
    """rule_passes(value, rule) as a function of the value alone."""
    operator = rule.operator
    if operator == "null":
        return lambda value: value is None
    if operator == "notnull":
        return lambda value: value is not None
    if operator in ("in", "notin"):
        items = tuple(_compile_compare(item, rule) for item in rule.value)
        wanted = operator == "in"

        def member(value: Any) -> bool:
            if value is None:
                return not wanted
            found = any(compare(value) == 0 for compare in items)
            return found if wanted else not found

        return member
    if operator in ("contains", "startswith", "endswith"):
        part = str(rule.value).casefold()

        def matches(value: Any) -> bool:
            return value is not None and _text_match(operator, _text(value, rule).casefold(), part)

        return matches
    compare = _compile_compare(rule.value, rule)
    decide = _DECISIONS.get(operator)
    if decide is None:
        unknown = f"filter on '{rule.field}': unknown operator '{operator}'"

        def refuse(value: Any) -> bool:
            if value is None:
                return False
            compare(value)  # a comparison error is reported first, as rule_passes does
            raise FilterError(unknown, field=rule.field)

        return refuse
    when_null = operator == "ne"
    return lambda value: when_null if value is None else decide(compare(value))


_DECISIONS: dict[str, Callable[[int], bool]] = {
    "eq": lambda c: c == 0,
    "ne": lambda c: c != 0,
    **_ORDERING,
}


def _compile_compare(configured: Any, rule: FilterRule) -> Callable[[Any], int]:
    """_compare(value, configured, rule) with the configured value read once in each type a row value can take."""
    as_bool = configured if isinstance(configured, bool) else _bool_word(configured)
    as_number: Decimal | FilterError | None
    try:
        as_number = _decimal(configured, rule) if is_number(configured) else _number_text(configured)
    except FilterError as error:
        as_number = error
    moment = parse_datetime(configured) if isinstance(configured, str) and is_temporal_text(configured) else None
    text = scalar_text(configured)
    mismatch = f"filter on '{rule.field}': the configured value does not match the field's type"

    def compare(value: Any) -> int:
        if isinstance(value, bool):
            if as_bool is None:
                raise FilterError(mismatch, field=rule.field)
            return int(value) - int(as_bool)
        if is_number(value):
            left = _decimal(value, rule)
            if isinstance(as_number, FilterError):
                raise FilterError(as_number.reason, field=rule.field)
            if as_number is None:
                raise FilterError(mismatch, field=rule.field)
            return (left > as_number) - (left < as_number)
        if isinstance(value, str):
            if moment is not None and is_temporal_text(value):
                when = parse_datetime(value)
                if when is not None:
                    return (when > moment) - (when < moment)
            return (value > text) - (value < text)
        raise FilterError(f"filter on '{rule.field}': the row value is not a scalar", field=rule.field)

    return compare


def rule_passes(value: Any, rule: FilterRule) -> bool:
    operator = rule.operator
    if operator == "null":
        return value is None
    if operator == "notnull":
        return value is not None
    if value is None:
        return operator in ("ne", "notin")
    if operator in ("in", "notin"):
        found = any(_compare(value, item, rule) == 0 for item in rule.value)
        return found if operator == "in" else not found
    if operator in ("contains", "startswith", "endswith"):
        return _text_match(operator, _text(value, rule).casefold(), str(rule.value).casefold())
    order = _compare(value, rule.value, rule)
    if operator == "eq":
        return order == 0
    if operator == "ne":
        return order != 0
    if operator in _ORDERING:
        return bool(_ORDERING[operator](order))
    raise FilterError(f"filter on '{rule.field}': unknown operator '{operator}'", field=rule.field)


def _text_match(operator: str, text: str, part: str) -> bool:
    if operator == "contains":
        return part in text
    if operator == "startswith":
        return text.startswith(part)
    return text.endswith(part)


def _compare(value: Any, configured: Any, rule: FilterRule) -> int:
    left, right = _coerce(value, configured, rule)
    if isinstance(left, bool) and isinstance(right, bool):
        return int(left) - int(right)  # only eq/ne are meaningful; ordering false < true is harmless
    return (left > right) - (left < right)  # type: ignore[operator]


def _coerce(value: Any, configured: Any, rule: FilterRule) -> tuple[Comparable, Comparable]:
    """The row value and the configured value as the same comparable type, read as the row value's type."""
    right: Comparable | None = None
    if isinstance(value, bool):
        left: Comparable = value
        right = configured if isinstance(configured, bool) else _bool_word(configured)
    elif is_number(value):
        left = _decimal(value, rule)
        right = _decimal(configured, rule) if is_number(configured) else _number_text(configured)
    elif isinstance(value, str):
        moments = _moments(value, configured)
        if moments:
            return moments
        left, right = value, scalar_text(configured)
    else:
        raise FilterError(f"filter on '{rule.field}': the row value is not a scalar", field=rule.field)
    if right is None:
        raise FilterError(
            f"filter on '{rule.field}': the configured value does not match the field's type", field=rule.field
        )
    return left, right


def _moments(value: str, configured: Any) -> tuple[dt.datetime, dt.datetime] | None:
    if not (isinstance(configured, str) and is_temporal_text(value) and is_temporal_text(configured)):
        return None
    left, right = parse_datetime(value), parse_datetime(configured)
    return (left, right) if left and right else None


def _bool_word(configured: Any) -> bool | None:
    return parse_bool_word(configured) if isinstance(configured, str) else None


def _number_text(configured: Any) -> Decimal | None:
    return parse_number_text(configured) if isinstance(configured, str) else None


def _decimal(value: Any, rule: FilterRule) -> Decimal:
    try:
        return to_decimal(value)
    except ValueError:
        raise FilterError(f"filter on '{rule.field}': not a finite number", field=rule.field) from None


def _text(value: Any, rule: FilterRule) -> str:
    if isinstance(value, str | bool) or is_number(value):
        return scalar_text(value)
    raise FilterError(f"filter on '{rule.field}': the row value is not a scalar", field=rule.field)
