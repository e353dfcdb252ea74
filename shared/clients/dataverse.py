"""Dataverse (Dynamics 365) Web API client: paged and change-tracking reads, metadata, writes, $batch.

Facts it relies on (Microsoft's Dataverse Web API docs, MicrosoftDocs/powerapps-docs,
developer/data-platform/webapi/*.md and use-change-tracking-synchronize-data-external-systems.md):
- every request sends Accept/OData-MaxVersion/OData-Version/If-None-Match: null; reads always $select;
- pages: Prefer odata.maxpagesize (at most 5000), @odata.nextLink followed as given;
- change tracking: Prefer odata.track-changes; the deltaLink is on the last page only; deletes come as
  `$deletedEntity` rows; $filter/$orderby/$expand/$top are refused with it, so filtering happens in the
  caller; an expired token (0x80044352) means "resync from scratch";
- update = PATCH with If-Match: * (404 instead of an accidental create); upsert = PATCH without it;
  create-if-absent = PATCH with If-None-Match: * (412 when the row exists; never an update);
- $batch: at most 1000 operations, change sets are atomic, Prefer odata.continue-on-error;
- service protection: 429 + Retry-After, codes 0x80072321/2/6 (retries live in HttpClient).

Bodies hold personal data: this module never logs them and keeps them out of exception messages.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree

import orjson
import requests

from shared.auth.dataverse_token import DataverseTokenProvider
from shared.clients.ttl_cache import TtlCache
from shared.core.errors import RecordError
from shared.http import ApiError, HttpClient, Outcome, RetryPolicy, TokenProvider, classify_status
from shared.http.tls import build_verified_session

API_PATH = "/api/data/v9.2/"
MAX_PAGE_SIZE = 5000
MAX_BATCH_OPERATIONS = 1000
EXPIRED_VERSION_STAMP = "0x80044352"
RECORD_NOT_FOUND = "0x80040217"  # "<table> With Id = <id> Does Not Exist"
THROTTLING_CODES = frozenset({"0x80072321", "0x80072322", "0x80072326"})
ODATA_HEADERS: Mapping[str, str] = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
    "If-None-Match": "null",
}
_RECORD_STATUSES = frozenset({400, 404, 412})
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MESSAGE_LIMIT = 300

T = TypeVar("T")
R = TypeVar("R")


# -- errors ----------------------------------------------------------------------------------------
class ChangeTrackingExpired(ApiError):
    """The delta token is past the retention window (ExpiredVersionStamp): resync from scratch."""


class ChangeTrackingNotEnabled(ApiError):
    """The table does not track changes, so no delta link can ever come back."""

    def __init__(self, table: str) -> None:
        super().__init__(
            Outcome.FATAL,
            0,
            f"Table '{table}' does not have change tracking enabled. Enable it in Power Apps: Tables > {table} > "
            "Properties > Advanced options > 'Track changes' (or set EntityMetadata.ChangeTrackingEnabled); "
            "it cannot be turned off again afterwards.",
        )
        self.table = table


def safe_message(text: str) -> str:
    """An error message fit for logs: e-mail addresses masked, length capped."""
    return _EMAIL.sub("<email>", text)[:_MESSAGE_LIMIT]


def _error_fields(body: bytes, content_type: str) -> tuple[str, str]:
    if "json" not in content_type or not body or len(body) > 65536:
        return "", ""
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        return "", ""
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), safe_message(str(error.get("message") or ""))


def classify_parts(status: int, body: bytes, content_type: str, reason: str = "") -> tuple[Outcome, str, str]:
    """Classify a Dataverse answer (a whole response or one $batch part) from its status and error body."""
    code, message = _error_fields(body, content_type)
    message = message or reason
    if 200 <= status < 300:
        return Outcome.OK, code, message
    if status == 429 or code.lower() in THROTTLING_CODES:
        return Outcome.RATE_LIMITED, code, message
    if code.lower() == EXPIRED_VERSION_STAMP:
        return Outcome.FATAL, code, message  # the client turns it into ChangeTrackingExpired
    if status in _RECORD_STATUSES:
        return Outcome.RECORD_ERROR, code, message
    return classify_status(status), code, message


def classify(response: requests.Response) -> tuple[Outcome, str, str]:
    """The HttpClient classifier for Dataverse: reads {"error": {"code", "message"}}."""
    return classify_parts(
        response.status_code, response.content, response.headers.get("Content-Type", ""), response.reason or ""
    )


# -- values ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Page:
    """One page of a read. `delta_link` is set on the last page of a change-tracking read only."""

    rows: list[dict[str, Any]]
    deleted_ids: list[str]
    next_link: str | None
    delta_link: str | None


@dataclasses.dataclass(frozen=True)
class EntityDefinition:
    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str | None
    change_tracking_enabled: bool
    is_activity: bool
    attributes: dict[str, str]  # logical name -> AttributeType (String, Picklist, Lookup, ...)


@dataclasses.dataclass(frozen=True)
class EntityKey:
    logical_name: str
    schema_name: str
    attributes: tuple[str, ...]
    index_status: str  # Pending | InProgress | Active | Failed


@dataclasses.dataclass(frozen=True)
class Operation:
    """One request of a $batch. Build with create/update/upsert/delete; `path` is relative to the API root."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    entity_set: str = ""
    new_id: str | None = None  # create with a client-chosen GUID (the primary key is added by the client)

    @classmethod
    def create(cls, entity_set: str, body: Mapping[str, Any], id: str | None = None) -> Operation:
        if id is not None:
            row_path(entity_set, id)  # refused here, not when the batch is sent
        return cls("POST", entity_set, dict(body), entity_set=entity_set, new_id=id)

    @classmethod
    def update(cls, entity_set: str, id: str, body: Mapping[str, Any]) -> Operation:
        return cls("PATCH", row_path(entity_set, id), dict(body), {"If-Match": "*"}, entity_set=entity_set)

    @classmethod
    def upsert(cls, entity_set: str, id: str, body: Mapping[str, Any]) -> Operation:
        return cls("PATCH", row_path(entity_set, id), dict(body), entity_set=entity_set)

    @classmethod
    def create_if_absent(cls, entity_set: str, id: str, body: Mapping[str, Any]) -> Operation:
        """Create the row under this id unless it exists; an existing row is never changed (412 instead)."""
        return cls("PATCH", row_path(entity_set, id), dict(body), {"If-None-Match": "*"}, entity_set=entity_set)

    @classmethod
    def delete(cls, entity_set: str, id: str) -> Operation:
        return cls("DELETE", row_path(entity_set, id), entity_set=entity_set)


@dataclasses.dataclass(frozen=True)
class OperationResult:
    index: int  # position of the operation in the list given to batch()
    status: int  # 0 when the operation was not processed (batch stopped, or change set rolled back)
    outcome: Outcome
    entity_id: str | None = None
    code: str = ""
    message: str = ""
    body: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


class Creation(enum.Enum):
    """What became of a create-if-absent operation (Operation.create_if_absent), from its status and code."""

    CREATED = "created"
    EXISTS = "exists"  # the row was there already: nothing was written
    MISSING_REFERENCE = "missing_reference"  # a row it binds to (@odata.bind) does not exist (yet)
    REFUSED = "refused"  # the row itself was refused (a value, a length): the record's own problem
    RETRY = "retry"  # not processed, throttled or a server error: send it again
    FATAL = "fatal"  # permissions or anything unexpected: stop


def creation(result: OperationResult) -> Creation:
    """Classify one create-if-absent part. With If-None-Match: * a 412 can only mean "exists" (the row, or another
    row holding the same alternate key, 0x80060892); the row itself cannot be missing, so a 404 names a bind target."""
    if result.ok:
        return Creation.CREATED
    if result.status == 0 or result.outcome in (Outcome.RETRY, Outcome.RATE_LIMITED):
        return Creation.RETRY
    if result.status == 412:
        return Creation.EXISTS
    if result.status == 404 or result.code.lower() == RECORD_NOT_FOUND:
        return Creation.MISSING_REFERENCE
    if result.outcome is Outcome.RECORD_ERROR:
        return Creation.REFUSED
    return Creation.FATAL


def attribute_of_column(column: str) -> str:
    """The metadata attribute behind a Web API column: a lookup `x` reads as `_x_value`."""
    if column.startswith("_") and column.endswith("_value"):
        return column[1:-6]
    return column


def odata_bind(entity_set: str, id: str) -> str:
    """Value for `<navigation property>@odata.bind`, e.g. odata_bind("contacts", guid) -> "/contacts(guid)"."""
    return "/" + row_path(entity_set, id)


class InvalidRowId(RecordError, ValueError):
    """A row id that is not a GUID: refused before any URL is built from it (a quote, `/`, `?` or `#` in it would
    address another row or resource). The reason never holds the id (it came from outside)."""

    def __init__(self, entity_set: str) -> None:
        super().__init__(f"{entity_set}: a row id must be a GUID")


def row_path(entity_set: str, id: str) -> str:
    """`entity_set(id)` for a GUID id; raises InvalidRowId for anything else."""
    if not isinstance(id, str) or not _GUID.fullmatch(id):
        raise InvalidRowId(entity_set)
    return f"{entity_set}({id})"


# -- client ----------------------------------------------------------------------------------------
class DataverseClient:
    def __init__(
        self,
        base_url: str,
        http: HttpClient,
        *,
        page_size: int = MAX_PAGE_SIZE,
        max_parallel: int = 8,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.api_url = self.base_url + API_PATH
        self.http = http
        self.page_size = page_size
        self.max_parallel = max_parallel
        self._slots = threading.BoundedSemaphore(max_parallel)  # bounds requests in flight across threads
        self._origin = _origin(self.api_url)
        self._cache_lock = threading.Lock()
        self._definitions: TtlCache[str, EntityDefinition] = TtlCache()
        self._primary_keys: dict[str, str] = {}  # an entity set's primary key never changes
        self._labels: TtlCache[tuple[str, str], dict[int, str]] = TtlCache()
        self._navigation: TtlCache[str, dict[str, dict[str, str]]] = TtlCache()

    # -- plumbing ------------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        allow: frozenset[int] = frozenset(),
    ) -> requests.Response:
        merged = dict(ODATA_HEADERS)
        if json_body is not None:
            merged["Content-Type"] = "application/json"
        merged.update(headers or {})
        with self._slots:
            return self.http.request(method, url, headers=merged, json=json_body, data=data, allow=allow)

    def _url(self, relative: str) -> str:
        return self.api_url + relative

    def _check_link(self, link: str) -> str:
        # A stored link must point at this organisation: never send our token elsewhere.
        if _origin(link) != self._origin or not urlsplit(link).path.startswith(API_PATH):
            raise ValueError("link does not belong to this Dataverse organisation")
        return link

    # -- reads ---------------------------------------------------------------------------------
    def retrieve(self, entity_set: str, id: str, select: Sequence[str]) -> dict[str, Any] | None:
        """One row, or None if it does not exist."""
        url = self._url(f"{row_path(entity_set, id)}?$select={_select(select)}")
        response = self._send("GET", url, allow=frozenset({404}))
        return None if response.status_code == 404 else dict(response.json())

    def retrieve_many(self, entity_set: str, key: str, ids: Sequence[str], select: Sequence[str],
                      chunk: int = 100) -> list[dict[str, Any]]:  # fmt: skip
        """Rows by id with the In query function, `chunk` ids per request (URLs stay well under the limit);
        ids that do not exist are simply absent."""
        rows: list[dict[str, Any]] = []
        wanted = sorted({i.lower() for i in ids})
        for start in range(0, len(wanted), chunk):
            values = ",".join(f"'{i}'" for i in wanted[start : start + chunk] if _GUID.fullmatch(i))
            if not values:
                continue
            condition = f"Microsoft.Dynamics.CRM.In(PropertyName='{key}',PropertyValues=[{values}])"
            for page in self.iter_rows(entity_set, select, filter=condition):
                rows.extend(page.rows)
        return rows

    def iter_rows(
        self,
        entity_set: str,
        select: Sequence[str],
        *,
        filter: str | None = None,
        next_link: str | None = None,
    ) -> Iterator[Page]:
        """A plain paged query (no change tracking). Resume from a stored `next_link` if given."""
        if next_link is not None:
            url = self._check_link(next_link)
        else:
            url = self._url(f"{entity_set}?$select={_select(select)}")
            if filter:
                url += "&$filter=" + quote(filter, safe="'(),=")
        prefer = {"Prefer": f"odata.maxpagesize={self.page_size}"}
        url_or_none: str | None = url
        while url_or_none:
            body = self._send("GET", url_or_none, headers=prefer).json()
            following = body.get("@odata.nextLink")
            yield Page(list(body.get("value", [])), [], following, None)
            url_or_none = self._check_link(following) if following else None

    def iter_changes(
        self, entity_set: str, select: Sequence[str], link: str | None = None
    ) -> Generator[Page, None, None]:
        """Change-tracking read, page by page: every row when `link` is None, else from a stored link.

        `link` is the `delta_link` of the last page of an earlier read (changes since then), or the
        `next_link` of a page of an interrupted read (resume it). Persist `page.next_link` after each
        page and `page.delta_link` (last page only) for the next run. Deleted rows come as
        `deleted_ids`. Raises ChangeTrackingExpired when the delta link is too old (read everything
        again without a link) and ChangeTrackingNotEnabled for a table that does not track changes.
        """
        start = self._url(f"{entity_set}?$select={_select(select)}")
        url = self._check_link(link) if link is not None else start
        headers = {"Prefer": f"odata.track-changes,odata.maxpagesize={self.page_size}"}
        first = True
        current: str | None = url
        while current:
            try:
                response = self._send("GET", current, headers=headers)
            except ApiError as error:
                if error.code.lower() == EXPIRED_VERSION_STAMP:
                    raise ChangeTrackingExpired(
                        error.outcome, error.status, error.message, code=error.code, method="GET", url=current
                    ) from error
                raise
            # Tracked tables answer Preference-Applied: odata.track-changes (change tracking doc).
            if first and link is None and "odata.track-changes" not in response.headers.get("Preference-Applied", ""):
                raise ChangeTrackingNotEnabled(entity_set)
            first = False
            body = page_body(response)
            rows: list[dict[str, Any]] = []
            deleted: list[str] = []
            for item in body.get("value", []):
                if str(item.get("@odata.context", "")).endswith("$deletedEntity") or item.get("reason") == "deleted":
                    deleted.append(str(item["id"]))
                else:
                    rows.append(item)
            following = body.get("@odata.nextLink")
            new_delta = body.get("@odata.deltaLink")
            if following is None and new_delta is None:
                if link is None or "$deltatoken=" not in link:
                    raise ChangeTrackingNotEnabled(entity_set)
                new_delta = link  # an empty answer to a delta link: nothing changed, keep it
            yield Page(rows, deleted, following, None if following else new_delta)
            current = self._check_link(following) if following else None

    def who_am_i(self) -> str:
        """The systemuserid the connector acts as (its application user): proves the credentials too."""
        return str(self._send("GET", self._url("WhoAmI")).json()["UserId"]).lower()

    def exists(self, entity_set: str, id: str) -> bool:
        """Whether a row exists (one small read of its primary key)."""
        return self.retrieve(entity_set, id, [self.primary_key(entity_set)]) is not None

    def pending_changes(self, entity_set: str, select: Sequence[str], delta_link: str) -> bool:
        """Whether changes wait behind a stored delta link, at the cost of one one-row request.

        Dataverse cannot count a delta; the link is not advanced (the new one is not kept)."""
        headers = {"Prefer": "odata.track-changes,odata.maxpagesize=1"}
        try:
            body = self._send("GET", self._check_link(delta_link), headers=headers).json()
        except ApiError as error:
            if error.code.lower() == EXPIRED_VERSION_STAMP:
                raise ChangeTrackingExpired(error.outcome, error.status, error.message, code=error.code,
                                            method="GET", url=delta_link) from error  # fmt: skip
            raise
        return bool(body.get("value")) or bool(body.get("@odata.nextLink"))

    # -- metadata ------------------------------------------------------------------------------
    def entity_definition(self, logical_name: str, *, refresh: bool = False) -> EntityDefinition:
        """Entity set name, change tracking flag and attribute types of a table (cached)."""
        cached = None if refresh else self._definitions.get(logical_name)
        if cached is not None:
            return cached
        url = self._url(
            f"EntityDefinitions(LogicalName='{logical_name}')?$select=LogicalName,EntitySetName,PrimaryIdAttribute,"
            "PrimaryNameAttribute,ChangeTrackingEnabled,IsActivity&$expand=Attributes($select=LogicalName,AttributeType)"
        )
        body = self._send("GET", url).json()
        definition = EntityDefinition(
            logical_name=body["LogicalName"],
            entity_set=body["EntitySetName"],
            primary_id=body["PrimaryIdAttribute"],
            primary_name=body.get("PrimaryNameAttribute"),
            change_tracking_enabled=bool(body.get("ChangeTrackingEnabled")),
            is_activity=bool(body.get("IsActivity")),
            attributes={a["LogicalName"]: a["AttributeType"] for a in body.get("Attributes", [])},
        )
        self._definitions.put(logical_name, definition)
        with self._cache_lock:
            self._primary_keys[definition.entity_set] = definition.primary_id
        return definition

    def require_change_tracking(self, logical_name: str) -> EntityDefinition:
        """The table's definition, or ChangeTrackingNotEnabled naming it and how to turn tracking on."""
        definition = self.entity_definition(logical_name)
        if not definition.change_tracking_enabled:
            # An operator may have turned tracking on since it was cached: ask again before refusing.
            definition = self.entity_definition(logical_name, refresh=True)
        if not definition.change_tracking_enabled:
            raise ChangeTrackingNotEnabled(logical_name)
        return definition

    def column_types(self, logical_name: str, columns: Iterable[str]) -> tuple[dict[str, str], list[str]]:
        """AttributeType of each Web API column name, and the columns the table does not have.

        Web API rows carry a lookup `x` as `_x_value` while metadata names the attribute `x`."""
        attributes = self.entity_definition(logical_name).attributes
        found: dict[str, str] = {}
        missing: list[str] = []
        for column in columns:
            kind = attributes.get(attribute_of_column(column))
            if kind is None:
                missing.append(column)
            else:
                found[column] = kind
        return found, missing

    def picklist_labels(self, entity: str, attribute: str) -> dict[int, str]:
        """Option value -> label of a Picklist, State, Status or Boolean column (cached)."""
        key = (entity, attribute)
        cached = self._labels.get(key)
        if cached is not None:
            return cached
        kind = self.entity_definition(entity).attributes.get(attribute)
        cast = {
            "Picklist": "PicklistAttributeMetadata",
            "State": "StateAttributeMetadata",
            "Status": "StatusAttributeMetadata",
            "Boolean": "BooleanAttributeMetadata",
        }.get(kind or "")
        if cast is None:
            raise ValueError(f"{entity}.{attribute} is not a choice column (type {kind})")
        url = self._url(
            f"EntityDefinitions(LogicalName='{entity}')/Attributes(LogicalName='{attribute}')/"
            f"Microsoft.Dynamics.CRM.{cast}?$select=LogicalName&$expand=OptionSet"
        )
        option_set = self._send("GET", url).json().get("OptionSet") or {}
        options = option_set.get("Options")
        if options is None:  # Boolean columns carry TrueOption/FalseOption
            options = [o for o in (option_set.get("TrueOption"), option_set.get("FalseOption")) if o]
        labels = {int(o["Value"]): _label(o.get("Label") or {}) for o in options}
        return self._labels.put(key, labels)

    def total_record_count(self, logical_names: Iterable[str]) -> dict[str, int]:
        """Row counts per table (RetrieveTotalRecordCount: a snapshot from the last 24 hours)."""
        names = ",".join(f"'{name}'" for name in logical_names)
        body = self._send("GET", self._url(f"RetrieveTotalRecordCount(EntityNames=[{names}])")).json()
        collection = body["EntityRecordCountCollection"]
        return {str(k): int(v) for k, v in zip(collection["Keys"], collection["Values"], strict=True)}

    def logical_name_of(self, entity_set: str) -> str | None:
        """The logical name of the table behind an entity set, or None when no table has it."""
        url = self._url(f"EntityDefinitions?$select=LogicalName,EntitySetName,PrimaryIdAttribute"
                        f"&$filter=EntitySetName eq '{_quote_literal(entity_set)}'")  # fmt: skip
        found = self._send("GET", url).json().get("value", [])
        if not found:
            return None
        with self._cache_lock:
            self._primary_keys[entity_set] = str(found[0]["PrimaryIdAttribute"])
        return str(found[0]["LogicalName"])

    def entity_keys(self, logical_name: str) -> dict[str, EntityKey]:
        """The alternate keys of a table, by logical name (never cached: provisioning reads them after a change)."""
        url = self._url(f"EntityDefinitions(LogicalName='{logical_name}')/Keys"
                        "?$select=LogicalName,SchemaName,KeyAttributes,EntityKeyIndexStatus")  # fmt: skip
        keys = {}
        for item in self._send("GET", url).json().get("value", []):
            key = EntityKey(
                str(item["LogicalName"]),
                str(item.get("SchemaName") or item["LogicalName"]),
                tuple(item.get("KeyAttributes") or ()),
                str(item.get("EntityKeyIndexStatus") or ""),
            )
            keys[key.logical_name] = key
        return keys

    def navigation_properties(self, logical_name: str, *, refresh: bool = False) -> dict[str, str]:
        """Single-valued navigation properties of a table and the table each one leads to, from the service's
        CSDL ($metadata): e.g. {"regardingobjectid_contact_task": "contact", ...} for task. Names of
        polymorphic lookups differ per target and table, so they are read, not guessed. The document is
        large on a real organisation: it is read once per process (and again after `max_age` or a refresh)."""
        navigation = None if refresh else self._navigation.get("")
        if navigation is None:
            response = self._send("GET", self._url("$metadata"), headers={"Accept": "application/xml"})
            navigation = self._navigation.put("", _navigation_from_csdl(response.content))
        return dict(navigation.get(logical_name, {}))

    def create_entity(self, definition: Mapping[str, Any]) -> None:
        """POST EntityDefinitions: a table with its primary name column (an EntityMetadata body)."""
        self._send("POST", self._url("EntityDefinitions"), json_body=dict(definition))

    def create_attribute(self, logical_name: str, attribute: Mapping[str, Any]) -> None:
        """POST EntityDefinitions(LogicalName='x')/Attributes: one column (an AttributeMetadata body)."""
        self._send("POST", self._url(f"EntityDefinitions(LogicalName='{logical_name}')/Attributes"),
                   json_body=dict(attribute))  # fmt: skip

    def create_key(self, logical_name: str, key: Mapping[str, Any]) -> None:
        """POST EntityDefinitions(LogicalName='x')/Keys: an alternate key (an EntityKeyMetadata body).
        Dataverse builds its index in the background (EntityKeyIndexStatus Pending, then Active)."""
        self._send("POST", self._url(f"EntityDefinitions(LogicalName='{logical_name}')/Keys"), json_body=dict(key))

    def primary_key(self, entity_set: str) -> str:
        """The primary key attribute of an entity set (cached metadata look-up)."""
        with self._cache_lock:
            cached = self._primary_keys.get(entity_set)
        if cached is not None:
            return cached
        url = self._url(
            "EntityDefinitions?$select=LogicalName,EntitySetName,PrimaryIdAttribute"
            f"&$filter=EntitySetName eq '{_quote_literal(entity_set)}'"
        )
        found = self._send("GET", url).json().get("value", [])
        if not found:
            raise ValueError(f"no table has the entity set {entity_set!r}")
        with self._cache_lock:
            self._primary_keys[entity_set] = found[0]["PrimaryIdAttribute"]
        return str(found[0]["PrimaryIdAttribute"])

    # -- writes --------------------------------------------------------------------------------
    def create(self, entity_set: str, body: Mapping[str, Any], id: str | None = None) -> str:
        """Create a row; with `id`, under that client-chosen GUID (412 RECORD_ERROR if it exists). Returns its id."""
        payload = dict(body)
        if id is not None:
            row_path(entity_set, id)  # a GUID or nothing leaves this process
            payload[self.primary_key(entity_set)] = id
        response = self._send("POST", self._url(entity_set), json_body=payload)
        return _entity_id(response.headers.get("OData-EntityId", "")) or str(id)

    def update(self, entity_set: str, id: str, body: Mapping[str, Any]) -> None:
        """Update an existing row; If-Match: * makes a missing row a 404 RECORD_ERROR, never a create."""
        self._send("PATCH", self._url(row_path(entity_set, id)), headers={"If-Match": "*"}, json_body=dict(body))

    def update_returning(
        self, entity_set: str, id: str, body: Mapping[str, Any], select: Sequence[str]
    ) -> dict[str, Any] | None:
        """Update an existing row (If-Match: *) and read the `select` columns back in the same call (Prefer:
        return=representation); None when the row does not exist (never created)."""
        response = self._send("PATCH", self._url(f"{row_path(entity_set, id)}?$select={_select(select)}"),
                              headers={"If-Match": "*", "Prefer": "return=representation"}, json_body=dict(body),
                              allow=frozenset({404}))  # fmt: skip
        return None if response.status_code == 404 else dict(response.json())

    def upsert(self, entity_set: str, id: str, body: Mapping[str, Any]) -> None:
        """Create the row with this id, or update it if it exists."""
        self._send("PATCH", self._url(row_path(entity_set, id)), json_body=dict(body))

    def create_if_absent(self, entity_set: str, id: str, body: Mapping[str, Any]) -> bool:
        """Create the row under this id unless it exists (If-None-Match: *); False when it was there already."""
        response = self._send("PATCH", self._url(row_path(entity_set, id)), headers={"If-None-Match": "*"},
                              json_body=dict(body), allow=frozenset({412}))  # fmt: skip
        return response.status_code != 412

    def delete(self, entity_set: str, id: str) -> None:
        self._send("DELETE", self._url(row_path(entity_set, id)))

    def batch(
        self,
        operations: Sequence[Operation],
        *,
        continue_on_error: bool = True,
        changeset: bool = False,
    ) -> list[OperationResult]:
        """Send up to 1000 operations in one $batch; one result per operation, in order.

        changeset=True makes them atomic (all or nothing). Without continue_on_error the server stops
        at the first failure; operations after it come back with status 0 (not processed).
        """
        if not operations:
            return []
        if len(operations) > MAX_BATCH_OPERATIONS:
            raise ValueError(f"a $batch holds at most {MAX_BATCH_OPERATIONS} operations")
        if changeset and any(op.method == "GET" for op in operations):
            raise ValueError("a change set cannot contain GET requests")
        boundary = f"batch_{uuid.uuid4()}"
        payload = self._batch_body(operations, boundary, changeset)
        headers = {"Content-Type": f'multipart/mixed; boundary="{boundary}"'}
        if continue_on_error:
            headers["Prefer"] = "odata.continue-on-error"
        # Without continue-on-error the batch itself answers with the failing part's status.
        response = self._send("POST", self._url("$batch"), headers=headers, data=payload, allow=_RECORD_STATUSES)
        content_type = response.headers.get("Content-Type", "")
        if not content_type.lower().startswith("multipart/mixed"):
            outcome, code, message = classify(response)
            raise ApiError(outcome, response.status_code, message, code=code, method="POST", url=response.url)
        return _results(operations, parse_batch_response(response.content, content_type), changeset)

    def _batch_body(self, operations: Sequence[Operation], boundary: str, changeset: bool) -> bytes:
        parts = []
        for index, op in enumerate(operations):
            body = dict(op.body) if op.body is not None else None
            if op.new_id is not None and body is not None:
                body[self.primary_key(op.entity_set)] = op.new_id
            parts.append(_request_part(self.api_url, op, body, str(index + 1) if changeset else None))
        if changeset:
            inner = f"changeset_{uuid.uuid4()}"
            nested = "".join(f"--{inner}\r\n{p}" for p in parts) + f"--{inner}--\r\n"
            text = f"--{boundary}\r\nContent-Type: multipart/mixed; boundary={inner}\r\n\r\n{nested}"
        else:
            text = "".join(f"--{boundary}\r\n{p}" for p in parts)
        return (text + f"--{boundary}--\r\n").encode("utf-8")

    # -- parallelism ---------------------------------------------------------------------------
    def map_parallel(self, function: Callable[[T], R], items: Iterable[T]) -> list[R | ApiError]:
        """Apply `function` to every item with at most `max_parallel` requests in flight.

        Errors are data: an item whose call raised ApiError gets that error in its slot.
        """

        def run(item: T) -> R | ApiError:
            try:
                return function(item)
            except ApiError as error:
                return error

        with ThreadPoolExecutor(max_workers=self.max_parallel) as pool:
            return list(pool.map(run, items))


def build_client(
    org_url: str,
    token_provider: TokenProvider,
    *,
    verify: bool | str = True,
    page_size: int = MAX_PAGE_SIZE,
    max_parallel: int = 8,
    policy: RetryPolicy | None = None,
    timeout: tuple[float, float] = (10.0, 120.0),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> DataverseClient:
    """A DataverseClient on an HttpClient with the Dataverse classifier (the usual way to make one)."""
    http = HttpClient(
        session=build_verified_session(verify, pool_size=max(16, max_parallel)),
        token_provider=token_provider,
        classifier=classify,
        policy=policy,
        timeout=timeout,
        sleep=sleep,
        clock=clock,
    )
    return DataverseClient(org_url, http, page_size=page_size, max_parallel=max_parallel)


def build_dataverse_client(
    *,
    url: str,
    tenant_id: str,
    client_id: str,
    client_secret: str | None = None,
    certificate: str | None = None,
    certificate_thumbprint: str | None = None,
    authority_host: str = "https://login.microsoftonline.com",
    page_size: int = MAX_PAGE_SIZE,
    max_parallel: int = 8,
    verify: bool | str = True,
    policy: RetryPolicy | None = None,
    timeout: tuple[float, float] = (10.0, 120.0),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> DataverseClient:
    """Client plus MSAL token provider from settings: a secret, or a PEM certificate and its SHA-1 thumbprint."""
    tokens = DataverseTokenProvider(
        tenant_id,
        client_id,
        resource_url=url,
        client_secret=client_secret,
        certificate=(certificate, certificate_thumbprint or "") if certificate else None,
        authority_host=authority_host,
        verify=verify,
        timeout=timeout[1],
    )
    return build_client(
        url,
        tokens,
        verify=verify,
        page_size=page_size,
        max_parallel=max_parallel,
        policy=policy,
        timeout=timeout,
        sleep=sleep,
        clock=clock,
    )


# -- helpers ---------------------------------------------------------------------------------------
def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _select(select: Sequence[str]) -> str:
    if isinstance(select, str) or not select:
        raise ValueError("select must be a non-empty list of column names")
    return ",".join(select)


def _quote_literal(text: str) -> str:
    return text.replace("'", "''")


_EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


def _navigation_from_csdl(document: bytes) -> dict[str, dict[str, str]]:
    """Entity type name -> {navigation property -> target type name} of the single-valued navigation properties."""
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for event, element in ElementTree.iterparse(io.BytesIO(document), events=("start", "end")):
        if element.tag == f"{_EDM}EntityType":
            if event == "start":
                current = out.setdefault(str(element.get("Name")), {})
            else:
                current = None
                element.clear()
        elif event == "start" and element.tag == f"{_EDM}NavigationProperty" and current is not None:
            target = str(element.get("Type") or "")
            if not target.startswith("Collection("):
                current[str(element.get("Name"))] = target.rsplit(".", 1)[-1]  # mscrm.contact / Microsoft...contact
    return out


def _label(label: Mapping[str, Any]) -> str:
    user = label.get("UserLocalizedLabel") or {}
    if user.get("Label"):
        return str(user["Label"])
    localized = label.get("LocalizedLabels") or [{}]
    return str(localized[0].get("Label", ""))


def _entity_id(url: str) -> str | None:
    match = _GUID.findall(url)
    return match[-1].lower() if match else None


def _request_part(api_url: str, op: Operation, body: dict[str, Any] | None, content_id: str | None) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{op.method} {api_url}{op.path} HTTP/1.1"]
    if body is not None:
        lines.append("Content-Type: application/json; type=entry")
    lines += [f"{name}: {value}" for name, value in op.headers.items()]
    text = "\r\n".join(lines) + "\r\n\r\n"
    if body is not None:
        text += json.dumps(body, separators=(",", ":"))
    return text + "\r\n"


@dataclasses.dataclass(frozen=True)
class _PartResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    content_id: str | None


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_BLANK = re.compile(rb"\r?\n\r?\n")


def parse_batch_response(body: bytes, content_type: str) -> list[_PartResponse | list[_PartResponse]]:
    """Parts of a $batch response in order; a change set's responses come as a nested list."""
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise ValueError("batch response without a boundary")
    out: list[_PartResponse | list[_PartResponse]] = []
    for block in _parts(body, match.group(1)):
        head, content = _split_head(block)
        headers = _headers(head)
        part_type = headers.get("content-type", "")
        inner = _BOUNDARY.search(part_type)
        if part_type.lower().startswith("multipart/mixed") and inner:
            out.append([_http_part(b) for b in _parts(content, inner.group(1))])
        else:
            out.append(_http_part(block))
    return out


def _parts(body: bytes, boundary: str) -> list[bytes]:
    pieces = body.split(b"--" + boundary.encode())
    blocks = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        blocks.append(piece.lstrip(b"\r\n"))
    return blocks


def _split_head(block: bytes) -> tuple[list[str], bytes]:
    match = _BLANK.search(block)
    if match is None:
        return block.decode("utf-8", "replace").splitlines(), b""
    return block[: match.start()].decode("utf-8", "replace").splitlines(), block[match.end() :]


def _headers(lines: Iterable[str]) -> dict[str, str]:
    headers = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def _http_part(block: bytes) -> _PartResponse:
    head, content = _split_head(block)
    part_headers = _headers(head)
    lines, body = _split_head(content)
    status_line = lines[0].split() if lines else []
    status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
    return _PartResponse(status, _headers(lines[1:]), body.rstrip(b"\r\n"), part_headers.get("content-id"))


def _result(index: int, part: _PartResponse) -> OperationResult:
    outcome, code, message = classify_parts(part.status, part.body, part.headers.get("content-type", ""))
    parsed: dict[str, Any] | None = None
    if part.body and "json" in part.headers.get("content-type", ""):
        try:
            loaded = json.loads(part.body)
            parsed = loaded if isinstance(loaded, dict) else None
        except ValueError:
            parsed = None
    if outcome is not Outcome.OK:
        parsed = None  # error bodies are summarised in code/message only
    entity = _entity_id(part.headers.get("odata-entityid", ""))
    return OperationResult(index, part.status, outcome, entity, code, message, parsed)


def _not_processed(index: int, why: str) -> OperationResult:
    return OperationResult(index, 0, Outcome.RETRY, message=why)


def _results(
    operations: Sequence[Operation], parts: list[_PartResponse | list[_PartResponse]], changeset: bool
) -> list[OperationResult]:
    if changeset:
        only = parts[0] if parts else None
        if isinstance(only, list):
            by_id = {p.content_id: p for p in only}
            return [
                _result(i, by_id[str(i + 1)]) if str(i + 1) in by_id else _not_processed(i, "no response part")
                for i in range(len(operations))
            ]
        if only is None:
            return [_not_processed(i, "empty batch response") for i in range(len(operations))]
        # The change set failed and rolled back: one error part names the failing operation.
        failed = int(only.content_id) - 1 if only.content_id and only.content_id.isdigit() else None
        return [
            _result(i, only)
            if i == failed
            else _not_processed(i, "rolled back: another operation of the change set failed")
            for i in range(len(operations))
        ]
    flat = [p for p in parts if isinstance(p, _PartResponse)]
    results = [_result(i, part) for i, part in enumerate(flat[: len(operations)])]
    results += [
        _not_processed(i, "not processed: the batch stopped at an earlier error")
        for i in range(len(results), len(operations))
    ]
    return results


def page_body(response: requests.Response) -> Any:
    """A page's JSON. orjson parses a 5,000-row page about 2.5 times faster than the standard library, and the
    parse holds the GIL the rest of the read shares; what orjson refuses and json reads (a lone surrogate in a
    text value, say) falls back to json, so every body reads as it would with `response.json()`. (An integer beyond
    64 bits would read as a float: Dataverse sends none, its widest integer type is the 64-bit BigInt.)"""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()
