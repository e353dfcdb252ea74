"""Table definitions of the sandbox: contacts, tasks and custom tables given at start-up.

A custom table is described by a plain dict (JSON-able, so the command line can take a file):

    {"logical_name": "new_loyaltycard", "entity_set": "new_loyaltycards",
     "primary_key": "new_loyaltycardid", "primary_name": "new_name",
     "change_tracking": true, "is_activity": false,
     "columns": {"new_name": "String",
                 "new_points": "Integer",
                 "new_tier": {"type": "Picklist", "options": {"1": "Bronze", "2": "Silver"}},
                 "new_contactid": {"type": "Lookup", "target": "contact"}}}

Activity tables (is_activity) get the activitypointer columns every activity inherits
(PA custom-activities.md): subject, description, scheduled/actual start and end, the four
activity states, and a `regardingobjectid` lookup whose navigation property towards contacts is
`regardingobjectid_contact_<logical name>` (the pattern of `regardingobjectid_contact_task`).
"""

from __future__ import annotations

import dataclasses
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
        "Picklist",
        "State",
        "Status",
        "String",
        "Uniqueidentifier",
    }
)
_OPTION_TYPES = frozenset({"Picklist", "State", "Status", "Boolean"})


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    type: str
    max_length: int | None = None
    options: tuple[tuple[int, str], ...] = ()  # Picklist/State/Status values; Boolean: ((1, true), (0, false))
    navigation: tuple[tuple[str, str], ...] = ()  # Lookup: (navigation property, target logical name)
    read_only: bool = False
    date_only: bool = False
    # The name used in $select and in read results: lookups read as `_<name>_value`. A plain
    # attribute, not a property: projections read it for every column of every row.
    select_name: str = dataclasses.field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "select_name", f"_{self.name}_value" if self.type == "Lookup" else self.name)


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})
        object.__setattr__(self, "_by_select", {c.select_name: c for c in self.columns})
        object.__setattr__(self, "_by_nav", {nav: (c, t) for c in self.columns for nav, t in c.navigation})


def _system_columns(primary_key: str) -> list[Column]:
    return [
        Column(primary_key, "Uniqueidentifier"),
        Column("createdon", "DateTime", read_only=True),
        Column("modifiedon", "DateTime", read_only=True),
        Column("versionnumber", "BigInt", read_only=True),
    ]


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
    columns=tuple(
        _system_columns("contactid")
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


def activity_table(logical_name: str, entity_set: str, extra: list[Column], *, is_custom: bool) -> TableDef:
    columns = [
        *_system_columns("activityid"),
        Column("subject", "String", max_length=200),
        Column("description", "Memo", max_length=2000),
        Column("scheduledstart", "DateTime"),
        Column("scheduledend", "DateTime"),
        Column("actualstart", "DateTime"),
        Column("actualend", "DateTime"),
        Column("activitytypecode", "EntityName", read_only=True),
        # All four activity states (PA activitypointer-activity-entity.md).
        Column("statecode", "State", options=((0, "Open"), (1, "Completed"), (2, "Canceled"), (3, "Scheduled"))),
        Column(
            "statuscode",
            "Status",
            options=((1, "Open"), (2, "Not Started"), (3, "In Progress"), (5, "Completed"), (6, "Canceled")),
        ),
        Column("regardingobjectid", "Lookup", navigation=((f"regardingobjectid_contact_{logical_name}", "contact"),)),
        *extra,
    ]
    return TableDef(
        logical_name=logical_name,
        entity_set=entity_set,
        primary_key="activityid",
        primary_name="subject",
        columns=tuple(columns),
        change_tracking=True,
        is_activity=True,
        is_custom=is_custom,
    )


TASK = activity_table(
    "task",
    "tasks",
    [Column("prioritycode", "Picklist", options=((0, "Low"), (1, "Normal"), (2, "High")))],
    is_custom=False,
)


def table_from_dict(spec: Mapping[str, Any]) -> TableDef:
    """Build a TableDef from the simple dict form described in the module docstring."""
    logical = str(spec["logical_name"])
    entity_set = str(spec.get("entity_set") or logical + "s")
    is_activity = bool(spec.get("is_activity", False))
    columns = [_column_from_spec(name, value) for name, value in dict(spec.get("columns", {})).items()]
    if is_activity:
        table = activity_table(logical, entity_set, columns, is_custom=True)
        return dataclasses.replace(table, change_tracking=bool(spec.get("change_tracking", True)))
    primary_key = str(spec.get("primary_key") or logical + "id")
    primary_name = spec.get("primary_name")
    if primary_name and not any(c.name == primary_name for c in columns):
        columns.append(Column(str(primary_name), "String", max_length=100))
    return TableDef(
        logical_name=logical,
        entity_set=entity_set,
        primary_key=primary_key,
        primary_name=str(primary_name) if primary_name else None,
        columns=tuple(_system_columns(primary_key) + _ACTIVE_INACTIVE + columns),
        change_tracking=bool(spec.get("change_tracking", True)),
        is_activity=False,
        is_custom=True,
    )


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
    return [CONTACT, TASK, *(table_from_dict(s) for s in specs)]
