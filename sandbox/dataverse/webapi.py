"""The Dataverse Web API surface of the sandbox, independent of HTTP plumbing (also serves $batch parts).

Behaviour and sources (PA = MicrosoftDocs/powerapps-docs developer/data-platform):
- service document at the root, $metadata, WhoAmI (the caller's systemuserid);
- paging: Prefer odata.maxpagesize (default and max 5000), opaque @odata.nextLink (webapi/query/page-results.md);
- change tracking: Prefer odata.track-changes, deltaLink only on the last page, `$deletedEntity` rows, delta
  context ending `/$delta`, $filter/$orderby/$expand/$top rejected, ExpiredVersionStamp 0x80044352
  (use-change-tracking-synchronize-data-external-systems.md). The initial read's delta link names the
  version at the *start* of the read, so rows changed while it was paging come back in the next delta;
- annotations: Prefer odata.include-annotations (formatted values, lookup details; query/select-columns.md);
- writes: create 204 + OData-EntityId (201 with return=representation), PATCH with If-Match: * never
  creates (404), PATCH without it upserts, If-None-Match: * never updates (412), lookups via @odata.bind
  to existing rows, alternate keys in the URL (create-entity-web-api.md, update-delete-entities-using-web-api.md,
  use-upsert-insert-update-record.md, use-alternate-key-reference-record.md);
- bulk: <set>/Microsoft.Dynamics.CRM.CreateMultiple, UpdateMultiple, UpsertMultiple, all or nothing on standard
  tables (bulk-operations.md, webapi/reference/upsertmultiple.md);
- $batch: at most 1000 requests, change sets atomic, Content-ID references, stop at the first error
  unless Prefer odata.continue-on-error (webapi/execute-batch-operations-using-web-api.md);
- metadata reads (metadata.py) and writes (metadata_write.py).
What is not modelled answers 400 or 501 with a message saying so, never a silent success.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from sandbox.dataverse import formatting, keys, metadata, multipart
from sandbox.dataverse.metadata_write import MetadataWriter
from sandbox.dataverse.odata import (
    DUPLICATE_RECORD,
    EXPIRED_VERSION_STAMP,
    JSON_TYPE,
    MODELLED_OPTIONS,
    ODATA_PARSE,
    ODataError,
    check_options,
    compile_filter,
    not_found_segment,
    not_modelled,
    parse_prefer,
    parse_query,
    project,
    record_not_found,
    select_columns,
    table_resolver,
    unknown_property,
)
from sandbox.dataverse.schema import Column, TableDef
from sandbox.dataverse.store import Store, Table
from sandbox.dataverse.writes import Caller, Writer, read_only_table

API_PREFIX = "/api/data/v9.2/"
MAX_PAGE_SIZE = 5000
MAX_BATCH = 1000
INVALID_ARGUMENT = "0x80040203"  # generic "invalid argument" (unverified for these exact cases)
CONCURRENCY_MISMATCH = "0x80060882"  # ConcurrencyVersionMismatch (unverified code)
_ENTITY = re.compile(r"^(?P<set>[A-Za-z_][\w]*)(?:\((?P<key>[^)]*)\))?(?:/(?P<rest>.*))?$")
_TRACK_FORBIDDEN = ("$filter", "$orderby", "$expand", "$top")
_BULK = {"CreateMultiple", "UpdateMultiple", "UpsertMultiple"}
_ONE_ROW_OPTIONS = frozenset({"$select"})
# Dataverse functions and actions the sandbox knows exist but does not model (answer 501, not 404).
_UNMODELLED_OPERATIONS = frozenset(
    {
        "RetrieveMetadataChanges",
        "BulkDelete",
        "ExecuteWorkflow",
        "Merge",
        "InsertOptionValue",
        "UpdateOptionValue",
        "DeleteOptionValue",
        "OrderOption",
        "InsertStatusValue",
        "CreateCustomerRelationships",
        "ReactivateEntityKey",
        "RetrieveEntityChanges",
        "CalculateRollupField",
        "SetState",
        "Assign",
        "GrantAccess",
        "RetrievePrincipalAccess",
        "GlobalOptionSetDefinitions",
        "ExecuteMultiple",
        "DeleteMultiple",
        "searchquery",
        "search",
    }
)


@dataclasses.dataclass
class Request:
    method: str
    path: str  # below /api/data/v9.2/, percent-decoded
    query: str  # raw query string
    headers: dict[str, str]  # lower-cased names; repeated Prefer headers joined with ","
    body: bytes = b""
    caller: Caller | None = None  # who the request acts as (None: the default client's application user)


@dataclasses.dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""


@dataclasses.dataclass(frozen=True)
class Annotations:
    terms: tuple[str, ...]
    raw: str  # the preference value, echoed in Preference-Applied


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    out = {"Content-Type": JSON_TYPE, "OData-Version": "4.0"}
    out.update(headers or {})
    return Response(status, out, json.dumps(payload, separators=(",", ":")).encode())


def error_response(error: ODataError) -> Response:
    headers = {"Content-Type": JSON_TYPE, "OData-Version": "4.0", **error.headers}
    return Response(error.status, headers, error.body())


def _encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError) as exc:
        raise ODataError(400, INVALID_ARGUMENT, "The paging cookie is not valid.") from exc
    if not isinstance(value, dict):
        raise ODataError(400, INVALID_ARGUMENT, "The paging cookie is not valid.")
    return value


class WebApi:
    def __init__(
        self,
        store: Store,
        org_url: str,
        *,
        default_caller: Caller,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.org_url = org_url.rstrip("/")
        self.api_root = self.org_url + API_PREFIX
        self.wall_clock = wall_clock
        self.expire_change_tracking_days = 7
        self.default_caller = default_caller
        self.writer = Writer(store, wall_clock)
        self.metadata_writer = MetadataWriter(store)

    # -- entry ---------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        try:
            return self._route(request)
        except ODataError as error:
            return error_response(error)

    def _caller(self, request: Request) -> Caller:
        caller = request.caller or self.default_caller
        impersonated = request.headers.get("mscrmcallerid")
        if impersonated:
            # Impersonation (PA impersonate-another-user-web-api.md): the write is made as that user, on behalf of
            # the application user.
            users = self.store.tables["systemuser"]
            user_id = impersonated.strip().strip("{}").lower()
            if not keys.GUID.match(user_id) or users.get(user_id) is None:
                raise record_not_found("systemuser", user_id)
            return Caller(user_id, on_behalf_of=caller.user_id)
        if request.headers.get("callerobjectid"):
            raise not_modelled("Impersonation by CallerObjectId (use MSCRMCallerID)")
        return caller

    def _route(self, request: Request) -> Response:
        path = request.path
        method = request.method
        if path in ("", "/"):
            if method != "GET":
                raise ODataError(405, INVALID_ARGUMENT, "The service document accepts GET only.")
            return json_response(200, metadata.service_document(self.store, self.api_root))
        if path == "$batch":
            if method != "POST":
                raise ODataError(405, INVALID_ARGUMENT, "$batch accepts POST only.")
            return self._batch(request)
        if path == "$metadata":
            return Response(200, {"Content-Type": "application/xml", "OData-Version": "4.0"}, metadata.csdl(self.store))
        if path in ("WhoAmI", "WhoAmI()"):
            return json_response(200, metadata.who_am_i(self.api_root, self._caller(request).user_id))
        if path.startswith("RetrieveTotalRecordCount("):
            return json_response(200, metadata.total_record_count(self.store, self.api_root, path, request.query))
        if path in ("PublishXml", "PublishAllXml") and method == "POST":
            return Response(204, {"OData-Version": "4.0"})  # metadata changes apply at once here (README)
        if path.startswith("EntityDefinitions"):
            return self._entity_definitions(request)
        if path == "CreateEntities" and method == "POST":
            created = self.metadata_writer.create_entities(self._body(request))
            return json_response(
                200,
                {
                    "@odata.context": f"{self.api_root}$metadata#Microsoft.Dynamics.CRM.CreateEntitiesResponse",
                    "EntityIds": [d.metadata_id for d in created],
                },
            )
        if path.startswith("RelationshipDefinitions"):
            return self._relationships(request)
        if path == "organizations" and method == "GET":
            return json_response(200, metadata.organizations(self.api_root, self.expire_change_tracking_days))
        match = _ENTITY.match(path)
        if match is None:
            raise not_found_segment(path.split("/")[0])
        if match["set"] in _UNMODELLED_OPERATIONS:
            raise not_modelled(f"The {match['set']} operation")
        table = self.store.by_set.get(match["set"])
        if table is None:
            raise not_found_segment(match["set"])
        key, rest = match["key"], match["rest"]
        if key is None:
            if rest == "$count" and method == "GET":
                return self._count(table, request)
            if rest and rest.startswith("Microsoft.Dynamics.CRM."):
                action = rest.removeprefix("Microsoft.Dynamics.CRM.")
                if action in _BULK:
                    if method != "POST":
                        raise ODataError(405, INVALID_ARGUMENT, f"{action} accepts POST only.")
                    return self._bulk(table, action, request)
                raise not_modelled(f"The bound operation {rest}")
            if rest:
                raise not_found_segment(rest)
            if method == "GET":
                return self._read(table, request)
            if method == "POST":
                return self._create(table, request)
            raise ODataError(405, INVALID_ARGUMENT, f"{method} is not allowed on an entity set.")
        if rest:
            if table.definition.navigation(rest) is not None or rest.startswith("Microsoft.Dynamics.CRM."):
                raise not_modelled(f"Addressing {rest} of a row")
            raise not_found_segment(rest)
        target = keys.parse(table.definition, key)
        if method == "GET":
            return self._read_one(table, target, key, request)
        if method == "PATCH":
            return self._patch(table, target, key, request)
        if method == "DELETE":
            return self._delete(table, target, key, request)
        raise ODataError(405, INVALID_ARGUMENT, f"{method} is not allowed on an entity.")

    # -- metadata ------------------------------------------------------------------------------
    def _entity_definitions(self, request: Request) -> Response:
        method, path = request.method, request.path
        if method == "GET":
            return json_response(200, metadata.entity_definitions(self.store, self.api_root, path, request.query))
        if method == "PATCH":
            raise ODataError(
                405,
                INVALID_ARGUMENT,
                "Table and column definitions are updated with PUT, not PATCH (the whole "
                "definition replaces the stored one).",
            )
        match = re.match(r"^EntityDefinitions(?:\((?P<key>[^)]*)\))?(?:/(?P<nav>\w+)(?:\((?P<sub>[^)]*)\))?)?$", path)
        if match is None:
            raise not_found_segment(path)
        writer = self.metadata_writer
        if match["key"] is None:
            if method != "POST" or match["nav"]:
                raise ODataError(405, INVALID_ARGUMENT, f"{method} is not allowed on EntityDefinitions.")
            definition = writer.create_entity(self._body(request))
            return _created(f"{self.api_root}EntityDefinitions({definition.metadata_id})")
        definition = metadata.table_by_key(self.store, match["key"])
        table = self.store.tables[definition.logical_name]
        nav, sub = match["nav"], match["sub"]
        entity_url = f"{self.api_root}EntityDefinitions(LogicalName='{definition.logical_name}')"
        if nav is None:
            if method == "PUT":
                writer.update_entity(table, self._body(request))
                return Response(204, {"OData-Version": "4.0"})
            if method == "DELETE":
                writer.delete_entity(table)
                return Response(204, {"OData-Version": "4.0"})
        elif nav == "Attributes":
            if method == "POST" and sub is None:
                column = writer.create_attribute(table, self._body(request))
                return _created(f"{entity_url}/Attributes({metadata.attribute_id(table.definition, column)})")
            if method == "PUT" and sub is not None:
                writer.update_attribute(table, sub, self._body(request))
                return Response(204, {"OData-Version": "4.0"})
            if method == "DELETE" and sub is not None:
                writer.delete_attribute(table, sub)
                return Response(204, {"OData-Version": "4.0"})
        elif nav == "Keys":
            if method == "POST" and sub is None:
                created = writer.create_key(table, self._body(request))
                return _created(f"{entity_url}/Keys({created.metadata_id})")
            if method == "DELETE" and sub is not None:
                writer.delete_key(table, sub)
                return Response(204, {"OData-Version": "4.0"})
        raise ODataError(405, INVALID_ARGUMENT, f"{method} is not allowed on {path}.")

    def _relationships(self, request: Request) -> Response:
        writer = self.metadata_writer
        match = re.match(r"^RelationshipDefinitions(?:\((?P<id>[0-9a-fA-F-]{36})\))?$", request.path)
        if match is None:
            raise not_found_segment(request.path)
        if request.method == "POST" and match["id"] is None:
            relationship_id = writer.create_relationship(self._body(request))
            return _created(f"{self.api_root}RelationshipDefinitions({relationship_id})")
        if request.method == "GET" and match["id"] is not None:
            item = writer.relationships.get(match["id"].lower())
            if item is None:
                raise ODataError(404, "0x80040217", "Could not find the relationship.")
            return json_response(
                200, {"@odata.context": f"{self.api_root}$metadata#RelationshipDefinitions/$entity", **item}
            )
        raise not_modelled(f"{request.method} on RelationshipDefinitions")

    # -- reads ---------------------------------------------------------------------------------
    def _annotations(self, prefer: dict[str, str]) -> Annotations:
        raw = prefer.get("odata.include-annotations", "")
        return Annotations(formatting.requested(raw), raw)

    def _shaper(
        self, definition: TableDef, columns: list[Column], notes: Annotations
    ) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """The function that turns a stored row into the returned one (plain projection on the hot path)."""
        if not notes.terms:
            return lambda row: project(row, columns)
        return lambda row: formatting.annotate(row, columns, definition, notes.terms, self._name_of)

    def _name_of(self, logical_name: str, row_id: str) -> str | None:
        table = self.store.tables.get(logical_name)
        row = table.get(row_id) if table is not None else None
        name = table.definition.primary_name if table is not None else None
        return row.get(name) if row is not None and name else None

    def _read(self, table: Table, request: Request) -> Response:
        query = parse_query(request.query)
        prefer = parse_prefer([request.headers.get("prefer", "")])
        page_size = _page_size(prefer)
        notes = self._annotations(prefer)
        definition = table.definition
        tracking = "$deltatoken" in query or "odata.track-changes" in prefer
        if tracking and definition.change_tracking:
            for option in _TRACK_FORBIDDEN:
                if option in query:
                    raise ODataError(
                        400,
                        INVALID_ARGUMENT,
                        f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.',
                    )
            check_options(query, MODELLED_OPTIONS)
            columns = select_columns(definition, query.get("$select"))
            if "$deltatoken" in query:
                return self._delta(table, query, columns, page_size, notes)
            return self._initial(table, query, columns, page_size, notes)
        if "$deltatoken" in query:
            # No delta link is ever issued for such a table; a hand-made one is refused.
            raise ODataError(
                400, INVALID_ARGUMENT, f"Entity: {definition.logical_name} isn't enabled for change tracking."
            )
        check_options(query, MODELLED_OPTIONS)
        columns = select_columns(definition, query.get("$select"))
        return self._plain(table, query, columns, page_size, prefer, notes)

    def _context(self, definition: TableDef, query: dict[str, str], suffix: str = "") -> str:
        select = query.get("$select")
        shape = f"({select})" if select else ""
        return f"{self.api_root}$metadata#{definition.entity_set}{shape}{suffix}"

    def _link(self, definition: TableDef, query: dict[str, str], **extra: str) -> str:
        params = {k: v for k, v in query.items() if k not in ("$skiptoken", "$deltatoken")}
        params.update(extra)
        encoded = "&".join(f"{k}={quote(v, safe=',()*')}" for k, v in params.items())
        return f"{self.api_root}{definition.entity_set}?{encoded}"

    def _delta_token(self, version: int) -> str:
        # Shape of the documented token: "<version>!<MM/dd/yyyy HH:mm:ss>" (use-change-tracking... .md).
        return f"{version}!{time.strftime('%m/%d/%Y %H:%M:%S', time.gmtime(self.wall_clock()))}"

    def _initial(
        self, table: Table, query: dict[str, str], columns: list[Column], page_size: int, notes: Annotations
    ) -> Response:
        definition = table.definition
        shape = self._shaper(definition, columns, notes)
        cookie = _decode_token(query["$skiptoken"]) if "$skiptoken" in query else None
        with self.store.lock:
            # The snapshot version is fixed on the first page and travels in the paging cookie.
            snapshot = int(cookie["w"]) if cookie else self.store.version
            cursor = tuple(cookie["c"]) if cookie else ("s", 0)
            rows, next_cursor = _take(table.scan(cursor, _names(columns)), page_size)
            value = [shape(row) for row in rows]
        payload: dict[str, Any] = {"@odata.context": self._context(definition, query), "value": value}
        if next_cursor is not None:
            payload["@odata.nextLink"] = self._link(
                definition, query, **{"$skiptoken": _encode_token({"t": 1, "w": snapshot, "c": list(next_cursor)})}
            )
        else:
            payload["@odata.deltaLink"] = self._link(definition, query, **{"$deltatoken": self._delta_token(snapshot)})
        return json_response(200, payload, {"Preference-Applied": _applied(page_size, notes)})

    def _since(self, token: str) -> int:
        head = token.split("!", 1)[0]
        if not head.isdigit() or int(head) > self.store.version:
            raise ODataError(400, INVALID_ARGUMENT, "The delta token is not valid.")
        since = int(head)
        if since < self.store.expired_before:
            # ExpiredVersionStamp. The Web API status for it is not documented; 400 is assumed
            # (reference/dataverse.md section 3).
            raise ODataError(
                400,
                EXPIRED_VERSION_STAMP,
                "Version stamp associated with the client has expired. Please perform a full sync.",
            )
        return since

    def _delta(
        self, table: Table, query: dict[str, str], columns: list[Column], page_size: int, notes: Annotations
    ) -> Response:
        definition = table.definition
        shape = self._shaper(definition, columns, notes)
        cookie = _decode_token(query["$skiptoken"]) if "$skiptoken" in query else None
        deleted_context = f"{self.api_root}$metadata#{definition.entity_set}/$deletedEntity"
        with self.store.lock:
            since = self._since(query["$deltatoken"])
            until = int(cookie["u"]) if cookie else self.store.version
            position = int(cookie["p"]) if cookie else 0
            window = table.window(since, until)
            names = _names(columns)
            value: list[dict[str, Any]] = []
            seeded = window.seeded
            upserts = len(window.upserts)
            total = len(window)
            while position < total and len(value) < page_size:
                if position < seeded:
                    segment, index = _locate(window.segments, position)
                    row_id = _seeded_id(segment, index)
                    if row_id not in window.touched:
                        row = table.seeded_row(index, segment, names)
                        if row is not None:
                            value.append(shape(row))
                elif position < seeded + upserts:
                    row_id = window.upserts[position - seeded]
                    current = table.get(row_id)
                    if current is not None:
                        value.append(shape(current))
                    else:  # deleted after the window closed: say so now, the next delta repeats it
                        value.append({"@odata.context": deleted_context, "id": row_id, "reason": "deleted"})
                else:
                    row_id = window.deletes[position - seeded - upserts]
                    value.append({"@odata.context": deleted_context, "id": row_id, "reason": "deleted"})
                position += 1
        payload: dict[str, Any] = {"@odata.context": self._context(definition, query, "/$delta"), "value": value}
        if position < total:
            token = _encode_token({"u": until, "p": position})
            payload["@odata.nextLink"] = self._link(
                definition, query, **{"$deltatoken": query["$deltatoken"], "$skiptoken": token}
            )
        else:
            payload["@odata.deltaLink"] = self._link(definition, query, **{"$deltatoken": self._delta_token(until)})
        return json_response(200, payload, {"Preference-Applied": _applied(page_size, notes)})

    def _plain(
        self,
        table: Table,
        query: dict[str, str],
        columns: list[Column],
        page_size: int,
        prefer: dict[str, str],
        notes: Annotations,
    ) -> Response:
        definition = table.definition
        predicate = compile_filter(query["$filter"], table_resolver(definition), query) if "$filter" in query else None
        top = int(query["$top"]) if query.get("$top", "").isdigit() else None
        if "$top" in query and top is None:
            raise ODataError(400, ODATA_PARSE, "The value of $top must be a non-negative integer.")
        if "odata.maxpagesize" in prefer:
            top = None  # $top is ignored together with maxpagesize (PA page-results.md)
        cookie = _decode_token(query["$skiptoken"]) if "$skiptoken" in query else None
        payload: dict[str, Any] = {"@odata.context": self._context(definition, query)}
        shape = self._shaper(definition, columns, notes)
        with self.store.lock:
            if "$orderby" in query or top is not None or query.get("$count") == "true":
                matching = [row for _, row in table.scan(("s", 0)) if predicate is None or predicate(row)]
                if "$orderby" in query:
                    matching = _order(definition, matching, query["$orderby"])
                if top is not None:
                    matching = matching[:top]
                offset = int(cookie["o"]) if cookie else 0
                rows = matching[offset : offset + page_size]
                following = offset + page_size if offset + page_size < len(matching) else None
                next_token: dict[str, Any] | None = {"o": following} if following is not None else None
                if query.get("$count") == "true":
                    payload["@odata.count"] = min(len(matching), 5000)  # capped (PA count-rows.md)
            else:
                cursor = tuple(cookie["c"]) if cookie else ("s", 0)
                names = _names(columns) if predicate is None else None  # a filter may read any column
                scan = ((c, r) for c, r in table.scan(cursor, names) if predicate is None or predicate(r))
                rows, next_cursor = _take(scan, page_size)
                next_token = {"c": list(next_cursor)} if next_cursor is not None else None
            payload["value"] = [shape(row) for row in rows]
        if next_token is not None:
            payload["@odata.nextLink"] = self._link(definition, query, **{"$skiptoken": _encode_token(next_token)})
        applied = [f"odata.maxpagesize={page_size}"] if "odata.maxpagesize" in prefer else []
        if notes.raw:
            applied.append(f'odata.include-annotations="{notes.raw}"')
        return json_response(200, payload, {"Preference-Applied": ",".join(applied)} if applied else {})

    def _count(self, table: Table, request: Request) -> Response:
        query = parse_query(request.query)
        check_options(query, frozenset({"$deltatoken", "$select", "$filter"}))
        with self.store.lock:
            if "$deltatoken" in query:
                count = len(table.window(self._since(query["$deltatoken"]), self.store.version))
            elif "$filter" in query:
                predicate = compile_filter(query["$filter"], table_resolver(table.definition), query)
                count = min(sum(1 for _, row in table.scan(("s", 0)) if predicate(row)), 5000)
            else:
                count = min(table.live, 5000)  # capped like $count (PA count-rows.md)
        return Response(200, {"Content-Type": "text/plain", "OData-Version": "4.0"}, str(count).encode())

    def _resolve(self, table: Table, target: str | keys.AlternateKey) -> str | None:
        if isinstance(target, str):
            return target if table.get(target) is not None else None
        values = tuple(target.values[name] for name in target.key.attributes)
        return table.find_by_key(target.key, values)

    def _missing(self, definition: TableDef, target: str | keys.AlternateKey, key_text: str) -> ODataError:
        if isinstance(target, str):
            return record_not_found(definition.logical_name, target)
        # [U] the exact message for a missing alternate key value
        return ODataError(
            404, "0x80040217", f"A record with the specified key values does not exist in {definition.logical_name}"
        )

    def _read_one(self, table: Table, target: str | keys.AlternateKey, key_text: str, request: Request) -> Response:
        query = parse_query(request.query)
        check_options(query, _ONE_ROW_OPTIONS)
        prefer = parse_prefer([request.headers.get("prefer", "")])
        notes = self._annotations(prefer)
        definition = table.definition
        columns = select_columns(definition, query.get("$select"))
        shape = self._shaper(definition, columns, notes)
        with self.store.lock:
            row_id = self._resolve(table, target)
            row = table.get(row_id) if row_id is not None else None
            if row is None:
                raise self._missing(definition, target, key_text)
            payload = {"@odata.context": self._context(definition, query, "/$entity"), **shape(row)}
        headers = {"Preference-Applied": f'odata.include-annotations="{notes.raw}"'} if notes.raw else {}
        return json_response(200, payload, headers)

    # -- writes --------------------------------------------------------------------------------
    def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError as exc:
            raise ODataError(400, ODATA_PARSE, "The request body is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise ODataError(400, ODATA_PARSE, "The request body must be a JSON object.")
        return body

    def _entity_url(self, definition: TableDef, row_id: str) -> str:
        return f"{self.api_root}{definition.entity_set}({row_id})"

    def _written(self, table: Table, row_id: str, request: Request, created: bool) -> Response:
        prefer = parse_prefer([request.headers.get("prefer", "")])
        url = self._entity_url(table.definition, row_id)
        headers = {"OData-EntityId": url, "Location": url}
        if prefer.get("return") == "representation":
            query = parse_query(request.query)
            check_options(query, _ONE_ROW_OPTIONS)
            columns = select_columns(table.definition, query.get("$select"))
            notes = self._annotations(prefer)
            shape = self._shaper(table.definition, columns, notes)
            with self.store.lock:
                row = table.get(row_id) or {}
                payload = {"@odata.context": self._context(table.definition, query, "/$entity"), **shape(row)}
            headers["Preference-Applied"] = "return=representation"
            return json_response(201 if created else 200, payload, headers)
        return Response(204, {"OData-Version": "4.0", **headers})

    def _create(self, table: Table, request: Request) -> Response:
        body = self._body(request)
        row_id = self.writer.create(table, body, self._caller(request))
        return self._written(table, row_id, request, created=True)

    def _patch(self, table: Table, target: str | keys.AlternateKey, key_text: str, request: Request) -> Response:
        body = self._body(request)
        definition = table.definition
        caller = self._caller(request)
        if_match = request.headers.get("if-match")
        if_none_match = request.headers.get("if-none-match")
        with self.store.lock:
            row_id = self._resolve(table, target)
            current = table.get(row_id) if row_id is not None else None
            if if_match is not None:
                if current is None:  # If-Match prevents an accidental create (update-delete-entities...md)
                    raise self._missing(definition, target, key_text)
                if if_match.strip() != "*" and if_match.strip() != f'W/"{current.get("versionnumber")}"':
                    raise ODataError(
                        412,
                        CONCURRENCY_MISMATCH,
                        "The version of the existing record doesn't match the RowVersion property provided.",
                    )
            if if_none_match is not None and if_none_match.strip() == "*" and current is not None:
                raise ODataError(412, DUPLICATE_RECORD, "A record with matching key values already exists.")
            if current is not None and row_id is not None:
                self.writer.update(table, row_id, body, caller)
                return self._written(table, row_id, request, created=False)
            if isinstance(target, str):
                new_id = self.writer.create(table, body, caller, row_id=target)
            else:
                for name, value in target.values.items():
                    if name in body and body[name] != value:
                        raise ODataError(
                            400, INVALID_ARGUMENT, f"The value of '{name}' in the body differs from the key in the URL."
                        )
                clean = {k: v for k, v in body.items() if k not in target.values}
                new_id = self.writer.create(table, clean, caller, key_values=target.values)
        return self._written(table, new_id, request, created=True)

    def _delete(self, table: Table, target: str | keys.AlternateKey, key_text: str, request: Request) -> Response:
        with self.store.lock:
            row_id = self._resolve(table, target)
            if row_id is None:
                raise self._missing(table.definition, target, key_text)
            self.writer.delete(table, row_id, self._caller(request))
        return Response(204, {"OData-Version": "4.0"})

    # -- bulk operations -------------------------------------------------------------------------
    def _bulk(self, table: Table, action: str, request: Request) -> Response:
        definition = table.definition
        check_options(parse_query(request.query), frozenset())
        if not definition.writable:
            raise read_only_table(definition, action)
        if definition.is_activity:
            # [U] Microsoft: "not all standard tables support these messages; test with sdkmessagefilters". The
            # sandbox refuses activity tables so a client never relies on it there; use $batch.
            raise ODataError(
                400,
                "0x80040800",
                f"The '{action}' method does not support entities of type '{definition.logical_name}'.",
            )
        targets = self._body(request).get("Targets")
        if not isinstance(targets, list) or not targets or not all(isinstance(t, dict) for t in targets):
            raise ODataError(400, INVALID_ARGUMENT, f"{action} needs Targets: a non-empty list of records.")
        wanted = f"Microsoft.Dynamics.CRM.{definition.logical_name}"
        for target in targets:
            if str(target.get("@odata.type", "")).lstrip("#") != wanted:
                raise ODataError(400, INVALID_ARGUMENT, f'Every item in Targets needs "@odata.type": "{wanted}".')
        caller = self._caller(request)
        ids: list[str] = []
        # Standard tables: any error rolls the whole operation back (PA bulk-operations.md, On Error behavior).
        with self.store.transaction():
            for target in targets:
                if action == "CreateMultiple":
                    ids.append(self.writer.create(table, target, caller))
                elif action == "UpdateMultiple":
                    row_id = str(target.get(definition.primary_key) or "").lower()
                    if not keys.GUID.match(row_id):
                        raise ODataError(
                            400, INVALID_ARGUMENT, f"Every UpdateMultiple target needs its {definition.primary_key}."
                        )
                    self.writer.update(table, row_id, target, caller)
                else:
                    self._upsert_target(table, target, caller)
        if action == "CreateMultiple":
            return json_response(
                200,
                {
                    "@odata.context": f"{self.api_root}$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse",
                    "Ids": ids,
                },
            )
        return Response(204, {"OData-Version": "4.0"})  # UpsertMultiple answers 204 (its reference page)

    def _upsert_target(self, table: Table, target: dict[str, Any], caller: Caller) -> None:
        definition = table.definition
        odata_id = target.get("@odata.id")
        if odata_id:
            match = re.search(r"([A-Za-z_]\w*)\((.*)\)$", str(odata_id))
            if match is None or match.group(1) != definition.entity_set:
                raise ODataError(400, INVALID_ARGUMENT, "The @odata.id of an UpsertMultiple target is not valid.")
            parsed = keys.parse(definition, match.group(2))
        elif target.get(definition.primary_key):
            parsed = str(target[definition.primary_key]).lower()
            if not keys.GUID.match(parsed):
                raise ODataError(400, ODATA_PARSE, f"Cannot convert the value of '{definition.primary_key}'.")
        else:
            raise ODataError(
                400,
                INVALID_ARGUMENT,
                "Every UpsertMultiple target needs @odata.id (a primary or "
                f"alternate key) or its {definition.primary_key}.",
            )
        row_id = self._resolve(table, parsed)
        if row_id is not None:
            self.writer.update(table, row_id, target, caller)
        elif isinstance(parsed, str):
            self.writer.create(table, target, caller, row_id=parsed)
        else:
            clean = {k: v for k, v in target.items() if k not in parsed.values}
            self.writer.create(table, clean, caller, key_values=parsed.values)

    # -- $batch --------------------------------------------------------------------------------
    def _batch(self, request: Request) -> Response:
        try:
            items = multipart.parse_batch(request.body, request.headers.get("content-type", ""))
        except (multipart.MultipartError, UnicodeDecodeError) as exc:
            raise ODataError(400, INVALID_ARGUMENT, f"The batch request is malformed: {exc}") from exc
        count = sum(len(i.parts) if isinstance(i, multipart.ChangeSet) else 1 for i in items)
        if count > MAX_BATCH:
            raise ODataError(
                400,
                INVALID_ARGUMENT,
                f"The number of requests in the batch ({count}) exceeds the limit of {MAX_BATCH}.",
            )
        continue_on_error = "odata.continue-on-error" in parse_prefer([request.headers.get("prefer", "")])
        out: list[multipart.ResponsePart | list[multipart.ResponsePart]] = []
        status = 200
        for item in items:
            failed: multipart.ResponsePart | None = None
            if isinstance(item, multipart.ChangeSet):
                done, failed = self._changeset(item, request.caller)
                out.append(failed if failed is not None else done)
            else:
                if item.url.startswith("$"):
                    failed = _part(item, error_response(_undeclared(item.url.split("/")[0])))
                    out.append(failed)
                else:
                    response = self._part(item, request.caller)
                    out.append(_part(item, response))
                    failed = out[-1] if response.status >= 400 else None  # type: ignore[assignment]
            if failed is not None and not continue_on_error:
                # The batch answers with the first failure's error and stops (batch doc, Handling errors).
                status = failed.status
                break
        content_type, body = multipart.format_batch(out)
        return Response(status, {"Content-Type": content_type, "OData-Version": "4.0"}, body)

    def _changeset(
        self, changeset: multipart.ChangeSet, caller: Caller | None
    ) -> tuple[list[multipart.ResponsePart], multipart.ResponsePart | None]:
        done: list[multipart.ResponsePart] = []
        references: dict[str, str] = {}
        failure: list[multipart.ResponsePart] = []
        try:
            with self.store.transaction():
                for part in changeset.parts:
                    if part.method == "GET":
                        raise _Rollback(
                            _part(
                                part,
                                error_response(
                                    ODataError(400, INVALID_ARGUMENT, "GET requests are not allowed in a change set.")
                                ),
                            )
                        )
                    try:
                        resolved = _resolve_references(part, references)
                    except ODataError as error:
                        raise _Rollback(_part(part, error_response(error))) from error
                    response = self._part(resolved, caller)
                    if response.status >= 400:
                        raise _Rollback(_part(part, response))
                    if part.content_id is not None and "OData-EntityId" in response.headers:
                        references[part.content_id] = response.headers["OData-EntityId"]
                    done.append(_part(part, response))
        except _Rollback as rollback:
            failure.append(rollback.response)
        return done, (failure[0] if failure else None)

    def _part(self, part: multipart.RequestPart, caller: Caller | None) -> Response:
        url = part.url
        for prefix in (self.api_root, self.org_url + API_PREFIX, API_PREFIX):
            if url.startswith(prefix):
                url = url[len(prefix) :]
                break
        if url.startswith("http") or url.startswith("/"):
            return error_response(not_found_segment(url))
        path, _, query = url.partition("?")
        return self.handle(Request(part.method, unquote(path), query, part.headers, part.body, caller))


def _created(url: str) -> Response:
    return Response(204, {"OData-Version": "4.0", "OData-EntityId": url})


class _Rollback(Exception):
    def __init__(self, response: multipart.ResponsePart) -> None:
        super().__init__("change set failed")
        self.response = response


def _undeclared(reference: str) -> ODataError:
    return ODataError(
        400, INVALID_ARGUMENT, f"Content-ID Reference: '{reference}' does not exist in the batch context."
    )


def _resolve_references(part: multipart.RequestPart, references: dict[str, str]) -> multipart.RequestPart:
    """Replace `$n` in the URL and in @odata.bind values by the URL of the entity created by Content-ID n."""

    def resolve(text: str) -> str:
        name, sep, rest = text[1:].partition("/")
        if name not in references:
            raise _undeclared("$" + name)
        return references[name] + sep + rest

    url = resolve(part.url) if part.url.startswith("$") else part.url
    body = part.body
    if b'"$' in body:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key, value in list(data.items()):
                if key.endswith("@odata.bind") and isinstance(value, str) and value.startswith("$"):
                    data[key] = resolve(value)
            body = json.dumps(data).encode()
    return dataclasses.replace(part, url=url, body=body)


def _part(part: multipart.RequestPart, response: Response) -> multipart.ResponsePart:
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return multipart.ResponsePart(response.status, headers, response.body, part.content_id)


def _names(columns: list[Column]) -> tuple[str, ...]:
    """Stored column names a projection needs (the version feeds @odata.etag)."""
    return tuple(dict.fromkeys([*(c.name for c in columns), "versionnumber"]))


def _page_size(prefer: dict[str, str]) -> int:
    raw = prefer.get("odata.maxpagesize", "")
    if not raw:
        return MAX_PAGE_SIZE
    if not raw.isdigit() or int(raw) < 1:
        raise ODataError(400, INVALID_ARGUMENT, "odata.maxpagesize must be a positive integer.")
    return min(int(raw), MAX_PAGE_SIZE)


def _applied(page_size: int, notes: Annotations) -> str:
    applied = f"odata.track-changes,odata.maxpagesize={page_size}"
    return applied + (f',odata.include-annotations="{notes.raw}"' if notes.raw else "")


def _take(scan: Any, page_size: int) -> tuple[list[dict[str, Any]], tuple[Any, ...] | None]:
    """Up to page_size rows, and the cursor to continue from (None when the scan is exhausted)."""
    rows: list[dict[str, Any]] = []
    cursor: tuple[Any, ...] | None = None
    for next_cursor, row in scan:
        if len(rows) == page_size:
            return rows, cursor
        rows.append(row)
        cursor = next_cursor
    return rows, None


def _locate(segments: tuple[Any, ...], position: int) -> tuple[Any, int]:
    for segment in segments:
        if position < segment.count:
            return segment, segment.start + position
        position -= segment.count
    raise IndexError(position)


def _seeded_id(segment: Any, index: int) -> str:
    from sandbox.dataverse.generate import guid_for

    return guid_for(index, segment.seed)


def _order(definition: TableDef, rows: list[dict[str, Any]], orderby: str) -> list[dict[str, Any]]:
    for clause in reversed([c.strip() for c in orderby.split(",") if c.strip()]):
        name, _, direction = clause.partition(" ")
        column = definition.by_select_name(name) or definition.column(name)
        if column is None:
            raise unknown_property(definition, name)
        key = column.name
        rows = sorted(
            rows, key=lambda r: (r.get(key) is not None, r.get(key) or 0), reverse=direction.strip().lower() == "desc"
        )
    return rows
