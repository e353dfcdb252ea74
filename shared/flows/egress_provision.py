"""Provisioning for egress without Adobe's packaged app: the activity tables, their columns and an alternate key on
the event id, created through the Dataverse metadata API (`python -m shared.cli provision egress [--dry-run]`).

Decide, then act: `plan` reads what exists and returns only what is missing, so a second run finds nothing to do;
`apply` creates it in order (a table before its columns, the columns before the key). What exists but does not fit
(a table that is not an activity, a column of another type) is reported, never changed.

Sources: Microsoft's docs (MicrosoftDocs/powerapps-docs, developer/data-platform/): custom-activities.md (IsActivity,
primary column SchemaName "Subject", HasNotes, no HasActivities, user owned), webapi/create-update-entity-definitions-
using-web-api.md (POST EntityDefinitions, POST .../Attributes), define-alternate-keys-entity.md (POST .../Keys; the
index is built in the background). Display names follow Adobe's app ("Adobe Campaign Email Send"...); its schema
names are not public [U], so the defaults are this connector's own (docs/egress.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from shared.clients.dataverse import DataverseClient
from shared.config.model import EgressConfig
from shared.core.activities import ID_LENGTH, NAME_LENGTH, SUBJECT_LENGTH, URL_LENGTH, columns_for
from shared.flows.egress import activity_columns

LANGUAGE = 1033
# Adobe's app names the activities "Adobe Campaign Email Send / Open / URL Click / Bounce" (Adobe's D365 docs).
DISPLAY = {"send": "Email Send", "open": "Email Open", "click": "Email URL Click", "bounce": "Email Bounce"}
DATE_LABEL = {"send": "Send Date", "open": "Open Date", "click": "Click Date", "bounce": "Bounce Date"}
# field -> (kind, max length, display name); kind String (Text or Url format) or DateTime.
COLUMN_SPECS: dict[str, tuple[str, int, str]] = {
    "campaignName": ("Text", NAME_LENGTH, "Campaign Name"),
    "deliveryName": ("Text", NAME_LENGTH, "Delivery Name"),
    "campaignId": ("Text", ID_LENGTH, "Campaign ID"),
    "deliveryId": ("Text", ID_LENGTH, "Delivery ID"),
    "eventId": ("Text", ID_LENGTH, "Campaign Event ID"),
    "eventDate": ("DateTime", 0, "Event Date"),
    "trackingUrl": ("Url", URL_LENGTH, "Tracking URL"),
    "mirrorPageUrl": ("Url", URL_LENGTH, "Mirror Page URL"),
    "failureType": ("Text", 20, "Failure Type"),
    "failureReason": ("Text", NAME_LENGTH, "Failure Reason"),
}


class ProvisionError(Exception):
    """What exists does not fit and cannot be fixed by creating things; every problem is listed."""


@dataclasses.dataclass(frozen=True)
class Step:
    kind: str  # table | column | key
    table: str  # logical name
    name: str  # what it creates: the table's entity set, a column's or a key's logical name
    body: dict[str, Any]

    def describe(self) -> str:
        if self.kind == "table":
            return f"create activity table {self.table} (entity set {self.name})"
        if self.kind == "column":
            return f"create column {self.table}.{self.name}"
        return f"create alternate key {self.table}.{self.name} on {', '.join(self.body['KeyAttributes'])}"


def table_logical_name(entity_set: str) -> str:
    """The logical name a table gets for an entity set: new_campaignsends -> new_campaignsend."""
    return entity_set.lower()[:-1] if entity_set.lower().endswith("s") else entity_set.lower()


def plan(config: EgressConfig, dataverse: DataverseClient) -> list[Step]:
    """What is missing for every activity table the mapping names (whether or not its event type is on)."""
    steps: list[Step] = []
    problems: list[str] = []
    for event, entity_set in config.activity_tables.items():
        if event.startswith("$"):
            continue
        logical = dataverse.logical_name_of(entity_set)
        exists = logical is not None
        logical = logical or table_logical_name(entity_set)
        columns = activity_columns(config, logical)
        wanted = {columns[field]: field for field in columns_for(event)}
        attributes: Mapping[str, str] = {}
        keys: list[tuple[str, ...]] = []
        if exists:
            definition = dataverse.entity_definition(logical, refresh=True)
            if not definition.is_activity:
                problems.append(f"table {logical} ({entity_set}) exists and is not an activity table")
                continue
            attributes = definition.attributes
            keys = [key.attributes for key in dataverse.entity_keys(logical).values()]
        else:
            steps.append(Step("table", logical, entity_set, table_body(event, logical, entity_set)))
        for name, field in wanted.items():
            kind = "DateTime" if COLUMN_SPECS[field][0] == "DateTime" else "String"
            if name not in attributes:
                steps.append(Step("column", logical, name, column_body(event, field, name)))
            elif attributes[name] != kind:
                problems.append(f"column {logical}.{name} is a {attributes[name]} column, not {kind}")
        event_id = columns["eventId"]
        if (event_id,) not in keys:
            key_name = f"{logical}_eventidkey"
            steps.append(Step("key", logical, key_name, key_body(key_name, event_id)))
    if problems:
        raise ProvisionError("; ".join(problems))
    return steps


def apply(steps: list[Step], dataverse: DataverseClient) -> None:
    for step in steps:
        if step.kind == "table":
            dataverse.create_entity(step.body)
        elif step.kind == "column":
            dataverse.create_attribute(step.table, step.body)
        else:
            dataverse.create_key(step.table, step.body)


def label(text: str) -> dict[str, Any]:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.Label",
        "LocalizedLabels": [
            {"@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel", "Label": text, "LanguageCode": LANGUAGE}
        ],
    }


def table_body(event: str, logical: str, entity_set: str) -> dict[str, Any]:
    name = f"Adobe Campaign {DISPLAY[event]}"
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata",
        "SchemaName": logical,
        "EntitySetName": entity_set,
        "DisplayName": label(name),
        "DisplayCollectionName": label(name + "s"),
        "Description": label(f"Campaign email events ({event}) written by the Dynamics-Campaign connector"),
        "OwnershipType": "UserOwned",
        "IsActivity": True,
        "HasActivities": False,
        "HasNotes": True,
        "IsAvailableOffline": True,
        "IsMailMergeEnabled": False,
        "Attributes": [
            {
                "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                "SchemaName": "Subject",
                "IsPrimaryName": True,
                "MaxLength": SUBJECT_LENGTH,
                "FormatName": {"Value": "Text"},
                "RequiredLevel": {"Value": "None"},
                "DisplayName": label("Subject"),
            }
        ],
    }


def column_body(event: str, field: str, name: str) -> dict[str, Any]:
    kind, length, display = COLUMN_SPECS[field]
    common = {"SchemaName": name, "RequiredLevel": {"Value": "None"},
              "DisplayName": label(DATE_LABEL[event] if field == "eventDate" else display)}  # fmt: skip
    if kind == "DateTime":
        return {"@odata.type": "Microsoft.Dynamics.CRM.DateTimeAttributeMetadata", **common, "Format": "DateAndTime",
                "DateTimeBehavior": {"Value": "UserLocal"}}  # fmt: skip
    return {"@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata", **common, "MaxLength": length,
            "FormatName": {"Value": kind}}  # fmt: skip


def key_body(name: str, column: str) -> dict[str, Any]:
    return {"SchemaName": name, "DisplayName": label("Campaign Event ID"), "KeyAttributes": [column]}
