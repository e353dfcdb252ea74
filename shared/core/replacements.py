"""Replacements: swap a raw Dataverse value for another before conversion (e.g. gendercode 1 -> "male").

Matching is by meaning, in the row value's type: for a number field the configured "1", 1 and 1.0 all match 1;
for a Boolean field true and "true" (any case) match True; a text field matches the configured text exactly
(a configured number or Boolean is compared in its canonical text, "1" or "true"); null matches a missing
value only when the row holds null. The first matching replacement wins, each field is replaced at most once
(no chains), and the new value then goes through the normal conversion to the target type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from shared.config.model import Replacement
from shared.config.values import is_number, scalar_key, scalar_text, to_decimal


def apply_replacements(row: Mapping[str, Any], replacements: Iterable[Replacement]) -> dict[str, Any]:
    """A new dict with the replaced values; the row is not changed."""
    return replace_row(row, replacements)[0]


def replace_row(row: Mapping[str, Any], replacements: Iterable[Replacement]) -> tuple[dict[str, Any], frozenset[str]]:
    """The replaced row and the names of the fields whose value was replaced."""
    result = dict(row)
    replaced: set[str] = set()
    for replacement in replacements:
        field = replacement.field
        if field in replaced or field not in row:
            continue
        if value_matches(row[field], replacement.from_value):
            result[field] = replacement.to_value
            replaced.add(field)
    return result, frozenset(replaced)


def value_matches(value: Any, configured: Any) -> bool:
    """Whether a row value equals a configured value, read in the row value's type."""
    if value is None:
        return configured is None
    if configured is None:
        return False
    if isinstance(value, bool):
        return scalar_key(configured) == ("bool", value)
    if is_number(value):
        try:
            return scalar_key(configured) == ("num", to_decimal(value))
        except ValueError:  # NaN/Infinity in a row matches nothing
            return False
    if isinstance(value, str):
        return value == configured if isinstance(configured, str) else value == scalar_text(configured)
    return False


def compile_matcher(configured: Sequence[Any]) -> Callable[[Any], int | None]:
    """The position of the first configured value a row value matches (as value_matches decides), or None.

    Built once per field: each configured value is filed under the keys it matches (its Boolean, its number,
    its canonical text), so a row value costs one dictionary lookup in its own type instead of a comparison
    with every configured value. The earliest position wins, as in replace_row.
    """
    null: int | None = None
    booleans: dict[bool, int] = {}
    numbers: dict[Decimal, int] = {}
    texts: dict[str, int] = {}
    for position, value in enumerate(configured):
        if value is None:
            null = position if null is None else null
            continue
        kind, key = scalar_key(value)
        if kind == "bool":
            booleans.setdefault(key, position)
        elif kind == "num":
            numbers.setdefault(key, position)  # Decimal hashes by value: 1, 1.0 and Decimal("1.00") meet
        texts.setdefault(value if isinstance(value, str) else scalar_text(value), position)

    def match(value: Any) -> int | None:
        if value is None:
            return null
        if isinstance(value, str):
            return texts.get(value)
        if isinstance(value, bool):
            return booleans.get(value)
        if is_number(value):
            try:
                return numbers.get(to_decimal(value))
            except ValueError:  # NaN/Infinity in a row matches nothing
                return None
        return None

    return match
