"""What Campaign should hold after ingress, computed from the test's own mapping document (the raw JSON)
with a deliberately small model of the mapping rules: not the connector's projection, filters or
conversion code, so a bug there cannot hide in the oracle.

It covers what the end-to-end tests map: replacements by equal value, Picklist codes as text, Booleans,
integers, dates as Dataverse gives them, strings; filter rules eq / ne / null / notnull combined with
and / or. Anything else fails loudly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()


def expected_records(document: Mapping[str, Any], table_name: str, rows: list[dict[str, Any]]) -> dict[str, dict]:
    [table] = [t for t in document["ingress"]["tables"] if t["name"] == table_name]
    return {str(row[table["source"]["primaryKey"]]).lower(): shaped(table, row) for row in rows if passes(table, row)}


def passes(table: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    filters = table.get("filters") or {}
    rules = filters.get("rules") or []
    if not rules:
        return True
    results = [_rule(rule, row.get(rule["field"])) for rule in rules]
    return all(results) if filters.get("combine", "and") == "and" else any(results)


def _rule(rule: Mapping[str, Any], value: Any) -> bool:
    operator = rule["operator"]
    if operator == "null":
        return value is None
    if operator == "notnull":
        return value is not None
    if operator == "eq":
        return value is not None and value == rule["value"]
    if operator == "ne":
        return value != rule["value"]
    raise NotImplementedError(f"oracle: operator {operator}")


def shaped(table: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    replacements = table.get("replacements") or []
    out: dict[str, Any] = {}
    for field in table["fields"]:
        value = row.get(field["source"], _MISSING)
        if value is _MISSING:
            continue
        replaced = [r["to"] for r in replacements if r["field"] == field["source"] and r["from"] == value]
        if replaced:
            out[field["target"]] = replaced[0]
            continue
        out[field["target"]] = _converted(value, field.get("sourceType"), field.get("targetType"))
    out[table["target"]["keyAttribute"]] = str(row[table["source"]["primaryKey"]]).lower()
    return out


def _converted(value: Any, source_type: str | None, target_type: str | None) -> Any:
    if value is None:
        return None
    if target_type == "string":
        return str(value).lower() if source_type in ("Lookup", "Uniqueidentifier") else str(value)
    if target_type == "boolean":
        assert isinstance(value, bool)
        return value
    if target_type == "long":
        assert isinstance(value, int)
        return value
    if target_type == "date":
        return str(value)[:10]
    raise NotImplementedError(f"oracle: {source_type} -> {target_type}")
