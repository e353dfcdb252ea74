"""Table definitions of the sandbox: contacts, tasks, systemusers, activitypointer and custom tables.

A custom table is described by a plain dict (JSON-able, so the command line can take a file):

    {"logical_name": "new_loyaltycard", "entity_set": "new_loyaltycards",
     "primary_key": "new_loyaltycardid", "primary_name": "new_name",
     "change_tracking": true, "is_activity": false,
     "columns": {"new_name": "String",
                 "new_points": "Integer",
                 "new_tier": {"type": "Picklist", "options": {"1": "Bronze", "2": "Silver"}},
                 "new_contactid": {"type": "Lookup", "target": "contact"}},
     "keys": [{"schema_name": "new_CardKey", "attributes": ["new_cardnumber"]}]}

Every table has the system columns (createdon/modifiedon/versionnumber, createdby/modifiedby/
modifiedonbehalfby lookups to systemuser) and, when user owned, `ownerid`. Activity tables (is_activity)
get the activitypointer columns every activity inherits (PA custom-activities.md): subject, description,
scheduled/actual start and end, the four activity states, and a `regardingobjectid` lookup whose
navigation property towards contacts is `regardingobjectid_contact_<logical name>` (the pattern of
`regardingobjectid_contact_task`). Definitions are immutable; metadata writes replace them.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from typing import Any

ATTRIBUTE_TYPES = frozenset(
    {
        "BigInt",
        "Boolean",
        "DateTime",
        "Decimal",
        "Double",
        "EntityName",
        "Integer",
        "Lookup",
        "Memo",
        "Money",
        "Owner",
        "Picklist",
        "State",
        "Status",
        "String",
        "Uniqueidentifier",
    }
)
_OPTION_TYPES = frozenset({"Picklist", "State", "Status", "Boolean"})
LOOKUP_TYPES = frozenset({"Lookup", "Owner"})
# Column types an alternate key may use (PA define-alternate-keys-entity.md).
KEY_TYPES = frozenset({"Decimal", "Integer", "String", "DateTime", "Lookup", "Picklist"})
MAX_KEYS_PER_TABLE = 10  # same page


def schema_name_of(name: str, custom: bool = False) -> str:
    """A SchemaName when none is given: address1_city -> Address1_City; custom new_tier -> new_Tier."""
    parts = name.split("_")
    if custom and len(parts) > 1:
        return parts[0] + "_" + "_".join(p[:1].upper() + p[1:] for p in parts[1:])
    return "_".join(p[:1].upper() + p[1:] for p in parts)


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    type: str
    max_length: int | None = None
    options: tuple[tuple[int, str], ...] = ()  # Picklist/State/Status values; Boolean: ((1, true), (0, false))
    navigation: tuple[tuple[str, str], ...] = ()  # Lookup/Owner: (navigation property, target logical name)
    read_only: bool = False
    date_only: bool = False  # DateTimeBehavior DateOnly: values are dates, no time zone
    schema_name: str = ""
    display_name: str = ""
    date_format: str = ""  # DateTime: "DateOnly" or "DateAndTime" (defaults from date_only)
    behavior: str = ""  # DateTime: "UserLocal", "DateOnly", "TimeZoneIndependent" (defaults from date_only)
    required: str = "None"
    is_custom: bool = False
    # The name used in $select and in read results: lookups read as `_<name>_value`. A plain
    # attribute, not a property: projections read it for every column of every row.
    select_name: str = dataclasses.field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "select_name", f"_{self.name}_value" if self.type in LOOKUP_TYPES else self.name)
        if not self.schema_name:
            object.__setattr__(self, "schema_name", schema_name_of(self.name, self.is_custom))
        if not self.display_name:
            object.__setattr__(self, "display_name", self.schema_name)
        if self.type == "DateTime":
            if not self.date_format:
                object.__setattr__(self, "date_format", "DateOnly" if self.date_only else "DateAndTime")
            if not self.behavior:
                object.__setattr__(self, "behavior", "DateOnly" if self.date_only else "UserLocal")

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(target for _, target in self.navigation))


@dataclasses.dataclass(frozen=True)
class KeyDef:
    """An alternate key (EntityKeyMetadata): a named set of columns whose values are unique."""

    schema_name: str
    attributes: tuple[str, ...]
    display_name: str = ""
    status: str = "Active"  # EntityKeyIndexStatus: Pending, InProgress, Active, Failed
    entity: str = ""

    @property
    def logical_name(self) -> str:
        return self.schema_name.lower()

    @property
    def metadata_id(self) -> str:
        return str(uuid.uuid5(_NS, f"key:{self.entity}.{self.logical_name}"))


_NS = uuid.UUID("9b0c6a0e-5a8e-4f55-9e8c-d365d365d365")


@dataclasses.dataclass(frozen=True)
class TableDef:
    logical_name: str
    entity_set: str
    primary_key: str
    primary_name: str | None
    columns: tuple[Column, ...]
    change_tracking: bool = True
    is_activity: bool = False
    is_custom: bool = True
    keys: tuple[KeyDef, ...] = ()
    schema_name: str = ""
    display_name: str = ""
    display_collection_name: str = ""
    ownership: str = "UserOwned"  # OwnershipType: UserOwned, OrganizationOwned, None
    has_notes: bool = False
    has_activities: bool = False
    object_type_code: int = 0
    writable: bool = True  # False: the Web API only reads it (activitypointer, systemuser here)
    _by_name: dict[str, Column] = dataclasses.field(init=False, repr=False, compare=False, default_factory=dict)
    _by_select: dict[str, Column] = dataclasses.field(init=False, repr=False, compare=False, default_factory=dict)
    _by_nav: dict[str, tuple[Column, str]] = dataclasses.field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def column(self, name: str) -> Column | None:
        return self._by_name.get(name)

    def by_select_name(self, name: str) -> Column | None:
        return self._by_select.get(name)

    def navigation(self, nav: str) -> tuple[Column, str] | None:
        """(lookup column, target logical name) for a navigation property used with @odata.bind."""
        return self._by_nav.get(nav)

    def key(self, logical_name: str) -> KeyDef | None:
        return next((k for k in self.keys if k.logical_name == logical_name.lower()), None)

    @property
    def metadata_id(self) -> str:
        return str(uuid.uuid5(_NS, self.logical_name))

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})
        object.__setattr__(self, "_by_select", {c.select_name: c for c in self.columns})
        object.__setattr__(self, "_by_nav", {nav: (c, t) for c in self.columns for nav, t in c.navigation})
        if not self.schema_name:
            object.__setattr__(self, "schema_name", schema_name_of(self.logical_name, self.is_custom))
        if not self.display_name:
            object.__setattr__(self, "display_name", self.schema_name)
        if not self.display_collection_name:
            object.__setattr__(self, "display_collection_name", self.display_name + "s")
        keys = tuple(k if k.entity else dataclasses.replace(k, entity=self.logical_name) for k in self.keys)
        object.__setattr__(self, "keys", keys)


def _user_lookup(name: str) -> Column:
    # Set by the platform from the caller (createdby/modifiedby) or its impersonator (modifiedonbehalfby).
    return Column(name, "Lookup", navigation=((name, "systemuser"),), read_only=True)


def system_columns(primary_key: str, *, owned: bool = True) -> list[Column]:
    columns = [
        Column(primary_key, "Uniqueidentifier"),
        Column("createdon", "DateTime", read_only=True),
        Column("modifiedon", "DateTime", read_only=True),
        Column("versionnumber", "BigInt", read_only=True),
        _user_lookup("createdby"),
        _user_lookup("modifiedby"),
        _user_lookup("modifiedonbehalfby"),
    ]
    if owned:
        # Owner lookups bind to systemusers or teams; teams are not modelled (see README).
        columns.append(Column("ownerid", "Owner", navigation=(("ownerid", "systemuser"),)))
    return columns


_ACTIVE_INACTIVE = [
    Column("statecode", "State", options=((0, "Active"), (1, "Inactive"))),
    Column("statuscode", "Status", options=((1, "Active"), (2, "Inactive"))),
]


def _yes_no(name: str, true: str = "Do Not Allow", false: str = "Allow") -> Column:
    return Column(name, "Boolean", options=((1, true), (0, false)))


CONTACT = TableDef(
    logical_name="contact",
    entity_set="contacts",
    primary_key="contactid",
    primary_name="fullname",
    is_custom=False,
    schema_name="Contact",
    display_name="Contact",
    has_notes=True,
    has_activities=True,
    object_type_code=2,
    columns=tuple(
        system_columns("contactid")
        + _ACTIVE_INACTIVE
        + [
            Column("firstname", "String", max_length=50),
            Column("lastname", "String", max_length=50),
            Column("fullname", "String", max_length=160, read_only=True),  # computed by the platform
            Column("emailaddress1", "String", max_length=100),
            Column("telephone1", "String", max_length=50),
            Column("mobilephone", "String", max_length=50),
            Column("address1_city", "String", max_length=80),
            Column("birthdate", "DateTime", date_only=True),
            Column("gendercode", "Picklist", options=((1, "Male"), (2, "Female"))),
            Column(
                "preferredcontactmethodcode",
                "Picklist",
                options=((1, "Any"), (2, "Email"), (3, "Phone"), (4, "Fax"), (5, "Mail")),
            ),
            # Opt-out columns and their labels: contact Web API reference (see reference/dataverse.md section 5).
            _yes_no("donotemail"),
            _yes_no("donotbulkemail"),
            _yes_no("donotphone"),
            _yes_no("donotfax"),
            _yes_no("donotpostalmail"),
            _yes_no("donotbulkpostalmail", "Yes", "No"),
            _yes_no("donotsendmm", "Do Not Send", "Send"),
            _yes_no("followemail", "Allow", "Do Not Allow"),
            Column("parentcustomerid", "Lookup", navigation=(("parentcustomerid_contact", "contact"),)),
        ]
    ),
)

SYSTEMUSER = TableDef(
    logical_name="systemuser",
    entity_set="systemusers",
    primary_key="systemuserid",
    primary_name="fullname",
    is_custom=False,
    schema_name="SystemUser",
    display_name="User",
    ownership="BusinessOwned",
    object_type_code=8,
    change_tracking=False,
    writable=False,  # users are managed through the control API (add_user), not modelled on the Web API
    columns=(
        *system_columns("systemuserid", owned=False),
        Column("fullname", "String", max_length=200, read_only=True),
        Column("firstname", "String", max_length=64),
        Column("lastname", "String", max_length=64),
        Column("domainname", "String", max_length=1024),
        Column("internalemailaddress", "String", max_length=100),
        Column("applicationid", "Uniqueidentifier"),
        Column("accessmode", "Picklist", options=((0, "Read-Write"), (4, "Non-interactive"))),
        Column("isdisabled", "Boolean", options=((1, "Disabled"), (0, "Enabled"))),
    ),
)

# Columns every activity inherits from activitypointer (PA custom-activities.md, activitypointer-activity-entity.md).
_ACTIVITY_STATES = Column(
    "statecode", "State", options=((0, "Open"), (1, "Completed"), (2, "Canceled"), (3, "Scheduled"))
)
_ACTIVITY_STATUSES = Column(
    "statuscode",
    "Status",
    options=((1, "Open"), (2, "Not Started"), (3, "In Progress"), (5, "Completed"), (6, "Canceled")),
)
POINTER_COLUMNS = (
    "activityid",
    "activitytypecode",
    "subject",
    "description",
    "scheduledstart",
    "scheduledend",
    "actualstart",
    "actualend",
    "statecode",
    "statuscode",
    "regardingobjectid",
    "ownerid",
    "createdby",
    "modifiedby",
    "modifiedonbehalfby",
    "createdon",
    "modifiedon",
    "versionnumber",
)


def _activity_columns(logical_name: str) -> list[Column]:
    return [
        *system_columns("activityid"),
        Column("subject", "String", max_length=200),
        Column("description", "Memo", max_length=2000),
        Column("scheduledstart", "DateTime"),
        Column("scheduledend", "DateTime"),
        Column("actualstart", "DateTime"),
        Column("actualend", "DateTime"),
        Column("activitytypecode", "EntityName", read_only=True),
        _ACTIVITY_STATES,
        _ACTIVITY_STATUSES,
        Column("regardingobjectid", "Lookup", navigation=((f"regardingobjectid_contact_{logical_name}", "contact"),)),
    ]


def activity_table(
    logical_name: str, entity_set: str, extra: list[Column], *, is_custom: bool, **definition: Any
) -> TableDef:
    return TableDef(
        logical_name=logical_name,
        entity_set=entity_set,
        primary_key="activityid",
        primary_name="subject",
        columns=tuple(_activity_columns(logical_name) + extra),
        change_tracking=definition.pop("change_tracking", True),
        is_activity=True,
        is_custom=is_custom,
        has_notes=definition.pop("has_notes", True),
        **definition,
    )


TASK = activity_table(
    "task",
    "tasks",
    [Column("prioritycode", "Picklist", options=((0, "Low"), (1, "Normal"), (2, "High")))],
    is_custom=False,
    schema_name="Task",
    display_name="Task",
    object_type_code=4212,
)

# activitypointer: one row per activity of any type, read only (PA activitypointer-activity-entity.md;
# "The 'Create' method does not support entities of type 'activitypointer'").
ACTIVITYPOINTER = TableDef(
    logical_name="activitypointer",
    entity_set="activitypointers",
    primary_key="activityid",
    primary_name="subject",
    columns=tuple(c for c in _activity_columns("activitypointer") if c.name in POINTER_COLUMNS),
    change_tracking=False,
    is_custom=False,
    schema_name="ActivityPointer",
    display_name="Activity",
    object_type_code=4200,
    writable=False,
)


def table_from_dict(spec: Mapping[str, Any]) -> TableDef:
    """Build a TableDef from the simple dict form described in the module docstring."""
    logical = str(spec["logical_name"])
    entity_set = str(spec.get("entity_set") or logical + "s")
    is_activity = bool(spec.get("is_activity", False))
    columns = [_column_from_spec(name, value) for name, value in dict(spec.get("columns", {})).items()]
    keys = tuple(
        KeyDef(str(k["schema_name"]), tuple(str(a) for a in k["attributes"]), str(k.get("display_name", "")))
        for k in spec.get("keys", ())
    )
    if is_activity:
        table = activity_table(logical, entity_set, columns, is_custom=True)
    else:
        primary_key = str(spec.get("primary_key") or logical + "id")
        primary_name = spec.get("primary_name")
        if primary_name and not any(c.name == primary_name for c in columns):
            columns.append(Column(str(primary_name), "String", max_length=100))
        table = TableDef(
            logical_name=logical,
            entity_set=entity_set,
            primary_key=primary_key,
            primary_name=str(primary_name) if primary_name else None,
            columns=tuple(system_columns(primary_key) + _ACTIVE_INACTIVE + columns),
            is_activity=False,
            is_custom=True,
        )
    table = dataclasses.replace(table, change_tracking=bool(spec.get("change_tracking", True)), keys=keys)
    check_keys(table)
    return table


def check_keys(table: TableDef) -> None:
    """Alternate keys name existing columns of the allowed types, at most 10 per table."""
    if len(table.keys) > MAX_KEYS_PER_TABLE:
        raise ValueError(f"{table.logical_name}: at most {MAX_KEYS_PER_TABLE} alternate keys")
    for key in table.keys:
        for name in key.attributes:
            column = table.column(name)
            if column is None or column.type not in KEY_TYPES:
                raise ValueError(f"{table.logical_name}: key {key.schema_name} cannot use column {name!r}")


def _column_from_spec(name: str, value: Any) -> Column:
    spec = {"type": value} if isinstance(value, str) else dict(value)
    kind = str(spec["type"])
    if kind not in ATTRIBUTE_TYPES:
        raise ValueError(f"column {name}: unknown attribute type {kind!r}")
    options: tuple[tuple[int, str], ...] = ()
    if kind in _OPTION_TYPES:
        raw = spec.get("options") or ({"1": "Yes", "0": "No"} if kind == "Boolean" else {})
        options = tuple(sorted(((int(k), str(v)) for k, v in dict(raw).items()), key=lambda kv: kv[0]))
    navigation: tuple[tuple[str, str], ...] = ()
    if kind == "Lookup":
        target = str(spec["target"])
        navigation = ((str(spec.get("navigation") or name), target),)
    default_length = {"String": 100, "Memo": 2000}.get(kind)
    return Column(
        name,
        kind,
        max_length=spec.get("max_length", default_length),
        options=options,
        navigation=navigation,
        date_only=bool(spec.get("date_only", False)),
        behavior=str(spec.get("behavior", "")),
        is_custom=True,
    )


# Default custom tables, used by the demo and the tests.
DEFAULT_CUSTOM_TABLES: list[dict[str, Any]] = [
    {
        "logical_name": "new_loyaltycard",
        "entity_set": "new_loyaltycards",
        "primary_key": "new_loyaltycardid",
        "primary_name": "new_name",
        "change_tracking": True,
        "columns": {
            "new_name": {"type": "String", "max_length": 100},
            "new_cardnumber": {"type": "String", "max_length": 20},
            "new_points": "Integer",
            "new_tier": {"type": "Picklist", "options": {"1": "Bronze", "2": "Silver", "3": "Gold"}},
            "new_validuntil": {"type": "DateTime", "date_only": True},
            "new_contactid": {"type": "Lookup", "target": "contact", "navigation": "new_ContactId"},
        },
        "keys": [{"schema_name": "new_CardNumberKey", "attributes": ["new_cardnumber"]}],
    },
    {
        "logical_name": "new_untracked",
        "entity_set": "new_untrackeds",
        "primary_key": "new_untrackedid",
        "primary_name": "new_name",
        "change_tracking": False,
        "columns": {"new_name": "String", "new_value": "Integer"},
    },
    {
        "logical_name": "new_campaignemailevent",
        "entity_set": "new_campaignemailevents",
        "is_activity": True,
        "change_tracking": True,
        "columns": {
            "new_eventtype": {
                "type": "Picklist",
                "options": {"1": "Sent", "2": "Opened", "3": "Clicked", "4": "Bounced", "5": "Unsubscribed"},
            },
            "new_eventdate": "DateTime",
            "new_deliveryid": {"type": "String", "max_length": 100},
            "new_campaignname": {"type": "String", "max_length": 200},
            "new_url": {"type": "String", "max_length": 1000},
        },
    },
]


def default_tables(custom: list[Mapping[str, Any]] | None = None) -> list[TableDef]:
    specs = DEFAULT_CUSTOM_TABLES if custom is None else custom
    return [CONTACT, TASK, SYSTEMUSER, *(table_from_dict(s) for s in specs)]
