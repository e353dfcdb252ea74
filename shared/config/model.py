"""The sync configuration (the mapping document) as typed, immutable objects.

Built only by `shared.config.loader`, after the JSON Schema and the semantic checks passed, so every
object here is known to be valid.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

PROFILE_RESOURCE = "profile"


class Combine(enum.Enum):
    AND = "and"
    OR = "or"


class PicklistMode(enum.Enum):
    VALUE = "value"  # technical option value (an integer)
    LABEL = "label"  # the option's display label


class OptOutMode(enum.Enum):
    DISABLED = "disabled"
    TO_CAMPAIGN = "toCampaign"
    TO_DYNAMICS = "toDynamics"
    BIDIRECTIONAL = "bidirectional"


# Filter operators. `in` takes a list; `null`/`notnull` take no value.
FILTER_OPERATORS = (
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "in",
    "notin",
    "contains",
    "startswith",
    "endswith",
    "null",
    "notnull",
)
VALUELESS_OPERATORS = ("null", "notnull")
LIST_OPERATORS = ("in", "notin")

# Source types a field may declare; without one the type comes from Dataverse metadata.
SOURCE_TYPES = (
    "Boolean",
    "Integer",
    "BigInt",
    "Decimal",
    "Double",
    "Money",
    "String",
    "Memo",
    "DateTime",
    "Date",
    "Picklist",
    "State",
    "Status",
    "Uniqueidentifier",
    "Lookup",
)
# Campaign attribute types a field may declare; without one the type comes from Campaign metadata.
TARGET_TYPES = (
    "string",
    "boolean",
    "byte",
    "short",
    "long",
    "int64",
    "float",
    "double",
    "date",
    "datetime",
    "memo",
    "uuid",
)

# Guardrails of the real integration (Adobe D365-ACS docs): custom tables per integration, mapped fields per table.
MAX_CUSTOM_TABLES = 20
MAX_FIELDS_PER_TABLE = 50

EGRESS_EVENTS = ("send", "open", "click", "bounce")
# The columns of Campaign's event export (docs/campaign-event-export.md): logical field -> default header name.
EGRESS_SOURCE_FIELDS = (
    "eventId",
    "eventType",
    "eventDate",
    "externalId",
    "campaignId",
    "campaignLabel",
    "deliveryId",
    "deliveryLabel",
    "trackingUrl",
    "mirrorPageUrl",
    "failureType",
    "failureReason",
)
EGRESS_REQUIRED_SOURCE_FIELDS = ("eventId", "eventType", "eventDate", "externalId")  # an export cannot leave them out
EGRESS_FILE_PATTERN = "campaign_events_*.csv"
# The columns egress writes on each activity table (docs/egress.md), besides subject, regarding and owner.
EGRESS_ACTIVITY_FIELDS = (
    "campaignName",
    "deliveryName",
    "campaignId",
    "deliveryId",
    "eventId",
    "eventDate",
    "trackingUrl",
    "mirrorPageUrl",
    "failureType",
    "failureReason",
)

# Campaign's fixed opt-out fields. The D365 integration pages say denyList*, the profile data model and the API
# samples say blackList*: both spellings are accepted and name the same field.
_DENY_LIST_FIELDS = (
    "denyList",
    "denyListEmail",
    "denyListFax",
    "denyListMobile",
    "denyListPhone",
    "denyListPostalMail",
    "denyListPushnotification",
)
OPT_OUT_CAMPAIGN_FIELDS = (
    *_DENY_LIST_FIELDS,
    *(name.replace("denyList", "blackList") for name in _DENY_LIST_FIELDS),
    "ccpaOptOut",
)


def canonical_opt_out_field(name: str) -> str:
    """The denyList* spelling of a Campaign opt-out field, so both spellings compare equal."""
    return "denyList" + name[len("blackList") :] if name.startswith("blackList") else name


@dataclasses.dataclass(frozen=True)
class FieldMapping:
    source: str  # Dataverse attribute logical name
    target: str  # Campaign attribute apiName
    apply_updates: bool = True  # False: written on initial load, replay and record creation only
    source_type: str | None = None
    target_type: str | None = None


@dataclasses.dataclass(frozen=True)
class FilterRule:
    field: str
    operator: str
    value: Any = None


@dataclasses.dataclass(frozen=True)
class FilterSet:
    rules: tuple[FilterRule, ...] = ()
    combine: Combine = Combine.AND
    delete_filtered_out: bool = False  # a synced record that stops passing is deleted in Campaign


@dataclasses.dataclass(frozen=True)
class Replacement:
    field: str  # a mapped source field
    from_value: Any
    to_value: Any


@dataclasses.dataclass(frozen=True)
class TableMapping:
    name: str  # stable id of the mapping: state keys, logs, CLI
    entity: str  # Dataverse logical name, e.g. contact
    entity_set: str  # Dataverse entity set name, e.g. contacts
    primary_key: str  # e.g. contactid
    resource: str  # Campaign resource: profile or cus<Name>
    key_attribute: str  # Campaign attribute holding the Dynamics id (externalId for profiles)
    lookup_filter: str  # Campaign custom key filter, e.g. byExternalId
    lookup_parameter: str  # its parameter, e.g. externalId_parameter
    fields: tuple[FieldMapping, ...]
    filters: FilterSet = FilterSet()
    replacements: tuple[Replacement, ...] = ()
    apply_deletes: bool = False
    picklists: PicklistMode = PicklistMode.VALUE
    enabled: bool = True

    @property
    def is_profile(self) -> bool:
        return self.resource == PROFILE_RESOURCE

    def source_attributes(self) -> tuple[str, ...]:
        """Every Dataverse column a read must $select: key, mapped fields and filter fields, once each."""
        names = [self.primary_key, *(f.source for f in self.fields), *(r.field for r in self.filters.rules)]
        return tuple(dict.fromkeys(names))


@dataclasses.dataclass(frozen=True)
class EgressConfig:
    enabled: bool = False
    events: frozenset[str] = frozenset()  # of send, open, click, bounce
    activity_tables: dict[str, str] = dataclasses.field(default_factory=dict)  # event type -> entity set
    task_on_click: bool = False
    task_on_bounce: bool = False
    task_due_days: int = 2
    # Campaign's export: logical field -> header name, None when the export leaves the column out.
    source_columns: dict[str, str | None] = dataclasses.field(
        default_factory=lambda: {f: f for f in EGRESS_SOURCE_FIELDS}
    )
    source_pattern: str = EGRESS_FILE_PATTERN
    source_separator: str = ";"
    activity_columns: dict[str, str] = dataclasses.field(default_factory=dict)  # overrides of <prefix>_<field>
    owner: str | None = None  # systemuserid; None: the application user (WhoAmI)


@dataclasses.dataclass(frozen=True)
class OptOutPair:
    dynamics: str  # Dataverse boolean, e.g. donotbulkemail
    campaign: str  # Campaign factory opt-out field, denyList* or blackList* spelling


@dataclasses.dataclass(frozen=True)
class OptOutConfig:
    mode: OptOutMode = OptOutMode.DISABLED
    pairs: tuple[OptOutPair, ...] = ()


@dataclasses.dataclass(frozen=True)
class SyncConfig:
    tables: tuple[TableMapping, ...]
    egress: EgressConfig = EgressConfig()
    opt_out: OptOutConfig = OptOutConfig()

    def table(self, name: str) -> TableMapping:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)

    @property
    def contacts(self) -> TableMapping | None:
        return next((t for t in self.tables if t.is_profile), None)

    @property
    def custom_tables(self) -> tuple[TableMapping, ...]:
        return tuple(t for t in self.tables if not t.is_profile)
