"""Metadata endpoints: EntityDefinitions (+ Attributes, option sets), RetrieveTotalRecordCount, $metadata.

Shapes per PA webapi/query-metadata-web-api.md: EntityMetadata carries LogicalName, EntitySetName,
ChangeTrackingEnabled...; option labels come from
EntityDefinitions(LogicalName='x')/Attributes(LogicalName='y')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata
?$select=LogicalName&$expand=OptionSet, each option as {"Value", "Label": {"LocalizedLabels", "UserLocalizedLabel"}}.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from xml.sax.saxutils import escape

from sandbox.dataverse.odata import ODataError, compile_filter, not_found_segment, parse_query, path_resolver
from sandbox.dataverse.schema import Column, TableDef
from sandbox.dataverse.store import Store

_NS = uuid.UUID("9b0c6a0e-5a8e-4f55-9e8c-d365d365d365")
_TYPE_NAMES = {
    "String": "StringType",
    "Memo": "MemoType",
    "Boolean": "BooleanType",
    "Integer": "IntegerType",
    "BigInt": "BigIntType",
    "Picklist": "PicklistType",
    "State": "StateType",
    "Status": "StatusType",
    "DateTime": "DateTimeType",
    "Decimal": "DecimalType",
    "Double": "DoubleType",
    "Money": "MoneyType",
    "Lookup": "LookupType",
    "Uniqueidentifier": "UniqueidentifierType",
    "EntityName": "EntityNameType",
}
_CASTS = {
    "Microsoft.Dynamics.CRM.PicklistAttributeMetadata": "Picklist",
    "Microsoft.Dynamics.CRM.StateAttributeMetadata": "State",
    "Microsoft.Dynamics.CRM.StatusAttributeMetadata": "Status",
    "Microsoft.Dynamics.CRM.BooleanAttributeMetadata": "Boolean",
}
_INVALID_ARGUMENT = "0x80040203"


def _label(text: str) -> dict[str, Any]:
    localized = {"Label": text, "LanguageCode": 1033, "IsManaged": True, "HasChanged": None}
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": localized}


def _schema_name(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def entity(definition: TableDef) -> dict[str, Any]:
    return {
        "@odata.type": "#Microsoft.Dynamics.CRM.EntityMetadata",
        "MetadataId": str(uuid.uuid5(_NS, definition.logical_name)),
        "LogicalName": definition.logical_name,
        "SchemaName": _schema_name(definition.logical_name),
        "EntitySetName": definition.entity_set,
        "LogicalCollectionName": definition.entity_set,
        "PrimaryIdAttribute": definition.primary_key,
        "PrimaryNameAttribute": definition.primary_name,
        "ChangeTrackingEnabled": definition.change_tracking,
        "CanChangeTrackingBeEnabled": {
            "Value": True,
            "CanBeChanged": False,
            "ManagedPropertyLogicalName": "canchangetrackingbeenabled",
        },
        "IsActivity": definition.is_activity,
        "IsCustomEntity": definition.is_custom,
        "DisplayName": _label(_schema_name(definition.logical_name)),
    }


def attribute(definition: TableDef, column: Column, expand_options: bool = False) -> dict[str, Any]:
    kind = column.type
    meta_type = {"Uniqueidentifier": "Attribute", "EntityName": "EntityName", "Memo": "Memo"}.get(kind, kind)
    out: dict[str, Any] = {
        "@odata.type": f"#Microsoft.Dynamics.CRM.{meta_type}AttributeMetadata",
        "MetadataId": str(uuid.uuid5(_NS, f"{definition.logical_name}.{column.name}")),
        "LogicalName": column.name,
        "SchemaName": _schema_name(column.name),
        "EntityLogicalName": definition.logical_name,
        "AttributeType": kind,
        "AttributeTypeName": {"Value": _TYPE_NAMES.get(kind, kind + "Type")},
        "IsPrimaryId": column.name == definition.primary_key,
        "IsPrimaryName": column.name == definition.primary_name,
        "IsValidForCreate": not column.read_only,
        "IsValidForUpdate": not column.read_only and column.name != definition.primary_key,
        "IsValidForRead": True,
        "AttributeOf": None,
    }
    if column.max_length is not None:
        out["MaxLength"] = column.max_length
    if kind == "DateTime":
        out["Format"] = "DateOnly" if column.date_only else "DateAndTime"
    if kind == "Lookup":
        out["Targets"] = sorted({target for _, target in column.navigation})
    if expand_options and kind in ("Picklist", "State", "Status"):
        options = [{"Value": value, "Label": _label(text)} for value, text in column.options]
        out["OptionSet"] = {"Name": f"{definition.logical_name}_{column.name}", "IsGlobal": False, "Options": options}
        out["GlobalOptionSet"] = None
    if expand_options and kind == "Boolean":
        labels = dict(column.options)
        out["OptionSet"] = {
            "Name": f"{definition.logical_name}_{column.name}",
            "TrueOption": {"Value": 1, "Label": _label(labels.get(1, "Yes"))},
            "FalseOption": {"Value": 0, "Label": _label(labels.get(0, "No"))},
        }
        out["GlobalOptionSet"] = None
    return out


def _select(item: dict[str, Any], select: str | None) -> dict[str, Any]:
    if not select:
        return item
    names = [s.strip() for s in select.split(",")]
    keep = {k: v for k, v in item.items() if k in names or k.startswith("@")}
    keep["MetadataId"] = item["MetadataId"]
    return keep


_EXPAND = re.compile(r"^(?P<name>\w+)(?:\((?P<options>.*)\))?$")


def _expand_options(expand: str | None) -> tuple[bool, dict[str, str]]:
    """(expand Attributes?, its nested options) from $expand=Attributes($select=...;$filter=...)."""
    if not expand:
        return False, {}
    match = _EXPAND.match(expand.strip())
    if match is None or match["name"] != "Attributes":
        raise ODataError(400, _INVALID_ARGUMENT, "Only $expand=Attributes is supported on EntityDefinitions.")
    nested = dict(part.split("=", 1) for part in (match["options"] or "").split(";") if "=" in part)
    return True, nested


def _table(store: Store, key: str) -> TableDef:
    match = re.match(r"^LogicalName='([^']*)'$", key) or re.match(r"^([0-9a-fA-F-]{36})$", key)
    if match is None:
        raise not_found_segment(f"EntityDefinitions({key})")
    wanted = match.group(1)
    for table in store.tables.values():
        definition = table.definition
        if wanted in (definition.logical_name, str(uuid.uuid5(_NS, definition.logical_name))):
            return definition
    raise ODataError(404, "0x80040217", f"Could not find entity with name '{wanted}'.")


def entity_definitions(store: Store, api_root: str, path: str, raw_query: str) -> dict[str, Any]:
    query = parse_query(raw_query)
    match = re.match(
        r"^EntityDefinitions(?:\((?P<key>[^)]*)\))?(?:/Attributes(?:\((?P<attr>[^)]*)\))?(?:/(?P<cast>[\w.]+))?)?$",
        path,
    )
    if match is None:
        raise not_found_segment(path)
    context = f"{api_root}$metadata#EntityDefinitions"
    if match["key"] is None:
        items = [entity(t.definition) for t in store.tables.values()]
        if "$filter" in query:
            predicate = compile_filter(query["$filter"], path_resolver)
            items = [i for i in items if predicate(i)]
        return {"@odata.context": context, "value": [_select(i, query.get("$select")) for i in items]}
    definition = _table(store, match["key"])
    attributes_path = "/Attributes" in path
    if not attributes_path:
        item = _select(entity(definition), query.get("$select"))
        expand, nested = _expand_options(query.get("$expand"))
        if expand:
            attributes = [attribute(definition, c) for c in definition.columns]
            if "$filter" in nested:
                predicate = compile_filter(nested["$filter"], path_resolver)
                attributes = [a for a in attributes if predicate(a)]
            item["Attributes"] = [_select(a, nested.get("$select")) for a in attributes]
        return {"@odata.context": f"{context}/$entity", **item}
    if match["attr"] is None:
        attributes = [attribute(definition, c) for c in definition.columns]
        if "$filter" in query:
            predicate = compile_filter(query["$filter"], path_resolver)
            attributes = [a for a in attributes if predicate(a)]
        return {
            "@odata.context": f"{context}({definition.logical_name})/Attributes",
            "value": [_select(a, query.get("$select")) for a in attributes],
        }
    attr_match = re.match(r"^LogicalName='([^']*)'$", match["attr"])
    column = definition.column(attr_match.group(1)) if attr_match else None
    if column is None:
        raise ODataError(404, "0x80040217", "Could not find the attribute.")
    cast = match["cast"]
    if cast is not None and _CASTS.get(cast) != column.type:
        raise not_found_segment(cast)
    expand = "OptionSet" in query.get("$expand", "")
    item = _select(attribute(definition, column, expand_options=expand), query.get("$select"))
    if expand:
        full = attribute(definition, column, expand_options=True)
        item["OptionSet"] = full.get("OptionSet")
        item["GlobalOptionSet"] = None
    return {"@odata.context": f"{context}/Attributes/$entity", **item}


def total_record_count(store: Store, api_root: str, path: str, raw_query: str) -> dict[str, Any]:
    """RetrieveTotalRecordCount(EntityNames=['contact']) or (EntityNames=@p1)?@p1=[...].

    Real Dataverse answers a snapshot taken within the last 24 hours; the sandbox answers live counts.
    """
    match = re.match(r"^RetrieveTotalRecordCount\(EntityNames=(?P<arg>.*)\)$", path)
    if match is None:
        raise not_found_segment(path)
    argument = match["arg"]
    if argument.startswith("@"):
        argument = parse_query(raw_query).get(argument, "")
    names = re.findall(r"'([^']*)'", argument)
    if not names:
        raise ODataError(400, _INVALID_ARGUMENT, "EntityNames must list at least one table.")
    values = []
    for name in names:
        table = store.tables.get(name)
        if table is None:
            raise ODataError(400, _INVALID_ARGUMENT, f"The entity '{name}' does not exist.")
        values.append(table.live)
    return {
        "@odata.context": f"{api_root}$metadata#Microsoft.Dynamics.CRM.RetrieveTotalRecordCountResponse",
        "EntityRecordCountCollection": {"Count": len(names), "IsReadOnly": False, "Keys": names, "Values": values},
    }


def who_am_i(api_root: str) -> dict[str, Any]:
    return {
        "@odata.context": f"{api_root}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
        "BusinessUnitId": str(uuid.uuid5(_NS, "businessunit")),
        "UserId": str(uuid.uuid5(_NS, "applicationuser")),
        "OrganizationId": str(uuid.uuid5(_NS, "organization")),
    }


def organizations(api_root: str, expire_days: int) -> dict[str, Any]:
    return {
        "@odata.context": f"{api_root}$metadata#organizations",
        "value": [
            {
                "organizationid": str(uuid.uuid5(_NS, "organization")),
                "name": "sandbox",
                "expirechangetrackingindays": expire_days,
            }
        ],
    }


def csdl(store: Store) -> bytes:
    """A minimal CSDL: entity types and sets, with the ChangeTracking annotation on tracked sets."""
    types, sets = [], []
    for table in store.tables.values():
        d = table.definition
        props = "".join(f'<Property Name="{escape(c.select_name)}" Type="{_edm(c)}"/>' for c in d.columns)
        types.append(
            f'<EntityType Name="{d.logical_name}"><Key><PropertyRef Name="{d.primary_key}"/></Key>{props}</EntityType>'
        )
        annotation = (
            '<Annotation Term="Org.OData.Capabilities.V1.ChangeTracking"><Record>'
            '<PropertyValue Property="Supported" Bool="true"/></Record></Annotation>'
            if d.change_tracking
            else ""
        )
        entity_type = f"Microsoft.Dynamics.CRM.{d.logical_name}"
        sets.append(f'<EntitySet Name="{d.entity_set}" EntityType="{entity_type}">{annotation}</EntitySet>')
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>'
        '<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
        + "".join(types)
        + '<EntityContainer Name="System">'
        + "".join(sets)
        + "</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"
    )
    return xml.encode()


def _edm(column: Column) -> str:
    return {
        "String": "Edm.String",
        "Memo": "Edm.String",
        "EntityName": "Edm.String",
        "Boolean": "Edm.Boolean",
        "Integer": "Edm.Int32",
        "BigInt": "Edm.Int64",
        "Picklist": "Edm.Int32",
        "State": "Edm.Int32",
        "Status": "Edm.Int32",
        "DateTime": "Edm.Date" if column.date_only else "Edm.DateTimeOffset",
        "Decimal": "Edm.Decimal",
        "Double": "Edm.Double",
        "Money": "Edm.Decimal",
        "Uniqueidentifier": "Edm.Guid",
        "Lookup": "Edm.Guid",
    }.get(column.type, "Edm.String")
