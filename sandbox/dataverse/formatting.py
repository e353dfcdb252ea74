"""Instance annotations on read rows: formatted values and lookup details (Prefer: odata.include-annotations).

PA webapi/query/select-columns.md: formatted values are the labels of choice, yes/no, status and status
reason columns, the primary name of lookup and owner targets, currency values with their symbol and dates in
the user's time zone; `<property>@OData.Community.Display.V1.FormattedValue` comes before the value.
Lookups also carry `@Microsoft.Dynamics.CRM.lookuplogicalname` and `...associatednavigationproperty`.
[U]: the sandbox's users work in UTC with en-US formats and US dollars; numbers get no formatted value.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from sandbox.dataverse.schema import Column, TableDef

FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_LOGICAL_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
NAVIGATION = "Microsoft.Dynamics.CRM.associatednavigationproperty"
KNOWN = (FORMATTED, NAVIGATION, LOOKUP_LOGICAL_NAME)

NameOf = Callable[[str, str], str | None]  # (target logical name, id) -> primary name


def requested(preference: str | None) -> tuple[str, ...]:
    """The annotation terms a preference value asks for ("*", "Microsoft.Dynamics.CRM.*", exact names)."""
    if not preference:
        return ()
    wanted: list[str] = []
    for term in (t.strip() for t in preference.split(",")):
        if term == "*":
            return KNOWN
        if term.endswith(".*"):
            wanted += [k for k in KNOWN if k.startswith(term[:-1])]
        elif term in KNOWN:
            wanted.append(term)
    return tuple(dict.fromkeys(wanted))


def annotate(
    row: dict[str, Any], columns: list[Column], table: TableDef, terms: tuple[str, ...], name_of: NameOf
) -> dict[str, Any]:
    """The projected row with the requested annotations, each just before its property."""
    out: dict[str, Any] = {"@odata.etag": f'W/"{row.get("versionnumber", 0)}"'}
    for column in columns:
        value = row.get(column.name)
        prop = column.select_name
        if value is not None:
            if FORMATTED in terms:
                text = formatted(column, value, row, name_of)
                if text is not None:
                    out[f"{prop}@{FORMATTED}"] = text
            if column.type in ("Lookup", "Owner"):
                target = row.get(f"{column.name}@logicalname") or (column.targets[0] if column.targets else None)
                if NAVIGATION in terms:
                    out[f"{prop}@{NAVIGATION}"] = _navigation(column, target)
                if LOOKUP_LOGICAL_NAME in terms:
                    out[f"{prop}@{LOOKUP_LOGICAL_NAME}"] = target
        out[prop] = value
    return out


def _navigation(column: Column, target: str | None) -> str:
    for navigation, candidate in column.navigation:
        if candidate == target:
            return navigation
    return column.name


def formatted(column: Column, value: Any, row: dict[str, Any], name_of: NameOf) -> str | None:
    kind = column.type
    if kind in ("Picklist", "State", "Status"):
        return dict(column.options).get(value)
    if kind == "Boolean":
        return dict(column.options).get(1 if value else 0)
    if kind in ("Lookup", "Owner"):
        target = row.get(f"{column.name}@logicalname") or (column.targets[0] if column.targets else None)
        return name_of(target, value) if target else None
    if kind == "Money":
        return f"${value:,.2f}"
    if kind == "DateTime" and isinstance(value, str):
        return _date_text(value, column)
    return None


def _date_text(value: str, column: Column) -> str:
    parsed = datetime.datetime.fromisoformat(value)
    date = f"{parsed.month}/{parsed.day}/{parsed.year}"
    if column.date_format == "DateOnly" or len(value) == 10:
        return date
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.UTC)
    hour = parsed.hour % 12 or 12
    return f"{date} {hour}:{parsed.minute:02d} {'AM' if parsed.hour < 12 else 'PM'}"
