"""Convert one Dataverse Web API value into the value a Campaign attribute of a given type takes.

Two steps: read the JSON value as its Dataverse type (bool, int, Decimal, str, date, datetime, GUID), then write
that as the Campaign type. Which pairs may convert at all is one table, shared with the configuration checks
(shared.config.types). None is never converted: null clears the target.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shared.config.model import PicklistMode
from shared.config.types import SourceKind, TargetKind, convertible, source_kind, target_kind
from shared.config.values import is_number, parse_bool_word, parse_number_text, scalar_text, to_decimal
from shared.core.errors import ConversionError
from shared.core.parse import format_datetime, parse_date, parse_datetime, parse_guid

# Campaign's integer types are signed: byte 8, short 16, long 32, int64 64 bits.
INTEGER_RANGES = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "long": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
_DECLARED_TEXT = ("String", "Memo")

Read = bool | int | Decimal | str | dt.date | dt.datetime | uuid.UUID


def convert_value(
    value: Any,
    source_type: str,
    target_type: str,
    *,
    picklist_mode: PicklistMode = PicklistMode.VALUE,
    labels: Mapping[int, str] | None = None,
) -> Any:
    """The Campaign value for a Dataverse value; raises ConversionError (naming types, never the value)."""
    if value is None:
        return None
    if not convertible(source_type, target_type, picklist_mode):
        raise ConversionError(f"{source_type} cannot be converted to {target_type}")
    read = _read(value, source_type, picklist_mode, labels)
    return _write(read, source_type, target_type)


def _read(value: Any, source_type: str, mode: PicklistMode, labels: Mapping[int, str] | None) -> Read:
    kind = source_kind(source_type)
    read: Read | None
    if kind is SourceKind.BOOLEAN:
        read = _as_bool(value)
    elif kind in (SourceKind.INTEGER, SourceKind.CODE):
        read = _as_int(value)
        if read is not None and kind is SourceKind.CODE and mode is PicklistMode.LABEL:
            return _label(read, labels)
    elif kind is SourceKind.NUMBER:
        read = _as_decimal(value)
    elif kind is SourceKind.DATETIME:
        read = parse_datetime(value) if isinstance(value, str) else None
    elif kind is SourceKind.DATE:
        read = parse_date(value) if isinstance(value, str) else None
    elif kind is SourceKind.GUID:
        guid = parse_guid(value) if isinstance(value, str) else None
        read = uuid.UUID(guid) if guid else None
    elif isinstance(value, str):
        read = value
    elif source_type not in _DECLARED_TEXT and (isinstance(value, bool) or is_number(value)):
        read = scalar_text(value)  # "other types are sent as strings"
    else:
        read = None
    if read is None:
        raise ConversionError(f"value is not a valid {source_type}")
    return read


def _label(code: int, labels: Mapping[int, str] | None) -> str:
    label = (labels or {}).get(code)
    if label is None:
        raise ConversionError("option code has no label")
    return label


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = parse_bool_word(value)
        return word if word is not None else _bool_of_number(parse_number_text(value))
    if is_number(value):
        return _bool_of_number(_finite_decimal(value))
    return None


def _bool_of_number(number: Decimal | None) -> bool | None:
    if number is not None and number in (0, 1):
        return number == 1
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = _as_decimal(value)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, str):
        return parse_number_text(value)
    if is_number(value):
        return _finite_decimal(value)
    return None


def _finite_decimal(value: Any) -> Decimal | None:
    try:
        return to_decimal(value)
    except ValueError:
        return None


def _write(read: Read, source_type: str, target_type: str) -> Any:
    kind = target_kind(target_type)
    if kind is TargetKind.TEXT:
        return _text(read)
    result: bool | int | float | str | None
    if kind is TargetKind.BOOLEAN:
        result = _as_bool(read)
    elif kind is TargetKind.INTEGER:
        result = _to_integer(read, target_type)
    elif kind is TargetKind.FLOAT:
        result = _to_float(read)
    elif kind is TargetKind.DATE:
        result = _to_date(read)
    elif kind is TargetKind.DATETIME:
        result = _to_datetime(read)
    else:
        result = str(read) if isinstance(read, uuid.UUID) else parse_guid(str(read))
    if result is None:
        raise ConversionError(f"{source_type} value cannot be converted to {target_type}")
    return result


def _text(read: Read) -> str:
    if isinstance(read, dt.datetime):
        return format_datetime(read)
    if isinstance(read, dt.date):
        return read.isoformat()
    return scalar_text(read)


def _to_integer(read: Read, target_type: str) -> int | None:
    number = int(read) if isinstance(read, bool) else _as_int(read)
    if number is None:
        return None
    low, high = INTEGER_RANGES.get(target_type, INTEGER_RANGES["int64"])
    if not low <= number <= high:
        raise ConversionError(f"value is out of range for {target_type}")
    return number


def _to_float(read: Read) -> float | None:
    number = Decimal(int(read)) if isinstance(read, bool) else _as_decimal(read)
    if number is None:
        return None
    result = float(number)
    if not math.isfinite(result):
        raise ConversionError("value is out of range for a floating-point number")
    return result


def _to_date(read: Read) -> str | None:
    if isinstance(read, dt.datetime):
        return read.astimezone(dt.UTC).date().isoformat()  # a point in time falls on its UTC day
    if isinstance(read, dt.date):
        return read.isoformat()
    if isinstance(read, str):
        moment = parse_datetime(read)
        return moment.date().isoformat() if moment else None
    return None


def _to_datetime(read: Read) -> str | None:
    if isinstance(read, dt.datetime):
        return format_datetime(read)
    if isinstance(read, dt.date):
        return f"{read.isoformat()}T00:00:00Z"
    if isinstance(read, str):
        moment = parse_datetime(read)
        return format_datetime(moment) if moment else None
    return None
