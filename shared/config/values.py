"""Strict reading of scalar values, shared by the configuration checks and the pure core.

A value in the configuration ("1", true) is compared with a value in a Dataverse row (1, True) by meaning,
not by JSON type. Both layers need the same idea of "the same value", so it lives here, below both.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def parse_bool_word(text: str) -> bool | None:
    """true/false in any case, surrounding blanks ignored; anything else is None."""
    word = text.strip().lower()
    if word == "true":
        return True
    if word == "false":
        return False
    return None


def parse_number_text(text: str) -> Decimal | None:
    """A plain decimal number (sign, digits, point, exponent); no hex, no blanks inside, no NaN/Infinity."""
    stripped = text.strip()
    if not _NUMBER.fullmatch(stripped):
        return None
    try:
        return Decimal(stripped)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
        return None


def to_decimal(value: int | float | Decimal) -> Decimal:
    """Exact decimal of a JSON number; str() of a float gives its shortest repr, so 0.1 stays 0.1."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return Decimal(repr(value))
    return Decimal(value)


def is_number(value: Any) -> bool:
    """True for JSON numbers; bool is an int subclass in Python but never a number here."""
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def scalar_key(value: Any) -> tuple[str, Any]:
    """A comparison key under which values that mean the same compare equal: 1, 1.0 and "1"; true and "TRUE"."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("bool", value)
    if is_number(value):
        try:
            return ("num", to_decimal(value))
        except ValueError:
            return ("text", repr(value))
    if isinstance(value, str):
        word = parse_bool_word(value)
        if word is not None:
            return ("bool", word)
        number = parse_number_text(value)
        if number is not None:
            return ("num", number)
        return ("text", value)
    return ("other", repr(value))


def scalar_text(value: Any) -> str:
    """The canonical text of a scalar: true/false, integers without a point, decimals without an exponent."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)
