"""Shape a Dataverse row into the Campaign payload of one table mapping, and fingerprint payloads.

Order: replacements on the raw values, conversion to the target types, then the key attribute from the
primary key. A source column absent from the row is left out of the payload (untouched in Campaign);
a column present as null clears its target.

Types: a type declared in the configuration wins over metadata (source_types / target_types); a field
whose value was replaced is converted from the replacement's own JSON type; without any type the value's
JSON type is used, and the target type defaults from the source type (shared.config.types).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from shared.config.model import TableMapping
from shared.config.types import default_target_type
from shared.core.convert import convert_value
from shared.core.errors import ConversionError, RecordError
from shared.core.parse import parse_guid
from shared.core.replacements import replace_row


def project(
    row: Mapping[str, Any],
    table: TableMapping,
    *,
    full: bool,
    source_types: Mapping[str, str],
    target_types: Mapping[str, str],
    labels: Mapping[str, Mapping[int, str]] | None = None,
) -> dict[str, Any]:
    """The payload for Campaign. full=False (an update) keeps only fields with apply_updates, plus the key."""
    values, replaced = replace_row(row, table.replacements)
    payload: dict[str, Any] = {}
    for field in table.fields:
        if not (full or field.apply_updates) or field.source not in values:
            continue
        value = values[field.source]
        if field.source in replaced:
            source_type = natural_type(value, field.source)
        else:
            source_type = field.source_type or source_types.get(field.source) or natural_type(value, field.source)
        target_type = (
            field.target_type or target_types.get(field.target) or default_target_type(source_type, table.picklists)
        )
        try:
            payload[field.target] = convert_value(
                value,
                source_type,
                target_type,
                picklist_mode=table.picklists,
                labels=(labels or {}).get(field.source),
            )
        except ConversionError as e:
            raise RecordError(f"field '{field.source}': {e}", field=field.source) from None
    payload[table.key_attribute] = record_key(row, table)
    return payload


def record_key(row: Mapping[str, Any], table: TableMapping) -> str:
    """The Dataverse id of the row as a lower-case GUID string."""
    value = row.get(table.primary_key)
    if value is None:
        raise RecordError(f"primary key '{table.primary_key}' is missing", field=table.primary_key)
    key = parse_guid(value) if isinstance(value, str) else None
    if key is None:
        raise RecordError(f"primary key '{table.primary_key}' is not a GUID", field=table.primary_key)
    return key


def natural_type(value: Any, field: str) -> str:
    """The Dataverse type a bare JSON value reads as (used for replaced values and fields without metadata)."""
    if value is None or isinstance(value, str):
        return "String"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Double"
    raise RecordError(f"field '{field}': a list or object value cannot be mapped", field=field)


def payload_hash(payload: Mapping[str, Any]) -> str:
    """A stable fingerprint of a payload: sha256 hex of its canonical JSON (sorted keys, no blanks, UTF-8)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
