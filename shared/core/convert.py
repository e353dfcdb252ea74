"""Convert one Dataverse Web API value into the value a Campaign attribute of a given type takes.

Two steps: read the JSON value as its Dataverse type (bool, int, Decimal, str, date, datetime, GUID), then write
that as the Campaign type. Which pairs may convert at all is one table, shared with the configuration checks
(shared.config.types). None is never converted: null clears the target.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import uuid
from collections.abc import Callable, Mapping
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
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits: the form date.isoformat() writes

Read = bool | int | Decimal | str | dt.date | dt.datetime | uuid.UUID
Converter = Callable[[Any], Any]


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


def compile_converter(
    source_type: str,
    target_type: str,
    *,
    picklist_mode: PicklistMode = PicklistMode.VALUE,
    labels: Mapping[int, str] | None = None,
) -> Converter:
    """convert_value with its type decisions taken once: the same results and the same errors, per value.

    For a table's projection, which runs this for every field of every row: the kinds, the compatibility
    check and the read/write dispatch are resolved here, and the common identities (text to text, Boolean
    to Boolean) return the value as it is.
    """
    if not convertible(source_type, target_type, picklist_mode):
        refusal = f"{source_type} cannot be converted to {target_type}"

        def refuse(value: Any) -> Any:
            if value is None:
                return None
            raise ConversionError(refusal)

        return refuse
    read = _compile_read(source_type, picklist_mode, labels)
    write = _compile_write(source_type, target_type)
    unchanged = unchanged_type(source_type, target_type)

    day_to_day = source_kind(source_type) is SourceKind.DATE and target_kind(target_type) is TargetKind.DATE

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if type(value) is unchanged:
            return value
        if day_to_day and type(value) is str and _ISO_DAY.fullmatch(value):
            try:
                dt.date.fromisoformat(value)  # a real day: its ISO text is the value itself
                return value
            except ValueError:
                pass  # not a day (2024-02-30): the general path says why
        return write(read(value))

    return convert


def unchanged_type(source_type: str, target_type: str) -> type | None:
    """The Python type whose values convert to themselves for this pair (checked against _read and _write)."""
    source, target = source_kind(source_type), target_kind(target_type)
    if source is SourceKind.TEXT and target is TargetKind.TEXT:
        return str  # _read keeps text, _text gives it back as it is
    if source is SourceKind.BOOLEAN and target is TargetKind.BOOLEAN:
        return bool
    return None


def _compile_read(source_type: str, mode: PicklistMode, labels: Mapping[int, str] | None) -> Callable[[Any], Read]:
    """_read for one source type: the same branches, chosen once."""
    kind = source_kind(source_type)
    invalid = f"value is not a valid {source_type}"
    parse: Callable[[Any], Read | None]
    if kind is SourceKind.BOOLEAN:
        parse = _as_bool
    elif kind in (SourceKind.INTEGER, SourceKind.CODE):
        if kind is SourceKind.CODE and mode is PicklistMode.LABEL:

            def label_of(value: Any) -> Read:
                code = _as_int(value)
                if code is None:
                    raise ConversionError(invalid)
                return _label(code, labels)

            return label_of
        parse = _as_int
    elif kind is SourceKind.NUMBER:
        parse = _as_decimal
    elif kind is SourceKind.DATETIME:
        parse = _text_parser(parse_datetime)
    elif kind is SourceKind.DATE:
        parse = _text_parser(parse_date)
    elif kind is SourceKind.GUID:
        parse = _text_parser(_as_uuid)
    else:
        parse = _text_reader(source_type not in _DECLARED_TEXT)

    def read(value: Any) -> Read:
        result = parse(value)
        if result is None:
            raise ConversionError(invalid)
        return result

    return read


def _text_parser(parse: Callable[[str], Read | None]) -> Callable[[Any], Read | None]:
    return lambda value: parse(value) if isinstance(value, str) else None


def _as_uuid(text: str) -> uuid.UUID | None:
    guid = parse_guid(text)
    return uuid.UUID(guid) if guid else None


def _text_reader(scalars_as_text: bool) -> Callable[[Any], Read | None]:
    def read(value: Any) -> Read | None:
        if isinstance(value, str):
            return value
        if scalars_as_text and (isinstance(value, bool) or is_number(value)):
            return scalar_text(value)  # "other types are sent as strings"
        return None

    return read


def _compile_write(source_type: str, target_type: str) -> Callable[[Read], Any]:
    """_write for one target type: the same branches, chosen once."""
    kind = target_kind(target_type)
    if kind is TargetKind.TEXT:
        return _text
    produce: Callable[[Read], Any]
    if kind is TargetKind.BOOLEAN:
        produce = _as_bool
    elif kind is TargetKind.INTEGER:
        produce = functools.partial(_to_integer, target_type=target_type)
    elif kind is TargetKind.FLOAT:
        produce = _to_float
    elif kind is TargetKind.DATE:
        produce = _to_date
    elif kind is TargetKind.DATETIME:
        produce = _to_datetime
    else:
        produce = _to_uuid_text
    refusal = f"{source_type} value cannot be converted to {target_type}"

    def write(read: Read) -> Any:
        result = produce(read)
        if result is None:
            raise ConversionError(refusal)
        return result

    return write


def _to_uuid_text(read: Read) -> str | None:
    return str(read) if isinstance(read, uuid.UUID) else parse_guid(str(read))


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
        result = _to_uuid_text(read)
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
