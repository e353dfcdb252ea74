"""Row writes shared by the Web API, its bulk actions and the control API: build, validate, store, announce.

Who writes matters: createdby/modifiedby are the calling user, modifiedonbehalfby the application user
when it impersonates someone (MSCRMCallerID), ownerid defaults to the caller (PA create-entity-web-api.md,
impersonate-another-user-web-api.md). Every committed write is announced to the store's listeners
(webhooks) with what the request set, the row before and after, and who made it.
"""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from sandbox.dataverse import keys
from sandbox.dataverse.odata import (
    DUPLICATE_RECORD,
    ODATA_PARSE,
    OPTION_OUT_OF_RANGE,
    VALIDATION,
    ODataError,
    not_modelled,
    record_not_found,
    unknown_property,
)
from sandbox.dataverse.schema import Column, KeyDef, TableDef
from sandbox.dataverse.store import Row, Store, Table

DUPLICATE_KEY = "0x80060892"  # DuplicateRecordEntityKey (PA web service error codes)
NOT_SUPPORTED = "0x80040800"  # [U] code for "The 'Create' method does not support entities of type ..."


@dataclasses.dataclass(frozen=True)
class Caller:
    """The systemuser a write is made as, and the application user acting for it when impersonating."""

    user_id: str
    on_behalf_of: str | None = None


@dataclasses.dataclass(frozen=True)
class WriteEvent:
    message: str  # Create, Update or Delete
    table: TableDef
    row_id: str
    changed: tuple[str, ...]  # columns the request set (platform-computed ones included, e.g. fullname)
    pre: Row | None
    post: Row | None
    caller: Caller
    at: float
    correlation_id: str


def duplicate_key(table: TableDef, key: KeyDef) -> ODataError:
    columns = ", ".join(key.attributes)
    return ODataError(
        412,
        DUPLICATE_KEY,
        f"Entity Key {key.schema_name} violated. A record with the same value for {columns} already exists. "
        "A duplicate record cannot be created. Select one or more unique values and try again.",
    )


def read_only_table(table: TableDef, message: str = "Create") -> ODataError:
    if table.logical_name != "activitypointer":
        return not_modelled(f"{message} of {table.logical_name} rows through the Web API")
    return ODataError(
        400, NOT_SUPPORTED, f"The '{message}' method does not support entities of type '{table.logical_name}'."
    )


class Writer:
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock

    # -- operations (callers hold no lock; each takes the store lock) --------------------------
    def create(
        self,
        table: Table,
        body: dict[str, Any],
        caller: Caller,
        *,
        row_id: str | None = None,
        key_values: dict[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> str:
        definition = table.definition
        if not definition.writable:
            raise read_only_table(definition)
        with self.store.lock:
            chosen = row_id or body.get(definition.primary_key)
            new_id = str(chosen or uuid.uuid4()).lower()
            if not keys.GUID.match(new_id):
                raise ODataError(
                    400, ODATA_PARSE, f"Cannot convert the value of '{definition.primary_key}' to Edm.Guid."
                )
            if table.get(new_id) is not None:
                raise ODataError(412, DUPLICATE_RECORD, "A record with matching key values already exists.")
            row, changed = self.new_row(table, new_id, body, caller)
            for name, value in (key_values or {}).items():
                row[name] = value
                changed = (*changed, name)
            conflict = table.conflicting_key(row, new_id)
            if conflict is not None:
                raise duplicate_key(definition, conflict)
            self.store.insert(table, row)
            self._emit("Create", table, new_id, changed, None, row, caller, correlation_id)
        return new_id

    def update(
        self,
        table: Table,
        row_id: str,
        body: dict[str, Any],
        caller: Caller,
        *,
        correlation_id: str | None = None,
    ) -> None:
        definition = table.definition
        if not definition.writable:
            raise read_only_table(definition, "Update")
        with self.store.lock:
            current = table.get(row_id)
            if current is None:
                raise record_not_found(definition.logical_name, row_id)
            row, changed = self.changed_row(table, current, body, caller)
            conflict = table.conflicting_key(row, row_id)
            if conflict is not None:
                raise duplicate_key(definition, conflict)
            pre = dict(current)
            self.store.replace(table, row_id, row)
            self._emit("Update", table, row_id, changed, pre, row, caller, correlation_id)

    def delete(self, table: Table, row_id: str, caller: Caller, *, correlation_id: str | None = None) -> None:
        definition = table.definition
        if not definition.writable:
            raise read_only_table(definition, "Delete")
        with self.store.lock:
            current = table.get(row_id)
            if current is None:
                raise record_not_found(definition.logical_name, row_id)
            pre = dict(current)
            self.store.remove(table, row_id)
            self._emit("Delete", table, row_id, (), pre, None, caller, correlation_id)

    def _emit(
        self,
        message: str,
        table: Table,
        row_id: str,
        changed: tuple[str, ...],
        pre: Row | None,
        post: Row | None,
        caller: Caller,
        correlation_id: str | None,
    ) -> None:
        if not self.store.listeners:
            return
        event = WriteEvent(
            message,
            table.definition,
            row_id,
            tuple(dict.fromkeys(changed)),
            pre,
            dict(post) if post is not None else None,
            caller,
            self.clock(),
            correlation_id or str(uuid.uuid4()),
        )
        self.store.emit(event)

    # -- row building ---------------------------------------------------------------------------
    def new_row(self, table: Table, row_id: str, body: dict[str, Any], caller: Caller) -> tuple[Row, tuple[str, ...]]:
        definition = table.definition
        now = iso_now(self.clock())
        row: Row = {c.name: None for c in definition.columns}
        for column in definition.columns:
            if column.type == "Boolean":
                row[column.name] = False
        row.update(
            {definition.primary_key: row_id, "createdon": now, "modifiedon": now, "statecode": 0, "statuscode": 1}
        )
        row.update({"createdby": caller.user_id, "modifiedby": caller.user_id})
        row["modifiedonbehalfby"] = caller.on_behalf_of
        if definition.column("ownerid") is not None:
            row["ownerid"] = caller.user_id
        if definition.is_activity:
            row["activitytypecode"] = definition.logical_name
        changed = self._apply(table, row, body)
        return row, changed

    def changed_row(
        self, table: Table, current: Row, body: dict[str, Any], caller: Caller
    ) -> tuple[Row, tuple[str, ...]]:
        row = dict(current)
        changed = self._apply(table, row, body)
        row["modifiedon"] = iso_now(self.clock())
        row["modifiedby"] = caller.user_id
        row["modifiedonbehalfby"] = caller.on_behalf_of
        return row, changed

    def _apply(self, table: Table, row: Row, body: dict[str, Any]) -> tuple[str, ...]:
        definition = table.definition
        changed: list[str] = []
        for key, value in body.items():
            if key.endswith("@odata.bind"):
                changed.append(self._bind(definition, row, key[: -len("@odata.bind")], value))
                continue
            if key.startswith("@") or "@" in key:
                continue  # instance annotations such as @odata.type
            column = definition.column(key)
            if column is None or column.type in ("Lookup", "Owner"):
                raise unknown_property(definition, key)
            if column.read_only or column.name == definition.primary_key:
                continue  # system columns are set by the platform
            row[column.name] = checked(definition, column, value)
            changed.append(column.name)
        if definition.logical_name == "contact":
            row["fullname"] = " ".join(p for p in (row.get("firstname"), row.get("lastname")) if p) or None
            if {"firstname", "lastname"} & set(changed):
                changed.append("fullname")
        return tuple(changed)

    def _bind(self, definition: TableDef, row: Row, navigation: str, value: Any) -> str:
        target = definition.navigation(navigation)
        if target is None:
            raise ODataError(
                400,
                ODATA_PARSE,
                f"An undeclared property '{navigation}' which only has property annotations in the payload but no "
                "property value was found in the payload.",
            )
        column, target_logical = target
        if column.read_only:
            return column.name  # createdby and the like are set by the platform
        if value is None:
            row[column.name] = None
            return column.name
        match = re.search(r"([A-Za-z_]\w*)\(([^)]*)\)$", str(value))
        if match is not None and match.group(1) == "teams" and column.type == "Owner":
            raise ODataError(501, NOT_SUPPORTED, "Owner teams are not modelled by the sandbox; bind a systemuser.")
        target_table = self.store.tables.get(target_logical)
        if match is None or target_table is None or match.group(1) != target_table.definition.entity_set:
            raise ODataError(
                400, ODATA_PARSE, f"The @odata.bind value of '{navigation}' is not a valid entity reference."
            )
        target_id = resolve(target_table, match.group(2))
        if target_id is None:
            raise record_not_found(target_logical, match.group(2))
        row[column.name] = target_id
        row[f"{column.name}@logicalname"] = target_logical
        return column.name


def resolve(table: Table, key_text: str) -> str | None:
    """The id of the row a URL key names (primary or alternate key), or None when there is none."""
    parsed = keys.parse(table.definition, key_text)
    if isinstance(parsed, str):
        return parsed if table.get(parsed) is not None else None
    values = tuple(parsed.values[name] for name in parsed.key.attributes)
    return table.find_by_key(parsed.key, values)


def iso_now(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


_EDM = {
    "String": "Edm.String",
    "Memo": "Edm.String",
    "Boolean": "Edm.Boolean",
    "Integer": "Edm.Int32",
    "BigInt": "Edm.Int64",
    "Picklist": "Edm.Int32",
    "State": "Edm.Int32",
    "Status": "Edm.Int32",
    "Decimal": "Edm.Decimal",
    "Double": "Edm.Double",
    "Money": "Edm.Decimal",
    "DateTime": "Edm.DateTimeOffset",
    "Uniqueidentifier": "Edm.Guid",
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def checked(definition: TableDef, column: Column, value: Any) -> Any:
    """Validate one written value. Messages never echo the value (it may be personal data)."""
    if value is None:
        return None
    kind = column.type
    ok = {
        "String": isinstance(value, str),
        "Memo": isinstance(value, str),
        "Boolean": isinstance(value, bool),
        "Integer": _is_int(value),
        "BigInt": _is_int(value),
        "Picklist": _is_int(value),
        "State": _is_int(value),
        "Status": _is_int(value),
        "Decimal": _is_number(value),
        "Double": _is_number(value),
        "Money": _is_number(value),
        "DateTime": isinstance(value, str) and bool((_DATE if column.date_only else _DATETIME).match(value)),
        "Uniqueidentifier": isinstance(value, str) and bool(keys.GUID.match(value)),
    }.get(kind, True)
    if not ok:
        raise ODataError(
            400,
            ODATA_PARSE,
            f"Cannot convert the value of property '{column.name}' to the expected type '{_EDM.get(kind)}'.",
        )
    if column.max_length is not None and isinstance(value, str) and len(value) > column.max_length:
        raise ODataError(
            400,
            VALIDATION,
            f"A validation error occurred.  The length of the '{column.name}' attribute of the "
            f"'{definition.logical_name}' entity exceeded the maximum allowed length of '{column.max_length}'.",
        )
    if kind in ("Picklist", "State", "Status") and column.options and value not in {v for v, _ in column.options}:
        raise ODataError(
            400,
            OPTION_OUT_OF_RANGE,
            f"A validation error occurred. The value {value} of '{column.name}' on record of type "
            f"'{definition.logical_name}' is outside the valid range.",
        )
    return value.lower() if kind == "Uniqueidentifier" else value
