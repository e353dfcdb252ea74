"""Which Dataverse source types can become which Campaign target types.

One table, read by the configuration checks (declared types) and by the core conversion (types from metadata),
so a pair the loader accepts is a pair the conversion attempts. Adobe's integration converts Boolean, Integer,
Decimal, Double, String, DateTime and Date among integer, boolean, float, double, date, datetime and string,
and sends other types as strings.
"""

from __future__ import annotations

import enum

from shared.config.model import PicklistMode


class SourceKind(enum.Enum):
    BOOLEAN = "boolean"
    INTEGER = "integer"
    NUMBER = "number"
    TEXT = "text"
    DATETIME = "datetime"
    DATE = "date"
    CODE = "code"  # option set value: Picklist, State, Status
    GUID = "guid"


class TargetKind(enum.Enum):
    TEXT = "text"
    BOOLEAN = "boolean"
    INTEGER = "integer"
    FLOAT = "float"
    DATE = "date"
    DATETIME = "datetime"
    UUID = "uuid"


_SOURCE_KINDS = {
    "Boolean": SourceKind.BOOLEAN,
    "Integer": SourceKind.INTEGER,
    "BigInt": SourceKind.INTEGER,
    "Decimal": SourceKind.NUMBER,
    "Money": SourceKind.NUMBER,
    "Double": SourceKind.NUMBER,
    "String": SourceKind.TEXT,
    "Memo": SourceKind.TEXT,
    "DateTime": SourceKind.DATETIME,
    "Date": SourceKind.DATE,
    "Picklist": SourceKind.CODE,
    "State": SourceKind.CODE,
    "Status": SourceKind.CODE,
    "Uniqueidentifier": SourceKind.GUID,
    "Lookup": SourceKind.GUID,
}

_TARGET_KINDS = {
    "string": TargetKind.TEXT,
    "memo": TargetKind.TEXT,
    "boolean": TargetKind.BOOLEAN,
    "byte": TargetKind.INTEGER,
    "short": TargetKind.INTEGER,
    "long": TargetKind.INTEGER,
    "int64": TargetKind.INTEGER,
    "float": TargetKind.FLOAT,
    "double": TargetKind.FLOAT,
    "date": TargetKind.DATE,
    "datetime": TargetKind.DATETIME,
    "uuid": TargetKind.UUID,
}

_SCALARS = frozenset({SourceKind.BOOLEAN, SourceKind.INTEGER, SourceKind.NUMBER, SourceKind.TEXT, SourceKind.CODE})
_TEMPORAL = frozenset({SourceKind.DATETIME, SourceKind.DATE, SourceKind.TEXT})
_ACCEPTS: dict[TargetKind, frozenset[SourceKind]] = {
    TargetKind.TEXT: frozenset(SourceKind),
    TargetKind.BOOLEAN: _SCALARS,
    TargetKind.INTEGER: _SCALARS,
    TargetKind.FLOAT: _SCALARS,
    TargetKind.DATE: _TEMPORAL,
    TargetKind.DATETIME: _TEMPORAL,
    TargetKind.UUID: frozenset({SourceKind.GUID, SourceKind.TEXT}),
}

_DEFAULT_TARGETS = {
    SourceKind.BOOLEAN: "boolean",
    SourceKind.INTEGER: "int64",
    SourceKind.NUMBER: "double",
    SourceKind.TEXT: "string",
    SourceKind.DATETIME: "datetime",
    SourceKind.DATE: "date",
    SourceKind.CODE: "int64",
    SourceKind.GUID: "string",
}


def source_kind(source_type: str) -> SourceKind:
    """Kind of a Dataverse attribute type; unlisted types (Owner, Customer, EntityName...) travel as text."""
    return _SOURCE_KINDS.get(source_type, SourceKind.TEXT)


def target_kind(target_type: str) -> TargetKind:
    """Kind of a Campaign attribute type; unlisted types (enumerations and the like) receive text."""
    return _TARGET_KINDS.get(target_type, TargetKind.TEXT)


def convertible(source_type: str, target_type: str, picklist_mode: PicklistMode = PicklistMode.VALUE) -> bool:
    """Whether values of source_type can ever become target_type (a given value may still fail)."""
    kind = source_kind(source_type)
    if kind is SourceKind.CODE and picklist_mode is PicklistMode.LABEL:
        return target_kind(target_type) is TargetKind.TEXT  # labels are display text
    return kind in _ACCEPTS[target_kind(target_type)]


def default_target_type(source_type: str, picklist_mode: PicklistMode = PicklistMode.VALUE) -> str:
    """The target type used when neither the configuration nor Campaign metadata names one."""
    kind = source_kind(source_type)
    if kind is SourceKind.CODE and picklist_mode is PicklistMode.LABEL:
        return "string"
    return _DEFAULT_TARGETS[kind]
