"""Entity keys in URLs: `set(<guid>)`, `set(pk=<guid>)`, `set(key='v')`, `set(k1=v1,k2='v2')`.

PA use-alternate-key-reference-record.md: an alternate key names every column of a defined key (lookups by
their `_x_value` lookup property); any other combination fails with the documented message below.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from sandbox.dataverse.odata import ODATA_PARSE, ODataError
from sandbox.dataverse.schema import KeyDef, TableDef

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PAIR = re.compile(r"\s*(?P<name>[A-Za-z_]\w*)\s*=\s*(?P<value>'(?:[^']|'')*'|[^,']+?)\s*(?:,|$)")


@dataclasses.dataclass(frozen=True)
class AlternateKey:
    key: KeyDef
    values: dict[str, Any]  # column logical name -> typed value from the URL


def invalid_key(table: TableDef) -> ODataError:
    name = f"Microsoft.Dynamics.CRM.{table.logical_name}"
    return ODataError(
        400,
        ODATA_PARSE,
        f"The key in the request URI is not valid for resource '{name}'. Ensure that the names and number of key "
        f"properties match the declared or alternate key properties for the resource '{name}'.",
    )


def parse(table: TableDef, text: str) -> str | AlternateKey:
    """The primary key (lower-case GUID) or the alternate key named by the text between the parentheses."""
    text = text.strip()
    if GUID.match(text):
        return text.lower()
    pairs: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        match = _PAIR.match(text, pos)
        if match is None or match.end() == pos:
            raise invalid_key(table)
        pairs[match["name"]] = match["value"]
        pos = match.end()
    if not pairs:
        raise invalid_key(table)
    if list(pairs) == [table.primary_key]:
        value = pairs[table.primary_key]
        if not GUID.match(value):
            raise invalid_key(table)
        return value.lower()
    columns: dict[str, str] = {}
    for name, raw in pairs.items():
        column = table.by_select_name(name) or table.column(name)
        if column is None:
            raise invalid_key(table)
        columns[column.name] = raw
    key = next((k for k in table.keys if set(k.attributes) == set(columns)), None)
    if key is None:
        raise invalid_key(table)
    if key.status != "Active":
        # A key whose index job has not succeeded cannot be used to address rows [U: the exact error].
        raise ODataError(400, ODATA_PARSE, f"The alternate key '{key.schema_name}' is not active ({key.status}).")
    values = {name: _literal(table, name, raw) for name, raw in columns.items()}
    return AlternateKey(key, values)


def _literal(table: TableDef, name: str, raw: str) -> Any:
    """A key value in the column's own type: quoted text and dates, bare numbers, bare GUIDs for lookups."""
    column = table.column(name)
    assert column is not None
    quoted = raw.startswith("'") and raw.endswith("'") and len(raw) >= 2
    if column.type in ("String", "DateTime") and quoted:
        return raw[1:-1].replace("''", "'")
    if column.type == "Lookup" and GUID.match(raw):
        return raw.lower()
    if column.type in ("Integer", "Picklist") and re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if column.type == "Decimal" and re.fullmatch(r"-?\d+(\.\d+)?", raw):
        return float(raw) if "." in raw else int(raw)
    raise invalid_key(table)
