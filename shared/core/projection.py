"""Shape a Dataverse row into the Campaign payload of one table mapping, and fingerprint payloads.

Order: replacements on the raw values, conversion to the target types, then the key attribute from the
primary key. A source column absent from the row is left out of the payload (untouched in Campaign);
a column present as null clears its target.

Types: a type declared in the configuration wins over metadata (source_types / target_types); a field
whose value was replaced is converted from the replacement's own JSON type; without any type the value's
JSON type is used, and the target type defaults from the source type (shared.config.types).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from shared.config.model import FieldMapping, TableMapping
from shared.config.types import default_target_type
from shared.core.convert import Converter, compile_converter, convert_value, unchanged_type
from shared.core.errors import ConversionError, RecordError
from shared.core.parse import parse_guid
from shared.core.replacements import compile_matcher, replace_row


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


@dataclasses.dataclass(frozen=True)
class _Replaced:
    """A replacement's outcome for one field: its value is a constant, so it is converted once."""

    value: Any = None
    error: str | None = None  # the RecordError reason, raised each time the replacement applies


class _CompiledField(NamedTuple):  # a tuple: unpacked once per field and row, the hot loop of a projection
    source: str
    target: str
    unchanged: type | None  # values of exactly this type are their own result (convert would return them)
    convert: Converter  # raises ConversionError, or RecordError for a value no type can read
    match: Callable[[Any], int | None] | None  # position in `replaced`, None when nothing matches
    replaced: tuple[_Replaced, ...]


class CompiledProjection:
    """project() for one table mapping and one set of resolved types, with every per-field decision taken once.

    Same payloads, same RecordErrors (same reasons, same fields, same order of checks) as project() with the
    same arguments; `renames` maps payload names to the instance's attribute names, the key attribute too.
    Build it once per run and table (compile_projection); it holds no per-row state, so threads may share it.
    """

    def __init__(
        self, table: TableMapping, fields: tuple[_CompiledField, ...], updates: tuple[_CompiledField, ...], key: str
    ) -> None:
        self.table = table
        self._full = fields
        self._updates = updates
        self._key_target = key

    def project(self, row: Mapping[str, Any], *, full: bool) -> dict[str, Any]:
        """The payload for Campaign. full=False (an update) keeps only fields with apply_updates, plus the key."""
        payload: dict[str, Any] = {}
        for source, target, unchanged, convert, match, replacements in self._full if full else self._updates:
            if source not in row:
                continue
            value = row[source]
            if match is not None:
                position = match(value)
                if position is not None:
                    replaced = replacements[position]
                    if replaced.error is not None:
                        raise RecordError(replaced.error, field=source)
                    payload[target] = replaced.value
                    continue
            if value is None or type(value) is unchanged:
                payload[target] = value  # null clears; text to text, Boolean to Boolean: nothing to convert
                continue
            try:
                payload[target] = convert(value)
            except ConversionError as e:
                raise RecordError(f"field '{source}': {e}", field=source) from None
        payload[self._key_target] = record_key(row, self.table)
        return payload

    def record_key(self, row: Mapping[str, Any]) -> str:
        return record_key(row, self.table)


def compile_projection(
    table: TableMapping,
    *,
    source_types: Mapping[str, str],
    target_types: Mapping[str, str],
    labels: Mapping[str, Mapping[int, str]] | None = None,
    renames: Mapping[str, str] | None = None,
) -> CompiledProjection:
    """Resolve, per field, its converter, replacement lookup, target name and apply-updates flag (see project)."""
    renames = renames or {}
    compiled = tuple(_compile_field(field, table, source_types, target_types, labels or {}, renames)
                     for field in table.fields)  # fmt: skip
    updates = tuple(c for c, field in zip(compiled, table.fields, strict=True) if field.apply_updates)
    key = renames.get(table.key_attribute, table.key_attribute)
    return CompiledProjection(table, compiled, updates, key)


def _compile_field(
    field: FieldMapping,
    table: TableMapping,
    source_types: Mapping[str, str],
    target_types: Mapping[str, str],
    labels: Mapping[str, Mapping[int, str]],
    renames: Mapping[str, str],
) -> _CompiledField:
    field_labels = labels.get(field.source)

    def target_type(source_type: str) -> str:
        return field.target_type or target_types.get(field.target) or default_target_type(source_type, table.picklists)

    def converter(source_type: str) -> Converter:
        return compile_converter(
            source_type, target_type(source_type), picklist_mode=table.picklists, labels=field_labels
        )

    declared = field.source_type or source_types.get(field.source)
    convert = converter(declared) if declared else _by_natural_type(field.source, converter)
    unchanged = unchanged_type(declared, target_type(declared)) if declared else None
    replacements = [r for r in table.replacements if r.field == field.source]
    replaced = tuple(_replaced(r.to_value, field.source, converter) for r in replacements)
    match = compile_matcher([r.from_value for r in replacements]) if replacements else None
    return _CompiledField(field.source, renames.get(field.target, field.target), unchanged, convert, match, replaced)


def _by_natural_type(source: str, converter: Callable[[str], Converter]) -> Converter:
    """Without a declared or metadata type each value's JSON type decides: one converter per Python type."""
    by_type: dict[type, Converter] = {}

    def convert(value: Any) -> Any:
        chosen = by_type.get(type(value))
        if chosen is None:
            # natural_type depends on the value's type only; racing threads store equal converters.
            chosen = by_type[type(value)] = converter(natural_type(value, source))
        return chosen(value)

    return convert


def _replaced(value: Any, source: str, converter: Callable[[str], Converter]) -> _Replaced:
    """A replacement's value converted from its own JSON type, or the reason it cannot be (as project says)."""
    try:
        return _Replaced(value=converter(natural_type(value, source))(value))
    except ConversionError as e:
        return _Replaced(error=f"field '{source}': {e}")
    except RecordError as e:
        return _Replaced(error=e.reason)


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
