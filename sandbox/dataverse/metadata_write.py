"""Metadata writes: create and update tables, columns, lookups (one-to-many relationships) and alternate keys.

Sources (PA = MicrosoftDocs/powerapps-docs developer/data-platform):
- webapi/create-update-entity-definitions-using-web-api.md: `POST EntityDefinitions` with the primary name
  StringAttributeMetadata (IsPrimaryName) in `Attributes`, answering 204 + OData-EntityId
  `EntityDefinitions(<MetadataId>)`; ChangeTrackingEnabled defaults to false; updates are `PUT` (never PATCH);
  `POST EntityDefinitions(LogicalName='x')/Attributes` answers `.../Attributes(<MetadataId>)`; lookups are
  created with their one-to-many relationship (`POST RelationshipDefinitions`); the optional
  `MSCRM.SolutionUniqueName` header names the solution.
- custom-activities.md: an activity table has IsActivity, primary column SchemaName "Subject", HasNotes, no
  HasActivities, and is owned by users.
- define-alternate-keys-entity.md: key columns of type Decimal, Integer, String, DateTime, Lookup, Picklist;
  at most 10 keys; EntityKeyIndexStatus Pending / In Progress / Active / Failed.
- `CreateEntities` (several tables in one call, Complex*Metadata types) is what Microsoft's Python SDK sends
  [U: no conceptual doc page found; modelled on the same rules].
Not modelled: publishing (changes apply at once; PublishXml/PublishAllXml answer 204), solutions (the header is
accepted and ignored), global option sets, many-to-many relationships, customer lookups.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Any

from sandbox.dataverse.metadata import attribute_id, column_by_key, key_by_key
from sandbox.dataverse.odata import ODataError, not_modelled
from sandbox.dataverse.schema import (
    _ACTIVE_INACTIVE,
    KEY_TYPES,
    MAX_KEYS_PER_TABLE,
    Column,
    KeyDef,
    TableDef,
    activity_table,
    system_columns,
)
from sandbox.dataverse.store import Store, Table

# Error codes from PA reference/web-service-error-codes.md (data-service-error-codes include).
DUPLICATE_NAME = "0x80047010"  # DuplicateName: "An object with the specified name already exists"
DUPLICATE_ATTRIBUTE = "0x80047013"  # DuplicateAttributeSchemaName
KEY_NAME_EXISTS = "0x80060893"  # EntityKeyNameExists
KEY_ATTRIBUTES_EXIST = "0x80060894"  # EntityKeyWithSelectedAttributesExists
RELATIONSHIP_EXISTS = "0x8004432B"  # EntityRelationshipSchemaNameNotUnique
ACTIVITY_WITH_ACTIVITIES = "0x8004F121"  # ActivityCannotHaveRelatedActivities
ACTIVITY_WITHOUT_NOTES = "0x8004F123"  # ActivityMustHaveRelatedNotes
ACTIVITY_METADATA = "0x8004F126"  # ActivityMetadataUpdate: "The metadata specified for activity is invalid."
INVALID_ARGUMENT = "0x80040203"

_TYPES = {
    "StringAttributeMetadata": "String",
    "MemoAttributeMetadata": "Memo",
    "IntegerAttributeMetadata": "Integer",
    "DecimalAttributeMetadata": "Decimal",
    "DoubleAttributeMetadata": "Double",
    "MoneyAttributeMetadata": "Money",
    "DateTimeAttributeMetadata": "DateTime",
    "BooleanAttributeMetadata": "Boolean",
    "PicklistAttributeMetadata": "Picklist",
}
_UNMODELLED_TYPES = {
    "MultiSelectPicklistAttributeMetadata",
    "FileAttributeMetadata",
    "ImageAttributeMetadata",
    "BigIntAttributeMetadata",
}
_SCHEMA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]+$")


def _bad(message: str, code: str = INVALID_ARGUMENT) -> ODataError:
    return ODataError(400, code, message)


def label_text(value: Any, default: str = "") -> str:
    if isinstance(value, dict):
        labels = value.get("LocalizedLabels") or []
        if labels and isinstance(labels[0], dict):
            return str(labels[0].get("Label") or default)
    return default


def _odata_type(body: dict[str, Any]) -> str:
    name = str(body.get("@odata.type", "")).lstrip("#").removeprefix("Microsoft.Dynamics.CRM.")
    return name.removeprefix("Complex")  # CreateEntities uses Complex*Metadata


def entity_set_name(logical_name: str) -> str:
    """[U] English plural as Dataverse derives EntitySetName for custom tables (new_bankaccount -> new_bankaccounts)."""
    if re.search(r"[^aeiou]y$", logical_name):
        return logical_name[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", logical_name):
        return logical_name + "es"
    return logical_name + "s"


def column_from_metadata(body: dict[str, Any], *, custom: bool = True, require_prefix: bool = True) -> Column:
    """A column from an AttributeMetadata body (POST .../Attributes, or inside an entity)."""
    if not isinstance(body, dict):
        raise _bad("An attribute definition must be a JSON object.")
    kind_name = _odata_type(body)
    if kind_name == "LookupAttributeMetadata":
        raise _bad(
            "Lookup columns are created with their relationship: POST RelationshipDefinitions with a "
            "OneToManyRelationshipMetadata and its Lookup."
        )
    if kind_name in _UNMODELLED_TYPES:
        raise not_modelled(f"Creating a {kind_name} column")
    kind = _TYPES.get(kind_name)
    if kind is None:
        raise _bad(
            "The attribute definition needs a supported @odata.type such as "
            "Microsoft.Dynamics.CRM.StringAttributeMetadata."
        )
    schema = str(body.get("SchemaName") or "")
    if not (_SCHEMA_NAME.match(schema) or (not require_prefix and re.fullmatch(r"[A-Za-z]\w*", schema))):
        raise _bad(f"The SchemaName '{schema}' is not valid: it needs a customization prefix such as 'new_'.")
    name = schema.lower()
    options: tuple[tuple[int, str], ...] = ()
    if kind == "Picklist":
        option_set = body.get("OptionSet") or {}
        if "GlobalOptionSet@odata.bind" in body or option_set.get("IsGlobal"):
            raise not_modelled("Global option sets")
        raw = option_set.get("Options") or []
        if not raw:
            raise _bad(f"The choice column '{schema}' needs OptionSet.Options.")
        # [U] values Dataverse assigns when none is given: the publisher's option prefix (100000000 here) + n.
        options = tuple(
            (int(o.get("Value") if o.get("Value") is not None else 100_000_000 + i), label_text(o.get("Label")))
            for i, o in enumerate(raw)
        )
    if kind == "Boolean":
        option_set = body.get("OptionSet") or {}
        options = (
            (0, label_text((option_set.get("FalseOption") or {}).get("Label"), "No")),
            (1, label_text((option_set.get("TrueOption") or {}).get("Label"), "Yes")),
        )
    behavior = str((body.get("DateTimeBehavior") or {}).get("Value") or "") if kind == "DateTime" else ""
    if behavior and behavior not in ("UserLocal", "DateOnly", "TimeZoneIndependent"):
        raise _bad(f"DateTimeBehavior '{behavior}' is not valid.")
    date_format = str(body.get("Format") or "DateAndTime") if kind == "DateTime" else ""
    if kind == "DateTime" and date_format not in ("DateOnly", "DateAndTime"):
        raise _bad(f"The DateTime Format '{date_format}' is not valid.")
    max_length = body.get("MaxLength")
    if kind in ("String", "Memo"):
        max_length = int(max_length if max_length is not None else (100 if kind == "String" else 2000))
        limit = 4000 if kind == "String" else 1_048_576
        if not 1 <= max_length <= limit:
            raise _bad(f"MaxLength of '{schema}' must be between 1 and {limit}.")
    else:
        max_length = None
    return Column(
        name,
        kind,
        max_length=max_length,
        options=options,
        date_only=behavior == "DateOnly",
        schema_name=schema,
        display_name=label_text(body.get("DisplayName"), schema),
        date_format=date_format,
        behavior=behavior or ("UserLocal" if kind == "DateTime" else ""),
        required=str((body.get("RequiredLevel") or {}).get("Value") or "None"),
        is_custom=custom,
    )


class MetadataWriter:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.relationships: dict[str, dict[str, Any]] = {}  # MetadataId -> OneToManyRelationshipMetadata
        self.hold_new_keys = False  # True: new keys stay Pending until activate_keys()

    # -- tables ---------------------------------------------------------------------------------
    def create_entity(self, body: dict[str, Any]) -> TableDef:
        definition = self._entity_from_metadata(body)
        with self.store.lock:
            if definition.logical_name in self.store.tables or definition.entity_set in self.store.by_set:
                raise _bad(
                    f"An object with the specified name already exists (table {definition.logical_name}).",
                    DUPLICATE_NAME,
                )
            self.store.add_table(definition)
        return definition

    def create_entities(self, body: dict[str, Any]) -> list[TableDef]:
        entities = body.get("Entities")
        if not isinstance(entities, list) or not entities:
            raise _bad("CreateEntities needs Entities: a list of entity definitions.")
        definitions = [self._entity_from_metadata(e) for e in entities]
        with self.store.lock:
            names = [d.logical_name for d in definitions]
            clash = [n for n in names if n in self.store.tables] or [n for n in names if names.count(n) > 1]
            if clash:
                raise _bad(f"An object with the specified name already exists (table {clash[0]}).", DUPLICATE_NAME)
            for definition in definitions:
                self.store.add_table(definition)
        return definitions

    def _entity_from_metadata(self, body: dict[str, Any]) -> TableDef:
        if not isinstance(body, dict):
            raise _bad("The entity definition must be a JSON object.")
        if _odata_type(body) not in ("", "EntityMetadata"):
            raise _bad("The @odata.type of an entity definition is Microsoft.Dynamics.CRM.EntityMetadata.")
        schema = str(body.get("SchemaName") or "")
        problems = []
        if not _SCHEMA_NAME.match(schema):
            problems.append(f"SchemaName '{schema}' needs a customization prefix such as 'new_'")
        for required in ("DisplayName", "DisplayCollectionName", "OwnershipType"):
            if not body.get(required):
                problems.append(f"{required} is required")
        ownership = str(body.get("OwnershipType") or "")
        if ownership and ownership not in ("UserOwned", "OrganizationOwned"):
            problems.append("OwnershipType must be UserOwned or OrganizationOwned")
        attributes = body.get("Attributes") or []
        primaries = [a for a in attributes if isinstance(a, dict) and a.get("IsPrimaryName")]
        if len(primaries) != 1 or _odata_type(primaries[0]) != "StringAttributeMetadata":
            problems.append("Attributes must hold exactly one StringAttributeMetadata with IsPrimaryName true")
        if problems:
            raise _bad("The entity definition is not valid: " + "; ".join(problems) + ".")
        logical = schema.lower()
        is_activity = bool(body.get("IsActivity", False))
        primary = column_from_metadata(primaries[0], require_prefix=not is_activity)
        others = [column_from_metadata(a) for a in attributes if a is not primaries[0]]
        entity_set = str(body.get("EntitySetName") or entity_set_name(logical))
        common: dict[str, Any] = {
            "schema_name": schema,
            "display_name": label_text(body.get("DisplayName"), schema),
            "display_collection_name": label_text(body.get("DisplayCollectionName"), schema + "s"),
            "ownership": ownership,
            "has_notes": bool(body.get("HasNotes", False)),
            "has_activities": bool(body.get("HasActivities", False)),
            "change_tracking": bool(body.get("ChangeTrackingEnabled", False)),
        }
        if is_activity:
            if primary.schema_name != "Subject":
                raise _bad(
                    "The primary column of an activity table must have the SchemaName 'Subject'.", ACTIVITY_METADATA
                )
            if common["has_activities"]:
                raise _bad(
                    "A custom entity defined as an activity must not have a relationship with Activities.",
                    ACTIVITY_WITH_ACTIVITIES,
                )
            if not common["has_notes"]:
                raise _bad(
                    "A custom entity defined as an activity must have a relationship to Notes by default.",
                    ACTIVITY_WITHOUT_NOTES,
                )
            if ownership != "UserOwned":
                raise _bad(
                    "An activity table must be owned by a user or team (OwnershipType UserOwned).", ACTIVITY_METADATA
                )
            table = activity_table(logical, entity_set, others, is_custom=True, **common)
            # The inherited subject column keeps its definition; the body may only set its length and label.
            inherited = table.column("subject")
            assert inherited is not None
            subject = dataclasses.replace(
                inherited, max_length=primary.max_length or 200, display_name=primary.display_name
            )
            return dataclasses.replace(table, columns=tuple(subject if c is inherited else c for c in table.columns))
        owned = ownership == "UserOwned"
        primary_key = logical + "id"
        columns = system_columns(primary_key, owned=owned) + _ACTIVE_INACTIVE + [primary, *others]
        duplicate = _duplicate([c.name for c in columns])
        if duplicate:
            raise _bad(f"Attribute {duplicate} already exists for entity {logical}.", DUPLICATE_ATTRIBUTE)
        return TableDef(
            logical_name=logical,
            entity_set=entity_set,
            primary_key=primary_key,
            primary_name=primary.name,
            columns=tuple(columns),
            is_activity=False,
            is_custom=True,
            **common,
        )

    def update_entity(self, table: Table, body: dict[str, Any]) -> None:
        """PUT EntityDefinitions(id): the settable properties of the sandbox's model."""
        definition = table.definition
        if not isinstance(body, dict):
            raise _bad("The entity definition must be a JSON object.")
        for name in ("LogicalName", "SchemaName"):
            given = body.get(name)
            if given is not None and str(given).lower() != definition.logical_name:
                raise _bad(f"{name} cannot be changed.")
        tracking = bool(body.get("ChangeTrackingEnabled", definition.change_tracking))
        if definition.change_tracking and not tracking:
            raise _bad("Change tracking cannot be disabled once it is enabled.")
        changes: dict[str, Any] = {"change_tracking": tracking}
        if "DisplayName" in body:
            changes["display_name"] = label_text(body["DisplayName"], definition.display_name)
        if "DisplayCollectionName" in body:
            changes["display_collection_name"] = label_text(
                body["DisplayCollectionName"], definition.display_collection_name
            )
        if "HasNotes" in body:
            changes["has_notes"] = bool(body["HasNotes"]) or definition.has_notes  # notes cannot be removed [U]
        self.store.set_definition(table, dataclasses.replace(definition, **changes))

    def delete_entity(self, table: Table) -> None:
        definition = table.definition
        if not definition.is_custom:
            raise _bad(f"The table {definition.logical_name} is a system table and cannot be deleted.")
        with self.store.lock:
            del self.store.tables[definition.logical_name]
            del self.store.by_set[definition.entity_set]

    # -- columns ----------------------------------------------------------------------------------
    def create_attribute(self, table: Table, body: dict[str, Any]) -> Column:
        column = column_from_metadata(body)
        with self.store.lock:
            definition = table.definition
            if definition.column(column.name) is not None:
                raise _bad(
                    f"Attribute {column.name} already exists for entity {definition.logical_name}.", DUPLICATE_ATTRIBUTE
                )
            self.store.set_definition(table, dataclasses.replace(definition, columns=(*definition.columns, column)))
        return column

    def update_attribute(self, table: Table, key: str, body: dict[str, Any]) -> None:
        """PUT .../Attributes(id): display name, required level, maximum length (the sandbox's model)."""
        with self.store.lock:
            definition = table.definition
            column = column_by_key(definition, key)
            kind = _odata_type(body)
            if kind and _TYPES.get(kind, "Lookup" if kind == "LookupAttributeMetadata" else "") not in (
                column.type,
                "Lookup" if column.type == "Owner" else column.type,
            ):
                raise _bad("The @odata.type of a column cannot change.")
            changes: dict[str, Any] = {}
            if "DisplayName" in body:
                changes["display_name"] = label_text(body["DisplayName"], column.display_name)
            if "RequiredLevel" in body:
                changes["required"] = str((body["RequiredLevel"] or {}).get("Value") or column.required)
            if column.type in ("String", "Memo") and body.get("MaxLength") is not None:
                changes["max_length"] = int(body["MaxLength"])
            updated = dataclasses.replace(column, **changes)
            columns = tuple(updated if c.name == column.name else c for c in definition.columns)
            self.store.set_definition(table, dataclasses.replace(definition, columns=columns))

    def delete_attribute(self, table: Table, key: str) -> None:
        with self.store.lock:
            definition = table.definition
            column = column_by_key(definition, key)
            if not column.is_custom or column.name in (definition.primary_key, definition.primary_name):
                raise _bad(f"The column {column.name} cannot be deleted.")
            if any(column.name in k.attributes for k in definition.keys):
                raise _bad(f"The column {column.name} is part of an alternate key; delete the key first.")
            columns = tuple(c for c in definition.columns if c.name != column.name)
            self.store.set_definition(table, dataclasses.replace(definition, columns=columns))

    # -- lookups: one-to-many relationships -----------------------------------------------------
    def create_relationship(self, body: dict[str, Any]) -> str:
        kind = _odata_type(body)
        if kind == "ManyToManyRelationshipMetadata":
            raise not_modelled("Many-to-many relationships")
        if kind != "OneToManyRelationshipMetadata":
            raise _bad("The @odata.type must be Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata.")
        schema = str(body.get("SchemaName") or "")
        referenced = str(body.get("ReferencedEntity") or "").lower()
        referencing = str(body.get("ReferencingEntity") or "").lower()
        lookup = body.get("Lookup") or {}
        lookup_schema = str(lookup.get("SchemaName") or "")
        with self.store.lock:
            target = self.store.tables.get(referenced)
            table = self.store.tables.get(referencing)
            problems = []
            if not schema:
                problems.append("SchemaName is required")
            if target is None:
                problems.append(f"ReferencedEntity '{referenced}' does not exist")
            if table is None or not table.definition.writable:
                problems.append(f"ReferencingEntity '{referencing}' does not exist or cannot hold lookups")
            if _odata_type(lookup) != "LookupAttributeMetadata" or not _SCHEMA_NAME.match(lookup_schema):
                problems.append("Lookup must be a LookupAttributeMetadata with a prefixed SchemaName")
            if problems:
                raise _bad("The relationship is not valid: " + "; ".join(problems) + ".")
            assert target is not None and table is not None
            attribute = body.get("ReferencedAttribute")
            if attribute and attribute != target.definition.primary_key:
                raise _bad(f"ReferencedAttribute must be the primary key {target.definition.primary_key}.")
            if any(r["SchemaName"].lower() == schema.lower() for r in self.relationships.values()):
                raise _bad(
                    "A relationship with the specified name already exists. Please specify a unique name.",
                    RELATIONSHIP_EXISTS,
                )
            name = lookup_schema.lower()
            if table.definition.column(name) is not None:
                raise _bad(f"Attribute {name} already exists for entity {referencing}.", DUPLICATE_ATTRIBUTE)
            navigation = str(body.get("ReferencingEntityNavigationPropertyName") or lookup_schema)
            column = Column(
                name,
                "Lookup",
                navigation=((navigation, referenced),),
                schema_name=lookup_schema,
                display_name=label_text(lookup.get("DisplayName"), lookup_schema),
                required=str((lookup.get("RequiredLevel") or {}).get("Value") or "None"),
                is_custom=True,
            )
            definition = table.definition
            self.store.set_definition(table, dataclasses.replace(definition, columns=(*definition.columns, column)))
            relationship_id = str(uuid.uuid4())
            self.relationships[relationship_id] = {
                "@odata.type": "#Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
                "MetadataId": relationship_id,
                "SchemaName": schema,
                "ReferencedEntity": referenced,
                "ReferencedAttribute": target.definition.primary_key,
                "ReferencingEntity": referencing,
                "ReferencingAttribute": name,
                "ReferencingEntityNavigationPropertyName": navigation,
                "RelationshipType": "OneToManyRelationship",
                "IsCustomRelationship": True,
            }
            return relationship_id

    # -- alternate keys -----------------------------------------------------------------------------
    def create_key(self, table: Table, body: dict[str, Any]) -> KeyDef:
        if not isinstance(body, dict):
            raise _bad("The key definition must be a JSON object.")
        schema = str(body.get("SchemaName") or "")
        attributes = body.get("KeyAttributes")
        with self.store.lock:
            definition = table.definition
            if not _SCHEMA_NAME.match(schema):
                raise _bad(f"The SchemaName '{schema}' of the key needs a customization prefix such as 'new_'.")
            if not isinstance(attributes, list) or not attributes or not all(isinstance(a, str) for a in attributes):
                raise _bad("KeyAttributes must list the logical names of the key's columns.")
            for name in attributes:
                column = definition.column(name)
                if column is None:
                    raise _bad(f"The attribute {name} does not exist on entity {definition.logical_name}.")
                if column.type not in KEY_TYPES:
                    raise _bad(f"The attribute {name} of type {column.type} cannot be part of an alternate key.")
            if definition.key(schema) is not None:
                raise _bad(
                    f"An entity key with the name {schema} already exists on entity {definition.logical_name}.",
                    KEY_NAME_EXISTS,
                )
            if any(set(k.attributes) == set(attributes) for k in definition.keys):
                raise _bad("An entity key with the selected attributes already exists on entity.", KEY_ATTRIBUTES_EXIST)
            if len(definition.keys) >= MAX_KEYS_PER_TABLE:
                raise _bad(f"A table can have at most {MAX_KEYS_PER_TABLE} alternate keys.")
            key = KeyDef(
                schema,
                tuple(attributes),
                label_text(body.get("DisplayName"), schema),
                status="Pending" if self.hold_new_keys else "Active",
                entity=definition.logical_name,
            )
            self.store.set_definition(table, dataclasses.replace(definition, keys=(*definition.keys, key)))
            return table.definition.key(schema) or key

    def delete_key(self, table: Table, key_text: str) -> None:
        with self.store.lock:
            definition = table.definition
            key = key_by_key(definition, key_text)
            keys = tuple(k for k in definition.keys if k.logical_name != key.logical_name)
            self.store.set_definition(table, dataclasses.replace(definition, keys=keys))

    def activate_keys(self) -> list[dict[str, str]]:
        """Run the pending key index jobs: each key becomes Active, or Failed if existing rows hold duplicates."""
        done = []
        with self.store.lock:
            for table in list(self.store.tables.values()):
                if not isinstance(table, Table):
                    continue
                definition = table.definition
                if not any(k.status == "Pending" for k in definition.keys):
                    continue
                keys = tuple(
                    dataclasses.replace(k, status="Active") if k.status == "Pending" else k for k in definition.keys
                )
                self.store.set_definition(table, dataclasses.replace(definition, keys=keys))
                done += [
                    {"entity": definition.logical_name, "key": k.schema_name, "status": k.status}
                    for k in table.definition.keys
                ]
        return done


def _duplicate(names: list[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


__all__ = ["MetadataWriter", "attribute_id", "column_from_metadata", "entity_set_name"]
