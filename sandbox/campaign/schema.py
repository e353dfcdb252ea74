"""Resources of the Campaign sandbox: the profile (nms:recipient) and custom resources given at start.

A custom resource is a plain dict (JSON-able, so the command line can take a file):

    {"name": "cusLoyaltyCard", "key": "crmId", "linked": true,
     "attributes": {"crmId": {"type": "string", "length": 64},
                    "points": "long", "validUntil": "date", "active": "boolean",
                    "tier": {"type": "enumeration", "values": ["bronze", "silver", "gold"]},
                    "profile": {"type": "link", "target": "profile"}},
     "filters": [{"name": "byCrmId", "attribute": "crmId", "param": "crmId_parameter"}]}

Attribute types are Campaign's technical types (`resType`: string, memo, boolean, byte, short, long,
int64, float, double, date, datetime, uuid) plus enumeration and link. `key` is the custom key: unique,
and not changeable with PATCH (must-read.md). Custom filters compare one attribute for equality; ACS
generates parameter names such as `crm_id_parameter` (uc-calling-resource-id-key.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

TECHNICAL_TYPES = frozenset(
    {"string", "memo", "boolean", "byte", "short", "long", "int64", "float", "double", "date", "datetime", "uuid"}
)
_HIGH_LEVEL = {
    "string": "string",
    "memo": "memo",
    "uuid": "string",
    "boolean": "boolean",
    "byte": "number",
    "short": "number",
    "long": "number",
    "int64": "number",
    "float": "number",
    "double": "number",
    "date": "date",
    "datetime": "datetime",
}
_INT_RANGES = {
    "byte": (-128, 127),
    "short": (-32768, 32767),
    "long": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

OPTOUT_SUFFIXES = ("", "Email", "Fax", "Mobile", "Phone", "PostalMail", "Pushnotification")
SPELLINGS = ("denyList", "blackList")


class ValueProblem(Exception):
    """A value does not fit its attribute; `message` follows the engine's wording."""


@dataclasses.dataclass(frozen=True)
class AttributeSpec:
    name: str
    type: str  # a technical type, "enumeration" or "link"
    length: int | None = None
    values: tuple[str, ...] = ()  # enumeration value names; the first is the default
    target: str | None = None  # link: target resource name
    read_only: bool = False
    data_policy: str | None = None  # "email": the value must be a valid address (metadata-mechanism.md)
    extension: bool = False  # profile extension field: only under profileAndServicesExt

    @property
    def high_level(self) -> str:
        if self.type in ("enumeration", "link"):
            return self.type
        return _HIGH_LEVEL[self.type]

    @property
    def sortable(self) -> bool:
        """Flag of the metadata (sorting.md). Which fields real Campaign flags is not listed [U]: here every
        scalar field except the opaque PKey and memo texts; links cannot be sorted."""
        return self.type not in ("link", "memo") and self.name != "PKey"

    @property
    def res_type(self) -> str:
        if self.type == "enumeration":
            return "string"
        return self.type

    def default(self) -> Any:
        if self.type == "boolean":
            return False
        if self.high_level == "number":
            return 0
        if self.type == "enumeration":
            return self.values[0] if self.values else ""
        if self.type == "link":
            return None
        return ""

    def check(self, value: Any) -> Any:
        """The stored form of `value`, or ValueProblem."""
        bad = ValueProblem(f"The value of the '{self.name}' property is not valid ({self.type} expected).")
        if value is None:
            return self.default()
        kind = self.type
        if kind in ("string", "memo", "uuid"):
            if not isinstance(value, str):
                raise bad
            if self.length is not None and len(value) > self.length:
                raise ValueProblem(f"The value of the '{self.name}' property is not valid (longer than {self.length}).")
            if self.data_policy == "email" and value and not _EMAIL.match(value):
                # Real Campaign echoes the offending value: clients must keep it out of their logs.
                raise ValueProblem(
                    f"Invalid email address '{value}'. The value of the '{self.name}' property is not valid."
                )
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                raise bad
            return value
        if kind in _INT_RANGES:
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad
            low, high = _INT_RANGES[kind]
            if not low <= value <= high:
                raise bad
            return value
        if kind in ("float", "double"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad
            return float(value)
        if kind == "date":
            if not isinstance(value, str) or (value and not _valid_date(value)):
                raise bad
            return value
        if kind == "datetime":
            if not isinstance(value, str) or (value and parse_datetime(value) is None):
                raise bad
            return value
        if kind == "enumeration":
            if value not in self.values:
                raise bad
            return value
        raise bad  # links are checked by the store, which knows the target's records


def _valid_date(value: str) -> bool:
    if not _DATE.match(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def parse_datetime(value: str) -> dt.datetime | None:
    """Campaign writes `2019-09-25 23:20:35.000Z`; ISO 8601 with T is accepted too."""
    text = value.strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def format_datetime(ts: float) -> str:
    """Campaign's own timestamp format, e.g. `2019-09-25 23:20:35.000Z` (filtering.md samples)."""
    moment = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclasses.dataclass(frozen=True)
class FilterSpec:
    name: str  # e.g. byExternalId
    attribute: str  # compared for equality
    param: str  # query parameter, e.g. externalId_parameter
    custom: bool = True  # custom filters only exist under profileAndServicesExt
    prefix: bool = False  # byText-like: case-sensitive prefix match (filtering.md)


@dataclasses.dataclass(frozen=True)
class ResourceSpec:
    name: str
    attributes: tuple[AttributeSpec, ...]
    key: str | None = None  # custom key: unique, immutable
    filters: tuple[FilterSpec, ...] = ()
    linked: bool = True  # linked to profile: served under profileAndServicesExt, else customResources
    label: str = ""
    schema: str = ""

    def attribute(self, name: str) -> AttributeSpec | None:
        for attr in self.attributes:
            if attr.name == name:
                return attr
        return None

    def visible(self, extended: bool) -> tuple[AttributeSpec, ...]:
        return tuple(a for a in self.attributes if extended or not a.extension)

    def filter(self, name: str, extended: bool) -> FilterSpec | None:
        for spec in self.filters:
            if spec.name == name and (extended or not spec.custom):
                return spec
        return None


def _attribute_from_config(name: str, raw: Any, *, extension: bool = False) -> AttributeSpec:
    spec = {"type": raw} if isinstance(raw, str) else dict(raw)
    kind = str(spec.get("type", ""))
    if kind.startswith("link:"):
        spec["target"] = kind.split(":", 1)[1]
        kind = "link"
    if kind not in TECHNICAL_TYPES and kind not in ("enumeration", "link"):
        raise ValueError(f"attribute {name!r}: unknown type {kind!r}")
    if kind == "enumeration" and not spec.get("values"):
        raise ValueError(f"attribute {name!r}: an enumeration needs values")
    if kind == "link" and not spec.get("target"):
        raise ValueError(f"attribute {name!r}: a link needs a target")
    return AttributeSpec(
        name=name,
        type=kind,
        length=int(spec["length"]) if spec.get("length") is not None else None,
        values=tuple(spec.get("values") or ()),
        target=spec.get("target"),
        data_policy=spec.get("dataPolicy"),
        extension=extension,
    )


def custom_resource_from_config(raw: Mapping[str, Any]) -> ResourceSpec:
    name = str(raw["name"])
    if not name.startswith("cus"):
        raise ValueError(f"custom resource {name!r}: names take the 'cus' prefix")
    attributes = [_attribute_from_config(n, t) for n, t in dict(raw.get("attributes") or {}).items()]
    key = raw.get("key")
    if key is not None and not any(a.name == key for a in attributes):
        raise ValueError(f"custom resource {name!r}: key {key!r} is not an attribute")
    filters = tuple(FilterSpec(f["name"], f["attribute"], f["param"]) for f in raw.get("filters") or ())
    for spec in filters:
        if not any(a.name == spec.attribute for a in attributes):
            raise ValueError(f"custom resource {name!r}: filter {spec.name!r} uses unknown attribute")
    return ResourceSpec(
        name=name,
        attributes=(*_audit_attributes(), *attributes),
        key=key,
        filters=filters,
        linked=bool(raw.get("linked", True)),
        label=str(raw.get("label", name)),
        schema=f"cus:{name[3:4].lower()}{name[4:]}",
    )


def _audit_attributes() -> tuple[AttributeSpec, ...]:
    return (
        AttributeSpec("PKey", "string", read_only=True),
        AttributeSpec("created", "datetime", read_only=True),
        AttributeSpec("lastModified", "datetime", read_only=True),
    )


def profile_resource(
    spelling: str,
    *,
    key: str = "externalId",
    extension_attributes: Mapping[str, Any] | None = None,
    custom_filters: tuple[FilterSpec, ...] = (),
) -> ResourceSpec:
    """The profile resource (datamodel-profile.md) with the opt-outs in the given spelling."""
    if spelling not in SPELLINGS:
        raise ValueError(f"opt-out spelling must be one of {SPELLINGS}")
    attributes = [
        *_audit_attributes(),
        AttributeSpec("externalId", "string", length=100),
        AttributeSpec("isExternal", "boolean"),
        AttributeSpec("email", "string", length=128, data_policy="email"),
        AttributeSpec("firstName", "string", length=30),
        AttributeSpec("lastName", "string", length=50),
        AttributeSpec("middleName", "string", length=30),
        AttributeSpec("phone", "string", length=32),
        AttributeSpec("mobilePhone", "string", length=32),
        AttributeSpec("birthDate", "date"),
        AttributeSpec("gender", "enumeration", values=("unknown", "male", "female")),
        AttributeSpec("emailFormat", "enumeration", values=("unknown", "text", "html")),
        AttributeSpec("timeZone", "string", length=50),
        *(AttributeSpec(spelling + suffix, "boolean") for suffix in OPTOUT_SUFFIXES),
        AttributeSpec("ccpaOptOut", "boolean"),
    ]
    for name, raw in dict(extension_attributes or {}).items():
        attributes.append(_attribute_from_config(name, raw, extension=True))
    builtin = (
        FilterSpec("byEmail", "email", "email", custom=False),
        FilterSpec("byText", "email", "text", custom=False, prefix=True),
    )
    return ResourceSpec(
        name="profile",
        attributes=tuple(attributes),
        key=key,
        filters=(*builtin, *custom_filters),
        linked=True,
        label="Profiles",
        schema="nms:recipient",
    )


def rename_optouts(spec: ResourceSpec, spelling: str) -> ResourceSpec:
    """The same profile resource with its opt-out attributes in the other spelling."""
    renamed = []
    for attr in spec.attributes:
        for prefix in SPELLINGS:
            if attr.name.startswith(prefix) and attr.name[len(prefix) :] in OPTOUT_SUFFIXES:
                attr = dataclasses.replace(attr, name=spelling + attr.name[len(prefix) :])
                break
        renamed.append(attr)
    return dataclasses.replace(spec, attributes=tuple(renamed))


def optout_rename_map(spelling: str) -> dict[str, str]:
    """Old attribute name -> new one, for rows stored under either spelling."""
    mapping = {}
    for prefix in SPELLINGS:
        for suffix in OPTOUT_SUFFIXES:
            mapping[prefix + suffix] = spelling + suffix
    return mapping
