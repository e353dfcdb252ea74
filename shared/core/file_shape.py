"""A shaped payload (TableShape.payload) as one line of a Campaign import file (docs/file-format.md).

The payload is what the API path would send; here each value becomes file text by its target type: dates
YYYY/MM/DD, date-times YYYY/MM/DD HH:MM:SS (UTC), booleans 1/0, numbers plain, text quoted where needed. The
header is the shape's columns (Campaign attribute names, instance spelling, the key last). Each column's
formatter is chosen once per file, not per value. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shared.core.delimited import campaign_date, campaign_datetime, cell, encode_line
from shared.core.errors import RecordError
from shared.core.shape import TableShape

Formatter = Callable[[Any], str]


def _date(value: Any) -> str:
    if value is None or isinstance(value, str):
        return campaign_date(value) or ""
    return cell(value)


def _datetime(value: Any) -> str:
    if value is None or isinstance(value, str):
        return campaign_datetime(value) or ""
    return cell(value)


_BY_TARGET_TYPE: dict[str, Formatter] = {"date": _date, "datetime": _datetime}


class FileShaper:
    """Header and lines of one table's import file."""

    def __init__(self, columns: tuple[str, ...], column_types: Mapping[str, str], separator: str) -> None:
        self.columns = columns
        self.separator = separator
        self._formatters = [(name, _BY_TARGET_TYPE.get(column_types.get(name, ""), cell)) for name in columns]

    @classmethod
    def for_shape(cls, shape: TableShape, separator: str) -> FileShaper:
        return cls(shape.columns, column_types(shape), separator)

    def header(self) -> str:
        return encode_line(self.columns, self.separator)

    def line(self, payload: Mapping[str, Any]) -> str:
        """One record with its line end; a column the payload lacks is empty (null)."""
        cells = []
        for name, formatter in self._formatters:
            try:
                cells.append(formatter(payload.get(name)))
            except (TypeError, ValueError) as exc:
                raise RecordError(f"column '{name}': {type(exc).__name__} in file shaping", field=name) from None
        return encode_line(cells, self.separator)


def column_types(shape: TableShape) -> dict[str, str]:
    """Column (instance attribute name) -> the target type its values were converted to."""
    types: dict[str, str] = {}
    for field in shape.table.fields:
        kind = field.target_type or shape.target_types.get(field.target)
        if kind:
            types[shape.renames.get(field.target, field.target)] = kind
    types[shape.table.key_attribute] = "string"
    return types
