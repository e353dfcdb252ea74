"""Metadata reads: EntityDefinitions (+ Attributes with type casts and option sets, Keys), $metadata,
RetrieveTotalRecordCount, WhoAmI, organizations.

Shapes per PA webapi/query-metadata-web-api.md and retrieve-metadata-name-metadataid.md:
- `EntityDefinitions[(LogicalName='x'|<MetadataId>)]` with $select, $filter and
  $expand=Attributes($select=...;$filter=...),Keys(...) on the collection and on one table;
- `.../Attributes[(LogicalName='y'|<MetadataId>)]`, cast to a derived type
  (`/Microsoft.Dynamics.CRM.PicklistAttributeMetadata`) to filter the collection to that type and to reach the
  type's own properties (DateTimeBehavior, Format, MaxLength...) and `$expand=OptionSet[($select=Options)]`;
- `.../Keys[(LogicalName='k'|<MetadataId>)]`: EntityKeyMetadata with KeyAttributes and EntityKeyIndexStatus.
A property the sandbox does not model is refused (400) in $select and $filter; relationship and privilege
navigation properties answer 501.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from xml.sax.saxutils import escape

from sandbox.dataverse.odata import (
    ODATA_PARSE,
    ODataError,
    check_options,
    compile_filter,
    not_found_segment,
    not_modelled,
    parse_query,
    path_resolver,
)
from sandbox.dataverse.schema import Column, KeyDef, TableDef
from sandbox.dataverse.store import Store
from sandbox.dataverse.users import BUSINESS_UNIT_ID, ORGANIZATION_ID

_NS = uuid.UUID("9b0c6a0e-5a8e-4f55-9e8c-d365d365d365")
_META_OPTIONS = frozenset({"$select", "$filter", "$expand"})
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
    "Owner": "OwnerType",
    "Uniqueidentifier": "UniqueidentifierType",
    "EntityName": "EntityNameType",
}
# Derived AttributeMetadata types (the @odata.type of each attribute and the valid casts).
_DERIVED = {
    "String": "StringAttributeMetadata",
    "Memo": "MemoAttributeMetadata",
    "Boolean": "BooleanAttributeMetadata",
    "Integer": "IntegerAttributeMetadata",
    "BigInt": "BigIntAttributeMetadata",
    "Picklist": "PicklistAttributeMetadata",
    "State": "StateAttributeMetadata",
    "Status": "StatusAttributeMetadata",
    "DateTime": "DateTimeAttributeMetadata",
    "Decimal": "DecimalAttributeMetadata",
    "Double": "DoubleAttributeMetadata",
    "Money": "MoneyAttributeMetadata",
    "Lookup": "LookupAttributeMetadata",
    "Owner": "LookupAttributeMetadata",
    "Uniqueidentifier": "UniqueIdentifierAttributeMetadata",
    "EntityName": "EntityNameAttributeMetadata",
}
# Casts that exist in Dataverse but that no sandbox column has: they answer an empty collection.
_OTHER_CASTS = frozenset(
    {
        "MultiSelectPicklistAttributeMetadata",
        "ImageAttributeMetadata",
        "FileAttributeMetadata",
        "ManagedPropertyAttributeMetadata",
        "EnumAttributeMetadata",
    }
)
_OPTION_TYPES = frozenset({"Picklist", "State", "Status", "Boolean"})

ENTITY_PROPERTIES = frozenset(
    {
        "MetadataId",
        "LogicalName",
        "SchemaName",
        "EntitySetName",
        "LogicalCollectionName",
        "CollectionSchemaName",
        "PrimaryIdAttribute",
        "PrimaryNameAttribute",
        "PrimaryImageAttribute",
        "ObjectTypeCode",
        "ChangeTrackingEnabled",
        "CanChangeTrackingBeEnabled",
        "IsActivity",
        "IsActivityParty",
        "ActivityTypeMask",
        "IsCustomEntity",
        "IsManaged",
        "IsPrivate",
        "IsIntersect",
        "IsLogicalEntity",
        "IsValidForAdvancedFind",
        "IsOptimisticConcurrencyEnabled",
        "OwnershipType",
        "HasNotes",
        "HasActivities",
        "HasFeedback",
        "TableType",
        "IsAvailableOffline",
        "IsAuditEnabled",
        "IsCustomizable",
        "DisplayName",
        "DisplayCollectionName",
        "Description",
        "IntroducedVersion",
        "IsBusinessProcessEnabled",
        "IsQuickCreateEnabled",
        "HasChanged",
        "EntityColor",
        "IsMailMergeEnabled",
        "IsValidForQueue",
        "IsConnectionsEnabled",
        "IsDocumentManagementEnabled",
    }
)
_ENTITY_NAVIGATIONS = frozenset({"Attributes", "Keys"})
_UNMODELLED_NAVIGATIONS = frozenset(
    {"ManyToOneRelationships", "OneToManyRelationships", "ManyToManyRelationships", "Privileges"}
)
ATTRIBUTE_PROPERTIES = frozenset(
    {
        "MetadataId",
        "LogicalName",
        "SchemaName",
        "EntityLogicalName",
        "AttributeType",
        "AttributeTypeName",
        "IsPrimaryId",
        "IsPrimaryName",
        "IsValidForCreate",
        "IsValidForUpdate",
        "IsValidForRead",
        "IsCustomAttribute",
        "IsManaged",
        "IsLogical",
        "IsSecured",
        "IsValidForAdvancedFind",
        "IsFilterable",
        "IsRetrievable",
        "IsSearchable",
        "AttributeOf",
        "DisplayName",
        "Description",
        "RequiredLevel",
        "ColumnNumber",
        "IntroducedVersion",
        "SourceType",
        "IsAuditEnabled",
        "HasChanged",
        "IsCustomizable",
        "ExternalName",
        "DeprecatedVersion",
    }
)
_TYPED_PROPERTIES = {
    "String": {"MaxLength", "Format", "FormatName", "ImeMode", "DatabaseLength", "IsLocalizable", "YomiOf"},
    "Memo": {"MaxLength", "Format", "FormatName", "ImeMode", "IsLocalizable"},
    "Integer": {"MinValue", "MaxValue", "Format"},
    "BigInt": {"MinValue", "MaxValue"},
    "Decimal": {"MinValue", "MaxValue", "Precision"},
    "Double": {"MinValue", "MaxValue", "Precision"},
    "Money": {"MinValue", "MaxValue", "Precision", "PrecisionSource"},
    "DateTime": {"Format", "DateTimeBehavior", "CanChangeDateTimeBehavior", "ImeMode"},
    "Picklist": {"DefaultFormValue"},
    "State": {"DefaultFormValue"},
    "Status": {"DefaultFormValue"},
    "Boolean": {"DefaultValue"},
    "Lookup": {"Targets", "Format"},
    "Owner": {"Targets", "Format"},
}
KEY_PROPERTIES = frozenset(
    {
        "MetadataId",
        "LogicalName",
        "SchemaName",
        "KeyAttributes",
        "EntityLogicalName",
        "EntityKeyIndexStatus",
        "DisplayName",
        "IsManaged",
        "IsCustomizable",
        "AsyncJob",
        "IsSecondaryKey",
        "IsExportKey",
        "IsSynchronous",
        "HasChanged",
        "IntroducedVersion",
    }
)


def label(text: str, managed: bool = False) -> dict[str, Any]:
    localized = {"Label": text, "LanguageCode": 1033, "IsManaged": managed, "MetadataId": None, "HasChanged": None}
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": localized}


def _managed(value: bool, name: str, can_change: bool = True) -> dict[str, Any]:
    return {"Value": value, "CanBeChanged": can_change, "ManagedPropertyLogicalName": name}


def entity(definition: TableDef) -> dict[str, Any]:
    system = not definition.is_custom
    return {
        "MetadataId": definition.metadata_id,
        "LogicalName": definition.logical_name,
        "SchemaName": definition.schema_name,
        "EntitySetName": definition.entity_set,
        "LogicalCollectionName": definition.entity_set,
        "CollectionSchemaName": definition.schema_name + "s",
        "PrimaryIdAttribute": definition.primary_key,
        "PrimaryNameAttribute": definition.primary_name,
        "PrimaryImageAttribute": None,
        "ObjectTypeCode": definition.object_type_code or _object_type_code(definition.logical_name),
        "ChangeTrackingEnabled": definition.change_tracking,
        "CanChangeTrackingBeEnabled": _managed(True, "canchangetrackingbeenabled", can_change=False),
        "IsActivity": definition.is_activity,
        "IsActivityParty": False,
        "ActivityTypeMask": 1 if definition.is_activity else None,
        "IsCustomEntity": definition.is_custom,
        "IsManaged": system,
        "IsPrivate": False,
        "IsIntersect": False,
        "IsLogicalEntity": definition.logical_name == "activitypointer",
        "IsValidForAdvancedFind": True,
        "IsOptimisticConcurrencyEnabled": True,
        "OwnershipType": definition.ownership,
        "HasNotes": definition.has_notes,
        "HasActivities": definition.has_activities,
        "HasFeedback": False,
        "TableType": "Standard",
        "IsAvailableOffline": definition.is_activity,
        "IsAuditEnabled": _managed(False, "canmodifyauditsettings"),
        "IsCustomizable": _managed(True, "iscustomizable"),
        "IsMailMergeEnabled": _managed(not definition.is_activity, "canmodifymailmergesettings"),
        "IsValidForQueue": _managed(False, "canmodifyqueuesettings"),
        "IsConnectionsEnabled": _managed(False, "canmodifyconnectionsettings"),
        "IsDocumentManagementEnabled": False,
        "IsBusinessProcessEnabled": False,
        "IsQuickCreateEnabled": False,
        "DisplayName": label(definition.display_name, system),
        "DisplayCollectionName": label(definition.display_collection_name, system),
        "Description": label("", system),
        "IntroducedVersion": "1.0",
        "EntityColor": None,
        "HasChanged": None,
    }


def _object_type_code(logical_name: str) -> int:
    return 10_000 + uuid.uuid5(_NS, logical_name).int % 90_000


def attribute_id(definition: TableDef, column: Column) -> str:
    return str(uuid.uuid5(_NS, f"{definition.logical_name}.{column.name}"))


def _required(column: Column) -> dict[str, Any]:
    return _managed(column.required, "canmodifyrequirementlevelsettings")  # type: ignore[arg-type]


def attribute(definition: TableDef, column: Column, *, typed: bool = True) -> dict[str, Any]:
    """AttributeMetadata of one column; `typed` adds the derived type's own properties."""
    kind = column.type
    system = not column.is_custom
    out: dict[str, Any] = {
        "@odata.type": f"#Microsoft.Dynamics.CRM.{_DERIVED[kind]}",
        "MetadataId": attribute_id(definition, column),
        "LogicalName": column.name,
        "SchemaName": column.schema_name,
        "EntityLogicalName": definition.logical_name,
        "AttributeType": kind,
        "AttributeTypeName": {"Value": _TYPE_NAMES.get(kind, kind + "Type")},
        "IsPrimaryId": column.name == definition.primary_key,
        "IsPrimaryName": column.name == definition.primary_name,
        "IsValidForCreate": not column.read_only,
        "IsValidForUpdate": not column.read_only and column.name != definition.primary_key,
        "IsValidForRead": True,
        "IsCustomAttribute": column.is_custom,
        "IsManaged": system,
        "IsLogical": False,
        "IsSecured": False,
        "IsValidForAdvancedFind": _managed(True, "canmodifysearchsettings"),
        "IsFilterable": True,
        "IsRetrievable": True,
        "IsSearchable": True,
        "AttributeOf": None,
        "DisplayName": label(column.display_name, system),
        "Description": label("", system),
        "RequiredLevel": _required(column),
        "ColumnNumber": definition.columns.index(column) + 1,
        "IntroducedVersion": "1.0",
        "SourceType": 0,
        "IsAuditEnabled": _managed(False, "canmodifyauditsettings"),
        "IsCustomizable": _managed(True, "iscustomizable"),
        "ExternalName": None,
        "DeprecatedVersion": None,
        "HasChanged": None,
    }
    if not typed:
        return out
    if kind in ("String", "Memo"):
        fmt = "Text" if kind == "String" else "TextArea"
        out.update({"MaxLength": column.max_length, "Format": fmt, "FormatName": {"Value": fmt}, "ImeMode": "Auto"})
        out["IsLocalizable"] = False
        if kind == "String":
            out.update({"DatabaseLength": (column.max_length or 0) * 2, "YomiOf": None})
    elif kind == "Integer":
        out.update({"MinValue": -2147483648, "MaxValue": 2147483647, "Format": "None"})
    elif kind == "BigInt":
        out.update({"MinValue": -9223372036854775808, "MaxValue": 9223372036854775807})
    elif kind in ("Decimal", "Double", "Money"):
        out.update({"MinValue": -100000000000.0, "MaxValue": 100000000000.0, "Precision": 2})
        if kind == "Money":
            out["PrecisionSource"] = 2
    elif kind == "DateTime":
        out.update(
            {
                "Format": column.date_format,
                "DateTimeBehavior": {"Value": column.behavior},
                "CanChangeDateTimeBehavior": _managed(column.is_custom, "canchangedatetimebehavior"),
                "ImeMode": "Inactive",
            }
        )
    elif kind in ("Picklist", "State", "Status"):
        out["DefaultFormValue"] = -1 if kind == "Picklist" else None
    elif kind == "Boolean":
        out["DefaultValue"] = False
    elif kind in ("Lookup", "Owner"):
        out.update({"Targets": sorted(column.targets), "Format": "None"})
    return out


def _status_state(definition: TableDef, value: int) -> int:
    if definition.is_activity:
        return {1: 0, 2: 0, 3: 0, 5: 1, 6: 2}.get(value, 0)
    return 0 if value == 1 else 1


def option_set(definition: TableDef, column: Column) -> dict[str, Any]:
    name = f"{definition.logical_name}_{column.name}"
    base: dict[str, Any] = {
        "MetadataId": str(uuid.uuid5(_NS, f"optionset:{name}")),
        "Name": name,
        "IsGlobal": False,
        "IsCustomOptionSet": column.is_custom,
        "OptionSetType": column.type,
        "HasChanged": None,
    }
    system = not column.is_custom
    if column.type == "Boolean":
        labels = dict(column.options)
        base["TrueOption"] = {"Value": 1, "Label": label(labels.get(1, "Yes"), system), "Color": None}
        base["FalseOption"] = {"Value": 0, "Label": label(labels.get(0, "No"), system), "Color": None}
        return base
    options = []
    for value, text in column.options:
        option: dict[str, Any] = {"Value": value, "Label": label(text, system), "Color": None, "IsManaged": system}
        if column.type == "Status":
            option["State"] = _status_state(definition, value)
        options.append(option)
    base["Options"] = options
    return base


# -- request parsing ------------------------------------------------------------------------------
def _select(item: dict[str, Any], select: str | None, allowed: frozenset[str] | set[str], type_name: str) -> dict:
    if not select:
        return item
    names = [s.strip() for s in select.split(",") if s.strip()]
    for name in names:
        if name not in allowed:
            raise ODataError(400, ODATA_PARSE, f"Could not find a property named '{name}' on type '{type_name}'.")
    keep = {k: v for k, v in item.items() if k in names or k.startswith("@")}
    keep["MetadataId"] = item["MetadataId"]
    return keep


def split_top_level(text: str, separator: str) -> list[str]:
    """Split on `separator` outside parentheses: "Attributes($select=a,b),Keys" -> two items."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == separator and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if current or parts:
        parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


_EXPAND_ITEM = re.compile(r"^(?P<name>\w+)(?:\((?P<options>.*)\))?$")


def parse_expand(expand: str | None, allowed: frozenset[str], type_name: str) -> dict[str, dict[str, str]]:
    """{navigation: nested options} from $expand=Attributes($select=a;$filter=b),Keys."""
    out: dict[str, dict[str, str]] = {}
    for item in split_top_level(expand or "", ","):
        match = _EXPAND_ITEM.match(item)
        if match is None:
            raise ODataError(400, ODATA_PARSE, "The $expand query option is not valid.")
        name = match["name"]
        if name in _UNMODELLED_NAVIGATIONS:
            raise not_modelled(f"$expand={name} on {type_name}")
        if name not in allowed:
            raise ODataError(400, ODATA_PARSE, f"Could not find a property named '{name}' on type '{type_name}'.")
        nested: dict[str, str] = {}
        for option in split_top_level(match["options"] or "", ";"):
            key, _, value = option.partition("=")
            if key not in _META_OPTIONS:
                raise ODataError(400, ODATA_PARSE, f"The nested query option '{key}' is not supported here.")
            nested[key] = value
        out[name] = nested
    return out


def table_by_key(store: Store, key: str) -> TableDef:
    match = re.match(r"^LogicalName='([^']*)'$", key) or re.match(r"^([0-9a-fA-F-]{36})$", key)
    if match is None:
        raise not_found_segment(f"EntityDefinitions({key})")
    wanted = match.group(1).lower()
    for table in store.tables.values():
        definition = table.definition
        if wanted in (definition.logical_name, definition.metadata_id):
            return definition
    raise ODataError(404, "0x80040217", f"Could not find entity with name '{wanted}'.")


def column_by_key(definition: TableDef, key: str) -> Column:
    match = re.match(r"^LogicalName='([^']*)'$", key) or re.match(r"^([0-9a-fA-F-]{36})$", key)
    wanted = match.group(1).lower() if match else ""
    for column in definition.columns:
        if wanted in (column.name, attribute_id(definition, column)):
            return column
    raise ODataError(404, "0x80040217", f"Could not find attribute with name '{wanted}'.")


def key_by_key(definition: TableDef, key: str) -> KeyDef:
    match = re.match(r"^LogicalName='([^']*)'$", key) or re.match(r"^([0-9a-fA-F-]{36})$", key)
    wanted = match.group(1).lower() if match else ""
    for entity_key in definition.keys:
        if wanted in (entity_key.logical_name, entity_key.metadata_id):
            return entity_key
    raise ODataError(404, "0x80040217", f"Could not find the entity key '{wanted}'.")


def entity_key(definition: TableDef, key: KeyDef) -> dict[str, Any]:
    return {
        "MetadataId": key.metadata_id,
        "LogicalName": key.logical_name,
        "SchemaName": key.schema_name,
        "KeyAttributes": list(key.attributes),
        "EntityLogicalName": definition.logical_name,
        "EntityKeyIndexStatus": key.status,
        "DisplayName": label(key.display_name or key.schema_name),
        "IsManaged": False,
        "IsCustomizable": _managed(True, "iscustomizable"),
        "AsyncJob": None,
        "IsSecondaryKey": False,
        "IsExportKey": False,
        "IsSynchronous": False,
        "IntroducedVersion": "1.0",
        "HasChanged": None,
    }


# -- EntityDefinitions ----------------------------------------------------------------------------
_PATH = re.compile(
    r"^EntityDefinitions(?:\((?P<key>[^)]*)\))?"
    r"(?:/(?P<nav>\w+)(?:\((?P<sub>[^)]*)\))?(?:/(?P<cast>[\w.]+))?)?$"
)
_ENTITY_TYPE = "Microsoft.Dynamics.CRM.EntityMetadata"
_ATTRIBUTE_TYPE = "Microsoft.Dynamics.CRM.AttributeMetadata"
_KEY_TYPE = "Microsoft.Dynamics.CRM.EntityKeyMetadata"


def entity_definitions(store: Store, api_root: str, path: str, raw_query: str) -> dict[str, Any]:
    query = parse_query(raw_query)
    check_options(query, _META_OPTIONS)
    match = _PATH.match(path)
    if match is None:
        raise not_found_segment(path)
    context = f"{api_root}$metadata#EntityDefinitions"
    nav = match["nav"]
    if nav is not None and match["key"] is None:
        raise not_found_segment(nav)
    if match["key"] is None:
        items = [t.definition for t in store.tables.values()]
        if "$filter" in query:
            predicate = compile_filter(query["$filter"], path_resolver(ENTITY_PROPERTIES, _ENTITY_TYPE), query)
            items = [d for d in items if predicate(entity(d))]
        return {"@odata.context": context, "value": [_entity_item(d, query) for d in items]}
    definition = table_by_key(store, match["key"])
    if nav is None:
        return {"@odata.context": f"{context}/$entity", **_entity_item(definition, query)}
    if nav in _UNMODELLED_NAVIGATIONS:
        raise not_modelled(f"EntityDefinitions(...)/{nav}")
    if nav == "Keys":
        if match["cast"]:
            raise not_found_segment(match["cast"])
        if match["sub"] is not None:
            item = entity_key(definition, key_by_key(definition, match["sub"]))
            return {
                "@odata.context": f"{context}({definition.logical_name})/Keys/$entity",
                **_select(item, query.get("$select"), KEY_PROPERTIES, _KEY_TYPE),
            }
        return {"@odata.context": f"{context}({definition.logical_name})/Keys", "value": _keys(definition, query)}
    if nav != "Attributes":
        raise not_found_segment(nav)
    cast = match["cast"]
    kinds: set[str] | None = None
    if cast is not None:
        kinds = _cast_kinds(cast)
    if match["sub"] is not None:
        column = column_by_key(definition, match["sub"])
        if kinds is not None and column.type not in kinds:
            raise not_found_segment(cast or "")
        item = _attribute_item(definition, column, query, cast_kinds=kinds)
        return {"@odata.context": f"{context}({definition.logical_name})/Attributes/$entity", **item}
    value = _attributes(definition, query, kinds)
    suffix = f"/{cast}" if cast else ""
    return {"@odata.context": f"{context}({definition.logical_name})/Attributes{suffix}", "value": value}


def _cast_kinds(cast: str) -> set[str]:
    name = cast.removeprefix("Microsoft.Dynamics.CRM.")
    if not cast.startswith("Microsoft.Dynamics.CRM."):
        raise not_found_segment(cast)
    kinds = {kind for kind, derived in _DERIVED.items() if derived == name}
    if not kinds and name not in _OTHER_CASTS:
        raise not_found_segment(cast)
    return kinds


def _entity_item(definition: TableDef, query: dict[str, str]) -> dict[str, Any]:
    item = _select(entity(definition), query.get("$select"), ENTITY_PROPERTIES, _ENTITY_TYPE)
    expand = parse_expand(query.get("$expand"), _ENTITY_NAVIGATIONS, _ENTITY_TYPE)
    if "Attributes" in expand:
        item["Attributes"] = _attributes(definition, expand["Attributes"], None)
    if "Keys" in expand:
        item["Keys"] = _keys(definition, expand["Keys"])
    return item


def _keys(definition: TableDef, query: dict[str, str]) -> list[dict[str, Any]]:
    items = [entity_key(definition, k) for k in definition.keys]
    if "$filter" in query:
        predicate = compile_filter(query["$filter"], path_resolver(KEY_PROPERTIES, _KEY_TYPE), query)
        items = [i for i in items if predicate(i)]
    if "$expand" in query:
        raise ODataError(400, ODATA_PARSE, "EntityKeyMetadata has no navigation properties to expand.")
    return [_select(i, query.get("$select"), KEY_PROPERTIES, _KEY_TYPE) for i in items]


def _attribute_properties(kinds: set[str] | None) -> tuple[frozenset[str], str]:
    if not kinds:
        return ATTRIBUTE_PROPERTIES, _ATTRIBUTE_TYPE
    extra: set[str] = set()
    for kind in kinds:
        extra |= _TYPED_PROPERTIES.get(kind, set())
    name = _DERIVED[next(iter(kinds))]
    return ATTRIBUTE_PROPERTIES | extra, f"Microsoft.Dynamics.CRM.{name}"


def _attributes(definition: TableDef, query: dict[str, str], kinds: set[str] | None) -> list[dict[str, Any]]:
    columns = [c for c in definition.columns if kinds is None or c.type in kinds]
    properties, type_name = _attribute_properties(kinds)
    if "$filter" in query:
        predicate = compile_filter(query["$filter"], path_resolver(properties, type_name), query)
        columns = [c for c in columns if predicate(attribute(definition, c))]
    return [_attribute_item(definition, c, query, cast_kinds=kinds) for c in columns]


def _attribute_item(
    definition: TableDef, column: Column, query: dict[str, str], *, cast_kinds: set[str] | None
) -> dict[str, Any]:
    properties, type_name = _attribute_properties(cast_kinds)
    item = _select(attribute(definition, column), query.get("$select"), properties, type_name)
    expandable = frozenset({"OptionSet", "GlobalOptionSet"}) if cast_kinds and cast_kinds <= _OPTION_TYPES else None
    expand = parse_expand(query.get("$expand"), expandable or frozenset(), type_name)
    if "OptionSet" in expand:
        options = option_set(definition, column)
        select = expand["OptionSet"].get("$select")
        if select:
            names = [s.strip() for s in select.split(",")]
            options = {k: v for k, v in options.items() if k in names or k == "MetadataId"}
        item["OptionSet"] = options
    if "GlobalOptionSet" in expand:
        item["GlobalOptionSet"] = None
    return item


# -- other metadata reads -------------------------------------------------------------------------
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
        raise ODataError(400, "0x80040203", "EntityNames must list at least one table.")
    values = []
    for name in names:
        table = store.tables.get(name)
        if table is None:
            raise ODataError(400, "0x80040203", f"The entity '{name}' does not exist.")
        values.append(table.live)
    return {
        "@odata.context": f"{api_root}$metadata#Microsoft.Dynamics.CRM.RetrieveTotalRecordCountResponse",
        "EntityRecordCountCollection": {"Count": len(names), "IsReadOnly": False, "Keys": names, "Values": values},
    }


def who_am_i(api_root: str, user_id: str) -> dict[str, Any]:
    return {
        "@odata.context": f"{api_root}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
        "BusinessUnitId": BUSINESS_UNIT_ID,
        "UserId": user_id,
        "OrganizationId": ORGANIZATION_ID,
    }


def organizations(api_root: str, expire_days: int) -> dict[str, Any]:
    return {
        "@odata.context": f"{api_root}$metadata#organizations",
        "value": [{"organizationid": ORGANIZATION_ID, "name": "sandbox", "expirechangetrackingindays": expire_days}],
    }


def service_document(store: Store, api_root: str) -> dict[str, Any]:
    """GET [org]/api/data/v9.2/: the entity sets (PA webapi/query-data-web-api.md, EntitySet resources)."""
    sets = sorted(t.definition.entity_set for t in store.tables.values())
    return {
        "@odata.context": f"{api_root}$metadata",
        "value": [{"name": name, "kind": "EntitySet", "url": name} for name in sets],
    }


def csdl(store: Store) -> bytes:
    """A minimal CSDL: entity types and sets, with the ChangeTracking annotation on tracked sets."""
    types, sets = [], []
    for table in store.tables.values():
        d = table.definition
        props = "".join(f'<Property Name="{escape(c.select_name)}" Type="{_edm(c)}"/>' for c in d.columns)
        navs = "".join(
            f'<NavigationProperty Name="{escape(nav)}" Type="Microsoft.Dynamics.CRM.{target}"/>'
            for c in d.columns
            for nav, target in c.navigation
        )
        types.append(
            f'<EntityType Name="{d.logical_name}"><Key><PropertyRef Name="{d.primary_key}"/></Key>{props}{navs}'
            "</EntityType>"
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
        "Owner": "Edm.Guid",
    }.get(column.type, "Edm.String")
