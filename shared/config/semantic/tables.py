"""Semantic rules of ingress.tables: limits, one mapping per table, keys, fields, filters, replacements."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from shared.config.findings import Finding
from shared.config.model import (
    FILTER_OPERATORS,
    LIST_OPERATORS,
    MAX_CUSTOM_TABLES,
    MAX_FIELDS_PER_TABLE,
    SOURCE_TYPES,
    TARGET_TYPES,
    VALUELESS_OPERATORS,
    InitialLoad,
    PicklistMode,
)
from shared.config.semantic.raw import RawTable, items, obj, text
from shared.config.types import convertible
from shared.config.values import scalar_key

TABLE_NAME = re.compile(r"[a-z0-9_-]{1,40}")
CUSTOM_RESOURCE = re.compile(r"cus[A-Za-z0-9_]+")
TEXT_OPERATORS = ("contains", "startswith", "endswith")

# What Adobe's integration requires of the one contact -> profile mapping: profiles are keyed by externalId = contactid.
PROFILE_SOURCE = {"entity": "contact", "entitySet": "contacts", "primaryKey": "contactid"}
PROFILE_KEY_ATTRIBUTE = "externalId"


def check_tables(tables: list[RawTable]) -> Iterator[Finding]:
    customs = [t for t in tables if t.resource is not None and not t.is_profile]
    if len(customs) > MAX_CUSTOM_TABLES:
        yield Finding(("ingress", "tables"), f"{len(customs)} custom tables; at most {MAX_CUSTOM_TABLES} are allowed")
    yield from _unique_across_tables(tables)
    first_profile = next((t for t in tables if t.is_profile), None)
    for table in tables:
        if table is first_profile:
            yield from _check_profile(table)
        elif not table.is_profile:
            yield from _check_custom_resource(table)
        yield from _check_fields(table)
        yield from _check_filters(table)
        yield from _check_replacements(table)
        yield from _check_initial_load(table)


def effective_name(table: RawTable) -> str | None:
    """The mapping's name: as written, else its entity set."""
    name = text(table.raw.get("name"))
    return name if name is not None else table.get("source", "entitySet")


def _unique_across_tables(tables: list[RawTable]) -> Iterator[Finding]:
    seen: dict[tuple[str, str], int] = {}
    for table in tables:
        explicit = "name" in table.raw
        entity_set = table.get("source", "entitySet")
        checks = [
            ("entity", ("source", "entity"), table.get("source", "entity"), "Dynamics table"),
            ("entitySet", ("source", "entitySet"), entity_set, "Dynamics entity set"),
            ("resource", ("target", "resource"), table.resource, "Campaign resource"),
        ]
        duplicate_set = False
        for kind, where, value, what in checks:
            if value is not None and seen.setdefault((kind, value), table.index) != table.index:
                duplicate_set = duplicate_set or kind == "entitySet"
                yield Finding(
                    (*table.at, *where), f"{what} '{value}' is already mapped by tables[{seen[(kind, value)]}]"
                )
        name = effective_name(table)
        if name is None:
            continue
        if not explicit and not TABLE_NAME.fullmatch(name):
            yield Finding((*table.at, "source", "entitySet"), "cannot serve as the mapping name; set 'name'")
        if seen.setdefault(("name", name), table.index) != table.index and not duplicate_set:
            name_at = ("name",) if explicit else ("source", "entitySet")
            yield Finding((*table.at, *name_at), f"name '{name}' is already used by tables[{seen[('name', name)]}]")


def _check_profile(table: RawTable) -> Iterator[Finding]:
    for key, required in PROFILE_SOURCE.items():
        if table.get("source", key) not in (None, required):
            yield Finding((*table.at, "source", key), f"must be '{required}' for the profile mapping")
    if table.get("target", "keyAttribute") not in (None, PROFILE_KEY_ATTRIBUTE):
        yield Finding(
            (*table.at, "target", "keyAttribute"),
            f"must be '{PROFILE_KEY_ATTRIBUTE}' for the profile mapping (externalId holds the contactid)",
        )


def _check_custom_resource(table: RawTable) -> Iterator[Finding]:
    if table.resource is not None and not CUSTOM_RESOURCE.fullmatch(table.resource):
        yield Finding((*table.at, "target", "resource"), "must be 'profile' or a custom resource named cus<Name>")


def _check_fields(table: RawTable) -> Iterator[Finding]:
    fields = table.fields
    if len(items(table.raw.get("fields"))) > MAX_FIELDS_PER_TABLE:
        count = len(items(table.raw.get("fields")))
        yield Finding((*table.at, "fields"), f"{count} fields; at most {MAX_FIELDS_PER_TABLE} are allowed per table")
    key_attribute = table.get("target", "keyAttribute")
    targets: dict[str, int] = {}
    sources: dict[str, int] = {}
    picklists = _picklist_mode(table)
    for index, field in fields:
        at = (*table.at, "fields", index)
        target, source = text(field.get("target")), text(field.get("source"))
        if target is not None and target == key_attribute:
            yield Finding((*at, "target"), f"'{target}' is the key attribute, filled from the primary key")
        elif target is not None and targets.setdefault(target, index) != index:
            yield Finding((*at, "target"), f"'{target}' is already the target of fields[{targets[target]}]")
        if source is not None and sources.setdefault(source, index) != index:
            yield Finding((*at, "source"), f"'{source}' is already mapped by fields[{sources[source]}]")
        source_type, target_type = text(field.get("sourceType")), text(field.get("targetType"))
        if source_type in SOURCE_TYPES and target_type in TARGET_TYPES:
            yield from _check_types(at, str(source_type), str(target_type), picklists)


def _check_types(at: tuple[str | int, ...], source: str, target: str, picklists: PicklistMode) -> Iterator[Finding]:
    if not convertible(source, target, picklists):
        suffix = " (picklists are sent as labels)" if picklists is PicklistMode.LABEL else ""
        yield Finding((*at, "targetType"), f"{source} cannot be converted to {target}{suffix}")


def _picklist_mode(table: RawTable) -> PicklistMode:
    mode = table.get("options", "picklists")
    return PicklistMode.LABEL if mode == PicklistMode.LABEL.value else PicklistMode.VALUE


def _check_filters(table: RawTable) -> Iterator[Finding]:
    for index, rule in enumerate(items(obj(table.raw.get("filters")).get("rules"))):
        if isinstance(rule, dict):
            yield from _check_rule((*table.at, "filters", "rules", index, "value"), rule)


def _check_rule(at: tuple[str | int, ...], rule: dict[str, Any]) -> Iterator[Finding]:
    operator = text(rule.get("operator"))
    if operator not in FILTER_OPERATORS:
        return  # the schema reports unknown operators
    value = rule.get("value")
    if operator in LIST_OPERATORS:
        if not isinstance(value, list) or not value:
            yield Finding(at, f"operator '{operator}' needs a non-empty list")
    elif operator in VALUELESS_OPERATORS:
        if value is not None:
            yield Finding(at, f"operator '{operator}' takes no value")
    elif value is None or isinstance(value, list):
        yield Finding(at, f"operator '{operator}' needs a single value (test for no value with null/notnull)")
    elif operator in TEXT_OPERATORS and not isinstance(value, str):
        yield Finding(at, f"operator '{operator}' needs a text value")


def _check_replacements(table: RawTable) -> Iterator[Finding]:
    mapped = {text(f.get("source")) for _, f in table.fields} if table.fields_readable else None
    seen: dict[tuple[str, tuple[str, Any]], int] = {}
    for index, replacement in enumerate(items(table.raw.get("replacements"))):
        if not isinstance(replacement, dict):
            continue
        at = (*table.at, "replacements", index)
        field = text(replacement.get("field"))
        if field is None:
            continue
        if mapped is not None and field not in mapped:
            yield Finding((*at, "field"), f"'{field}' is not a mapped source field of this table")
        if "from" in replacement:
            # Values equal by meaning (1, 1.0, "1"; true, "true") would match the same row value: ambiguous.
            first = seen.setdefault((field, scalar_key(replacement["from"])), index)
            if first != index:
                yield Finding((*at, "from"), f"same field and from value as replacements[{first}]")


def _check_initial_load(table: RawTable) -> Iterator[Finding]:
    options = obj(table.raw.get("options"))
    if options.get("initialLoad") == InitialLoad.FILE.value and "initialTransfer" not in options:
        yield Finding(
            (*table.at, "options", "initialTransfer"),
            "required with initialLoad 'file': the Campaign import workflow the files are signalled to "
            '({"workflow": "<ID>", "signal": "signal1"})',
        )
