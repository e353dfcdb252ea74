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
from collections.abc import Mapping
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
