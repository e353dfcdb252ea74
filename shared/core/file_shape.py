"""A shaped payload (TableShape.payload) as one line of a Campaign import file (docs/file-format.md).

The payload is what the API path would send; here each value becomes file text by its target type: dates
YYYY/MM/DD, date-times YYYY/MM/DD HH:MM:SS (UTC), booleans 1/0, numbers plain, text quoted where needed. The
header is the shape's columns (Campaign attribute names, instance spelling, the key last). No I/O.

It runs once per exported row, so the per-value work is decided once per file: each column gets the formatter
of its target type, and a line is first joined as it is and checked once for anything that would need quotes
(a quote, a line break, a separator inside a value, whitespace at a value's edge); only such a line goes
through the field-by-field quoting of shared.core.delimited.encode_line, which it then equals.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from shared.core.delimited import campaign_date, campaign_datetime, cell, encode_line
from shared.core.errors import RecordError
from shared.core.shape import TableShape

Formatter = Callable[[Any], str]


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if type(value) is str else cell(value)


def _boolean(value: Any) -> str:
    if value is True:
        return "1"
    if value is False:
        return "0"
    return "" if value is None else cell(value)


def _integer(value: Any) -> str:
    if value is None:
        return ""
    return str(value) if type(value) is int else cell(value)


def _date(value: Any) -> str:
    if value is None:
        return ""
    if type(value) is not str:
        return cell(value)
    if len(value) == 10 and value[4] == "-" and value[7] == "-":  # the projection's YYYY-MM-DD
        return f"{value[:4]}/{value[5:7]}/{value[8:]}"
    return campaign_date(value) or ""


def _datetime(value: Any) -> str:
    if value is None:
        return ""
    if type(value) is not str:
        return cell(value)
    if len(value) == 20 and value[10] == "T" and value[19] == "Z":  # the projection's YYYY-MM-DDTHH:MM:SSZ
        return f"{value[:4]}/{value[5:7]}/{value[8:10]} {value[11:19]}"
    return campaign_datetime(value) or ""


_BY_TARGET_TYPE: dict[str, Formatter] = {
    "string": _text,
    "memo": _text,
    "uuid": _text,
    "boolean": _boolean,
    "byte": _integer,
    "short": _integer,
    "long": _integer,
    "int64": _integer,
    "date": _date,
    "datetime": _datetime,
}


class FileShaper:
    """Header and lines of one table's import file."""

    def __init__(self, columns: tuple[str, ...], column_types: Mapping[str, str], separator: str) -> None:
        self.columns = columns
        self.separator = separator
        self._formatters = [(name, _BY_TARGET_TYPE.get(column_types.get(name, ""), cell)) for name in columns]
        # Text columns (most of them) need no call when the value is already a string: only the others do.
        self._text_columns = [i for i, (_, f) in enumerate(self._formatters) if f is _text]
        self._other_columns = [(i, f) for i, (_, f) in enumerate(self._formatters) if f is not _text]
        self._separators = len(columns) - 1
        self._suspect = _suspicion(separator)

    @classmethod
    def for_shape(cls, shape: TableShape, separator: str) -> FileShaper:
        return cls(shape.columns, column_types(shape), separator)

    def header(self) -> str:
        return encode_line(self.columns, self.separator)

    def line(self, payload: Mapping[str, Any]) -> str:
        """One record with its line end; a column the payload lacks is empty (null)."""
        cells: list[Any] = list(map(payload.get, self.columns))
        try:
            for i in self._text_columns:
                value = cells[i]
                if value.__class__ is not str:
                    cells[i] = _text(value)
            for i, formatter in self._other_columns:
                cells[i] = formatter(cells[i])
        except (TypeError, ValueError):
            reason, field = self._failure(payload)
            raise RecordError(reason, field=field) from None
        text = self.separator.join(cells)
        if not self._suspect(text) and text.count(self.separator) == self._separators:
            return text + "\n"
        return encode_line(cells, self.separator)

    def _failure(self, payload: Mapping[str, Any]) -> tuple[str, str]:
        for name, formatter in self._formatters:
            try:
                formatter(payload.get(name))
            except (TypeError, ValueError) as exc:
                return f"column '{name}': {type(exc).__name__} in file shaping", name
        return "file shaping failed", ""


def _suspicion(separator: str) -> Callable[[str], bool]:
    """Whether a joined line may hold something quoting would touch: a quote, a line break, or whitespace at a
    value's edge. A false alarm only costs the field-by-field path; a miss would be a bug."""
    if separator.isspace():  # tab: whitespace next to a separator is every separator
        search = re.compile(rf'["\r\n]|(?:^|{re.escape(separator)})\s|\s(?:{re.escape(separator)}|$)').search
        return lambda text: search(text) is not None
    other_space = re.compile(r"[^\S ]").search  # whitespace other than a plain space: rare in data, always checked
    before, after = separator + " ", " " + separator

    def suspect(text: str) -> bool:
        return (
            '"' in text
            or before in text
            or after in text
            or text[:1] == " "
            or text[-1:] == " "
            # Every whitespace but the plain space is non-printable: the scan runs only on lines that have one.
            or (not text.isprintable() and other_space(text) is not None)  # also \r and \n
        )

    return suspect


def column_types(shape: TableShape) -> dict[str, str]:
    """Column (instance attribute name) -> the target type its values were converted to."""
    types: dict[str, str] = {}
    for field in shape.table.fields:
        kind = field.target_type or shape.target_types.get(field.target)
        if kind:
            types[shape.renames.get(field.target, field.target)] = kind
    types[shape.renames.get(shape.table.key_attribute, shape.table.key_attribute)] = "string"
    return types
